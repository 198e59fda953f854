/*
 * Design: auth_creds_resolve() tries the sources of creds.h in order; each
 * try_* function returns 0 with *out set (found), 0 with *out NULL (nothing
 * here, go on) or -errno (stop: the user configured something broken and
 * falling back to anonymous would hide it).
 *
 * Credential helpers run via fork/execvpe, with our environment minus
 * ACRFS_PASSWORD: stdin is one end of a socketpair (so writing to a helper
 * that exited early gives EPIPE, not SIGPIPE — send(MSG_NOSIGNAL)), stdout
 * and stderr are pipes drained with poll() up to a byte bound and a
 * deadline, and an O_CLOEXEC pipe reports an execvpe failure. The child leads its own process group so a timeout kills the
 * helper and anything it started; the child is always reaped.
 */
#include "auth/creds.h"

#include "auth/util.h"
#include "common/buf.h"
#include "common/log.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CONFIG_MAX_SIZE (4 << 20)
#define DOCKER_HUB_KEY "https://index.docker.io/v1/"

const char *auth_cred_kind_name(enum auth_cred_kind kind)
{
	switch (kind) {
	case AUTH_CRED_NONE:
		return "none";
	case AUTH_CRED_BASIC:
		return "basic";
	case AUTH_CRED_REFRESH_TOKEN:
		return "refresh-token";
	case AUTH_CRED_REGISTRY_TOKEN:
		return "registry-token";
	case AUTH_CRED_AAD_TOKEN:
		return "aad-token";
	}
	return "unknown";
}

void auth_creds_free(struct auth_creds *c)
{
	if (!c)
		return;
	free(c->username);
	auth_secret_free(c->secret);
	free(c->tenant);
	free(c->source);
	free(c);
}

/*
 * Build a result. The ACR rule turns BASIC with the null GUID into
 * REFRESH_TOKEN. `source` is printf-formatted.
 */
