/* Unit tests of core/selector.c and core/field_selector.c: parsing and
 * Kubernetes' error texts, String(), matching (absent keys, > / <),
 * NewRequirement field errors, LabelSelector objects from JSON with their
 * field paths, and field selectors. Prints TAP. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "field_selector.h"
#include "selector.h"

#include "tap.h"

#define NAME_PART_MSG                                                        \
  "name part must consist of alphanumeric characters, '-', '_' or '.', and " \
  "must start and end with an alphanumeric character (e.g. 'MyName',  or "   \
  "'my.name',  or '123-abc', regex used for validation is "                  \
  "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"

/* Parses `in` and checks its String() form. */
static void parse_ok(const char *in, const char *want) {
  ml_selector_t *sel = NULL;
  char *err = NULL;
  int rc = ml_selector_parse(in, &sel, &err);
  char *s = rc == 0 ? ml_selector_string(sel) : NULL;
  OK(rc == 0 && strcmp(s, want) == 0, "parse %s -> %s (got %s)", in, want,
     s ? s : err);
  free(s);
  free(err);
  ml_selector_free(sel);
}

static void parse_err(const char *in, const char *want) {
  ml_selector_t *sel = NULL;
  char *err = NULL;
  int rc = ml_selector_parse(in, &sel, &err);
  OK(rc == ML_EPARSE && sel == NULL && err && strcmp(err, want) == 0,
     "parse %s fails with: %s (got %s)", in, want, err ? err : "(none)");
  free(err);
}

static bool matches(const char *sel_text, const char *labels_json) {
  ml_selector_t *sel;
  char *err;
  if (ml_selector_parse(sel_text, &sel, &err) < 0) {
    free(err);
    return false;
  }
  json_t *labels = labels_json ? json_loads(labels_json, 0, NULL) : NULL;
  bool m = ml_selector_matches_json(sel, labels);
  json_decref(labels);
  ml_selector_free(sel);
  return m;
}

static void test_parse(void) {
  parse_ok("", "");
  parse_ok("x=a,y=b,z=c", "x=a,y=b,z=c");
  parse_ok("z=c,x=a", "x=a,z=c");
  parse_ok("x= ,z= ", "x=,z=");
  parse_ok("x==a", "x==a");
  parse_ok("!x", "!x");
  parse_ok("x>1,z<5", "x>1,z<5");
  parse_ok("\rx", "x");
  parse_ok("x in (abc,abc,def)", "x in (abc,def)");
  parse_ok("x in ()", "x in ()");
  parse_ok("x notin (, a)", "x notin (,a)");
  parse_ok("a in (x,y,notin, z,in)", "a in (in,notin,x,y,z)");
  parse_ok("x in (a,,)", "x in (,a)"); /* 1.35 consecutive-comma rule */
  parse_ok("x in (a,,,,,,)", "x in (,a)");
  parse_ok("x in (a,,a,,a,,a,,)", "x in (,a)");
  parse_ok("notin=in", "notin=in");
  parse_ok("a!=b,a=b", "a!=b,a=b"); /* equal keys keep their order */
  parse_ok("example.com/k in (b)", "example.com/k in (b)");

  parse_err("x,,y", "found ',', expected: identifier after ','");
  parse_err(",x", "found ',', expected: !, identifier, or 'end of string'");
  parse_err("x=a b", "found 'b', expected: ',' or 'end of string'");
  parse_err("a (", "unable to parse requirement: found '(', expected: in, "
                   "notin, =, ==, !=, gt, lt");
  parse_err("a in (xyz abc)",
            "unable to parse requirement: found 'abc', expected: ',' or ')'");
  parse_err("a notin(", "unable to parse requirement: found '', expected: "
                        "',', ')' or identifier");
  parse_err("x in (a,=)", "unable to parse requirement: found '=', expected: "
                          "',', or identifier");
  parse_err("x<a", "unable to parse requirement: values[0]: Invalid value: "
                   "\"a\": for 'Gt', 'Lt' operators, the value must be an "
                   "integer");
  parse_err("-key", "unable to parse requirement: <nil>: Invalid value: "
                    "\"-key\": " NAME_PART_MSG);
  parse_err("x=a=b", "found '=', expected: ',' or 'end of string'");
}

