#include "fs/opts.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fs/prefetch.h"

static const char usage[] =
	"usage: acrfs [options] REGISTRY MOUNTPOINT\n"
	"\n"
	"Mount a container registry (Azure Container Registry or any OCI / Docker v2\n"
	"registry) as a file system: repositories are directories, tags are their\n"
	"subdirectories.\n"
	"\n"
	"REGISTRY is host[:port] (HTTPS), https://host[:port], or http://host[:port]\n"
	"(plain HTTP, for loopback registries).\n"
	"\n"
	"options:\n"
	"    -h, --help             print this help and exit\n"
	"    -V, --version          print the version, and those of the libraries in\n"
	"                           use, and exit\n"
	"    -f                     stay in the foreground, log to stderr; on a\n"
	"                           terminal, a layer load taking longer than a\n"
	"                           second shows a progress line (default: run in\n"
	"                           the background once the mount is live, log to\n"
	"                           syslog)\n"
	"    -d, --debug            debug logging (secrets are never logged)\n"
	"    -o ttl=SECONDS         dirent cache lifetime for catalog pages, tag lists\n"
	"                           and negative lookups; 0 asks the registry every\n"
	"                           time (default: 60)\n"
	"    -o timeout=SECONDS     deadline of one registry request, retries included:\n"
	"                           past it the operation fails (\"Connection timed\n"
	"                           out\"); a blob download must start within it and\n"
	"                           may then take as long as bytes keep coming (at\n"
	"                           least 1 KiB/s) (default: 30)\n"
	"    -o prefetch=N          when a walk (find, ls -R, grep -r, a glob) goes\n"
	"                           through a directory's entries in order, fetch\n"
	"                           tag lists, manifests and small layers of up to\n"
	"                           N entries ahead of it, 8 requests at a time; 0:\n"
	"                           never (default: 32; none with ttl=0)\n"
	"    -o acr=auto|on|off     use Azure Container Registry's own API (/acr/v1):\n"
	"                           tag times, digests and locks in listings, untag,\n"
	"                           repository delete; auto: for *.azurecr.io and\n"
	"                           any registry answering /acr/v1 (one probe at\n"
	"                           mount) (default: auto)\n"
	"    -o ca_file=PATH        extra CA certificate(s) (PEM) trusted for TLS, in\n"
	"                           addition to the system's (default: none)\n"
	"    -o ro                  read-only: refuse every change (default: off)\n"
	"    -o username=NAME       log in as NAME; the password comes from\n"
	"                           $ACRFS_PASSWORD, password_file= or password_stdin\n"
	"                           (a password on the command line is refused)\n"
	"    -o password_file=PATH  read the password from the first line of PATH;\n"
	"                           refused if group or others may read PATH\n"
	"    -o password_stdin      read the password from standard input\n"
	"    -o docker_config=DIR   docker's configuration directory: credentials\n"
	"                           from DIR/config.json, as with $DOCKER_CONFIG\n"
	"                           (for fstab and services, whose environment is\n"
	"                           not passed on); refused if group or others may\n"
	"                           read DIR/config.json\n"
	"    -o aad_token_file=PATH Azure AD access token to exchange for an ACR\n"
	"                           refresh token (default: none)\n"
	"    -o tenant=ID           Azure AD tenant for aad_token_file (default: none)\n"
	"    -o cache_dir=DIR       persistent cache (default: $XDG_CACHE_HOME/acrfs,\n"
	"                           else ~/.cache/acrfs)\n"
	"    -o cache_max=SIZE      bound on blob bytes kept in cache_dir, with K/M/G\n"
	"                           suffixes (default: 4G)\n"
	"    -o index_max=SIZE      bound on the index and rootfs files kept in\n"
	"                           cache_dir, least recently used evicted first\n"
	"                           (default: 1G; 0 keeps none)\n"
	"    -o mem_max=SIZE        bound on the memory image trees, layer indexes\n"
	"                           and cached listings take; the least recently\n"
	"                           used are dropped and rebuilt when needed (trees\n"
	"                           from cache_dir's index files) (default: 512M;\n"
	"                           0 = no bound)\n"
	"    -o threads=N           most FUSE worker threads (default: 16)\n"
	"    -o allow_other         let other users see the mount; implies\n"
	"                           default_permissions (needs user_allow_other in\n"
	"                           /etc/fuse.conf unless root)\n"
	"    -o OPT[,OPT...]        other FUSE mount options (default_permissions,\n"
	"                           fsname=, max_read=, ...); fstab-only options\n"
	"                           (_netdev, nofail, noauto, x-systemd.*, ...) are\n"
	"                           ignored, and the mount is always nosuid,nodev\n"
	"\n"
	"credentials, first match wins (see docs/auth.md):\n"
	"    0. -o aad_token_file=PATH: an Azure AD token, exchanged for an ACR\n"
	"       refresh token (not with -o username)\n"
	"    1. -o username=NAME with $ACRFS_PASSWORD, password_file= or password_stdin\n"
	"    2. $ACRFS_USERNAME and $ACRFS_PASSWORD\n"
	"    3. docker's config (DIR/config.json of -o docker_config=DIR, else\n"
	"       $DOCKER_CONFIG/config.json, else ~/.docker/config.json): credHelpers,\n"
	"       credsStore, then auths (auth, username/password, identitytoken,\n"
	"       registrytoken)\n"
	"    4. podman's auth.json ($REGISTRY_AUTH_FILE,\n"
	"       $XDG_RUNTIME_DIR/containers/auth.json,\n"
	"       $XDG_CONFIG_HOME/containers/auth.json)\n"
	"    5. anonymous\n"
	"\n"
	"MOUNTPOINT/.acrfs/ (not listed; read-only): status (JSON), loads (layer\n"
	"loads in progress: watch cat MOUNTPOINT/.acrfs/loads), errors (the last 100).\n"
	"\n"
	"exit status: 0 mounted (with -f: unmounted cleanly), or --help / --version;\n"
	"1 the mount failed (registry, credentials, mount point, FUSE) or ended with\n"
	"an error; 2 usage error (bad option or argument).\n"
	"\n"
	"unmount with: fusermount3 -u MOUNTPOINT (as root: umount MOUNTPOINT)\n"
	"manual: man acrfs\n";

