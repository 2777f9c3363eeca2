/* Error codes of the moonlet core. Every core function that can fail returns
 * 0 or a negative ML_E* code; libuv codes (UV_E*) pass through unchanged, so
 * ml_err_name()/ml_strerror() accept both. */
#ifndef ML_ERR_H
#define ML_ERR_H

/* Kept below libuv's range (its codes are -errno, all > -4096). */
#define ML_ERRNO_MAP(XX)                                                      \
  XX(NOTFOUND, -5001, "not found")                                           \
  XX(EXISTS, -5002, "already exists")                                        \
  XX(CONFLICT, -5003, "conflict")                                            \
  XX(INVALID, -5004, "invalid")                                              \
  XX(GONE, -5005, "resource version too old")                                \
  XX(TOOLARGE, -5006, "too large")                                           \
  XX(PARSE, -5007, "parse error")                                            \
  XX(NOMEM, -5008, "out of memory")                                          \
  XX(IO, -5009, "i/o error")                                                 \
  XX(CLOSED, -5010, "closed")                                                \
  XX(TIMEDOUT, -5011, "timed out")                                           \
  XX(BADREQ, -5012, "bad request")

enum {
#define XX(name, code, _) ML_E##name = code,
  ML_ERRNO_MAP(XX)
#undef XX
};

/** @return the symbolic name of an ML_E* or UV_E* code ("ENOTFOUND"). */
const char *ml_err_name(int err);
/** @return a human-readable message for an ML_E* or UV_E* code. */
const char *ml_strerror(int err);

#endif