static void test_matches(void) {
  OK(matches("", "{\"x\":\"y\"}"), "empty selector matches");
  OK(matches("", NULL), "empty selector matches no labels");
  OK(matches("x!=y", "{}"), "!= matches an absent key");
  OK(matches("x notin (a)", NULL), "notin matches an absent key");
  OK(!matches("x in (a)", "{}"), "in needs the key");
  OK(matches("x", "{\"x\":\"\"}"), "exists");
  OK(!matches("!x", "{\"x\":\"\"}"), "does not exist");
  OK(matches("x>1", "{\"x\":\"2\"}"), "gt");
  OK(!matches("x>1", "{\"x\":\"v2\"}"), "gt with a non-integer label");
  OK(!matches("x>1", "{}"), "gt with an absent key");
  OK(matches("x<1", "{\"x\":\"-3\"}"), "lt with a negative label");
  OK(!matches("x<1", "{\"x\":\"99999999999999999999\"}"), "lt overflow");
  OK(matches("x=a,y!=b", "{\"x\":\"a\",\"y\":\"c\"}"), "conjunction");
  OK(!matches("x=a,y!=b", "{\"x\":\"a\",\"y\":\"b\"}"), "conjunction fails");
}

static void test_requirements(void) {
  ml_selector_t *sel = ml_selector_new();
  const char *two[] = {"bar", "foo"};
  ml_field_errors_t errs = {0};
  OK(ml_selector_add(sel, "x5", "=", two, 2, &errs) == ML_EINVALID &&
         errs.n == 1,
     "= with two values is rejected");
  char *s = errs.n ? ml_field_error_string(&errs.v[0]) : NULL;
  OK(s && strcmp(s, "values: Invalid value: [\"bar\",\"foo\"]: exact-match "
                    "compatibility requires one single value") == 0,
     "error text: %s", s ? s : "");
  free(s);
  ml_field_errors_free(&errs);

  OK(ml_selector_add(sel, "x18", "unsupportedOp", NULL, 0, &errs) < 0 &&
         errs.n == 1 && strcmp(errs.v[0].type, "FieldValueNotSupported") == 0,
     "unknown operator is NotSupported");
  s = errs.n ? ml_field_error_string(&errs.v[0]) : NULL;
  OK(s && strcmp(s, "operator: Unsupported value: \"unsupportedOp\": "
                    "supported values: \"in\", \"notin\", \"=\", \"==\", "
                    "\"!=\", \"gt\", \"lt\", \"exists\", \"!\"") == 0,
     "error text: %s", s ? s : "");
  free(s);
  ml_field_errors_free(&errs);

  const char *bad[] = {"a b"};
  OK(ml_selector_add(sel, "x17", "=", bad, 1, &errs) < 0 && errs.n == 1 &&
         strcmp(errs.v[0].field, "values[0][x17]") == 0,
     "bad value is reported at values[0][key]");
  ml_field_errors_free(&errs);

  const char *b[] = {"b"}, *one[] = {"1"};
  OK(ml_selector_add(sel, "z", "in", b, 1, NULL) == 0, "add z in (b)");
  OK(ml_selector_add(sel, "a", "gt", one, 1, NULL) == 0, "add a>1");
  OK(ml_selector_add(sel, "m", "!", NULL, 0, NULL) == 0, "add !m");
  s = ml_selector_string(sel);
  OK(strcmp(s, "a>1,!m,z in (b)") == 0, "added requirements sort by key: %s", s);
  free(s);
  OK(ml_selector_count(sel) == 3 && !ml_selector_is_empty(sel), "count");
  ml_selector_free(sel);

  char *ke = ml_label_key_error("a/b/c");
  OK(ke && strstr(ke, "a valid label key must consist of") == ke, "key error");
  free(ke);
  OK(ml_label_key_error("example.com/Name") == NULL, "valid key");
  ke = ml_label_value_error("-v");
  OK(ke && strncmp(ke, "a valid label must be an empty string", 37) == 0,
     "value error");
  free(ke);
}

static ml_selector_t *from(const char *text, const char *path, char **err) {
  json_t *j = text ? json_loads(text, 0, NULL) : NULL;
  ml_selector_t *sel = NULL;
  ml_selector_from_json(j, path, &sel, err);
  json_decref(j);
  return sel;
}

