/*
 * opts — the acrfs command line, parsed without libfuse so it can be unit
 * tested. Options acrfs does not know are handed to FUSE in `fuse_argv`,
 * which always ends with "nosuid,nodev" and carries "ro" (once, if the last
 * of ro/rw was ro), "subtype=acrfs" and "fsname=REGISTRY" unless given; suid and
 * dev are dropped, and so are the options of fstab lines and mount units
 * that are not for the file system (_netdev, nofail, noauto, auto, defaults,
 * user, users, nouser, owner, group, drop_privileges, setuid=, comment=,
 * x-*: mount(8), mount.fuse3 or systemd act on them).
 */
#ifndef ACRFS_OPTS_H
#define ACRFS_OPTS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/buf.h"
#include "common/strvec.h"
#include "registry/registry.h"

#define ACRFS_MEM_MAX_DEFAULT (512ull << 20) /* -o mem_max */

struct acrfs_opts {
	char *registry;	  /* REGISTRY argument as given */
	char *mountpoint;
	bool foreground;  /* -f */
	bool debug;	  /* -d */
	bool help;	  /* -h / --help */
	bool version;	  /* -V / --version */
	bool ro;	  /* -o ro */
	bool allow_other; /* -o allow_other (implies default_permissions) */
	long ttl;	  /* -o ttl=SECONDS, default 60 */
	long timeout;	  /* -o timeout=SECONDS (deadline of one registry request), default 30 */
	long prefetch;	  /* -o prefetch=N (entries a walk is read ahead), default 32, 0 off */
	enum registry_acr acr; /* -o acr=auto|on|off, default auto */
	char *ca_file;	  /* -o ca_file=PATH */
	char *username;	  /* -o username=NAME */
	char *password_file; /* -o password_file=PATH */
	bool password_stdin; /* -o password_stdin */
	char *docker_config; /* -o docker_config=DIR */
	char *aad_token_file; /* -o aad_token_file=PATH */
	char *tenant;	  /* -o tenant=ID */
	char *cache_dir;  /* -o cache_dir=DIR */
	uint64_t cache_max; /* -o cache_max=SIZE (bytes; K/M/G suffixes) */
	uint64_t index_max; /* -o index_max=SIZE: index and rootfs files */
	uint64_t mem_max;   /* -o mem_max=SIZE (bytes), default 512M, 0 = no bound */
	unsigned threads; /* -o threads=N, default 16 */
	bool has_fsname;  /* -o fsname= given (else fsname=REGISTRY is added) */
	bool has_subtype; /* -o subtype= given (else subtype=acrfs is added) */
	/* argv for fuse_session_new: "acrfs", then "-o", "a,b,..." if any */
	struct strvec fuse_argv;
};

/*
 * Parse argv. Returns 0, or -EINVAL with a one-line reason in *err (caller
 * releases). --help / --version set the flags and return 0 without
 * requiring the positional arguments. A password given on the command line
 * (-o password=…) is refused: argv is visible to every user via /proc.
 */
int opts_parse(int argc, const char *const argv[], struct acrfs_opts *o, struct buf *err);
void opts_free(struct acrfs_opts *o);
void opts_usage(FILE *f);

#endif
