/*
 * Unit tests for auth/creds: every credential source, in a private HOME
 * with a fake docker-credential-testhelper on PATH.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/creds.h"
#include "auth/util.h"
#include "common/log.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char tmp[256];
static char *saved_path;

static const char helper_script[] =
	"#!/bin/sh\n"
	"[ \"$1\" = get ] && [ $# -eq 1 ] || { echo \"bad args: $*\" >&2; exit 3; }\n"
	"echo $$ > \"$HELPER_DIR/pid\"\n"
	"IFS= read -r url || true\n"
	"printf '%s' \"$url\" > \"$HELPER_DIR/stdin\"\n"
	"case \"$HELPER_MODE\" in\n"
	"found) printf '{\"ServerURL\":\"%s\",\"Username\":\"hu\","
	"\"Secret\":\"helper-secret-1\"}\\n' \"$url\" ;;\n"
	"token) printf '{\"ServerURL\":\"%s\",\"Username\":\"<token>\","
	"\"Secret\":\"helper-idtoken-2\"}' \"$url\" ;;\n"
	"guid) printf '{\"Username\":\"00000000-0000-0000-0000-000000000000\","
	"\"Secret\":\"helper-acr-refresh\"}' ;;\n"
	"notfound) echo 'credentials not found in native keychain'; exit 1 ;;\n"
	"garbage) echo 'this is not json' ;;\n"
	"fail) echo 'the keychain is locked' >&2; exit 2 ;;\n"
	"big) head -c 200000 /dev/zero | tr '\\0' x ;;\n"
	"hang) exec sleep 30 ;;\n"
	"esac\n";

static void write_file(const char *rel, const char *content, mode_t mode)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
	chmod(path, mode);
}

static void make_dir(const char *rel)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", tmp, rel);
	assert_int_equal(mkdir(path, 0700), 0);
}

static char *tpath(const char *rel)
{
	static char path[4][512];
	static int i;

	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/%s", tmp, rel);
	return path[i];
}

static int setup(void **state)
{
	char *p = NULL;

	(void)state;
	snprintf(tmp, sizeof(tmp), "%s/acrfs-creds-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmp))
		return -1;
	make_dir("home");
	make_dir("home/.docker");
	make_dir("bin");
	write_file("bin/docker-credential-testhelper", helper_script, 0755);
	if (asprintf(&p, "%s/bin:%s", tmp, saved_path) < 0)
		return -1;
	setenv("PATH", p, 1);
	free(p);
	setenv("HOME", tpath("home"), 1);
	setenv("HELPER_DIR", tmp, 1);
	unsetenv("HELPER_MODE");
	unsetenv("DOCKER_CONFIG");
	unsetenv("REGISTRY_AUTH_FILE");
	unsetenv("XDG_RUNTIME_DIR");
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("ACRFS_USERNAME");
	unsetenv("ACRFS_PASSWORD");
	return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(p);
}

static int teardown(void **state)
{
	(void)state;
	nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static struct auth_creds *resolve_ok(const char *host, const char *repo)
{
	struct auth_creds_opts o = { .host = host, .repository = repo,
				     .helper_timeout_ms = 2000 };
	struct auth_creds *c = NULL;

	assert_int_equal(auth_creds_resolve(&o, &c), 0);
	assert_non_null(c);
	assert_non_null(c->source);
	if (c->secret)
		assert_null(strstr(c->source, c->secret));
	return c;
}

static int resolve_rc(const char *host)
{
	struct auth_creds_opts o = { .host = host, .helper_timeout_ms = 500 };
	struct auth_creds *c = (struct auth_creds *)1;
	int rc = auth_creds_resolve(&o, &c);

	if (rc)
		assert_null(c);
	auth_creds_free(rc ? NULL : c);
	return rc;
}

static void expect(struct auth_creds *c, enum auth_cred_kind kind,
		   const char *user, const char *secret, const char *src_part)
{
	assert_int_equal(c->kind, kind);
	if (user)
		assert_string_equal(c->username, user);
	else
		assert_null(c->username);
	if (secret)
		assert_string_equal(c->secret, secret);
	else
		assert_null(c->secret);
	assert_non_null(strstr(c->source, src_part));
	auth_creds_free(c);
}

static void test_explicit(void **state)
{
	struct auth_creds_opts o = { .host = "x.azurecr.io", .username = "admin",
				     .password = "explicit-pw-1" };
	struct auth_creds *c = NULL;

	(void)state;
	/* env and docker config exist but the explicit option wins */
	setenv("ACRFS_USERNAME", "envuser", 1);
	setenv("ACRFS_PASSWORD", "env-pw-2", 1);
	assert_int_equal(auth_creds_resolve(&o, &c), 0);
	expect(c, AUTH_CRED_BASIC, "admin", "explicit-pw-1", "-o username");
	/* service principal: appId/secret is plain Basic too */
	o.username = "11111111-2222-3333-4444-555555555555";
	assert_int_equal(auth_creds_resolve(&o, &c), 0);
	assert_int_equal(c->kind, AUTH_CRED_BASIC);
	auth_creds_free(c);
	/* --expose-token: the null GUID makes the password a refresh token */
	o.username = AUTH_ACR_NULL_GUID;
	assert_int_equal(auth_creds_resolve(&o, &c), 0);
	expect(c, AUTH_CRED_REFRESH_TOKEN, AUTH_ACR_NULL_GUID, "explicit-pw-1",
	       "-o username");
	/* a username without a password is refused */
	o.password = NULL;
	assert_int_equal(auth_creds_resolve(&o, &c), -EINVAL);
	assert_null(c);
	o.password = "";
	assert_int_equal(auth_creds_resolve(&o, &c), -EINVAL);
	/* bad host */
	o.host = "a/b";
	o.password = "x";
	assert_int_equal(auth_creds_resolve(&o, &c), -EINVAL);
}

