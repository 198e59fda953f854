/*
 * errlog — see fs/errlog.h. A fixed ring of ERRLOG_MAX entries guarded by
 * `mu` (a leaf lock); fields are escaped before the lock is taken, so the
 * critical section is a copy.
 */
#include "fs/errlog.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct entry {
	time_t when;
	char op[ERRLOG_OP_MAX];
	char path[ERRLOG_PATH_MAX];
	char cause[ERRLOG_CAUSE_MAX];
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
/* guarded by mu */
static struct entry ring[ERRLOG_MAX];
static uint64_t total; /* entries ever added; the newest is ring[(total - 1) % MAX] */

/* Copy `in` to `out` with control characters and '\\' escaped, cut to fit. */
static void escape(const char *in, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (!in || !*in)
		in = "-";
	for (; *in; in++) {
		unsigned char c = (unsigned char)*in;
		char e[5];
		size_t n = 1;

		e[0] = (char)c;
		if (c == '\\') {
			e[1] = '\\';
			n = 2;
		} else if (c < 0x20 || c == 0x7f) {
			e[0] = '\\';
			e[1] = 'x';
			e[2] = hex[c >> 4];
			e[3] = hex[c & 15];
			n = 4;
		}
		if (o + n >= size)
			break;
		memcpy(out + o, e, n);
		o += n;
	}
	out[o] = '\0';
}

void errlog_add(time_t when, const char *op, const char *path, const char *cause)
{
	struct entry e;

	e.when = when;
	escape(op, e.op, sizeof(e.op));
	escape(path, e.path, sizeof(e.path));
	escape(cause, e.cause, sizeof(e.cause));
	pthread_mutex_lock(&mu);
	ring[total % ERRLOG_MAX] = e;
	total++;
	pthread_mutex_unlock(&mu);
}

int errlog_render(struct buf *out)
{
	struct entry *copy;
	uint64_t n, first, i;
	int rc = 0;

	copy = malloc(ERRLOG_MAX * sizeof(*copy));
	if (!copy)
		return -ENOMEM;
	pthread_mutex_lock(&mu);
	n = total < ERRLOG_MAX ? total : ERRLOG_MAX;
	first = total - n;
	for (i = 0; i < n; i++)
		copy[i] = ring[(first + i) % ERRLOG_MAX];
	pthread_mutex_unlock(&mu);
	for (i = 0; i < n && !rc; i++) {
		struct tm tm;
		char when[32] = "-";

		gmtime_r(&copy[i].when, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm); /* fits: 20 chars */
		rc = buf_addf(out, "%s %s %s %s\n", when, copy[i].op, copy[i].path,
			      copy[i].cause);
	}
	free(copy);
	return rc;
}

uint64_t errlog_total(void)
{
	uint64_t n;

	pthread_mutex_lock(&mu);
	n = total;
	pthread_mutex_unlock(&mu);
	return n;
}