static int make_creds(enum auth_cred_kind kind, const char *user,
		      const char *secret, struct auth_creds **out,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int make_creds(enum auth_cred_kind kind, const char *user,
		      const char *secret, struct auth_creds **out,
		      const char *fmt, ...)
{
	struct auth_creds *c;
	va_list ap;
	int n;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (kind == AUTH_CRED_BASIC && user &&
	    strcmp(user, AUTH_ACR_NULL_GUID) == 0)
		kind = AUTH_CRED_REFRESH_TOKEN;
	c->kind = kind;
	va_start(ap, fmt);
	n = vasprintf(&c->source, fmt, ap);
	va_end(ap);
	if (n < 0) {
		c->source = NULL;
		goto nomem;
	}
	if (auth_strdup(user, &c->username) || auth_strdup(secret, &c->secret))
		goto nomem;
	if (c->secret)
		log_secret(c->secret);
	*out = c;
	return 0;
nomem:
	auth_creds_free(c);
	return -ENOMEM;
}

/* ---- reading secrets ---- */

/* Keep the first line of b (without "\n" / "\r\n") as a new string. */
static int first_line(struct buf *b, char **out)
{
	size_t n = strcspn(buf_cstr(b), "\n");

	if (n < b->len || b->len == 0)
		b->len = n;
	if (b->len && b->data[b->len - 1] == '\r')
		b->len--;
	if (!b->len)
		return -EINVAL;
	if (memchr(b->data, '\0', b->len))
		return -EINVAL;
	*out = strndup(b->data, b->len);
	if (!*out)
		return -ENOMEM;
	log_secret(*out);
	return 0;
}

int auth_read_password_stream(FILE *f, char **out)
{
	struct buf b = BUF_INIT;
	int ch, rc;

	*out = NULL;
	/* One allocation: growing would leave copies of the secret behind. */
	rc = buf_grow(&b, AUTH_SECRET_MAX_LEN + 1);
	if (rc)
		return rc;
	while ((ch = getc(f)) != EOF && ch != '\n') {
		if (b.len >= AUTH_SECRET_MAX_LEN) {
			rc = -E2BIG;
			goto out;
		}
		b.data[b.len++] = (char)ch;
	}
	b.data[b.len] = '\0';
	if (ch == EOF && ferror(f)) {
		rc = -EIO;
		goto out;
	}
	rc = first_line(&b, out);
out:
	buf_release_secret(&b);
	return rc;
}

int auth_read_password_file(const char *path, char **out)
{
	struct buf b = BUF_INIT;
	struct stat st;
	int fd, rc;

	*out = NULL;
	if (!path)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		rc = -errno;
		log_error("cannot open %s: %s", path, strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		rc = -EISDIR;
		log_error("%s is a directory, not a password file", path);
		goto out;
	}
	if (S_ISREG(st.st_mode) && (st.st_mode & 077))
		log_warn("%s is readable by group or others (mode %03o); "
			 "chmod 600 it",
			 path, (unsigned)(st.st_mode & 0777));
	rc = buf_grow(&b, AUTH_SECRET_MAX_LEN + 1);
	while (!rc && !memchr(b.data, '\n', b.len)) {
		ssize_t n;

		if (b.len > AUTH_SECRET_MAX_LEN) {
			rc = -E2BIG;
			break;
		}
		n = read(fd, b.data + b.len, AUTH_SECRET_MAX_LEN + 1 - b.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = -errno;
		if (n <= 0)
			break;
		b.len += (size_t)n;
		b.data[b.len] = '\0';
	}
	if (!rc)
		rc = first_line(&b, out);
	if (rc == -EINVAL)
		log_error("%s: the first line is empty", path);
	else if (rc == -E2BIG)
		log_error("%s: the first line is too long", path);
	else if (rc && rc != -ENOMEM)
		log_error("cannot read %s: %s", path, strerror(-rc));
out:
	buf_release_secret(&b);
	close(fd);
	return rc;
}

/* ---- credential helpers ---- */

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool helper_name_ok(const char *h)
{
	size_t i;

	if (!h || !*h || strlen(h) > 64)
		return false;
	for (i = 0; h[i]; i++) {
		char c = h[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
			return false;
	}
	return true;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Wait for pid; kill its group first if `kill_it`. Status into *status. */
static void reap(pid_t pid, bool kill_it, int *status)
{
	if (kill_it)
		kill(-pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
}

/*
 * The environment for a helper: ours without ACRFS_PASSWORD (a helper has
 * no business with acrfs' password). The array is new, the strings are
 * borrowed from environ; free() the array. NULL on ENOMEM.
 */
static char **child_environ(void)
{
	size_t n = 0, k = 0;
	char **env;

	while (environ && environ[n])
		n++;
	env = calloc(n + 1, sizeof(*env));
	if (!env)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "ACRFS_PASSWORD=", 15) != 0)
			env[k++] = environ[i];
	return env;
}

/*
 * Run the helper. On 0, *status is its wait status and out/err hold what
 * it printed (secret-wiped by the caller).
 */
static int run_helper(const char *prog, const char *input, int timeout_ms,
		      struct buf *outb, struct buf *errb, int *status)
{
	int sv[2] = { -1, -1 }, po[2] = { -1, -1 }, pe[2] = { -1, -1 };
	int px[2] = { -1, -1 };
	int64_t deadline = mono_ms() + timeout_ms;
	char **envp = NULL;
	pid_t pid;
	int rc = 0, child_errno = 0;
	ssize_t n;

	*status = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    pipe2(po, O_CLOEXEC) < 0 || pipe2(pe, O_CLOEXEC) < 0 ||
	    pipe2(px, O_CLOEXEC) < 0) {
		rc = -errno;
		goto out;
	}
	rc = buf_grow(outb, AUTH_HELPER_MAX_OUTPUT + 1);
	if (!rc)
		rc = buf_grow(errb, AUTH_HELPER_MAX_OUTPUT + 1);
	if (rc)
		goto out;
	envp = child_environ();
	if (!envp) {
		rc = -ENOMEM;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto out;
	}
	if (pid == 0) {
		/* Child: only async-signal-safe calls until execvpe. */
		char *const argv[] = { (char *)prog, (char *)"get", NULL };
		int e;

		setpgid(0, 0);
		if (dup2(sv[1], 0) < 0 || dup2(po[1], 1) < 0 ||
		    dup2(pe[1], 2) < 0)
			_exit(127);
		signal(SIGPIPE, SIG_DFL);
		execvpe(prog, argv, envp);
		e = errno;
		if (write(px[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	setpgid(pid, pid); /* also in the parent: no race with kill(-pid) */
	close_fd(&sv[1]);
	close_fd(&po[1]);
	close_fd(&pe[1]);
	close_fd(&px[1]);
	do
		n = read(px[0], &child_errno, sizeof(child_errno));
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(child_errno)) {
		reap(pid, false, status);
		rc = -child_errno;
		goto out;
	}
	/* Best effort: a helper may exit without reading its input. */
	if (send(sv[0], input, strlen(input), MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
		log_debug("credential helper %s: writing input: %s", prog,
			  strerror(errno));
	close_fd(&sv[0]);
	while (po[0] >= 0 || pe[0] >= 0) {
		struct pollfd pfd[2] = { { po[0], POLLIN, 0 },
					 { pe[0], POLLIN, 0 } };
		int64_t left = deadline - mono_ms();
		int i, pr;

		if (left <= 0) {
			reap(pid, true, status);
			rc = -ETIMEDOUT;
			goto out;
		}
		pr = poll(pfd, 2, (int)left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0) {
			rc = -errno;
			reap(pid, true, status);
			goto out;
		}
		for (i = 0; i < 2; i++) {
			struct buf *b = i == 0 ? outb : errb;
			int *fd = i == 0 ? &po[0] : &pe[0];

			if (*fd < 0 || !pfd[i].revents)
				continue;
			n = read(*fd, b->data + b->len,
				 AUTH_HELPER_MAX_OUTPUT + 1 - b->len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				close_fd(fd);
				continue;
			}
			b->len += (size_t)n;
			b->data[b->len] = '\0';
			if (b->len > AUTH_HELPER_MAX_OUTPUT) {
				reap(pid, true, status);
				rc = -E2BIG;
				goto out;
			}
		}
	}
	/* Output closed; the helper should exit now — within the deadline. */
	for (;;) {
		pid_t w = waitpid(pid, status, WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			/* SIGCHLD ignored by the application: status unknown. */
			*status = 0;
			break;
		}
		if (mono_ms() >= deadline) {
			reap(pid, true, status);
			rc = -ETIMEDOUT;
			goto out;
		}
		usleep(5000);
	}
out:
	close_fd(&sv[0]);
	close_fd(&sv[1]);
	close_fd(&po[0]);
	close_fd(&po[1]);
	close_fd(&pe[0]);
	close_fd(&pe[1]);
	close_fd(&px[0]);
	close_fd(&px[1]);
	free(envp);
	return rc;
}

/* A short, single-line excerpt of helper output for an error message. */
static void excerpt(const struct buf *b, char *dst, size_t n)
{
	size_t i, o = 0;

	for (i = 0; i < b->len && o + 1 < n; i++) {
		char c = b->data[i];

		if (c == '\n' && o)
			break;
		dst[o++] = (c >= 0x20 && c < 0x7f) ? c : ' ';
	}
	dst[o] = '\0';
}

int auth_creds_from_helper(const char *helper, const char *server_url,
			   int timeout_ms, struct auth_creds **out)
{
	struct buf ob = BUF_INIT, eb = BUF_INIT;
	char prog[96], msg[160];
	const cJSON *user, *secret;
	cJSON *o = NULL;
	int status = 0, rc;

	*out = NULL;
	if (!helper_name_ok(helper) || !server_url) {
		log_error("invalid credential helper name \"%s\"",
			  helper ? helper : "");
		return -EINVAL;
	}
	snprintf(prog, sizeof(prog), "docker-credential-%s", helper);
	if (timeout_ms <= 0)
		timeout_ms = AUTH_HELPER_TIMEOUT_MS;
	rc = run_helper(prog, server_url, timeout_ms, &ob, &eb, &status);
	if (rc == -ENOENT) {
		log_error("credential helper %s is not installed (not on PATH)",
			  prog);
		goto out;
	}
	if (rc == -ETIMEDOUT) {
		log_error("credential helper %s did not answer within %d ms; "
			  "killed it",
			  prog, timeout_ms);
		goto out;
	}
	if (rc == -E2BIG) {
		log_error("credential helper %s printed more than %d bytes",
			  prog, AUTH_HELPER_MAX_OUTPUT);
		goto out;
	}
	if (rc) {
		log_error("running credential helper %s: %s", prog,
			  strerror(-rc));
		goto out;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		if (strcasestr(buf_cstr(&ob), "credentials not found") ||
		    strcasestr(buf_cstr(&eb), "credentials not found")) {
			rc = make_creds(AUTH_CRED_NONE, NULL, NULL, out,
					"credential helper %s (not found)",
					prog);
			goto out;
		}
		excerpt(ob.len ? &ob : &eb, msg, sizeof(msg));
		if (WIFEXITED(status))
			log_error("credential helper %s failed (exit %d): %s",
				  prog, WEXITSTATUS(status), msg);
		else
			log_error("credential helper %s killed by signal %d",
				  prog, WTERMSIG(status));
		rc = -EIO;
		goto out;
	}
	o = cJSON_ParseWithLength(ob.data ? ob.data : "", ob.len);
	user = cJSON_GetObjectItemCaseSensitive(o, "Username");
	secret = cJSON_GetObjectItemCaseSensitive(o, "Secret");
	if (!cJSON_IsObject(o) || !cJSON_IsString(secret) ||
	    (user && !cJSON_IsNull(user) && !cJSON_IsString(user))) {
		log_error("credential helper %s: reply is not "
			  "{\"Username\",\"Secret\"} JSON",
			  prog);
		rc = -EINVAL;
		goto out;
	}
	if (!*secret->valuestring) {
		rc = make_creds(AUTH_CRED_NONE, NULL, NULL, out,
				"credential helper %s (empty secret)", prog);
	} else if (cJSON_IsString(user) &&
		   strcmp(user->valuestring, "<token>") == 0) {
		rc = make_creds(AUTH_CRED_REFRESH_TOKEN, NULL,
				secret->valuestring, out,
				"credential helper %s (identity token)", prog);
	} else {
		rc = make_creds(AUTH_CRED_BASIC,
				cJSON_IsString(user) ? user->valuestring : "",
				secret->valuestring, out,
				"credential helper %s", prog);
	}
out:
	auth_json_free_secret(o);
	buf_release_secret(&ob);
	buf_release_secret(&eb);
	return rc;
}

/* ---- config files ---- */

/*
 * Read a config file into `b` (caller releases it with buf_release_secret).
 * -ENOENT, not logged, if it does not exist; other errors are logged.
 */
static int load_file(const char *path, struct buf *b)
{
	struct stat st;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return -ENOENT;
		rc = -errno;
		log_error("cannot open %s: %s", path, strerror(errno));
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > CONFIG_MAX_SIZE) {
		log_error("%s is not a regular file of at most %d bytes", path,
			  CONFIG_MAX_SIZE);
		rc = -EINVAL;
		goto out;
	}
	rc = buf_grow(b, (size_t)st.st_size + 1);
	while (!rc) {
		ssize_t n;

		if (b->len > (size_t)CONFIG_MAX_SIZE) {
			rc = -EINVAL;
			break;
		}
		rc = buf_grow(b, 4096);
		if (rc)
			break;
		n = read(fd, b->data + b->len, b->cap - b->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			log_error("cannot read %s: %s", path, strerror(errno));
		}
		if (n <= 0)
			break;
		b->len += (size_t)n;
		b->data[b->len] = '\0';
	}
out:
	close(fd);
	return rc;
}

static bool is_hub(const char *host)
{
	return strcasecmp(host, "docker.io") == 0 ||
	       strcasecmp(host, "index.docker.io") == 0 ||
	       strcasecmp(host, "registry-1.docker.io") == 0;
}

/* Reduce a docker config key to its host part (docker's
 * ConvertToHostname): strip http(s)://, cut at the first '/'. */
static size_t key_host(const char *key, const char **start)
{
	if (strncasecmp(key, "https://", 8) == 0)
		key += 8;
	else if (strncasecmp(key, "http://", 7) == 0)
		key += 7;
	*start = key;
	return strcspn(key, "/");
}

static bool host_eq(const char *a, size_t an, const char *host)
{
	if (an != strlen(host))
		return false;
	if (strncasecmp(a, host, an) == 0)
		return true;
	/* All Docker Hub names are one registry. */
	if (is_hub(host)) {
		char tmp[32];

		if (an >= sizeof(tmp))
			return false;
		memcpy(tmp, a, an);
		tmp[an] = '\0';
		return is_hub(tmp);
	}
	return false;
}

static bool key_matches_host(const char *key, const char *host)
{
	const char *h;
	size_t n = key_host(key, &h);

	if (host_eq(h, n, host))
		return true;
	if (is_hub(host)) {
		/* "https://index.docker.io/v1/" reduces to index.docker.io */
		char tmp[32];

		if (n >= sizeof(tmp))
			return false;
		memcpy(tmp, h, n);
		tmp[n] = '\0';
		return is_hub(tmp);
	}
	return false;
}

/*
 * The entry of the object `map` for `host`: an exact key first (for Docker
 * Hub the legacy key), then the first key that reduces to the host.
 */
static const cJSON *find_host_entry(const cJSON *map, const char *host,
				    const char **key_out)
{
	const cJSON *it;

	*key_out = NULL;
	if (!cJSON_IsObject(map))
		return NULL;
	cJSON_ArrayForEach(it, map) {
		if (!it->string)
			continue;
		if (strcasecmp(it->string, host) == 0 ||
		    (is_hub(host) && strcmp(it->string, DOCKER_HUB_KEY) == 0)) {
			*key_out = it->string;
			return it;
		}
	}
	cJSON_ArrayForEach(it, map) {
		if (it->string && key_matches_host(it->string, host)) {
			*key_out = it->string;
			return it;
		}
	}
	return NULL;
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(it) && it->valuestring && *it->valuestring
		       ? it->valuestring
		       : NULL;
}

/*
 * Credentials from one auths entry. 0 with *out NULL when the entry holds
 * none (e.g. the "{}" placeholder docker writes next to a credsStore).
 */
static int parse_entry(const cJSON *e, const char *what, const char *path,
		       const char *key, struct auth_creds **out)
{
	const char *rt = jstr(e, "registrytoken"), *it = jstr(e, "identitytoken");
	const char *a = jstr(e, "auth"), *u = jstr(e, "username"),
		   *p = jstr(e, "password");
	char *dec = NULL, *colon;
	size_t dlen;
	int rc;

	*out = NULL;
	if (!cJSON_IsObject(e)) {
		log_error("%s: entry \"%s\" is not an object", path, key);
		return -EINVAL;
	}
	if (rt)
		return make_creds(AUTH_CRED_REGISTRY_TOKEN, NULL, rt, out,
				  "%s %s (%s \"%s\" registrytoken)", what, path,
				  "auths", key);
	if (a) {
		rc = auth_b64_decode(a, strlen(a), &dec, &dlen);
		colon = rc ? NULL : memchr(dec, ':', dlen);
		if (rc == -ENOMEM)
			return rc;
		if (!colon || memchr(dec, '\0', dlen)) {
			log_error("%s: auths \"%s\": \"auth\" is not base64 of "
				  "user:password",
				  path, key);
			if (dec)
				auth_wipe(dec, dlen);
			free(dec);
			return -EINVAL;
		}
		*colon = '\0';
		u = dec;
		p = colon + 1;
	}
	if (it)
		rc = make_creds(AUTH_CRED_REFRESH_TOKEN, u, it, out,
				"%s %s (auths \"%s\" identitytoken)", what,
				path, key);
	else if (u && p && *p)
		rc = make_creds(AUTH_CRED_BASIC, u, p, out,
				"%s %s (auths \"%s\")", what, path, key);
	else
		rc = 0;
	if (dec) {
		auth_wipe(dec, dlen);
		free(dec);
	}
	return rc;
}

/*
 * docker config.json: the credential helper for the host when `helper` is
 * not NULL and one is configured (credHelpers.<host>, else credsStore),
 * else the auths entry.
 */
static int docker_entry(const cJSON *cfg, const char *path,
			const struct auth_creds_opts *o, char **helper,
			struct auth_creds **out)
{
	const cJSON *e, *store;
	const char *key, *name = NULL;

	if (helper) {
		e = find_host_entry(cJSON_GetObjectItemCaseSensitive(cfg, "credHelpers"),
				    o->host, &key);
		if (cJSON_IsString(e) && *e->valuestring)
			name = e->valuestring;
		store = cJSON_GetObjectItemCaseSensitive(cfg, "credsStore");
		if (!name && cJSON_IsString(store) && *store->valuestring)
			name = store->valuestring;
		if (name) {
			*helper = strdup(name);
			return *helper ? 0 : -ENOMEM;
		}
	}
	e = find_host_entry(cJSON_GetObjectItemCaseSensitive(cfg, "auths"),
			    o->host, &key);
	return e ? parse_entry(e, "docker config", path, key, out) : 0;
}

/* containers auth.json: the longest host/repo prefix, then the host. */
static int containers_entry(const cJSON *cfg, const char *path,
			    const struct auth_creds_opts *o,
			    struct auth_creds **out)
{
	const cJSON *auths, *e;
	const char *key;
	char *cand = NULL;
	int rc = 0;

	auths = cJSON_GetObjectItemCaseSensitive(cfg, "auths");
	if (o->repository && *o->repository && cJSON_IsObject(auths)) {
		char *slash;

		if (asprintf(&cand, "%s/%s", o->host, o->repository) < 0) {
			cand = NULL;
			rc = -ENOMEM;
			goto out;
		}
		/* host/a/b/c, host/a/b, host/a */
		do {
			e = cJSON_GetObjectItemCaseSensitive(auths, cand);
			if (!e && is_hub(o->host)) {
				const char *rest = cand + strlen(o->host);
				char *alt;

				if (asprintf(&alt, "docker.io%s", rest) < 0) {
					rc = -ENOMEM;
					goto out;
				}
				e = cJSON_GetObjectItemCaseSensitive(auths, alt);
				free(alt);
			}
			if (e) {
				rc = parse_entry(e, "containers auth file",
						 path, e->string, out);
				if (rc || *out)
					goto out;
			}
			slash = strrchr(cand, '/');
			if (slash)
				*slash = '\0';
		} while (slash && strlen(cand) > strlen(o->host));
	}
	e = find_host_entry(auths, o->host, &key);
	if (e)
		rc = parse_entry(e, "containers auth file", path, key, out);
out:
	free(cand);
	return rc;
}

int auth_creds_parse_config(enum auth_config_kind kind, const void *data,
			    size_t len, const char *path,
			    const struct auth_creds_opts *o, char **helper,
			    struct auth_creds **out)
{
	cJSON *cfg = NULL;
	int rc;

	*out = NULL;
	if (helper)
		*helper = NULL;
	if (!o || !o->host || !path)
		return -EINVAL;
	if (len > CONFIG_MAX_SIZE) {
		log_error("%s is larger than %d bytes", path, CONFIG_MAX_SIZE);
		return -EINVAL;
	}
	cfg = cJSON_ParseWithLength(data ? data : "", len);
	if (!cJSON_IsObject(cfg)) {
		log_error("%s is not a JSON object", path);
		rc = -EINVAL;
		goto out;
	}
	if (kind == AUTH_CONFIG_DOCKER)
		rc = docker_entry(cfg, path, o, helper, out);
	else
		rc = containers_entry(cfg, path, o, out);
out:
	auth_json_free_secret(cfg);
	return rc;
}

/*
 * Read the config file `path` into `b` (the caller wipes it) and look the
 * host up in it (auth_creds_parse_config). A missing file finds nothing.
 */
static int read_config(enum auth_config_kind kind, const char *path,
		       const struct auth_creds_opts *o, char **helper,
		       struct buf *b, struct auth_creds **out)
{
	int rc = load_file(path, b);

	if (rc == -ENOENT)
		return 0;
	return rc ? rc
		  : auth_creds_parse_config(kind, b->data, b->len, path, o,
					    helper, out);
}

static int try_docker(const struct auth_creds_opts *o, struct auth_creds **out)
{
	const char *dir = getenv("DOCKER_CONFIG"), *home = getenv("HOME");
	struct buf b = BUF_INIT;
	char *path = NULL, *helper = NULL;
	int rc;

	*out = NULL;
	if (dir && *dir)
		rc = asprintf(&path, "%s/config.json", dir);
	else if (home && *home)
		rc = asprintf(&path, "%s/.docker/config.json", home);
	else
		return 0;
	if (rc < 0)
		return -ENOMEM;
	rc = read_config(AUTH_CONFIG_DOCKER, path, o, &helper, &b, out);
	if (rc || !helper)
		goto out;
	rc = auth_creds_from_helper(helper,
				    is_hub(o->host) ? DOCKER_HUB_KEY : o->host,
				    o->helper_timeout_ms, out);
	if (rc || (*out)->kind != AUTH_CRED_NONE)
		goto out;
	log_info("credential helper %s has no credentials for %s", helper,
		 o->host);
	auth_creds_free(*out);
	rc = auth_creds_parse_config(AUTH_CONFIG_DOCKER, b.data, b.len, path, o,
				     NULL, out);
out:
	free(helper);
	buf_release_secret(&b);
	free(path);
	return rc;
}

/* One containers auth.json. */
static int try_auth_json(const char *path, const struct auth_creds_opts *o,
			 struct auth_creds **out)
{
	struct buf b = BUF_INIT;
	int rc;

	*out = NULL;
	rc = read_config(AUTH_CONFIG_CONTAINERS, path, o, NULL, &b, out);
	buf_release_secret(&b);
	return rc;
}

static int try_podman(const struct auth_creds_opts *o, struct auth_creds **out)
{
	const char *raf = getenv("REGISTRY_AUTH_FILE");
	const char *run = getenv("XDG_RUNTIME_DIR");
	const char *cfg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	char *path = NULL;
	int rc;

	*out = NULL;
	if (raf && *raf)
		return try_auth_json(raf, o, out);
	if (run && *run) {
		if (asprintf(&path, "%s/containers/auth.json", run) < 0)
			return -ENOMEM;
		rc = try_auth_json(path, o, out);
		free(path);
		if (rc || *out)
			return rc;
	}
	if (cfg && *cfg)
		rc = asprintf(&path, "%s/containers/auth.json", cfg);
	else if (home && *home)
		rc = asprintf(&path, "%s/.config/containers/auth.json", home);
	else
		return 0;
	if (rc < 0)
		return -ENOMEM;
	rc = try_auth_json(path, o, out);
	free(path);
	return rc;
}

static int try_aad(const struct auth_creds_opts *o, struct auth_creds **out)
{
	char *tok = NULL;
	int rc;

	rc = auth_read_password_file(o->aad_token_file, &tok);
	if (rc)
		return rc;
	rc = make_creds(AUTH_CRED_AAD_TOKEN, NULL, tok, out,
			"aad_token_file %s", o->aad_token_file);
	auth_secret_free(tok);
	if (!rc && o->tenant && *o->tenant) {
		(*out)->tenant = strdup(o->tenant);
		if (!(*out)->tenant) {
			auth_creds_free(*out);
			*out = NULL;
			rc = -ENOMEM;
		}
	}
	return rc;
}

int auth_creds_resolve(const struct auth_creds_opts *o, struct auth_creds **out)
{
	const char *eu = getenv("ACRFS_USERNAME"), *ep;
	int rc;

	*out = NULL;
	ep = o && o->env_taken ? o->env_password : getenv("ACRFS_PASSWORD");
	if (!o || !o->host || !*o->host || strpbrk(o->host, "/ \t")) {
		log_error("credentials: invalid registry host");
		return -EINVAL;
	}
	if (o->aad_token_file && o->username) {
		log_error("-o username and -o aad_token_file exclude each other");
		return -EINVAL;
	}
	if (o->aad_token_file)
		return try_aad(o, out);
	if (o->username) {
		if (!o->password || !*o->password) {
			log_error("-o username=%s needs a password "
				  "(ACRFS_PASSWORD, -o password_file or "
				  "-o password_stdin)",
				  o->username);
			return -EINVAL;
		}
		return make_creds(AUTH_CRED_BASIC, o->username, o->password,
				  out, "-o username");
	}
	if (eu && *eu && ep && *ep)
		return make_creds(AUTH_CRED_BASIC, eu, ep, out,
				  "environment ACRFS_USERNAME/ACRFS_PASSWORD");
	if ((eu && *eu) != (ep && *ep))
		log_warn("ignoring %s: it is only used together with %s",
			 eu && *eu ? "ACRFS_USERNAME" : "ACRFS_PASSWORD",
			 eu && *eu ? "ACRFS_PASSWORD" : "ACRFS_USERNAME");
	rc = try_docker(o, out);
	if (rc || *out)
		return rc;
	rc = try_podman(o, out);
	if (rc || *out)
		return rc;
	return make_creds(AUTH_CRED_NONE, NULL, NULL, out, "anonymous");
}
