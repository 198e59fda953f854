/*
 * jsonr — see jsonr.h.
 */
#include "registry/jsonr.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Sizes are exact in a double below 2^53 (the largest accepted). */
#define JR_MAX_SIZE ((1ull << 53) - 1)

int jr_fail(struct jr *p, int err, const char *fmt, ...)
{
	va_list ap;

	if (p->whysz) {
		va_start(ap, fmt);
		vsnprintf(p->why, p->whysz, fmt, ap); /* truncation of a message is fine */
		va_end(ap);
	}
	return err;
}

int jr_member(struct jr *p, const cJSON *obj, const char *where, const char *key,
	      const cJSON **it)
{
	const cJSON *c;

	*it = NULL;
	cJSON_ArrayForEach(c, obj) {
		if (c->string && strcmp(c->string, key) == 0) {
			if (*it)
				return jr_fail(p, -EINVAL, "%s: duplicate key \"%s\"", where, key);
			*it = c;
		}
	}
	return 0;
}

bool jr_printable(const char *s, size_t max)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f || n >= max)
			return false;
	return n > 0;
}

int jr_size(struct jr *p, const cJSON *obj, const char *where, uint64_t *out)
{
	const cJSON *it;
	double v;
	int rc = jr_member(p, obj, where, "size", &it);

	if (rc)
		return rc;
	if (!it)
		return jr_fail(p, -EINVAL, "%s: \"size\" is missing", where);
	if (!cJSON_IsNumber(it))
		return jr_fail(p, -EINVAL, "%s: \"size\" is not a number", where);
	v = it->valuedouble;
	/*
	 * cJSON keeps numbers as doubles: every integer below 2^53 is exact, and
	 * anything that rounds to 2^53 or more may not be what was written.
	 */
	if (!isfinite(v) || v < 0 || v != floor(v) || v > (double)JR_MAX_SIZE)
		return jr_fail(p, -EINVAL, "%s: \"size\" is not an integer in [0, 2^53)", where);
	*out = (uint64_t)v;
	return 0;
}

int jr_digest(struct jr *p, const cJSON *obj, const char *where, struct digest *d)
{
	const cJSON *it;
	char alg[40];
	int rc = jr_member(p, obj, where, "digest", &it);

	if (rc)
		return rc;
	if (!it)
		return jr_fail(p, -EINVAL, "%s: \"digest\" is missing", where);
	if (!cJSON_IsString(it) || !it->valuestring)
		return jr_fail(p, -EINVAL, "%s: \"digest\" is not a string", where);
	if (digest_parse(d, it->valuestring) == 0)
		return 0;
	digest_algorithm(it->valuestring, alg, sizeof(alg));
	if (alg[0] && strcmp(alg, "sha256") != 0)
		return jr_fail(p, -EINVAL, "%s: unsupported digest algorithm \"%s\"", where, alg);
	return jr_fail(p, -EINVAL, "%s: \"digest\" is not sha256:<64 lowercase hex>", where);
}