static void test_env(void **state)
{
	(void)state;
	write_file("home/.docker/config.json",
		   "{\"auths\":{\"x.azurecr.io\":{\"auth\":"
		   "\"ZGs6ZGstcHc=\"}}}", 0600);
	setenv("ACRFS_USERNAME", "envuser", 1);
	setenv("ACRFS_PASSWORD", "env-pw-2", 1);
	expect(resolve_ok("x.azurecr.io", NULL), AUTH_CRED_BASIC, "envuser",
	       "env-pw-2", "ACRFS_USERNAME");
	/* only one of the pair: ignored, docker config used */
	unsetenv("ACRFS_PASSWORD");
	expect(resolve_ok("x.azurecr.io", NULL), AUTH_CRED_BASIC, "dk", "dk-pw",
	       "docker config");
}

static void test_docker_auths(void **state)
{
	(void)state;
	/* auth = base64("dk:dk-pw"); a password with ':' stays whole */
	write_file("home/.docker/config.json",
		   "{\"auths\":{"
		   "\"x.azurecr.io\":{\"auth\":\"ZGs6ZGstcHc=\"},"
		   "\"colon.io\":{\"auth\":\"dTpwOnc6eA==\"},"
		   "\"up.io\":{\"username\":\"upu\",\"password\":\"up-pw-3\"},"
		   "\"id.azurecr.io\":{\"auth\":"
		   "\"MDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwOg==\","
		   "\"identitytoken\":\"acr-refresh-4\"},"
		   "\"rt.io\":{\"registrytoken\":\"reg-token-5\","
		   "\"auth\":\"ZGs6ZGstcHc=\"},"
		   "\"guid.azurecr.io\":{\"username\":"
		   "\"00000000-0000-0000-0000-000000000000\","
		   "\"password\":\"exposed-token-6\"},"
		   "\"empty.io\":{},"
		   "\"bad.io\":{\"auth\":\"bm9jb2xvbg==\"}"
		   "}}",
		   0600);
	expect(resolve_ok("x.azurecr.io", NULL), AUTH_CRED_BASIC, "dk", "dk-pw",
	       "/home/.docker/config.json (auths \"x.azurecr.io\")");
	expect(resolve_ok("X.AzureCR.io", NULL), AUTH_CRED_BASIC, "dk", "dk-pw",
	       "auths");
	expect(resolve_ok("colon.io", NULL), AUTH_CRED_BASIC, "u", "p:w:x",
	       "auths");
	expect(resolve_ok("up.io", NULL), AUTH_CRED_BASIC, "upu", "up-pw-3",
	       "auths");
	expect(resolve_ok("id.azurecr.io", NULL), AUTH_CRED_REFRESH_TOKEN,
	       AUTH_ACR_NULL_GUID, "acr-refresh-4", "identitytoken");
	expect(resolve_ok("rt.io", NULL), AUTH_CRED_REGISTRY_TOKEN, NULL,
	       "reg-token-5", "registrytoken");
	expect(resolve_ok("guid.azurecr.io", NULL), AUTH_CRED_REFRESH_TOKEN,
	       AUTH_ACR_NULL_GUID, "exposed-token-6", "auths");
	expect(resolve_ok("empty.io", NULL), AUTH_CRED_NONE, NULL, NULL,
	       "anonymous");
	expect(resolve_ok("unknown.io", NULL), AUTH_CRED_NONE, NULL, NULL,
	       "anonymous");
	assert_int_equal(resolve_rc("bad.io"), -EINVAL);
	{
		char out[128];

		/* secrets read from the config are registered for redaction */
		log_redact("pw dk-pw, token acr-refresh-4", out, sizeof(out));
		assert_string_equal(out, "pw [redacted], token [redacted]");
	}
}

