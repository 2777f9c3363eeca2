/* Unit tests of core/yaml_codec: go-yaml v2 scalar resolution, errors with
 * positions, multi-document streams, anchors and merges, and the
 * kubectl-style emitter. Prints TAP; exits non-zero on failure. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "yaml_codec.h"

static int failures, count;

static void ok(int cond, const char *what) {
  count++;
  if (!cond) failures++;
  printf("%s %d - ", cond ? "ok" : "not ok", count);
  for (const char *p = what; *p; p++) putchar(*p == '\n' || *p == '\t' ? ' ' : *p);
  putchar('\n');
}

/* Decodes `yaml` (one document) and compares its compact sorted JSON. */
static void decodes_to(const char *yaml, const char *want) {
  char err[512];
  json_t *j = ml_yaml_load(yaml, strlen(yaml), err, sizeof err);
  char *got = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY)
                : NULL;
  int good = got && strcmp(got, want) == 0;
  char what[300];
  snprintf(what, sizeof what, "decode %.60s", yaml);
  ok(good, what);
  if (!good) printf("#   got %s (%s)\n#  want %s\n", got ? got : "NULL", err, want);
  free(got);
  json_decref(j);
}

static void fails_with(const char *yaml, const char *want) {
  char err[512];
  json_t *j = ml_yaml_load(yaml, strlen(yaml), err, sizeof err);
  int good = !j && strcmp(err, want) == 0;
  char what[300];
  snprintf(what, sizeof what, "error for %.60s", yaml);
  ok(good, what);
  if (!good) printf("#   got '%s'\n#  want '%s'\n", j ? "(value)" : err, want);
  json_decref(j);
}

/* JSON text -> YAML text, compared byte for byte. */
static void encodes_to(const char *jtext, const char *want) {
  json_error_t je;
  json_t *j = json_loads(jtext, JSON_DECODE_ANY, &je);
  char err[256];
  size_t len = 0;
  char *got = j ? ml_json_to_yaml(j, &len, err, sizeof err) : NULL;
  int good = got && strcmp(got, want) == 0 && len == strlen(want);
  char what[300];
  snprintf(what, sizeof what, "encode %.60s", jtext);
  ok(good, what);
  if (!good) printf("#   got:\n%s\n#  want:\n%s\n", got ? got : err, want);
  free(got);
  json_decref(j);
}

static void test_scalars(void) {
  /* booleans, YAML 1.1 style, including go-yaml v2's y/n */
  decodes_to("[y, Y, yes, Yes, YES, true, True, TRUE, on, On, ON]",
             "[true,true,true,true,true,true,true,true,true,true,true]");
  decodes_to("[n, N, no, No, NO, false, False, FALSE, off, Off, OFF]",
             "[false,false,false,false,false,false,false,false,false,false,false]");
  decodes_to("[yEs, tRUE, oN, nO, Yes!, truex]",
             "[\"yEs\",\"tRUE\",\"oN\",\"nO\",\"Yes!\",\"truex\"]");
  /* nulls */
  decodes_to("[~, null, Null, NULL, nULL, '', \"\"]",
             "[null,null,null,null,\"nULL\",\"\",\"\"]");
  decodes_to("a:\nb: ~\n", "{\"a\":null,\"b\":null}");
  /* integers: signs, bases, underscores, leading-zero octal */
  decodes_to("[0, 12, -7, +12, 0x1F, 0X1f, 0o17, 017, 0b101, -0b11, 1_000]",
             "[0,12,-7,12,31,31,15,15,5,-3,1000]");
  decodes_to("[9223372036854775807, -9223372036854775808]",
             "[9223372036854775807,-9223372036854775808]");
  /* floats: integral ones come out as integers, like json.Marshal */
  decodes_to("[1.5, -0.25, .5, 1e3, 1.0, 08, 1.5e-3, +.5]",
             "[1.5,-0.25,0.5,1000,1,8,0.0015,0.5]");
  /* strings that only look like numbers */
  decodes_to("[1.2.3, 0x, 12abc, 1e, 1:20, 2001-12-14, 1e400, .]",
             "[\"1.2.3\",\"0x\",\"12abc\",\"1e\",\"1:20\",\"2001-12-14\","
             "\"1e400\",\".\"]");
  /* quoted and tagged scalars are strings */
  decodes_to("['true', \"123\", !!str 123, !!str yes, !foo 12, ! 5]",
             "[\"true\",\"123\",\"123\",\"yes\",\"12\",\"5\"]");
  decodes_to("[!!int \"12\", !!float 3, !!bool yes, !!null '']",
             "[12,3,true,null]");
  fails_with("a: !!int abc",
             "error converting YAML to JSON: yaml: cannot decode !!str `abc` "
             "as a !!int");
  /* block scalars */
  decodes_to("a: |\n  x\n  y\nb: >\n  p\n  q\nc: |-\n  z\n",
             "{\"a\":\"x\\ny\\n\",\"b\":\"p q\\n\",\"c\":\"z\"}");
  /* .inf/.nan resolve to floats, which JSON cannot carry */
  fails_with("a: .inf", "error converting YAML to JSON: json: unsupported value: +Inf");
  fails_with("a: -.Inf", "error converting YAML to JSON: json: unsupported value: -Inf");
  fails_with("a: .NaN", "error converting YAML to JSON: json: unsupported value: NaN");
}

