/*
 * fuzz_creds — docker config.json and containers auth.json
 * (auth/creds.h auth_creds_parse_config; nothing is read or run).
 *
 * Input: the bytes of a config file. Looked up as docker's config (with
 * and without credential helpers) and as a containers auth file, for a
 * few hosts (ACR, Docker Hub and its aliases, host:port) and repositories.
 * A success gives either nothing, a helper name (docker, helpers asked
 * for), or credentials of a known kind with a secret and a source; a
 * failure is -EINVAL with nothing returned.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth/creds.h"
#include "tests/fuzz/fuzz.h"

static const char *const hosts[] = { "x.azurecr.io", "docker.io", "127.0.0.1:5000" };
static const char *const repos[] = { NULL, "team/app" };

static void check(enum auth_config_kind kind, const uint8_t *data, size_t size,
		  const char *host, const char *repo, bool helpers)
{
	struct auth_creds_opts o = { .host = host, .repository = repo };
	struct auth_creds *c = (struct auth_creds *)1;
	char *helper = (char *)1;
	int rc;

	rc = auth_creds_parse_config(kind, data, size, "/fuzz/config.json", &o,
				     helpers ? &helper : NULL, &c);
	if (rc) {
		FUZZ_CHECK(rc == -EINVAL && !c && (!helpers || !helper));
		return;
	}
	if (helpers && helper) {
		FUZZ_CHECK(kind == AUTH_CONFIG_DOCKER && *helper && !c);
		free(helper);
		return;
	}
	FUZZ_CHECK(!helpers || !helper);
	if (!c)
		return;
	FUZZ_CHECK(c->source && strstr(c->source, "/fuzz/config.json"));
	FUZZ_CHECK(c->kind == AUTH_CRED_BASIC || c->kind == AUTH_CRED_REFRESH_TOKEN ||
		   c->kind == AUTH_CRED_REGISTRY_TOKEN);
	FUZZ_CHECK(c->secret && *c->secret && !c->tenant);
	if (c->kind == AUTH_CRED_BASIC)
		FUZZ_CHECK(c->username && strcmp(c->username, AUTH_ACR_NULL_GUID));
	auth_creds_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t h, r;

	fuzz_setup();
	for (h = 0; h < sizeof(hosts) / sizeof(hosts[0]); h++) {
		check(AUTH_CONFIG_DOCKER, data, size, hosts[h], NULL, true);
		check(AUTH_CONFIG_DOCKER, data, size, hosts[h], NULL, false);
		for (r = 0; r < sizeof(repos) / sizeof(repos[0]); r++)
			check(AUTH_CONFIG_CONTAINERS, data, size, hosts[h], repos[r], false);
	}
	return 0;
}
