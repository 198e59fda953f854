/*
 * log — the one logger of acrfs.
 *
 * Messages go to stderr (foreground) or syslog (daemon). Every message passes
 * through a redactor before it is written: any string registered with
 * log_secret() is replaced by "[redacted]", and so is anything that looks like
 * a JWT ("eyJ….….…") or follows "Authorization:" / "Bearer " / "Basic ".
 * Control characters (newlines, ESC, …: often from registry-supplied text)
 * are written as "\xNN", so a message is always one inert line.
 * Callers still must not pass secrets on purpose; the redactor is the second
 * line of defence, not the first.
 *
 * Thread-safe. log_init() must be called before threads start; the other
 * functions may be called from any thread at any time.
 */
#ifndef ACRFS_LOG_H
#define ACRFS_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG };

/* use_syslog: write to syslog (ident "acrfs") instead of stderr. */
void log_init(enum log_level level, bool use_syslog);
void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);

/*
 * Register a secret: from now on every occurrence of it in a message is
 * redacted. The string is copied (and wiped at exit). Strings shorter than
 * 4 bytes are ignored (redacting them would mangle ordinary text).
 * Returns 0 or -ENOMEM / -ENOSPC (table full: 256 secrets).
 */
int log_secret(const char *secret);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * A hook that sees every message after redaction, just before it is written
 * (at most one hook; NULL removes it). It runs on the thread that logs, must
 * be quick and must not log. Set it before threads start. Used by the FUSE
 * edge for .acrfs/errors and to clear the progress line of -f.
 */
typedef void (*log_hook_fn)(enum log_level level, const char *msg);
void log_set_hook(log_hook_fn fn);

/*
 * Redact `in` into `out` (size `outsz`, always NUL-terminated), control
 * characters escaped. Exposed for tests. Returns the length written.
 */
size_t log_redact(const char *in, char *out, size_t outsz);

#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)                                   \
	do {                                             \
		if (log_enabled(LOG_LVL_DEBUG))          \
			log_msg(LOG_LVL_DEBUG, __VA_ARGS__); \
	} while (0)

#endif
