/* YAML <-> JSON the way kubectl does it: manifests are split into documents
 * on `---` lines and each is read with YAML 1.1 scalar rules (go-yaml v2 as
 * used by sigs.k8s.io/yaml); objects are written back like
 * `kubectl get -o yaml`. Built on libyaml (events) and jansson (values). */
#ifndef ML_YAML_CODEC_H
#define ML_YAML_CODEC_H

#include <jansson.h>
#include <stddef.h>

/* Deepest nesting accepted, including what aliases expand to. */
#define ML_YAML_MAX_DEPTH 1000
/* Duplicate keys noted per document; later ones are not. */
#define ML_YAML_MAX_DUPS 100

/* One document of a stream: a value or an error, never both. */
typedef struct {
  json_t *value;  /* owned by the list; NULL when err is set */
  char *err;      /* kubectl's wording, e.g. "error converting YAML to JSON:
                     yaml: line 3: mapping values are not allowed in this
                     context" (line counted inside the document, as kubectl
                     does); NULL on success */
  int line;       /* 1-based line of the stream where the document starts */
  int err_line;   /* 1-based line of the problem in the stream, 0 unknown */
  int err_column; /* 1-based column of the problem, 0 unknown */
  char *dups;     /* keys repeated in a mapping (the value keeps the last,
                     as kubectl's decoder does): go-yaml's strict wording,
                     one per line, e.g. "line 5: key \"name\" already set
                     in map"; NULL when none */
} ml_yaml_doc_t;

typedef struct {
  ml_yaml_doc_t *docs;
  size_t n;
} ml_yaml_docs_t;

/**
 * Parses every document of a YAML (or JSON) stream into JSON values.
 * Documents are independent: an error in one does not stop the next, save
 * one: a stream with too many values inside nested flow collections (the
 * cost of libyaml's scanner) ends at the document that went past the bound.
 * Empty documents (only `---`, comments, or a null root) are skipped.
 * @param text the stream (need not be NUL-terminated)
 * @param len its length in bytes
 * @param out filled with the documents in order; release with
 *            ml_yaml_docs_free() whatever the result
 * @return 0, or ML_ENOMEM when memory ran out
 */
int ml_yaml_to_json(const char *text, size_t len, ml_yaml_docs_t *out);

/** Releases the documents of `docs` and resets it to empty. */
void ml_yaml_docs_free(ml_yaml_docs_t *docs);

/**
 * Parses the first non-empty document of a stream.
 * @return a new reference (JSON null for an empty stream), or NULL with the
 *         message in err.
 */
json_t *ml_yaml_load(const char *text, size_t len, char *err, size_t errlen);

/**
 * Writes `j` as YAML exactly like `kubectl get -o yaml` (go-yaml v2
 * Marshal): keys sorted in go-yaml's natural order, two-space indentation,
 * sequences in a mapping not indented, strings quoted only when needed,
 * multi-line strings as literal blocks, `{}` / `[]` for empty collections.
 * @param outlen receives the length of the text (may be NULL)
 * @return malloc'd NUL-terminated text, or NULL with the message in err
 */
char *ml_json_to_yaml(const json_t *j, size_t *outlen, char *err,
                      size_t errlen);

/**
 * Formats a double like Go's strconv.FormatFloat(f, 'g', -1, bits):
 * shortest digits that read back, exponent form below 1e-4 and from 1e6
 * ("1e+06"), "+Inf", "-Inf", "NaN".
 * @param bits 32 or 64
 * @return the length written (buf is always NUL-terminated)
 */
int ml_go_format_float(double f, int bits, char *buf, size_t buflen);

#endif