void opts_usage(FILE *f)
{
	fputs(usage, f);
}

static int fail(struct buf *err, const char *fmt, const char *arg)
{
	buf_reset(err);
	buf_addf(err, fmt, arg);
	return -EINVAL;
}

/* A whole decimal number in [min, max] (nothing else in `s`). */
static bool parse_long(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || s[0] == '-')
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': v <<= 10; end++; break;
	case 'm': case 'M': v <<= 20; end++; break;
	case 'g': case 'G': v <<= 30; end++; break;
	case 't': case 'T': v <<= 40; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'B')
		end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
	if (*end)
		return -EINVAL;
	*out = v;
	return 0;
}

static int set_str(char **dst, const char *v, struct buf *err, const char *name)
{
	if (!*v)
		return fail(err, "option %s needs a value", name);
	free(*dst);
	*dst = strdup(v);
	return *dst ? 0 : -ENOMEM;
}

/*
 * Options for mount(8), mount.fuse3 or systemd that may reach us from an
 * fstab line or a mount unit (mount.fuse3 removes most of them, not all
 * helpers do): accepted and ignored.
 */
static bool fstab_only(const char *key, const char *v)
{
	static const char *const flags[] = { "_netdev", "nofail", "noauto", "auto",
					     "defaults", "user",    "users",  "nouser",
					     "owner",	 "group",   "drop_privileges" };
	size_t i;

	if (!strncmp(key, "x-", 2) || !strcmp(key, "comment") || !strcmp(key, "setuid"))
		return true;
	for (i = 0; !v && i < sizeof(flags) / sizeof(flags[0]); i++)
		if (!strcmp(key, flags[i]))
			return true;
	return false;
}

