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

#include "common/buf.h"
#include "common/log.h"
#include "fs/itable.h"
#include "fs/ll.h"
#include "fs/ns.h"
#include "fs/opts.h"
#include "registry/registry.h"

static int src_catalog(void *ctx, struct strvec *repos)
{
	return registry_catalog(ctx, repos);
}

static int src_tags(void *ctx, const char *repo, struct strvec *tags)
{
	return registry_tags(ctx, repo, tags);
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
	ro.url = url;
	ro.ca_file = o.ca_file;
	ro.max_retries = -1;
	rc = registry_new(&fs.reg, &ro);
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
	if (ns_new(&fs.ns, &src, (unsigned)o.ttl) ||
	    itable_new(&fs.inodes, K_DIR, "D/")) {
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
	fuse_loop_cfg_set_idle_threads(loop, o.threads / 2 ? o.threads / 2 : 1);
	/* A signal ends the loop with its number: that is a clean unmount. */
	rc = fuse_session_loop_mt(fs.se, loop);
	ret = rc == 0 || rc == SIGINT || rc == SIGTERM || rc == SIGHUP ? 0 : 1;
	fuse_loop_cfg_destroy(loop);
	log_info("unmounting %s", o.mountpoint);
out_unmount:
	fuse_session_unmount(fs.se);
out_sig:
	fuse_remove_signal_handlers(fs.se);
out_se:
	fuse_session_destroy(fs.se);
out_ns:
	itable_free(fs.inodes);
	ns_free(fs.ns);
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
