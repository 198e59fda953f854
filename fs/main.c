/*
 * acrfs main: parse the command line, check the registry, mount, serve.
 *
 * Order matters: the command line, FUSE's options included, is checked
 * first (a usage error exits 2 before anything is contacted); the start-up
 * check runs before the mount so a bad registry leaves nothing mounted; the
 * mount happens before daemonising so the parent returns only once the
 * mount is live; worker threads start only after the fork.
 *
 * Exit status (README, acrfs(1)): 0 mounted (with -f: unmounted cleanly),
 * --help, --version; 1 the mount failed or ended with an error; 2 usage.
 */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fuse_lowlevel.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <openssl/crypto.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "auth/creds.h"
#include "auth/util.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/reclaim.h"
#include "fs/dcache.h"
#include "fs/itable.h"
#include "fs/listing.h"
#include "fs/ll.h"
#include "fs/ll_acr.h"
#include "fs/ns.h"
#include "fs/prefetch.h"
#include "fs/opts.h"
#include "image/budget.h"
#include "image/pcache.h"
#include "fs/view.h"
#include "registry/registry.h"

static int src_catalog(void *ctx, struct strvec *repos)
{
	return registry_catalog(ctx, repos);
}

static int src_tags(void *ctx, const char *repo, struct strvec *tags)
{
	return registry_tags(ctx, repo, tags);
}

/* ns_source.tag_probe: the tag's manifest answers, through the view cache
 * (a walk into the tag needs it next; single-flight with the readahead). */
static int src_tag_probe(void *ctx, const char *repo, const char *tag)
{
	struct acrfs *fs = ctx;
	struct vobj *o;

	return views_tag(fs->views, repo, tag, &o);
}

/*
 * A file of credentials named on the command line must be the user's alone:
 * one that group or others may read or write is refused (like s3fs's
 * passwd_file or ssh's keys), with the command that fixes it. FIFOs such as
 * /dev/fd/N pass. 0, or -errno after saying why on stderr.
 */
static int check_private(const char *opt, const char *path)
{
	struct stat st;
	int rc;

	if (stat(path, &st)) {
		rc = -errno;
		fprintf(stderr, "acrfs: %s: %s: %s\n", opt, path, strerror(-rc));
		return rc;
	}
	if (S_ISREG(st.st_mode) && (st.st_mode & 066)) {
		fprintf(stderr, "acrfs: %s: %s may be read by group or others (mode %04o): "
				"refused; chmod 600 %s\n",
			opt, path, (unsigned)(st.st_mode & 07777), path);
		return -EACCES;
	}
	return 0;
}

/*
 * Take $ACRFS_PASSWORD out of the environment before anything runs a child
 * (a credential helper, fusermount3): the value is copied (registered with
 * the logger as a secret), its bytes in the original environment block are
 * overwritten (so /proc/PID/environ no longer shows it) and the variable is
 * unset. Returns the copy (caller frees with auth_secret_free) or NULL.
 */
static char *take_env_password(void)
{
	static const char name[] = "ACRFS_PASSWORD=";
	char *copy = NULL;

	for (char **e = environ; e && *e; e++) {
		if (strncmp(*e, name, sizeof(name) - 1) != 0)
			continue;
		if (!copy && (*e)[sizeof(name) - 1]) {
			copy = strdup(*e + sizeof(name) - 1);
			if (copy)
				log_secret(copy);
		}
		auth_wipe(*e + sizeof(name) - 1, strlen(*e + sizeof(name) - 1));
	}
	unsetenv("ACRFS_PASSWORD");
	return copy;
}

/*
 * The credentials for `host` (host[:port] as given): -o username with its
 * password from -o password_file, -o password_stdin or $ACRFS_PASSWORD
 * (`env`: taken out of the environment by take_env_password), then the
 * chain of auth_creds_resolve(). Logs the source that won at info level
 * (never the secret). 0, or -errno after saying why on stderr / the log.
 */
static int resolve_creds(const struct acrfs_opts *o, const char *host, const char *env,
			 struct auth_creds **out)
{
	struct auth_creds_opts co = { 0 };
	const char *from = NULL;
	char *pw = NULL, *src;
	int rc = 0;