/* One -o item. Unknown items are appended to `fuse` for libfuse to judge. */
static int one_opt(struct acrfs_opts *o, const char *item, struct buf *fuse, struct buf *err)
{
	const char *eq = strchr(item, '=');
	size_t klen = eq ? (size_t)(eq - item) : strlen(item);
	const char *v = eq ? eq + 1 : NULL;
	char key[64];

	if (!*item)
		return 0;
	if (klen >= sizeof(key))
		return fail(err, "unknown option %.60s", item);
	memcpy(key, item, klen);
	key[klen] = '\0';
#define IS(k) (strcmp(key, k) == 0)
#define IS_V(x) (strcmp(v, x) == 0)
#define NEEDV()                                                      \
	do {                                                         \
		if (!v)                                              \
			return fail(err, "option %s needs a value", key); \
	} while (0)
	if (IS("ttl")) {
		NEEDV();
		if (!parse_long(v, 0, 86400 * 365, &o->ttl))
			return fail(err, "ttl=%s: expected a number of seconds", v);
		return 0;
	}
	if (IS("timeout")) {
		NEEDV();
		if (!parse_long(v, 1, 3600, &o->timeout))
			return fail(err, "timeout=%s: expected 1..3600 seconds", v);
		return 0;
	}
	if (IS("prefetch")) {
		NEEDV();
		if (!parse_long(v, 0, 1024, &o->prefetch))
			return fail(err, "prefetch=%s: expected 0..1024 entries", v);
		return 0;
	}
	if (IS("acr")) {
		NEEDV();
		if (IS_V("auto"))
			o->acr = REGISTRY_ACR_AUTO;
		else if (IS_V("on"))
			o->acr = REGISTRY_ACR_ON;
		else if (IS_V("off"))
			o->acr = REGISTRY_ACR_OFF;
		else
			return fail(err, "acr=%s: expected auto, on or off", v);
		return 0;
	}
	if (IS("password") || IS("pass") || IS("secret"))
		return fail(err,
			    "refusing -o %s=…: a password on the command line is visible to every "
			    "user in /proc; use $ACRFS_PASSWORD, -o password_file=PATH or "
			    "-o password_stdin", key);
	if (IS("ca_file")) {
		NEEDV();
		return set_str(&o->ca_file, v, err, key);
	}
	if (IS("username")) {
		NEEDV();
		return set_str(&o->username, v, err, key);
	}
	if (IS("password_file")) {
		NEEDV();
		return set_str(&o->password_file, v, err, key);
	}
	if (IS("password_stdin") && !v) {
		o->password_stdin = true;
		return 0;
	}
	if (IS("docker_config")) {
		NEEDV();
		return set_str(&o->docker_config, v, err, key);
	}
	if (IS("aad_token_file")) {
		NEEDV();
		return set_str(&o->aad_token_file, v, err, key);
	}
	if (IS("tenant")) {
		NEEDV();
		return set_str(&o->tenant, v, err, key);
	}
	if (IS("cache_dir")) {
		NEEDV();
		return set_str(&o->cache_dir, v, err, key);
	}
	if (IS("cache_max")) {
		NEEDV();
		if (parse_size(v, &o->cache_max))
			return fail(err, "cache_max=%s: expected a size like 512M or 4G", v);
		return 0;
	}
	if (IS("index_max")) {
		NEEDV();
		if (parse_size(v, &o->index_max))
			return fail(err, "index_max=%s: expected a size like 256M or 1G", v);
		return 0;
	}
	if (IS("mem_max")) {
		NEEDV();
		if (parse_size(v, &o->mem_max))
			return fail(err, "mem_max=%s: expected a size like 512M or 2G", v);
		return 0;
	}
	if (IS("threads")) {
		long n;

		NEEDV();
		if (!parse_long(v, 1, 256, &n))
			return fail(err, "threads=%s: expected 1..256", v);
		o->threads = (unsigned)n;
		return 0;
	}
	if (IS("ro") && !v) {
		o->ro = true; /* reaches FUSE once, at the end: a later rw wins */
		return 0;
	}
	if (IS("rw") && !v) {
		o->ro = false;
		return 0;
	}
	/* Images hold setuid files and device nodes: never honoured. */
	if ((IS("suid") || IS("dev") || IS("nosuid") || IS("nodev")) && !v)
		return 0;
	if (fstab_only(key, v))
		return 0;
	if (IS("fsname"))
		o->has_fsname = true;
	if (IS("subtype"))
		o->has_subtype = true;
	if (IS("allow_other") && !v)
		o->allow_other = true;
#undef IS
#undef IS_V
#undef NEEDV
	if (fuse->len && buf_addch(fuse, ','))
		return -ENOMEM;
	return buf_adds(fuse, item);
}

/* fsname=<REGISTRY> and subtype=acrfs unless given: mount(8) and df show
 * the registry, type fuse.acrfs. FUSE reads '\\' and ',' in fsname escaped. */
static int add_names(const struct acrfs_opts *o, struct buf *fuse)
{
	const char *p;
	int rc = 0;

	if (!o->has_subtype)
		rc = buf_adds(fuse, fuse->len ? ",subtype=acrfs" : "subtype=acrfs");
	if (rc || o->has_fsname || !o->registry)
		return rc;
	rc = buf_adds(fuse, fuse->len ? ",fsname=" : "fsname=");
	for (p = o->registry; *p && !rc; p++) {
		if (*p == ',' || *p == '\\')
			rc = buf_addch(fuse, '\\');
		if (!rc)
			rc = buf_addch(fuse, *p);
	}
	return rc;
}

