/*
 * creds — where the registry credentials come from.
 *
 * auth_creds_resolve() walks the sources in this order; the first that
 * yields credentials for the registry host wins:
 *   0. -o aad_token_file=PATH (AAD access token; optional tenant): AAD_TOKEN;
 *   a. -o username=NAME with the password the option parser read from
 *      ACRFS_PASSWORD, -o password_file or -o password_stdin: BASIC;
 *   b. environment ACRFS_USERNAME + ACRFS_PASSWORD (both set): BASIC;
 *   c. docker: $DOCKER_CONFIG/config.json, else $HOME/.docker/config.json:
 *      credHelpers.<host>, else credsStore, run as
 *      `docker-credential-<name> get` (see auth_creds_from_helper(); a
 *      "credentials not found" answer falls through to the next step),
 *      then auths.<host>: registrytoken (REGISTRY_TOKEN) > identitytoken
 *      (REFRESH_TOKEN) > auth (base64 user:pass) > username/password;
 *   d. containers auth.json: $REGISTRY_AUTH_FILE if set (only that file),
 *      else ${XDG_RUNTIME_DIR}/containers/auth.json, then
 *      ${XDG_CONFIG_HOME:-$HOME/.config}/containers/auth.json; the same
 *      entry format; keys may be host/namespace[/repo], the longest prefix
 *      of host/repository wins, then the host alone;
 *   e. anonymous: kind NONE.
 * A missing file is skipped; an unreadable or malformed one is an error
 * (as for docker), logged with its path.
 *
 * Host keys match as docker does: a key equals the host exactly (hosts
 * compared case-insensitively), else a key that is a URL
 * ("https://host[:port]/v1/", "http://host:port") reduced to its host part
 * equals it. Exact matches beat reduced ones. docker.io, index.docker.io
 * and registry-1.docker.io are one registry whose legacy key is
 * "https://index.docker.io/v1/" (also what its credential helper is asked).
 *
 * ACR rule: the username 00000000-0000-0000-0000-000000000000 with a
 * password means the password is an ACR refresh token (kind REFRESH_TOKEN),
 * whatever source it came from.
 *
 * Every secret read is registered with log_secret(); `source` never holds
 * one. Functions here read files and may run a helper process: they block
 * (a helper at most its timeout). They are thread-safe except that they
 * read the environment (don't setenv concurrently).
 */
#ifndef ACRFS_AUTH_CREDS_H
#define ACRFS_AUTH_CREDS_H

#include <stdbool.h>
#include <stdio.h>

#define AUTH_ACR_NULL_GUID "00000000-0000-0000-0000-000000000000"
/* Helper run bound: wall time and bytes per output stream. */
#define AUTH_HELPER_TIMEOUT_MS 10000
#define AUTH_HELPER_MAX_OUTPUT 65536
/* Longest password / token line accepted from a file or stream. */
#define AUTH_SECRET_MAX_LEN 65536

enum auth_cred_kind {
	AUTH_CRED_NONE = 0, /* anonymous */
	AUTH_CRED_BASIC, /* username + password */
	AUTH_CRED_REFRESH_TOKEN, /* identity / ACR refresh token */
	AUTH_CRED_REGISTRY_TOKEN, /* bearer token used as is */
	AUTH_CRED_AAD_TOKEN, /* AAD access token for /oauth2/exchange */
};

/* Resolved credentials. Owned by the caller; free with auth_creds_free(). */
struct auth_creds {
	enum auth_cred_kind kind;
	char *username; /* BASIC: the user; REFRESH_TOKEN: as stored, may be
			   NULL; otherwise NULL */
	char *secret; /* password or token; NULL for NONE */
	char *tenant; /* AAD_TOKEN: optional tenant id, else NULL */
	char *source; /* for logs, e.g. "docker config /root/.docker/
			 config.json (auths \"x.azurecr.io\")"; never NULL */
};