static void test_keys(void) {
  /* sigs.k8s.io/yaml turns non-string keys into strings */
  decodes_to("1: a\n0x10: b\ntrue: c\nno: d\n1.5: e\n2.0: f\n",
             "{\"1\":\"a\",\"1.5\":\"e\",\"16\":\"b\",\"2\":\"f\",\"false\":\"d\","
             "\"true\":\"c\"}");
  decodes_to(".inf: a\n", "{\".inf\":\"a\"}");
  decodes_to("0.1: a\n", "{\"0.1\":\"a\"}");
  fails_with("~: a", "error converting YAML to JSON: unsupported map key of "
                     "type: %!s(<nil>), key: <nil>, value: \"a\"");
  fails_with("a:\n  null: 1", "error converting YAML to JSON: unsupported map "
                              "key of type: %!s(<nil>), key: <nil>, value: 1");
  /* a repeated key keeps its last value (test_duplicates: and is noted) */
  decodes_to("a: 1\nb: 2\na: 3\n", "{\"a\":3,\"b\":2}");
  fails_with("? [a]\n: 1\n",
             "error converting YAML to JSON: yaml: invalid map key: a sequence");
}

static void test_anchors(void) {
  decodes_to("a: &x [1, 2]\nb: *x\n", "{\"a\":[1,2],\"b\":[1,2]}");
  decodes_to("a: &s hello\nb: *s\n", "{\"a\":\"hello\",\"b\":\"hello\"}");
  /* merge keys: explicit keys win, earlier sources win */
  decodes_to("base: &b {k: 1, v: 2}\nd:\n  <<: *b\n  v: 3\n",
             "{\"base\":{\"k\":1,\"v\":2},\"d\":{\"k\":1,\"v\":3}}");
  decodes_to("a: &a {x: 1}\nb: &b {x: 2, z: 2}\nc:\n  <<: [*a, *b]\n",
             "{\"a\":{\"x\":1},\"b\":{\"x\":2,\"z\":2},\"c\":{\"x\":1,\"z\":2}}");
  decodes_to("a: {'<<': 1}\n", "{\"a\":{\"<<\":1}}");
  fails_with("a:\n  <<: 5\n",
             "error converting YAML to JSON: yaml: map merge requires map or "
             "sequence of maps as the value");
  fails_with("a: *nope\n",
             "error converting YAML to JSON: yaml: unknown anchor 'nope' "
             "referenced");
  /* an alias bomb is refused, not expanded */
  const char *bomb =
      "a: &a [x,x,x,x,x,x,x,x,x,x]\n"
      "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
      "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
      "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
      "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
      "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
      "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
      "h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
      "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
  fails_with(bomb, "error converting YAML to JSON: yaml: document contains "
                   "excessive aliasing");
  /* so is nesting past the limit */
  char *deep = malloc(2 * 1200 + 1);
  memset(deep, '[', 1200);
  memset(deep + 1200, ']', 1200);
  deep[2400] = '\0';
  fails_with(deep, "error converting YAML to JSON: yaml: exceeded max depth of 1000");
  free(deep);
  /* ... and found without reading on: libyaml's scanner pays for every open
   * flow collection on each token, so scanning 60,000 `[` to the end took
   * seconds of CPU (100,000 in a request body held the server for half a
   * minute). Stopping at the limit takes milliseconds; 2 s of CPU time is
   * far from both, whatever else the machine runs. */
  size_t nd = 60000;
  char *deeper = malloc(2 * nd + 4);
  memcpy(deeper, "a: ", 3);
  memset(deeper + 3, '[', nd);
  memset(deeper + 3 + nd, ']', nd);
  deeper[3 + 2 * nd] = '\0';
  clock_t t0 = clock();
  fails_with(deeper, "error converting YAML to JSON: yaml: exceeded max depth of 1000");
  double cpu = (double)(clock() - t0) / CLOCKS_PER_SEC;
  ok(cpu < 2.0, "60,000 nested flow sequences refused at once");
  if (cpu >= 2.0) printf("#   took %.1f s of CPU\n", cpu);
  free(deeper);
}