static int split_opts(struct acrfs_opts *o, const char *list, struct buf *fuse, struct buf *err)
{
	char *copy = strdup(list), *p, *save = NULL;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (p = strtok_r(copy, ",", &save); p && !rc; p = strtok_r(NULL, ",", &save))
		rc = one_opt(o, p, fuse, err);
	free(copy);
	return rc;
}

int opts_parse(int argc, const char *const argv[], struct acrfs_opts *o, struct buf *err)
{
	struct buf fuse = BUF_INIT;
	int i, rc = 0, npos = 0;

	memset(o, 0, sizeof(*o));
	o->ttl = 60;
	o->timeout = 30;
	o->prefetch = PREFETCH_WINDOW_DEFAULT;
	o->threads = 16;
	o->cache_max = 4ull << 30;
	o->index_max = 1ull << 30;
	o->mem_max = ACRFS_MEM_MAX_DEFAULT;
	for (i = 1; i < argc && !rc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			o->help = true;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			o->version = true;
		} else if (strcmp(a, "-f") == 0) {
			o->foreground = true;
		} else if (strcmp(a, "-d") == 0 || strcmp(a, "--debug") == 0) {
			o->debug = true;
		} else if (strcmp(a, "-o") == 0) {
			if (i + 1 >= argc) {
				rc = fail(err, "%s needs an argument", a);
				break;
			}
			rc = split_opts(o, argv[++i], &fuse, err);
		} else if (strncmp(a, "-o", 2) == 0) {
			rc = split_opts(o, a + 2, &fuse, err);
		} else if (strcmp(a, "--") == 0) {
			for (i++; i < argc && !rc; i++, npos++) {
				if (npos == 0)
					rc = set_str(&o->registry, argv[i], err, "REGISTRY");
				else if (npos == 1)
					rc = set_str(&o->mountpoint, argv[i], err, "MOUNTPOINT");
				else
					rc = fail(err, "unexpected argument %s", argv[i]);
			}
			break;
		} else if (a[0] == '-' && a[1]) {
			rc = fail(err, "unknown option %s (see --help)", a);
		} else if (npos == 0) {
			rc = set_str(&o->registry, a, err, "REGISTRY");
			npos++;
		} else if (npos == 1) {
			rc = set_str(&o->mountpoint, a, err, "MOUNTPOINT");
			npos++;
		} else {
			rc = fail(err, "unexpected argument %s", a);
		}
	}
	if (!rc && !o->help && !o->version && npos < 2)
		rc = fail(err, "%s", "expected REGISTRY and MOUNTPOINT (see --help)");
	if (!rc && o->password_stdin && o->password_file)
		rc = fail(err, "%s", "password_file and password_stdin are exclusive");
	if (!rc && o->allow_other && !strstr(buf_cstr(&fuse), "default_permissions"))
		rc = buf_adds(&fuse, ",default_permissions");
	if (!rc && o->ro)
		rc = buf_adds(&fuse, fuse.len ? ",ro" : "ro");
	if (!rc && !o->help && !o->version)
		rc = add_names(o, &fuse);
	if (!rc)
		rc = buf_adds(&fuse, fuse.len ? ",nosuid,nodev" : "nosuid,nodev");
	if (!rc)
		rc = strvec_push(&o->fuse_argv, "acrfs");
	if (!rc && fuse.len) {
		rc = strvec_push(&o->fuse_argv, "-o");
		if (!rc)
			rc = strvec_push(&o->fuse_argv, fuse.data);
	}
	buf_release(&fuse);
	if (rc) {
		if (rc == -ENOMEM && !err->len)
			buf_adds(err, "out of memory");
		opts_free(o);
	}
	return rc;
}

void opts_free(struct acrfs_opts *o)
{
	free(o->registry);
	free(o->mountpoint);
	free(o->ca_file);
	free(o->username);
	free(o->password_file);
	free(o->aad_token_file);
	free(o->docker_config);
	free(o->tenant);
	free(o->cache_dir);
	strvec_clear(&o->fuse_argv);
	memset(o, 0, sizeof(*o));
	o->ttl = 60;
	o->timeout = 30;
	o->prefetch = PREFETCH_WINDOW_DEFAULT;
}