	*out = NULL;
	if (o->docker_config) {
		/* What $DOCKER_CONFIG would say; mount(8) does not pass it on. */
		char *cfg = NULL;

		if (asprintf(&cfg, "%s/config.json", o->docker_config) < 0)
			return -ENOMEM;
		rc = check_private("docker_config", cfg);
		free(cfg);
		if (rc)
			return rc;
		if (setenv("DOCKER_CONFIG", o->docker_config, 1))
			return -errno;
	}
	if (o->password_file) {
		rc = check_private("password_file", o->password_file);
		if (rc)
			return rc;
	}
	if ((o->password_file || o->password_stdin) && !o->username) {
		fprintf(stderr, "acrfs: -o %s needs -o username=NAME\n",
			o->password_file ? "password_file" : "password_stdin");
		return -EINVAL;
	}
	if (o->username && o->password_file) {
		from = "password_file";
		rc = auth_read_password_file(o->password_file, &pw); /* logs why */
	} else if (o->username && o->password_stdin) {
		from = "standard input";
		rc = auth_read_password_stream(stdin, &pw);
		if (rc)
			fprintf(stderr, "acrfs: -o password_stdin: no password on standard input "
					"(%s)\n", strerror(-rc));
	} else if (o->username && env && *env) {
		from = "$ACRFS_PASSWORD";
		rc = auth_strdup(env, &pw);
	}
	if (rc)
		return rc;
	co.host = host;
	co.username = o->username;
	co.password = pw;
	co.aad_token_file = o->aad_token_file;
	co.tenant = o->tenant;
	co.env_password = env;
	co.env_taken = true;
	rc = auth_creds_resolve(&co, out); /* logs why */
	auth_secret_free(pw);
	if (rc)
		return rc;
	if (from && asprintf(&src, "-o username, password from %s", from) >= 0) {
		free((*out)->source);
		(*out)->source = src;
	}
	/* (kind) last: the log redacts whatever follows "basic ". */
	if ((*out)->kind == AUTH_CRED_NONE)
		log_info("no credentials for %s: anonymous access", host);
	else
		log_info("credentials for %s from %s (%s)", host, (*out)->source,
			 auth_cred_kind_name((*out)->kind));
	return 0;
}

/* acrfs --version: ours, then every library's as linked at run time. */
static void print_version(void)
{
	const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

	printf("acrfs %s\n", ACRFS_VERSION);
	printf("libfuse %s (API %d)\n", fuse_pkgversion(), FUSE_USE_VERSION);
	printf("libcurl %s (%s)\n", cv->version, cv->ssl_version ? cv->ssl_version : "no TLS");
	printf("OpenSSL %s\n", OpenSSL_version(OPENSSL_VERSION_STRING));
	printf("zlib %s\n", zlibVersion());
	printf("zstd %s\n", ZSTD_versionString());
	printf("cJSON %s\n", cJSON_Version());
}

/* mount.fuse3 -o drop_privileges hands over an open /dev/fuse as /dev/fd/N. */
static bool is_fd_mountpoint(const char *mp)
{
	const char *p = mp + strlen("/dev/fd/");

	if (strncmp(mp, "/dev/fd/", strlen("/dev/fd/")) || !*p)
		return false;
	return strspn(p, "0123456789") == strlen(p);
}

/*
 * Buffers of 4 MiB or more get mappings of their own, returned to the
 * system when freed. glibc's default threshold rises to 32 MiB after the
 * first such buffer is freed; from then on the transient buffers of layer
 * loads (serialised entries, index files, tree regions) are carved from the
 * threads' arenas, whose freed pieces stay resident between live ones: the
 * memory step of bench/wan.sh with -o mem_max=64M peaked at 141 MiB RSS
 * that way, 104 MiB with this bound. Not lower: at 1 MiB the buffers a
 * read of a file allocates are mapped and faulted in at every read (cat of
 * a 110 MB file 282 -> 204 MB/s; 268 MB/s at 4 MiB, within the noise).
 * And an arena per thread (up to MALLOC_ARENAS): glibc's default, 8 per
 * core, has the ~30 threads of a walk with readahead (FUSE workers, 16
 * prefetch workers, loaders) share arenas, where a load's transient pieces
 * interleave with another thread's long-lived ones and cannot go back when
 * freed: the same memory step with 16 workers peaked at 110-146 MiB with
 * the default, 132-144 MiB with one arena, 106-107 MiB with 64.
 * MALLOC_MMAP_THRESHOLD_ / MALLOC_ARENA_MAX set in the environment win.
 */
