/*
 * acrfs main: parse the command line, check the registry, mount, serve.
 *
 * Order matters: the start-up check runs before the mount so a bad
 * registry leaves nothing mounted; the mount happens before daemonising so
 * the parent returns only once the mount is live; worker threads start only
 * after the fork.
 */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/creds.h"
#include "auth/util.h"
#include "common/buf.h"
#include "common/log.h"
#include "fs/itable.h"
#include "fs/listing.h"
#include "fs/ll.h"
#include "fs/ns.h"
#include "fs/opts.h"
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

/*
 * The credentials for `host` (host[:port] as given): -o username with its
 * password from -o password_file, -o password_stdin or $ACRFS_PASSWORD,
 * then the chain of auth_creds_resolve(). Logs the source that won at info
 * level (never the secret). 0, or -errno after saying why on stderr / the
 * log.
 */
static int resolve_creds(const struct acrfs_opts *o, const char *host, struct auth_creds **out)
{
	struct auth_creds_opts co = { 0 };
	const char *env = getenv("ACRFS_PASSWORD"), *from = NULL;
	char *pw = NULL, *src;
	int rc = 0;

	*out = NULL;
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
		log_secret(env);
		rc = auth_strdup(env, &pw);
	}
	if (rc)
		return rc;
	co.host = host;
	co.username = o->username;
	co.password = pw;
	co.aad_token_file = o->aad_token_file;
	co.tenant = o->tenant;
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

int main(int argc, char *argv[])
{
	struct acrfs_opts o;
	struct buf err = BUF_INIT;
	struct acrfs fs = { 0 };
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct fuse_loop_config *loop = NULL;
	struct registry_opts ro = { 0 };
	struct ns_source src = { 0 };
	char *url = NULL, *host = NULL;
	struct stat st;
	int rc, ret = 1;

	rc = opts_parse(argc, (const char *const *)argv, &o, &err);
	if (rc) {
		fprintf(stderr, "acrfs: %s\n", buf_cstr(&err));
		buf_release(&err);
		return 2;
	}
	if (o.help) {
		opts_usage(stdout);
		ret = 0;
		goto out_opts;
	}
	if (o.version) {
		printf("acrfs %s (libfuse %s, %s)\n", ACRFS_VERSION, fuse_pkgversion(),
		       registry_client_version());
		ret = 0;
		goto out_opts;
	}
	log_init(o.debug ? LOG_LVL_DEBUG : LOG_LVL_INFO, false);
	if (registry_url_parse(o.registry, &url, &host)) {
		fprintf(stderr, "acrfs: %s: not a registry address (expected host[:port], "
				"https://host[:port] or http://host[:port])\n", o.registry);
		goto out_opts;
	}
	if (stat(o.mountpoint, &st) || !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "acrfs: mount point %s: %s\n", o.mountpoint,
			errno ? strerror(errno) : "not a directory");
		goto out_opts;
	}
	struct auth_creds *creds = NULL;

	if (resolve_creds(&o, host, &creds))
		goto out_opts;
	ro.url = url;
	ro.ca_file = o.ca_file;
	ro.max_retries = -1;
	ro.creds = creds;
	rc = registry_new(&fs.reg, &ro);
	auth_creds_free(creds); /* registry_new keeps its own copy */
	if (rc) {
		fprintf(stderr, "acrfs: %s\n", strerror(-rc));
		goto out_opts;
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
	clock_gettime(CLOCK_REALTIME, &fs.mounted_at);
	src.catalog = src_catalog;
	src.tags = src_tags;
	src.ctx = fs.reg;
	src.what = registry_host(fs.reg);
	/* Without a usable cache directory acrfs still works, from memory only. */
	rc = pcache_open(&fs.pcache, o.cache_dir, o.cache_max);
	if (rc)
		log_warn("no persistent cache (%s): layers are indexed again after a remount",
			 strerror(-rc));
	if (ns_new(&fs.ns, &src, (unsigned)o.ttl) ||
	    views_new(&fs.views, fs.reg, NULL, fs.pcache, (unsigned)o.ttl) ||
	    itable_new(&fs.inodes, K_DIR, "D/") ||
	    listings_new(&fs.listings, fs.ttl, &fs.mounted_at, NULL)) {
		fprintf(stderr, "acrfs: out of memory\n");
		goto out_ns;
	}
	for (size_t i = 0; i < o.fuse_argv.n; i++)
		if (fuse_opt_add_arg(&args, o.fuse_argv.v[i])) {
			fprintf(stderr, "acrfs: out of memory\n");
			goto out_ns;
		}
	fs.se = fuse_session_new(&args, acrfs_ll_ops(), sizeof(struct fuse_lowlevel_ops), &fs);
	if (!fs.se)
		goto out_ns; /* libfuse said why */
	if (fuse_set_signal_handlers(fs.se))
		goto out_se;
	if (fuse_session_mount(fs.se, o.mountpoint))
		goto out_sig;
	if (!o.foreground) {
		log_init(o.debug ? LOG_LVL_DEBUG : LOG_LVL_INFO, true);
		if (fuse_daemonize(0)) {
			fuse_session_unmount(fs.se);
			goto out_sig;
		}
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
	/* A signal ends the loop with its number: that is a clean unmount. */
	rc = fuse_session_loop_mt(fs.se, loop);
	ret = rc == 0 || rc == SIGINT || rc == SIGTERM || rc == SIGHUP ? 0 : 1;
	fuse_loop_cfg_destroy(loop);
	acrfs_inval_stop(); /* fs/ll_inval.c: no notification after this */
	log_info("unmounting %s", o.mountpoint);
out_unmount:
	fuse_session_unmount(fs.se);
out_sig:
	fuse_remove_signal_handlers(fs.se);
out_se:
	fuse_session_destroy(fs.se);
out_ns:
	listings_free(fs.listings);
	itable_free(fs.inodes);
	views_free(fs.views);
	ns_free(fs.ns);
	pcache_free(fs.pcache);
out_reg:
	registry_free(fs.reg);
out_opts:
	fuse_opt_free_args(&args);
	free(url);
	free(host);
	buf_release(&err);
	opts_free(&o);
	return ret;
}