/* Bodies a client can send to make decoding cost more than reading them:
 * each must be answered, right, in far less CPU than the 2 s bound. */
static double cpu_since(clock_t t0) { return (double)(clock() - t0) / CLOCKS_PER_SEC; }

static void test_costly_documents(void) {
  /* an anchor defined again names the new node */
  decodes_to("a: &x 1\nb: *x\nc: &x 2\nd: *x\n", "{\"a\":1,\"b\":1,\"c\":2,\"d\":2}");
  /* many anchors, each used: looked up by name, not by a scan (was 9 s) */
  size_t na = 40000, cap = na * 40 + 16, len = 0;
  char *doc = malloc(cap);
  for (size_t i = 0; i < na; i++) len += (size_t)snprintf(doc + len, cap - len, "- &a%zu x%zu\n", i, i);
  for (size_t i = 0; i < na; i++) len += (size_t)snprintf(doc + len, cap - len, "- *a%zu\n", i);
  char err[512];
  clock_t t0 = clock();
  json_t *j = ml_yaml_load(doc, len, err, sizeof err);
  double cpu = cpu_since(t0);
  ok(j && json_array_size(j) == 2 * na &&
         strcmp(json_string_value(json_array_get(j, 2 * na - 1)), "x39999") == 0,
     "40,000 anchors and their aliases decode");
  ok(cpu < 2.0, "40,000 anchors and aliases in well under 2 s of CPU");
  if (cpu >= 2.0) printf("#   took %.1f s of CPU\n", cpu);
  json_decref(j);
  /* a million values 980 flow collections deep: refused before libyaml's
   * per-token walk of the open collections adds up (was 5 s), and the
   * stream is not read on (the second document never shows) */
  size_t depth = 980, per = 1000;
  cap = 16 + depth * (per * 3 + 4) + depth + 16;
  len = (size_t)snprintf(doc = realloc(doc, cap), cap, "a: ");
  for (size_t d = 0; d < depth; d++) {
    doc[len++] = '[';
    for (size_t i = 0; i < per; i++) { memcpy(doc + len, "v, ", 3); len += 3; }
  }
  doc[len++] = '1';
  memset(doc + len, ']', depth);
  len += depth;
  len += (size_t)snprintf(doc + len, cap - len, "\n---\nb: 1\n");
  ml_yaml_docs_t docs;
  t0 = clock();
  int rc = ml_yaml_to_json(doc, len, &docs);
  cpu = cpu_since(t0);
  int refused = rc == 0 && docs.n == 1 && docs.docs[0].err &&
                strcmp(docs.docs[0].err, "error converting YAML to JSON: yaml: document "
                                         "contains excessive nesting of flow collections") == 0;
  ok(refused, "a million values 980 flow collections deep are refused");
  if (!refused && docs.n) printf("#   %s\n", docs.docs[0].err ? docs.docs[0].err : "(value)");
  ok(cpu < 2.0, "... in well under 2 s of CPU");
  if (cpu >= 2.0) printf("#   took %.1f s of CPU\n", cpu);
  ml_yaml_docs_free(&docs);
  /* the same shape, smaller: 100 deep with 10,000 values decodes */
  depth = 100, per = 100, len = (size_t)snprintf(doc, cap, "a: ");
  for (size_t d = 0; d < depth; d++) {
    doc[len++] = '[';
    for (size_t i = 0; i < per; i++) { memcpy(doc + len, "v, ", 3); len += 3; }
  }
  doc[len++] = '1';
  memset(doc + len, ']', depth);
  len += depth;
  j = ml_yaml_load(doc, len, err, sizeof err);
  json_t *in = json_object_get(j, "a");
  for (size_t d = 1; d < depth; d++) in = json_array_get(in, per);
  ok(in && json_array_size(in) == per + 1 && json_integer_value(json_array_get(in, per)) == 1,
     "10,000 values 100 flow collections deep decode");
  json_decref(j);
  free(doc);
}