static void test_docker_keys(void **state)
{
	(void)state;
	write_file("home/.docker/config.json",
		   "{\"auths\":{"
		   "\"https://url.io/v1/\":{\"auth\":\"YTphLXB3\"},"
		   "\"http://port.io:5000\":{\"auth\":\"YjpiLXB3\"},"
		   "\"port.io\":{\"auth\":\"YzpjLXB3\"},"
		   "\"https://both.io\":{\"auth\":\"ZDpkLXB3\"},"
		   "\"both.io\":{\"auth\":\"ZTplLXB3\"},"
		   "\"https://index.docker.io/v1/\":{\"auth\":\"aHViOmh1Yi1wdw==\"}"
		   "}}",
		   0600);
	expect(resolve_ok("url.io", NULL), AUTH_CRED_BASIC, "a", "a-pw",
	       "https://url.io/v1/");
	/* host:port is a different key from host */
	expect(resolve_ok("port.io:5000", NULL), AUTH_CRED_BASIC, "b", "b-pw",
	       "http://port.io:5000");
	expect(resolve_ok("port.io", NULL), AUTH_CRED_BASIC, "c", "c-pw",
	       "\"port.io\"");
	/* exact beats a URL key, whatever the order */
	expect(resolve_ok("both.io", NULL), AUTH_CRED_BASIC, "e", "e-pw",
	       "\"both.io\"");
	/* Docker Hub names all map to the legacy key */
	expect(resolve_ok("docker.io", NULL), AUTH_CRED_BASIC, "hub", "hub-pw",
	       "index.docker.io");
	expect(resolve_ok("registry-1.docker.io", NULL), AUTH_CRED_BASIC, "hub",
	       "hub-pw", "index.docker.io");
	expect(resolve_ok("url.io:443", NULL), AUTH_CRED_NONE, NULL, NULL,
	       "anonymous");
}

