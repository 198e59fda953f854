#include "auth/util.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void auth_wipe(void *p, size_t n)
{
	if (p && n)
		explicit_bzero(p, n);
}

void auth_secret_free(char *s)
{
	if (!s)
		return;
	auth_wipe(s, strlen(s));
	free(s);
}

int64_t auth_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int auth_strdup(const char *s, char **out)
{
	*out = NULL;
	if (!s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static void json_wipe(cJSON *o)
{
	cJSON *it;

	for (it = o; it; it = it->next) {
		if (it->valuestring)
			auth_wipe(it->valuestring, strlen(it->valuestring));
		if (it->child)
			json_wipe(it->child);
	}
}

void auth_json_free_secret(struct cJSON *o)
{
	if (!o)
		return;
	if (o->valuestring)
		auth_wipe(o->valuestring, strlen(o->valuestring));
	if (o->child)
		json_wipe(o->child);
	cJSON_Delete(o);
}