struct auth_creds_opts {
	const char *host; /* registry host[:port], e.g. "x.azurecr.io" */
	const char *repository; /* optional: podman host/namespace keys */
	const char *username; /* -o username, or NULL */
	const char *password; /* read by the option parser, or NULL */
	const char *aad_token_file; /* -o aad_token_file, or NULL */
	const char *tenant; /* -o tenant, or NULL */
	int helper_timeout_ms; /* 0: AUTH_HELPER_TIMEOUT_MS */
	/* env_taken: the caller took $ACRFS_PASSWORD out of the environment
	   (so that no child sees it) and passes its value (NULL: it was not
	   set); otherwise it is read from the environment. */
	bool env_taken;
	const char *env_password;
};

/*
 * Resolve credentials for opts->host. On success *out is non-NULL (kind
 * NONE for anonymous). Errors (each logged once with its context):
 * -EINVAL (username without password, username together with
 * aad_token_file, malformed config or entry), -ENOENT (credential helper
 * not installed, aad_token_file missing), -ETIMEDOUT (helper hung), -EIO
 * (helper failed), -EACCES (config unreadable), -ENOMEM.
 */
int auth_creds_resolve(const struct auth_creds_opts *opts,
		       struct auth_creds **out);

/* Wipe the secrets and free. NULL is fine. */
void auth_creds_free(struct auth_creds *c);

/* "none", "basic", "refresh-token", "registry-token", "aad-token". */
const char *auth_cred_kind_name(enum auth_cred_kind kind);

/* The two config file formats of steps c and d above. */
enum auth_config_kind {
	AUTH_CONFIG_DOCKER,     /* docker config.json */
	AUTH_CONFIG_CONTAINERS, /* containers (podman) auth.json */
};

/*
 * Steps c (AUTH_CONFIG_DOCKER) and d (AUTH_CONFIG_CONTAINERS) of
 * auth_creds_resolve() for one file's bytes `data`/`len` (untrusted; not
 * retained), without reading or running anything: `path` only names the
 * file in log lines and in the result's source. opts->host is required,
 * opts->repository is used by AUTH_CONFIG_CONTAINERS; other fields are
 * ignored.
 * *out = the credentials of the matching auths entry (caller frees), or
 * NULL when the file has none for the host.
 * `helper` (docker only; NULL: ignore helpers): when the file names a
 * credential helper for the host (credHelpers.<host>, else credsStore),
 * *helper = its name (caller frees) and the auths are not read (*out NULL):
 * run it with auth_creds_from_helper() and, if it has nothing, call again
 * with helper = NULL. Otherwise *helper = NULL.
 * Returns 0, -EINVAL (over 4 MiB, not a JSON object, a malformed entry;
 * logged with `path`), -ENOMEM. Never blocks; thread-safe.
 */
int auth_creds_parse_config(enum auth_config_kind kind, const void *data,
			    size_t len, const char *path,
			    const struct auth_creds_opts *opts, char **helper,
			    struct auth_creds **out);

/*
 * Run `docker-credential-<helper> get` (found on PATH; no shell, nothing
 * secret in argv, and an environment without ACRFS_PASSWORD) with
 * server_url on stdin, in its own process group,
 * killed after timeout_ms (0: default) and always reaped. Output over
 * AUTH_HELPER_MAX_OUTPUT is an error. On success *out has kind BASIC,
 * REFRESH_TOKEN (Username "<token>" or the ACR null GUID) or NONE
 * ("credentials not found", or an empty Secret). Errors: -EINVAL (bad
 * helper name, unparsable reply), -ENOENT (helper not on PATH), -ETIMEDOUT,
 * -EIO (other failure), -E2BIG, -ENOMEM. Blocks.
 */
int auth_creds_from_helper(const char *helper, const char *server_url,
			   int timeout_ms, struct auth_creds **out);

/*
 * Read a password from the file's first line (the trailing "\n" or "\r\n"
 * removed). Regular files readable by group or others get a warning (not
 * refused: the user may have reasons); FIFOs such as /dev/fd/N work too.
 * *out: caller frees with auth_secret_free(). 0, -EINVAL (empty line),
 * -E2BIG (line over AUTH_SECRET_MAX_LEN), -EISDIR, -errno of open/read,
 * -ENOMEM. Blocks on the read.
 */
int auth_read_password_file(const char *path, char **out);

/* Same from a stream (e.g. stdin): reads the first line only. */
int auth_read_password_stream(FILE *f, char **out);

#endif