static void test_docker_config_env(void **state)
{
	(void)state;
	make_dir("dc");
	write_file("home/.docker/config.json",
		   "{\"auths\":{\"r.io\":{\"auth\":\"aG9tZTpob21lLXB3\"}}}", 0600);
	write_file("dc/config.json",
		   "{\"auths\":{\"r.io\":{\"auth\":\"ZGM6ZGMtcHc=\"}}}", 0600);
	setenv("DOCKER_CONFIG", tpath("dc"), 1);
	expect(resolve_ok("r.io", NULL), AUTH_CRED_BASIC, "dc", "dc-pw",
	       "/dc/config.json");
	unsetenv("DOCKER_CONFIG");
	expect(resolve_ok("r.io", NULL), AUTH_CRED_BASIC, "home", "home-pw",
	       "/home/.docker/config.json");
	/* a broken config is an error, not silently anonymous */
	write_file("home/.docker/config.json", "{\"auths\":", 0600);
	assert_int_equal(resolve_rc("r.io"), -EINVAL);
}

static void read_file(const char *rel, char *buf, size_t n)
{
	FILE *f = fopen(tpath(rel), "r");
	size_t got;

	assert_non_null(f);
	got = fread(buf, 1, n - 1, f);
	buf[got] = '\0';
	fclose(f);
}

static void test_helper_modes(void **state)
{
	char in[256];

	(void)state;
	write_file("home/.docker/config.json",
		   "{\"credHelpers\":{\"x.azurecr.io\":\"testhelper\","
		   "\"missing.io\":\"nosuchhelper\",\"evil.io\":\"../x\"},"
		   "\"auths\":{\"x.azurecr.io\":{\"auth\":\"ZGs6ZGstcHc=\"}}}",
		   0600);
	setenv("HELPER_MODE", "found", 1);
	expect(resolve_ok("x.azurecr.io", NULL), AUTH_CRED_BASIC, "hu",
	       "helper-secret-1", "docker-credential-testhelper");
	/* the server went on stdin, not argv (the script checks argv) */
	read_file("stdin", in, sizeof(in));
	assert_string_equal(in, "x.azurecr.io");
	setenv("HELPER_MODE", "token", 1);
	expect(resolve_ok("x.azurecr.io", NULL), AUTH_CRED_REFRESH_TOKEN, NULL,
	       "helper-idtoken-2", "identity token");
	setenv("HELPER_MODE", "guid", 1);
	expect(resolve_ok("x.azurecr.io", NULL), AUTH_CRED_REFRESH_TOKEN,
	       AUTH_ACR_NULL_GUID, "helper-acr-refresh", "testhelper");
	/* not found: falls through to auths */
	setenv("HELPER_MODE", "notfound", 1);
	expect(resolve_ok("x.azurecr.io", NULL), AUTH_CRED_BASIC, "dk", "dk-pw",
	       "auths");
	setenv("HELPER_MODE", "garbage", 1);
	assert_int_equal(resolve_rc("x.azurecr.io"), -EINVAL);
	setenv("HELPER_MODE", "fail", 1);
	assert_int_equal(resolve_rc("x.azurecr.io"), -EIO);
	setenv("HELPER_MODE", "big", 1);
	assert_int_equal(resolve_rc("x.azurecr.io"), -E2BIG);
	assert_int_equal(resolve_rc("missing.io"), -ENOENT);
	assert_int_equal(resolve_rc("evil.io"), -EINVAL);
}