static void test_errors(void) {
  /* go-yaml's numbering: scanner errors 1-based, none on the first line */
  fails_with("a: 1\nb: 2\nc: d: e\n",
             "error converting YAML to JSON: yaml: line 3: mapping values are "
             "not allowed in this context");
  fails_with("a: b: c",
             "error converting YAML to JSON: yaml: mapping values are not "
             "allowed in this context");
  fails_with("a:\n\tb: 1\n",
             "error converting YAML to JSON: yaml: line 2: found character "
             "that cannot start any token");
  /* parser errors report the 0-based line, as go-yaml does */
  fails_with("a:\n  b: 1\n c: 2\n",
             "error converting YAML to JSON: yaml: line 2: did not find "
             "expected key");
  fails_with("a: [1, 2\n",
             "error converting YAML to JSON: yaml: line 1: did not find "
             "expected ',' or ']'");
  fails_with("a: \"\xff\"\n",
             "error converting YAML to JSON: yaml: invalid leading UTF-8 octet");
}

static void test_streams(void) {
  const char *text =
      "# first\n"
      "a: 1\n"
      "---\n"
      "b: : :\n"
      "---\n"
      "---   \n"
      "# only a comment\n"
      "---\n"
      "~\n"
      "---\n"
      "\n"
      "c:\n"
      "  - 3\n";
  ml_yaml_docs_t docs;
  ok(ml_yaml_to_json(text, strlen(text), &docs) == 0, "stream parses");
  ok(docs.n == 3, "three documents (empty and null ones skipped)");
  if (docs.n == 3) {
    ok(docs.docs[0].value && docs.docs[0].line == 2, "doc 1 value, line 2");
    ok(docs.docs[1].err && !docs.docs[1].value && docs.docs[1].line == 4,
       "doc 2 error, line 4");
    ok(docs.docs[1].err &&
           strcmp(docs.docs[1].err,
                  "error converting YAML to JSON: yaml: mapping values are not "
                  "allowed in this context") == 0,
       "doc 2 message is kubectl's");
    ok(docs.docs[1].err_line == 4 && docs.docs[1].err_column == 4,
       "doc 2 error position in the stream");
    ok(docs.docs[2].value && docs.docs[2].line == 12 &&
           json_is_array(json_object_get(docs.docs[2].value, "c")),
       "doc 3 value after the bad one, line 12");
  }
  ml_yaml_docs_free(&docs);
  ok(docs.n == 0 && docs.docs == NULL, "free resets");

  /* JSON is YAML: objects, also several in a row */
  const char *js = "{\"kind\": \"Pod\", \"n\": 1.5, \"l\": []}\n{\"kind\":\"Svc\"}";
  ok(ml_yaml_to_json(js, strlen(js), &docs) == 0 && docs.n == 2 &&
         docs.docs[1].line == 2 &&
         json_is_real(json_object_get(docs.docs[0].value, "n")),
     "JSON stream");
  ml_yaml_docs_free(&docs);
  decodes_to("{a: 1, 'b': [x]}", "{\"a\":1,\"b\":[\"x\"]}");
  decodes_to("{\"a\": \"\\u00e9\\n\"}", "{\"a\":\"\xc3\xa9\\n\"}");
  decodes_to("", "null");
  decodes_to("# nothing\n", "null");
}