#define MALLOC_ARENAS 64
static void malloc_tune(void)
{
#ifdef __GLIBC__
	if (!getenv("MALLOC_MMAP_THRESHOLD_"))
		(void)mallopt(M_MMAP_THRESHOLD, 4 << 20);
	if (!getenv("MALLOC_ARENA_MAX"))
		(void)mallopt(M_ARENA_MAX, MALLOC_ARENAS);
#endif
}

int main(int argc, char *argv[])
{
	struct acrfs_opts o;
	struct buf err = BUF_INIT;
	struct acrfs fs = { 0 };
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *loop = NULL;
	struct registry_opts ro = { 0 };
	struct ns_source src = { 0 };
	struct auth_creds *creds = NULL;
	char *url = NULL, *host = NULL, *env_pw;
	struct stat st;
	int rc, ret = 1;

	malloc_tune();
	env_pw = take_env_password();
	rc = opts_parse(argc, (const char *const *)argv, &o, &err);
	if (rc) {
		fprintf(stderr, "acrfs: %s\n", buf_cstr(&err));
		buf_release(&err);
		auth_secret_free(env_pw);
		return 2;
	}
	if (o.help) {
		opts_usage(stdout);
		ret = 0;
		goto out_opts;
	}
	if (o.version) {
		print_version();
		ret = 0;
		goto out_opts;
	}
	log_init(o.debug ? LOG_LVL_DEBUG : LOG_LVL_INFO, false);
	acrfs_status_init(&fs); /* .acrfs/errors sees every failure from now on */
	if (registry_url_parse(o.registry, &url, &host)) {
		fprintf(stderr, "acrfs: %s: not a registry address (expected host[:port], "
				"https://host[:port] or http://host[:port])\n", o.registry);
		ret = 2;
		goto out_opts;
	}
	/* FUSE judges the options acrfs passes on: a bad one is a usage error
	 * (libfuse names it on stderr), found before anything is contacted. */
	for (size_t i = 0; i < o.fuse_argv.n; i++)
		if (fuse_opt_add_arg(&args, o.fuse_argv.v[i])) {
			fprintf(stderr, "acrfs: out of memory\n");
			goto out_opts;
		}
	fs.se = fuse_session_new(&args, acrfs_ll_ops(), sizeof(struct fuse_lowlevel_ops), &fs);
	if (!fs.se) {
		ret = 2;
		goto out_opts;
	}
	if (is_fd_mountpoint(o.mountpoint)) {
		log_warn("%s: mounted by mount.fuse3 (drop_privileges), which chose the mount "
			 "flags: keep nosuid,nodev in the mount options, acrfs cannot add them",
			 o.mountpoint);
	} else {
		rc = stat(o.mountpoint, &st) ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
		if (rc) {
			fprintf(stderr, "acrfs: mount point %s: %s\n", o.mountpoint, strerror(rc));
			goto out_se;
		}
	}
	rc = resolve_creds(&o, host, env_pw, &creds);
	auth_secret_free(env_pw);
	env_pw = NULL;
	if (rc)
		goto out_se;
	fs.identity = strdup(creds->source);
	fs.identity_kind = auth_cred_kind_name(creds->kind);
	if (creds->kind == AUTH_CRED_BASIC && creds->username)
		fs.username = strdup(creds->username);
	ro.url = url;
	ro.ca_file = o.ca_file;
	ro.max_retries = -1;
	ro.timeout_ms = o.timeout * 1000;
	ro.creds = creds;
	ro.acr = o.acr;
	rc = registry_new(&fs.reg, &ro);
	auth_creds_free(creds); /* registry_new keeps its own copy */
	if (rc) {
		fprintf(stderr, "acrfs: %s\n", strerror(-rc));
		goto out_se;
	}
	rc = registry_ping(fs.reg, &err);
	if (rc) {
		fprintf(stderr, "acrfs: %s\n", buf_cstr(&err));
		goto out_reg;
	}
	fs.ttl = (double)o.ttl;
	fs.ro = o.ro;
	fs.uid = getuid();
	fs.gid = getgid();
	fs.opts = &o;
	fs.url = url;
	clock_gettime(CLOCK_REALTIME, &fs.mounted_at);
	clock_gettime(CLOCK_MONOTONIC, &fs.started);
	src.catalog = src_catalog;
	src.tags = src_tags;
	if (registry_is_acr(fs.reg)) {
		src.tags_meta = acrfs_acr_tags; /* tag times, digests, locks: fs/ll_acr.h */
	} else {
		src.tag_probe = src_tag_probe; /* fs.views is set before the first lookup */
		src.probe_ctx = &fs;
	}
	src.ctx = fs.reg;
	src.what = registry_host(fs.reg);
	/* Without a usable cache directory acrfs still works, from memory only. */
	rc = pcache_open(&fs.pcache, o.cache_dir, o.cache_max);
	if (!rc)
		pcache_set_index_max(fs.pcache, o.index_max);
	if (rc)
		log_warn("no persistent cache (%s): layers are indexed again after a remount",
			 strerror(-rc));
	if (ns_new(&fs.ns, &src, (unsigned)o.ttl) ||
	    budget_new(&fs.budget, o.mem_max) ||
	    views_new(&fs.views, fs.reg, NULL, fs.pcache, (unsigned)o.ttl) ||
	    itable_new(&fs.inodes, K_DIR, "D/") ||
	    listings_new(&fs.listings, fs.ttl, &fs.mounted_at, NULL) ||
	    prefetch_new(&fs.prefetch, fs.ns, fs.views, o.ttl ? (unsigned)o.prefetch : 0,
			 PREFETCH_WORKERS_MAX) ||
	    (registry_is_acr(fs.reg) &&
	     acrfs_acr_repos_new(&fs.acr_repos, fs.reg, (unsigned)o.ttl))) {
		fprintf(stderr, "acrfs: out of memory\n");
		goto out_ns;
	}
	views_set_budget(fs.views, fs.budget);
	ns_set_budget(fs.ns, fs.budget); /* cached catalog and tag lists */
	listings_set_budget(fs.listings, fs.budget);
	if (fs.acr_repos)
		dcache_set_budget(fs.acr_repos, fs.budget, NULL); /* meta: one struct acr_repo */
	itable_set_budget(fs.inodes, fs.budget); /* fs/ll.c charges it as it grows */
	views_set_evicted(fs.views, acrfs_view_evicted, &fs);
	if (fuse_set_signal_handlers(fs.se))
		goto out_ns;
	if (fuse_session_mount(fs.se, o.mountpoint))
		goto out_sig;
	if (!o.foreground) {
		log_init(o.debug ? LOG_LVL_DEBUG : LOG_LVL_INFO, true);
		if (fuse_daemonize(0)) {
			fuse_session_unmount(fs.se);
			goto out_sig;
		}
	} else if ((rc = acrfs_progress_start())) {
		log_warn("no progress line: %s", strerror(-rc));
	}
	log_info("mounted %s at %s (ttl %lds%s)", url, o.mountpoint, o.ttl,
		 o.ro ? ", read-only" : "");
	loop = fuse_loop_cfg_create();
	if (!loop)
		goto out_unmount;
	fuse_loop_cfg_set_clone_fd(loop, 0);
	fuse_loop_cfg_set_max_threads(loop, o.threads);
	/* No idle-thread bound: with one, libfuse creates and destroys a thread
	 * for requests of a sequential caller (libfuse PR #652, #1034). This
	 * config needs the 3.12 loop API (FUSE_USE_VERSION=312, Makefile): the
	 * 3.2 one reads it as an old struct, which did exactly that. */
	/* A signal ends the loop with its number: that is a clean unmount; so is
	 * an umount(8) from outside, which ends it with 0. */
	rc = fuse_session_loop_mt(fs.se, loop);
	ret = rc == 0 || rc == SIGINT || rc == SIGTERM || rc == SIGHUP ? 0 : 1;
	fuse_loop_cfg_destroy(loop);
	acrfs_inval_stop(); /* fs/ll_inval.c: no notification after this */
	log_info("unmounting %s", o.mountpoint);
out_unmount:
	acrfs_progress_stop();
	fuse_session_unmount(fs.se);
out_sig:
	fuse_remove_signal_handlers(fs.se);
out_ns:
	prefetch_free(fs.prefetch); /* its workers use ns and views */
	dcache_free(fs.acr_repos);
	listings_free(fs.listings);
	itable_free(fs.inodes);
	views_free(fs.views);
	ns_free(fs.ns); /* before the budget: its lists are charged there */
	reclaim_shutdown(); /* what evictions retired; no request is left */
	budget_free(fs.budget);
	pcache_free(fs.pcache);
out_reg:
	registry_free(fs.reg);
out_se:
	fuse_session_destroy(fs.se);
out_opts:
	log_set_hook(NULL);
	fuse_opt_free_args(&args);
	free(fs.identity);
	free(fs.username);
	free(url);
	free(host);
	buf_release(&err);
	opts_free(&o);
	auth_secret_free(env_pw);
	return ret;
}