static void test_helper_timeout(void **state)
{
	struct timespec a, b;
	char pidbuf[32];
	pid_t pid;
	int rc;

	(void)state;
	write_file("home/.docker/config.json",
		   "{\"credHelpers\":{\"x.azurecr.io\":\"testhelper\"}}", 0600);
	setenv("HELPER_MODE", "hang", 1);
	clock_gettime(CLOCK_MONOTONIC, &a);
	rc = resolve_rc("x.azurecr.io"); /* 500 ms timeout */
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_int_equal(rc, -ETIMEDOUT);
	assert_true(b.tv_sec - a.tv_sec < 5);
	/* the hung helper was killed and reaped */
	read_file("pid", pidbuf, sizeof(pidbuf));
	pid = (pid_t)atoi(pidbuf);
	assert_true(pid > 1);
	assert_int_equal(kill(pid, 0), -1);
	assert_int_equal(errno, ESRCH);
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

static void test_creds_store(void **state)
{
	char in[256];

	(void)state;
	/* credsStore for every host; credHelpers overrides per host */
	write_file("home/.docker/config.json",
		   "{\"credsStore\":\"testhelper\","
		   "\"credHelpers\":{\"other.io\":\"nosuchhelper\"},"
		   "\"auths\":{\"x.azurecr.io\":{}}}",
		   0600);
	setenv("HELPER_MODE", "found", 1);
	expect(resolve_ok("x.azurecr.io", NULL), AUTH_CRED_BASIC, "hu",
	       "helper-secret-1", "testhelper");
	expect(resolve_ok("docker.io", NULL), AUTH_CRED_BASIC, "hu",
	       "helper-secret-1", "testhelper");
	read_file("stdin", in, sizeof(in));
	assert_string_equal(in, "https://index.docker.io/v1/");
	assert_int_equal(resolve_rc("other.io"), -ENOENT);
	/* not found and an empty auths placeholder: anonymous */
	setenv("HELPER_MODE", "notfound", 1);
	expect(resolve_ok("x.azurecr.io", NULL), AUTH_CRED_NONE, NULL, NULL,
	       "anonymous");
}

static void test_podman(void **state)
{
	(void)state;
	make_dir("run");
	make_dir("run/containers");
	make_dir("cfg");
	make_dir("cfg/containers");
	make_dir("home/.config");
	make_dir("home/.config/containers");
	write_file("run/containers/auth.json",
		   "{\"auths\":{"
		   "\"p.io\":{\"auth\":\"aG9zdDpob3N0LXB3\"},"
		   "\"p.io/team\":{\"auth\":\"dGVhbTp0ZWFtLXB3\"},"
		   "\"p.io/team/app\":{\"auth\":\"YXBwOmFwcC1wdw==\"},"
		   "\"docker.io/library\":{\"auth\":\"bGliOmxpYi1wdw==\"}"
		   "}}",
		   0600);
	write_file("cfg/containers/auth.json",
		   "{\"auths\":{\"q.io\":{\"auth\":\"Y2ZnOmNmZy1wdw==\"},"
		   "\"p.io\":{\"auth\":\"bG9zZTpsb3NlLXB3\"}}}",
		   0600);
	write_file("home/.config/containers/auth.json",
		   "{\"auths\":{\"h.io\":{\"auth\":\"aGM6aGMtcHc=\"}}}", 0600);
	/* ${XDG_CONFIG_HOME:-$HOME/.config} when XDG_RUNTIME_DIR is unset */
	expect(resolve_ok("h.io", NULL), AUTH_CRED_BASIC, "hc", "hc-pw",
	       "/home/.config/containers/auth.json");
	setenv("XDG_RUNTIME_DIR", tpath("run"), 1);
	setenv("XDG_CONFIG_HOME", tpath("cfg"), 1);
	/* longest prefix of host/repository wins, then the host */
	expect(resolve_ok("p.io", "team/app"), AUTH_CRED_BASIC, "app", "app-pw",
	       "\"p.io/team/app\"");
	expect(resolve_ok("p.io", "team/app/sub"), AUTH_CRED_BASIC, "app",
	       "app-pw", "containers auth file");
	expect(resolve_ok("p.io", "team/other"), AUTH_CRED_BASIC, "team",
	       "team-pw", "\"p.io/team\"");
	expect(resolve_ok("p.io", "teamx/a"), AUTH_CRED_BASIC, "host", "host-pw",
	       "\"p.io\"");
	expect(resolve_ok("p.io", NULL), AUTH_CRED_BASIC, "host", "host-pw",
	       "/run/containers/auth.json");
	expect(resolve_ok("docker.io", "library/alpine"), AUTH_CRED_BASIC, "lib",
	       "lib-pw", "docker.io/library");
	/* the runtime file has no q.io: the config-home file is next */
	expect(resolve_ok("q.io", NULL), AUTH_CRED_BASIC, "cfg", "cfg-pw",
	       "/cfg/containers/auth.json");
	/* REGISTRY_AUTH_FILE is the only file when set */
	write_file("raf.json", "{\"auths\":{\"q.io\":{\"auth\":\"cmFmOnJhZi1wdw==\"}}}",
		   0600);
	setenv("REGISTRY_AUTH_FILE", tpath("raf.json"), 1);
	expect(resolve_ok("q.io", NULL), AUTH_CRED_BASIC, "raf", "raf-pw",
	       "raf.json");
	expect(resolve_ok("p.io", NULL), AUTH_CRED_NONE, NULL, NULL, "anonymous");
	/* docker's config comes before podman's */
	write_file("home/.docker/config.json",
		   "{\"auths\":{\"q.io\":{\"auth\":\"ZGs6ZGstcHc=\"}}}", 0600);
	expect(resolve_ok("q.io", NULL), AUTH_CRED_BASIC, "dk", "dk-pw",
	       "docker config");
}

static void test_aad(void **state)
{
	struct auth_creds_opts o = { .host = "x.azurecr.io" };
	struct auth_creds *c = NULL;

	(void)state;
	write_file("aad", "aad-access-token-7\n", 0600);
	o.aad_token_file = tpath("aad");
	o.tenant = "tenant-id";
	assert_int_equal(auth_creds_resolve(&o, &c), 0);
	assert_string_equal(c->tenant, "tenant-id");
	expect(c, AUTH_CRED_AAD_TOKEN, NULL, "aad-access-token-7",
	       "aad_token_file");
	o.username = "u";
	o.password = "p";
	assert_int_equal(auth_creds_resolve(&o, &c), -EINVAL);
	o.username = NULL;
	o.aad_token_file = tpath("missing");
	assert_int_equal(auth_creds_resolve(&o, &c), -ENOENT);
	assert_null(c);
}

static void test_password_file(void **state)
{
	char *pw = NULL, *big;

	(void)state;
	write_file("pw1", "s3cret-pw\nsecond line\n", 0600);
	assert_int_equal(auth_read_password_file(tpath("pw1"), &pw), 0);
	assert_string_equal(pw, "s3cret-pw");
	auth_secret_free(pw);
	write_file("pw2", "crlf-pw\r\n", 0644); /* warns, still read */
	assert_int_equal(auth_read_password_file(tpath("pw2"), &pw), 0);
	assert_string_equal(pw, "crlf-pw");
	auth_secret_free(pw);
	write_file("pw3", "no-newline", 0600);
	assert_int_equal(auth_read_password_file(tpath("pw3"), &pw), 0);
	assert_string_equal(pw, "no-newline");
	auth_secret_free(pw);
	write_file("pw4", "\nlater", 0600);
	assert_int_equal(auth_read_password_file(tpath("pw4"), &pw), -EINVAL);
	assert_null(pw);
	write_file("pw5", "", 0600);
	assert_int_equal(auth_read_password_file(tpath("pw5"), &pw), -EINVAL);
	assert_int_equal(auth_read_password_file(tpath("nope"), &pw), -ENOENT);
	assert_int_equal(auth_read_password_file(tpath("home"), &pw), -EISDIR);
	big = malloc(AUTH_SECRET_MAX_LEN + 10);
	memset(big, 'x', AUTH_SECRET_MAX_LEN + 9);
	big[AUTH_SECRET_MAX_LEN + 9] = '\0';
	write_file("pw6", big, 0600);
	assert_int_equal(auth_read_password_file(tpath("pw6"), &pw), -E2BIG);
	free(big);
	{
		char out[64];

		/* a password read is registered for redaction */
		log_redact("x s3cret-pw y", out, sizeof(out));
		assert_string_equal(out, "x [redacted] y");
	}
}

static void test_password_stream(void **state)
{
	char text[] = "stream-pw\r\nrest\n";
	char *pw = NULL;
	FILE *f;

	(void)state;
	f = fmemopen(text, strlen(text), "r");
	assert_int_equal(auth_read_password_stream(f, &pw), 0);
	assert_string_equal(pw, "stream-pw");
	/* only the first line was consumed */
	assert_int_equal(getc(f), 'r');
	fclose(f);
	auth_secret_free(pw);
	f = fmemopen((char *)"\n", 1, "r");
	assert_int_equal(auth_read_password_stream(f, &pw), -EINVAL);
	fclose(f);
}

/* auth_creds_parse_config of a string, named "cfg". */
static int parse_cfg(enum auth_config_kind kind, const char *text,
		     const struct auth_creds_opts *o, char **helper,
		     struct auth_creds **c)
{
	return auth_creds_parse_config(kind, text, strlen(text), "cfg", o, helper, c);
}

/* auth_creds_parse_config: the same lookups from bytes, nothing run. */
static void test_parse_config(void **state)
{
	static const char docker[] =
		"{\"credHelpers\":{\"h.io\":\"helperx\"},"
		"\"auths\":{\"h.io\":{\"auth\":\"aDpoLXB3\"},"
		"\"https://x.io/v1/\":{\"identitytoken\":\"id-tok-1\"}}}";
	static const char podman[] =
		"{\"auths\":{\"p.io/team\":{\"auth\":\"dGVhbTp0ZWFtLXB3\"}}}";
	struct auth_creds_opts o = { .host = "h.io" };
	struct auth_creds *c = (struct auth_creds *)1;
	char *helper = (char *)1;

	(void)state;
	/* a helper is named: the auths entry is left for later */
	assert_int_equal(parse_cfg(AUTH_CONFIG_DOCKER, docker, &o, &helper, &c), 0);
	assert_string_equal(helper, "helperx");
	assert_null(c);
	free(helper);
	/* without helpers: the auths entry */
	assert_int_equal(parse_cfg(AUTH_CONFIG_DOCKER, docker, &o, NULL, &c), 0);
	expect(c, AUTH_CRED_BASIC, "h", "h-pw", "cfg (auths \"h.io\")");
	o.host = "x.io";
	assert_int_equal(parse_cfg(AUTH_CONFIG_DOCKER, docker, &o, &helper, &c), 0);
	assert_null(helper);
	expect(c, AUTH_CRED_REFRESH_TOKEN, NULL, "id-tok-1", "identitytoken");
	o.host = "p.io";
	o.repository = "team/app";
	assert_int_equal(parse_cfg(AUTH_CONFIG_CONTAINERS, podman, &o, NULL, &c), 0);
	expect(c, AUTH_CRED_BASIC, "team", "team-pw", "\"p.io/team\"");
	o.host = "q.io";
	assert_int_equal(parse_cfg(AUTH_CONFIG_CONTAINERS, podman, &o, NULL, &c), 0);
	assert_null(c);
	assert_int_equal(parse_cfg(AUTH_CONFIG_DOCKER, "[1]", &o, NULL, &c), -EINVAL);
	assert_null(c);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_explicit),     T(test_env),
		T(test_docker_auths), T(test_docker_keys),
		T(test_docker_config_env), T(test_helper_modes),
		T(test_helper_timeout), T(test_creds_store),
		T(test_podman),       T(test_aad),
		T(test_password_file), T(test_password_stream),
		T(test_parse_config),
	};

	saved_path = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	log_init(LOG_LVL_ERROR, false);
	return cmocka_run_group_tests_name("auth_creds", tests, NULL, NULL);
}