static void test_from_json(void) {
  char *err = NULL;
  ml_selector_t *sel = from(NULL, "spec.selector", &err);
  OK(sel && ml_selector_is_nothing(sel) && !ml_selector_matches_json(sel, NULL),
     "nil selector matches nothing");
  ml_selector_free(sel);

  sel = from("{}", "spec.selector", &err);
  OK(sel && ml_selector_is_empty(sel) && ml_selector_matches_json(sel, NULL),
     "{} matches everything");
  ml_selector_free(sel);

  sel = from("{\"matchLabels\":{\"foo\":\"bar\"},\"matchExpressions\":[{\"key\""
             ":\"baz\",\"operator\":\"In\",\"values\":[\"qux\",\"norf\"]}]}",
             "spec.selector", &err);
  char *s = sel ? ml_selector_string(sel) : NULL;
  OK(s && strcmp(s, "baz in (norf,qux),foo=bar") == 0, "converted: %s",
     s ? s : err);
  free(s);
  ml_selector_free(sel);

  sel = from("{\"matchExpressions\":[{\"key\":\"app\",\"operator\":\"In\"},"
             "{\"key\":\"-k\",\"operator\":\"Exists\",\"values\":[\"x\"]},"
             "{\"key\":\"k\",\"operator\":\"Gt\",\"values\":[\"1\"]}],"
             "\"matchLabels\":{\"a\":\"-b\"}}",
             "spec.selector", &err);
  OK(sel == NULL && err, "invalid selector is rejected");
  const char *want =
      "spec.selector.matchLabels: Invalid value: \"-b\": a valid label must "
      "be an empty string or consist of alphanumeric characters, '-', '_' or "
      "'.', and must start and end with an alphanumeric character (e.g. "
      "'MyValue',  or 'my_value',  or '12345', regex used for validation is "
      "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')\n"
      "spec.selector.matchExpressions[0].values: Required value: must be "
      "specified when `operator` is 'In' or 'NotIn'\n"
      "spec.selector.matchExpressions[1].values: Forbidden: may not be "
      "specified when `operator` is 'Exists' or 'DoesNotExist'\n"
      "spec.selector.matchExpressions[1].key: Invalid value: \"-k\": "
      NAME_PART_MSG "\n"
      "spec.selector.matchExpressions[2].operator: Invalid value: \"Gt\": not "
      "a valid selector operator";
  OK(err && strcmp(err, want) == 0, "field errors in order, with paths");
  if (err && strcmp(err, want) != 0) fprintf(stderr, "got:\n%s\n", err);
  free(err);
  err = NULL;

  ml_field_errors_t errs = {0};
  json_t *j = json_loads("{\"matchLabels\":[1]}", 0, NULL);
  OK(ml_selector_from_json_errs(j, "s", &sel, &errs) == ML_EINVALID &&
         errs.n == 1 && strcmp(errs.v[0].type, "FieldValueTypeInvalid") == 0,
     "a non-object matchLabels is a type error");
  json_decref(j);
  ml_field_errors_free(&errs);
}

static void test_lexer(void) {
  const char *text = "x in (a),!y == != notin";
  const ml_seltok_t want[] = {
      ML_SELTOK_IDENT,     ML_SELTOK_IN,    ML_SELTOK_OPENPAR,
      ML_SELTOK_IDENT,     ML_SELTOK_CLOSEPAR, ML_SELTOK_COMMA,
      ML_SELTOK_NOTEXISTS, ML_SELTOK_IDENT, ML_SELTOK_DOUBLEEQUALS,
      ML_SELTOK_NOTEQUALS, ML_SELTOK_NOTIN, ML_SELTOK_EOS};
  size_t pos = 0;
  bool ok = true;
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    char *lit;
    ml_seltok_t t = ml_selector_lex(text, &pos, &lit);
    if (t != want[i]) ok = false;
    free(lit);
  }
  OK(ok, "token sequence");
  OK(strcmp(ml_seltok_name(ML_SELTOK_IDENT), "IdentifierToken") == 0,
     "token names");
  const char *op;
  char *err;
  OK(ml_selector_parse_operator("notin", &op, &err) == 0 &&
         strcmp(op, "notin") == 0,
     "parse_operator notin");
  OK(ml_selector_parse_operator("!", &op, &err) == ML_EPARSE &&
         strcmp(err, "found '!', expected: in, notin, =, ==, !=, gt, lt") == 0,
     "parse_operator ! fails");
  free(err);
}

static void test_quote(void) {
  char *q = ml_go_quote("a\"b\\c\td\x01\x7f\xff\xc3\xa9\xc2\xa0");
  OK(strcmp(q, "\"a\\\"b\\\\c\\td\\x01\\x7f\\xff\xc3\xa9\\u00a0\"") == 0,
     "strconv.Quote: %s", q);
  free(q);
  q = ml_go_json_string("<a&b>\n\xff");
  OK(strcmp(q, "\"\\u003ca\\u0026b\\u003e\\n\\ufffd\"") == 0, "json: %s", q);
  free(q);
}

static void fieldsel_case(const char *in, const char *want_string,
                          const char *want_err) {
  ml_fieldsel_t *fs = NULL;
  char *err = NULL;
  int rc = ml_fieldsel_parse(in, &fs, &err);
  if (want_err) {
    OK(rc == ML_EPARSE && err && strcmp(err, want_err) == 0,
       "fields %s fails: %s (got %s)", in, want_err, err ? err : "(none)");
  } else {
    char *s = rc == 0 ? ml_fieldsel_string(fs) : NULL;
    OK(s && strcmp(s, want_string) == 0, "fields %s -> %s (got %s)", in,
       want_string, s ? s : err);
    free(s);
  }
  free(err);
  ml_fieldsel_free(fs);
}

