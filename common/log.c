/*
 * Design: the level and backend are plain globals set before threads start;
 * the secret table is guarded by secret_lock (a leaf lock: nothing else is
 * taken while it is held). Redaction works on a private copy of the
 * formatted message, so a message is written at most once and whole.
 */
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#define MAX_SECRETS 256
#define MSG_MAX 4096
#define REDACTED "[redacted]"

static enum log_level cur_level = LOG_LVL_INFO;
static bool to_syslog;
static log_hook_fn hook;

static pthread_mutex_t secret_lock = PTHREAD_MUTEX_INITIALIZER;
/* guarded by secret_lock */
static char *secrets[MAX_SECRETS];
static size_t nsecrets;

void log_init(enum log_level level, bool use_syslog)
{
	cur_level = level;
	to_syslog = use_syslog;
	if (use_syslog)
		openlog("acrfs", LOG_PID, LOG_DAEMON);
}

void log_set_hook(log_hook_fn fn)
{
	hook = fn;
}

void log_set_level(enum log_level level)
{
	cur_level = level;
}

bool log_enabled(enum log_level level)
{
	return level <= cur_level;
}

int log_secret(const char *secret)
{
	size_t i;
	int rc = 0;

	if (!secret || strlen(secret) < 4)
		return 0;
	pthread_mutex_lock(&secret_lock);
	for (i = 0; i < nsecrets; i++)
		if (strcmp(secrets[i], secret) == 0)
			goto out;
	if (nsecrets == MAX_SECRETS) {
		/* Forget the oldest: tokens are refreshed, passwords stay first. */
		free(secrets[MAX_SECRETS / 2]);
		memmove(&secrets[MAX_SECRETS / 2], &secrets[MAX_SECRETS / 2 + 1],
			(MAX_SECRETS / 2 - 1) * sizeof(secrets[0]));
		nsecrets--;
	}
	secrets[nsecrets] = strdup(secret);
	if (!secrets[nsecrets])
		rc = -ENOMEM;
	else
		nsecrets++;
out:
	pthread_mutex_unlock(&secret_lock);
	return rc;
}

static bool is_b64url(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '=';
}

static bool is_tokchar(char c)
{
	return is_b64url(c) || c == '.' || c == '+' || c == '/' || c == '~';
}

/* Length of a JWT-looking run at p ("eyJ" + b64 '.' b64 ['.' b64]), or 0. */
static size_t jwt_len(const char *p)
{
	size_t n = 0, dots = 0;

	if (strncmp(p, "eyJ", 3) != 0)
		return 0;
	while (is_b64url(p[n]) || p[n] == '.') {
		if (p[n] == '.')
			dots++;
		n++;
	}
	return dots >= 1 && n >= 16 ? n : 0;
}

static size_t put(char *out, size_t o, size_t outsz, const char *s, size_t n)
{
	if (o + 1 >= outsz)
		return o;
	if (n > outsz - 1 - o)
		n = outsz - 1 - o;
	memcpy(out + o, s, n);
	return o + n;
}

size_t log_redact(const char *in, char *out, size_t outsz)
{
	static const char *const markers[] = { "Authorization:", "Bearer ",
					       "Basic ", "password=",
					       "refresh_token=", "access_token=" };
	size_t i = 0, o = 0, k, n;

	if (!outsz)
		return 0;
	pthread_mutex_lock(&secret_lock);
	while (in[i]) {
		bool hit = false;

		/* The longest secret matching here wins: a secret may prefix another. */
		size_t best = 0;

		for (k = 0; k < nsecrets; k++) {
			n = strlen(secrets[k]);
			if (n > best && strncmp(in + i, secrets[k], n) == 0)
				best = n;
		}
		if (best) {
			o = put(out, o, outsz, REDACTED, strlen(REDACTED));
			i += best;
			continue;
		}
		for (k = 0; k < sizeof(markers) / sizeof(markers[0]); k++) {
			n = strlen(markers[k]);
			if (strncasecmp(in + i, markers[k], n) == 0) {
				o = put(out, o, outsz, in + i, n);
				i += n;
				while (in[i] == ' ')
					i++;
				/* "Authorization: Bearer x": keep the scheme word */
				if (k == 0 && (strncasecmp(in + i, "Bearer ", 7) == 0 ||
					       strncasecmp(in + i, "Basic ", 6) == 0)) {
					hit = true;
					break;
				}
				if (is_tokchar(in[i])) {
					o = put(out, o, outsz, REDACTED,
						strlen(REDACTED));
					while (is_tokchar(in[i]))
						i++;
				}
				hit = true;
				break;
			}
		}
		if (hit)
			continue;
		n = jwt_len(in + i);
		if (n) {
			o = put(out, o, outsz, REDACTED, strlen(REDACTED));
			i += n;
			continue;
		}
		if ((unsigned char)in[i] < 0x20 || in[i] == 0x7f) {
			/* Registry-supplied text must not forge lines or drive a terminal. */
			char esc[5];

			snprintf(esc, sizeof(esc), "\\x%02x", (unsigned char)in[i]);
			o = put(out, o, outsz, esc, 4);
		} else {
			o = put(out, o, outsz, in + i, 1);
		}
		i++;
	}
	pthread_mutex_unlock(&secret_lock);
	out[o] = '\0';
	return o;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info", "debug" };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char raw[MSG_MAX], clean[MSG_MAX];
	va_list ap;

	if (!log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap); /* truncation is acceptable */
	va_end(ap);
	log_redact(raw, clean, sizeof(clean));
	if (hook)
		hook(level, clean);
	if (to_syslog) {
		syslog(prio[level], "%s", clean);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		fprintf(stderr, "acrfs %s.%03ld %s: %s\n", when,
			ts.tv_nsec / 1000000, names[level], clean);
	}
}