static void test_emitter(void) {
  encodes_to(
      "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{\"name\":\"kubia\","
      "\"labels\":{\"app\":\"kubia\"},\"creationTimestamp\":null,"
      "\"resourceVersion\":\"12\"},\"spec\":{\"containers\":[{\"name\":\"kubia\","
      "\"image\":\"luksa/kubia\",\"ports\":[{\"containerPort\":8080,"
      "\"protocol\":\"TCP\"}],\"resources\":{}}]},\"status\":{}}",
      "apiVersion: v1\n"
      "kind: Pod\n"
      "metadata:\n"
      "  creationTimestamp: null\n"
      "  labels:\n"
      "    app: kubia\n"
      "  name: kubia\n"
      "  resourceVersion: \"12\"\n"
      "spec:\n"
      "  containers:\n"
      "  - image: luksa/kubia\n"
      "    name: kubia\n"
      "    ports:\n"
      "    - containerPort: 8080\n"
      "      protocol: TCP\n"
      "    resources: {}\n"
      "status: {}\n");
  /* quoting: double when plain would change type, single when plain is
   * impossible, none otherwise */
  encodes_to("{\"a\":\"\",\"b\":\"true\",\"c\":\"123\",\"d\":\"1.5\",\"e\":\"y\","
             "\"f\":\"null\",\"g\":\"2024-01-02T03:04:05Z\",\"h\":\"1:20\","
             "\"i\":\"x: y\",\"j\":\"- x\",\"k\":\"#c\",\"l\":\" lead\","
             "\"m\":\"-c\",\"n\":\"a\\tb\",\"o\":\"*\",\"p\":\"0x1F\","
             "\"q\":\"2024-01-02\",\"r\":\"it's\"}",
             "a: \"\"\n"
             "b: \"true\"\n"
             "c: \"123\"\n"
             "d: \"1.5\"\n"
             "e: \"y\"\n"
             "f: \"null\"\n"
             "g: \"2024-01-02T03:04:05Z\"\n"
             "h: \"1:20\"\n"
             "i: 'x: y'\n"
             "j: '- x'\n"
             "k: '#c'\n"
             "l: ' lead'\n"
             "m: -c\n"
             "\"n\": \"a\\tb\"\n"
             "o: '*'\n"
             "p: \"0x1F\"\n"
             "q: \"2024-01-02\"\n"
             "r: it's\n");
  /* multi-line strings are literal blocks with the right chomping */
  encodes_to("{\"a\":\"x\\ny\\n\",\"b\":\"x\\ny\",\"c\":\"x\\n\\n\"}",
             "a: |\n  x\n  y\nb: |-\n  x\n  y\nc: |+\n  x\n\n");
  /* numbers */
  encodes_to("[1, -2, 1.5, 3.0, 0.1, 1e21, 1234567.5, 0.00001, 1e-7]",
             "- 1\n- -2\n- 1.5\n- 3\n- 0.1\n- 1e+21\n- 1.2345675e+06\n"
             "- 1e-05\n- 1e-07\n");
  /* empty collections, nulls, booleans, nested sequences */
  encodes_to("{\"a\":[],\"b\":{},\"c\":null,\"d\":true,\"e\":[[1,2],[]],"
             "\"f\":[{}]}",
             "a: []\nb: {}\nc: null\nd: true\ne:\n- - 1\n  - 2\n- []\nf:\n- {}\n");
  /* go-yaml's natural key order: digits as numbers, letters after others */
  encodes_to("{\"a10\":1,\"a9\":2,\"a-b\":3,\"ab\":4,\"B\":5,\"a\":6,\"_x\":7}",
             "_x: 7\nB: 5\na: 6\na-b: 3\na9: 2\na10: 1\nab: 4\n");
  /* Digit runs too long for an int wrap as Go's do (found by fuzz_yaml:
   * signed overflow, which UBSan stops on) */
  encodes_to("{\"k88888888888888888888\":1,\"k33333333333333333333\":2}",
             "k33333333333333333333: 2\nk88888888888888888888: 1\n");
  /* keys that need quotes */
  encodes_to("{\"true\":1,\"\":2,\"a b\":3}", "\"\": 2\na b: 3\n\"true\": 1\n");
  /* long plain strings fold at the first space past column 80, as the
   * go-yaml (and libyaml) emitter does */
  encodes_to("{\"m\":\"aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk "
             "llll mmmm nnnn oooo pppp qqqq\"}",
             "m: aaaa bbbb cccc dddd eeee ffff gggg hhhh iiii jjjj kkkk llll "
             "mmmm nnnn oooo pppp\n  qqqq\n");
  /* top-level scalars */
  encodes_to("\"abc\"", "abc\n");
  encodes_to("\"a\\nb\"", "|-\n  a\n  b\n");
  encodes_to("null", "null\n");
  encodes_to("[]", "[]\n");
  encodes_to("{}", "{}\n");
  encodes_to("{\"u\":\"h\xc3\xa9llo\"}", "u: h\xc3\xa9llo\n");
}