static void test_fields(void) {
  fieldsel_case("", "", NULL);
  fieldsel_case("b=1,a=2", "a=2,b=1", NULL);
  fieldsel_case("a==b", "a=b", NULL);
  fieldsel_case("a!=b,,", "a!=b", NULL);
  fieldsel_case("a=x\\,y", "a=x\\,y", NULL);
  fieldsel_case("a=b\\\\", "a=b\\\\", NULL);
  fieldsel_case("abc", NULL, "invalid selector: 'abc'; can't understand 'abc'");
  fieldsel_case("a=b=c", NULL,
                "invalid field selector: unescaped character in value: 61");
  fieldsel_case("a=\\x", NULL,
                "invalid field selector: invalid escape sequence: \\x");
  fieldsel_case("a=x\\", NULL,
                "invalid field selector: invalid escape sequence: \\");

  ml_fieldsel_t *fs;
  char *err;
  ml_fieldsel_parse("metadata.name=p1,status.phase!=Failed,spec.n=3,x.y=",
                    &fs, &err);
  json_t *obj = json_loads("{\"metadata\":{\"name\":\"p1\"},\"status\":{\"phase"
                           "\":\"Running\"},\"spec\":{\"n\":3}}", 0, NULL);
  OK(ml_fieldsel_matches_json(fs, obj), "field selector matches");
  OK(ml_fieldsel_count(fs) == 4 && strcmp(ml_fieldsel_key(fs, 0), "metadata.name") == 0,
     "keys");
  json_object_set_new(json_object_get(obj, "status"), "phase", json_string("Failed"));
  OK(!ml_fieldsel_matches_json(fs, obj), "field selector rejects");
  json_decref(obj);
  ml_fieldsel_free(fs);
}

static bool fieldsel_matches_text(const char *sel, const char *obj_text) {
  ml_fieldsel_t *fs;
  char *err;
  if (ml_fieldsel_parse(sel, &fs, &err) < 0) {
    free(err);
    return false;
  }
  json_t *obj = json_loads(obj_text, 0, NULL);
  bool m = ml_fieldsel_matches_json(fs, obj);
  json_decref(obj);
  ml_fieldsel_free(fs);
  return m;
}

/* Several terms on one field are checked with one read of it. */
static void test_field_terms(void) {
  const char *p1 = "{\"metadata\":{\"name\":\"p1\"},\"spec\":{\"n\":3}}";
  OK(!fieldsel_matches_text("metadata.name=p1,metadata.name=p2", p1), "two '=' values never match");
  OK(fieldsel_matches_text("metadata.name=p1,metadata.name==p1", p1), "the same '=' value twice");
  OK(fieldsel_matches_text("metadata.name=p1,metadata.name!=p2,metadata.name!=p3", p1),
     "'=' and '!=' on one field");
  OK(!fieldsel_matches_text("metadata.name!=p2,metadata.name!=p1,spec.n=3", p1),
     "any '!=' value excludes");
  OK(!fieldsel_matches_text("metadata.name=p1,spec.n!=3", p1), "number fields by their text");
  OK(fieldsel_matches_text("x.y!=a,x.y=", p1), "an absent field reads as empty");

  /* 20,000 '!=' terms against 3,000 objects: a read per term was 60
   * million reads, seconds of CPU; a read per field and a look-up are
   * milliseconds. 2 s of CPU is far from both. */
  size_t nterms = 20000, cap = nterms * 24 + 64, len = 0;
  char *sel = malloc(cap);
  for (size_t i = 0; i < nterms; i++)
    len += (size_t)snprintf(sel + len, cap - len, "%smetadata.name!=n%zu", i ? "," : "", i);
  ml_fieldsel_t *fs;
  char *err;
  OK(ml_fieldsel_parse(sel, &fs, &err) == 0 && ml_fieldsel_count(fs) == (int)nterms,
     "20,000 terms parse");
  json_t *objs[3000];
  for (int i = 0; i < 3000; i++)
    objs[i] = json_pack("{s:{s:s}}", "metadata", "name", i % 2 ? "keep" : "n7");
  clock_t t0 = clock();
  int kept = 0;
  for (int i = 0; i < 3000; i++) kept += ml_fieldsel_matches_json(fs, objs[i]);
  double cpu = (double)(clock() - t0) / CLOCKS_PER_SEC;
  OK(kept == 1500, "20,000 '!=' terms select the right objects");
  OK(cpu < 2.0, "20,000 terms against 3,000 objects in well under 2 s of CPU");
  if (cpu >= 2.0) printf("#   took %.1f s of CPU\n", cpu);
  for (int i = 0; i < 3000; i++) json_decref(objs[i]);
  ml_fieldsel_free(fs);
  free(sel);
}

int main(void) {
  test_parse();
  test_matches();
  test_requirements();
  test_from_json();
  test_lexer();
  test_quote();
  test_fields();
  test_field_terms();
  return tap_done();
}
