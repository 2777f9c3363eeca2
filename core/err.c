/* Names and messages for ML_E* codes; libuv's own codes are delegated to
 * uv_err_name()/uv_strerror(). */
#include "err.h"

#include <uv.h>

const char *ml_err_name(int err) {
  switch (err) {
#define XX(name, code, _) case code: return "E" #name;
    ML_ERRNO_MAP(XX)
#undef XX
  }
  return uv_err_name(err);
}

const char *ml_strerror(int err) {
  switch (err) {
#define XX(name, code, msg) case code: return msg;
    ML_ERRNO_MAP(XX)
#undef XX
  }
  return uv_strerror(err);
}
