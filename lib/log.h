/* Logging: levels, structured journal entries, timestamped stderr lines.
 *
 * When stderr is connected to journald ($JOURNAL_STREAM names stderr's device
 * and inode) entries go to the journal with their fields (COORD_INSTANCE=...,
 * COORD_SERVICE=...); otherwise one timestamped line per entry on stderr,
 * fields appended as key=value.  Every string registered with log_add_secret()
 * is replaced by "*****" before anything is written, whatever the sink. */
#pragma once

#include <stdarg.h>
#include <syslog.h>

#include "macro.h"

/* Name the program (used as SYSLOG_IDENTIFIER and line prefix) and pick the sink. */
void log_open(const char *ident);
void log_set_max_level(int level);
int log_get_max_level(void);
/* "emerg", "alert", "crit", "error", "warning", "notice", "info", "debug" for
 * LOG_EMERG..LOG_DEBUG; NULL when out of range. */
const char *log_level_to_string(int level);
/* Those names, "err", "warn" or a number 0-7; -EINVAL if unknown. */
int log_level_from_string(const char *s);
/* Force the stderr sink even under journald (tests). */
void log_force_stderr(int yes);

/* Register a secret (copied) that must never be printed; NULL/empty ignored.
 * Secrets shorter than 3 characters are ignored to avoid masking common text. */
void log_add_secret(const char *secret);
/* Drop all registered secrets (for reloads). */
void log_clear_secrets(void);
/* Copy of s with every registered secret replaced by "*****"; caller frees. */
char *log_mask_secrets(const char *s);
/* printf into buf (len > 0), then mask the registered secrets in it: for text
 * shown outside the log (sd_notify STATUS=, an API field). */
void log_format_masked(char *buf, size_t len, const char *fmt, va_list ap) _printf_(3, 0);

/* Core entry points.  error is 0 or an errno (either sign); %m renders it.
 * fields is NULL or a NULL-terminated array of "KEY=value" strings.
 * Return -abs(error), so callers can `return log_error_errno(r, ...)`. */
int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *const *fields, const char *fmt, ...) _printf_(7, 8);
int log_internalv(int level, int error, const char *file, int line, const char *func,
                  const char *const *fields, const char *fmt, va_list ap) _printf_(7, 0);

#define log_full_errno(level, error, ...) \
        log_internal(level, error, __FILE__, __LINE__, __func__, NULL, __VA_ARGS__)
#define log_fields(level, fields, ...) \
        log_internal(level, 0, __FILE__, __LINE__, __func__, fields, __VA_ARGS__)

#define log_debug(...)   log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...)    log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...)  log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...)   log_full_errno(LOG_ERR, 0, __VA_ARGS__)

#define log_debug_errno(e, ...)   log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...)    log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...)   log_full_errno(LOG_ERR, e, __VA_ARGS__)
