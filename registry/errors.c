#include "registry/errors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

void registry_error_parse(const char *body, size_t len, char *code, size_t codesz,
			  char *msg, size_t msgsz)
{
	cJSON *root, *errs, *first, *c, *m;

	if (code && codesz)
		code[0] = '\0';
	if (msg && msgsz)
		msg[0] = '\0';
	if (!body || !len)
		return;
	root = cJSON_ParseWithLength(body, len);
	if (!root)
		return;
	errs = cJSON_GetObjectItemCaseSensitive(root, "errors");
	first = cJSON_IsArray(errs) ? cJSON_GetArrayItem(errs, 0) : NULL;
	if (cJSON_IsObject(first)) {
		cJSON *d = cJSON_GetObjectItemCaseSensitive(first, "detail");

		c = cJSON_GetObjectItemCaseSensitive(first, "code");
		m = cJSON_GetObjectItemCaseSensitive(first, "message");
		if (code && codesz && cJSON_IsString(c))
			snprintf(code, codesz, "%s", c->valuestring);
		if (msg && msgsz && cJSON_IsString(m)) {
			/* A detail in words (ACR names the lock there) completes it. */
			if (cJSON_IsString(d) && d->valuestring[0])
				snprintf(msg, msgsz, "%s: %s", m->valuestring, d->valuestring);
			else
				snprintf(msg, msgsz, "%s", m->valuestring);
		}
	}
	cJSON_Delete(root);
}

static const struct {
	const char *code;
	int err;
} code_table[] = {
	{ "BLOB_UNKNOWN", -ENOENT },	 { "MANIFEST_UNKNOWN", -ENOENT },
	{ "NAME_UNKNOWN", -ENOENT },	 { "UNAUTHORIZED", -EACCES },
	{ "DENIED", -EACCES },		 { "UNSUPPORTED", -EPERM },
	{ "TOOMANYREQUESTS", -EIO },	 { "UNAVAILABLE", -EIO },
	{ "NAME_INVALID", -EINVAL },	 { "TAG_INVALID", -EINVAL },
	{ "DIGEST_INVALID", -EINVAL },	 { "MANIFEST_INVALID", -EINVAL },
	{ "MANIFEST_BLOB_UNKNOWN", -EINVAL },
	{ "PAGINATION_NUMBER_INVALID", -EINVAL },
	/* ACR (REFERENCE, "ACR's data plane"): a lock refused a change; an
	 * unknown tag of /acr/v1. */
	{ "REGISTRY_DISALLOWED_OPERATION", -EPERM },
	{ "TAG_UNKNOWN", -ENOENT },
};

const char *registry_error_hint(const char *code)
{
	if (code && strcmp(code, "REGISTRY_DISALLOWED_OPERATION") == 0)
		return REGISTRY_LOCKED_HINT;
	return NULL;
}

int registry_errno(long status, const char *code)
{
	size_t i;

	if (status >= 200 && status < 400)
		return 0;
	if (code && *code) {
		for (i = 0; i < sizeof(code_table) / sizeof(code_table[0]); i++)
			if (strcmp(code, code_table[i].code) == 0)
				return code_table[i].err;
	}
	switch (status) {
	case 400:
		return -EINVAL;
	case 401:
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 405:
		return -EPERM;
	case 409:
		return -EBUSY;
	case 413:
		return -EFBIG;
	default:
		return -EIO;
	}
}