static void test_round_trip(void) {
  const char *manifest =
      "apiVersion: apps/v1\n"
      "kind: Deployment\n"
      "metadata:\n"
      "  name: kubia\n"
      "spec:\n"
      "  replicas: 3\n"
      "  selector:\n"
      "    matchLabels:\n"
      "      app: kubia\n"
      "  template:\n"
      "    metadata:\n"
      "      labels:\n"
      "        app: kubia\n"
      "    spec:\n"
      "      containers:\n"
      "      - image: idealism/kubia\n"
      "        name: kubia\n"
      "        ports:\n"
      "        - containerPort: 8080\n"
      "          protocol: TCP\n";
  char err[256];
  json_t *j = ml_yaml_load(manifest, strlen(manifest), err, sizeof err);
  char *out = j ? ml_json_to_yaml(j, NULL, err, sizeof err) : NULL;
  ok(out && strcmp(out, manifest) == 0, "kubectl-shaped manifest round-trips");
  free(out);
  json_decref(j);
}

static void test_go_float(void) {
  char buf[64];
  struct {
    double f;
    int bits;
    const char *want;
  } cases[] = {{1.5, 64, "1.5"},          {0.1, 64, "0.1"},
               {0.1, 32, "0.1"},          {1e6, 64, "1e+06"},
               {123456, 64, "123456"},    {1e-5, 64, "1e-05"},
               {0.0001, 64, "0.0001"},    {-2.5e-300, 64, "-2.5e-300"},
               {1.0 / 3, 64, "0.3333333333333333"},
               {1.0 / 3, 32, "0.33333334"}, {1e100, 64, "1e+100"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    ml_go_format_float(cases[i].f, cases[i].bits, buf, sizeof buf);
    char what[100];
    snprintf(what, sizeof what, "go float %s", cases[i].want);
    ok(strcmp(buf, cases[i].want) == 0, what);
    if (strcmp(buf, cases[i].want) != 0) printf("#   got %s\n", buf);
  }
}

/* The duplicate keys of the one document of `yaml`, or "(none)"; the
 * value must be there (a repeated key is no error). */
static void dups_are(const char *yaml, const char *want) {
  ml_yaml_docs_t docs;
  int rc = ml_yaml_to_json(yaml, strlen(yaml), &docs);
  const char *got = rc == 0 && docs.n == 1 && docs.docs[0].value
                        ? (docs.docs[0].dups ? docs.docs[0].dups : "(none)")
                        : "(no value)";
  char what[300];
  snprintf(what, sizeof what, "duplicates of %.60s", yaml);
  ok(strcmp(got, want) == 0, what);
  if (strcmp(got, want) != 0) printf("#   got '%s'\n#  want '%s'\n", got, want);
  ml_yaml_docs_free(&docs);
}

static void test_duplicates(void) {
  dups_are("a: 1\nb: 2\n", "(none)");
  dups_are("a: 1\nb: 2\na: 3\n", "line 3: key \"a\" already set in map");
  /* nested mappings and mappings in sequences, by the line of the value */
  dups_are("metadata:\n  name: a\n  name: b\nspec:\n  containers:\n  - name: c\n"
           "    image: i\n    name: d\n  - name: e\n",
           "line 3: key \"name\" already set in map\n"
           "line 8: key \"name\" already set in map");
  /* the same key in sibling mappings is no duplicate */
  dups_are("l:\n- n: 1\n- n: 2\nn: {n: 1}\n", "(none)");
  /* JSON with a repeated member (jansson refuses it: libyaml reads it) */
  dups_are("{\"a\": 1,\n \"a\": 2}", "line 2: key \"a\" already set in map");
  /* keys are quoted as go-yaml's %#v does */
  dups_are("\"a\\\"b\": 1\n'a\"b': 2\n", "line 2: key \"a\\\"b\" already set in map");
  /* each document has its own */
  const char *two = "a: 1\na: 2\n---\nb: 1\n---\nc: 1\nc: 2\nc: 3\n";
  ml_yaml_docs_t docs;
  ok(ml_yaml_to_json(two, strlen(two), &docs) == 0 && docs.n == 3 && docs.docs[0].dups &&
         strcmp(docs.docs[0].dups, "line 2: key \"a\" already set in map") == 0 &&
         !docs.docs[1].dups && docs.docs[2].dups &&
         strcmp(docs.docs[2].dups, "line 2: key \"c\" already set in map\n"
                                   "line 3: key \"c\" already set in map") == 0 &&
         json_integer_value(json_object_get(docs.docs[2].value, "c")) == 3,
     "duplicates per document, lines counted in the document, the last value kept");
  ml_yaml_docs_free(&docs);
  /* past ML_YAML_MAX_DUPS the rest are left out */
  char *many = malloc(16 * (ML_YAML_MAX_DUPS + 10));
  size_t len = 0;
  for (int i = 0; i < ML_YAML_MAX_DUPS + 10; i++) len += (size_t)sprintf(many + len, "k: %d\n", i);
  ok(ml_yaml_to_json(many, len, &docs) == 0 && docs.n == 1 && docs.docs[0].dups,
     "many duplicates parse");
  size_t lines = 0;
  for (const char *p = docs.n ? docs.docs[0].dups : NULL; p && *p; p++) lines += *p == '\n';
  ok(docs.n == 1 && lines + 1 == ML_YAML_MAX_DUPS &&
         json_integer_value(json_object_get(docs.docs[0].value, "k")) == ML_YAML_MAX_DUPS + 9,
     "duplicates noted up to the bound, the value still the last");
  ml_yaml_docs_free(&docs);
  free(many);
}

int main(void) {
  test_duplicates();
  test_scalars();
  test_keys();
  test_anchors();
  test_costly_documents();
  test_errors();
  test_streams();
  test_emitter();
  test_round_trip();
  test_go_float();
  printf("1..%d\n", count);
  return failures ? 1 : 0;
}
