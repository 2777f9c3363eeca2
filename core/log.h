/* Leveled logging to stderr, in the shape klog prints:
 * `I1129 10:04:05.123456 moonlet] message`. One process-wide level. */
#ifndef ML_LOG_H
#define ML_LOG_H

typedef enum { ML_LOG_DEBUG, ML_LOG_INFO, ML_LOG_WARN, ML_LOG_ERROR } ml_log_level_t;

void ml_log_set_level(ml_log_level_t level);
ml_log_level_t ml_log_get_level(void);
/** Parses "debug", "info", "warn" or "error". @return 0 or ML_EINVALID. */
int ml_log_parse_level(const char *name, ml_log_level_t *out);
void ml_log(ml_log_level_t level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define ML_DEBUG(...) ml_log(ML_LOG_DEBUG, __VA_ARGS__)
#define ML_INFO(...) ml_log(ML_LOG_INFO, __VA_ARGS__)
#define ML_WARN(...) ml_log(ML_LOG_WARN, __VA_ARGS__)
#define ML_ERROR(...) ml_log(ML_LOG_ERROR, __VA_ARGS__)

#endif
