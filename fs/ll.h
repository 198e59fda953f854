/*
 * ll — the FUSE edge (low-level API). Only fs/ll.c and fs/main.c include
 * libfuse.
 */
#ifndef ACRFS_LL_H
#define ACRFS_LL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

struct fuse_lowlevel_ops;
struct fuse_session;
struct registry;
struct views;
struct pcache;
struct budget;
struct inode;
struct fuse_file_info;
struct stat;
struct acrfs_opts;
struct listings;
struct prefetch;
struct dcache;

/* Everything a request handler needs; owned by main(). */
struct acrfs {
	struct registry *reg;
	struct ns *ns;
	struct itable *inodes;
	struct views *views;	/* tag / digest -> image views (fs/view.h) */
	struct pcache *pcache;	/* persistent cache, or NULL */
	struct budget *budget;	/* -o mem_max over trees and indexes (image/budget.h) */
	struct listings *listings; /* registry directories' listings (fs/listing.h) */
	struct prefetch *prefetch; /* readahead for walks (fs/prefetch.h), or NULL */
	struct dcache *acr_repos;  /* ACR: repositories' attributes (fs/ll_acr.h), or NULL */
	struct fuse_session *se;
	double ttl;	/* entry/attr timeout for registry directories */
	bool ro;
	uid_t uid;
	gid_t gid;
	struct timespec mounted_at;
	/* For .acrfs/status (fs/ll_status.c); set by main before the mount. */
	const struct acrfs_opts *opts; /* the command line */
	const char *url;	       /* the registry's base URL */
	char *identity;		       /* where the credentials came from; never a secret */
	const char *identity_kind;     /* auth_cred_kind_name() */
	char *username;		       /* for kind "basic", else NULL */
	struct timespec started;       /* CLOCK_MONOTONIC, for the uptime */
	/* Set once by the init request: the kernel takes ENOSYS from opendir
	 * as "no opendir/releasedir from now on" (fs/ll.c, Listings). */
	bool no_opendir;
};

/* The operations table; the session's userdata is a struct acrfs *. */
const struct fuse_lowlevel_ops *acrfs_ll_ops(void);
/* Node kinds stored in struct inode.kind (K_SDIR, K_SFILE: .acrfs/). */
enum { K_DIR = 1, K_TAG = 2, K_VROOT = 3, K_VNODE = 4, K_SDIR = 5, K_SFILE = 6 };

/*
 * Image views (fs/ll_view.c): everything inside a tag or digest directory.
 * Kernel timeouts there (content-addressed) are ACRFS_VIEW_TIMEOUT seconds.
 */
#define ACRFS_VIEW_TIMEOUT 86400.0
struct fuse_req;
/* Answer a lookup miss (fs/ll_reply.c): a negative entry the kernel keeps for `timeout`
 * seconds (ENOENT when timeout <= 0). */
void acrfs_reply_negative(struct fuse_req *req, double timeout);
struct fuse_entry_param;
/* Reply entry `ep` of inode `n`, which was referenced for this lookup; the
 * reference is dropped if the reply cannot be delivered. */
void acrfs_reply_entry_ref(struct fuse_req *req, struct acrfs *fs, const struct inode *n,
			   const struct fuse_entry_param *ep);
/* A readdir reply being filled: `rem` bytes left at `p`. */
struct dirent_buf {
	char *p;
	size_t rem;
};
/*
 * Add entry `name` (the next entry at offset `next`) to `d`, with `ep`'s
 * attributes (readdirplus: the whole entry). `n`: the inode referenced for
 * it by readdirplus, or NULL; if the entry does not fit, that reference is
 * dropped, since the kernel never sees the entry. false when it did not fit
 * (the reply is full).
 */
bool acrfs_add_dirent(struct fuse_req *req, struct acrfs *fs, struct dirent_buf *d,
		      const char *name, const struct fuse_entry_param *ep, off_t next, bool plus,
		      const struct inode *n);
int acrfs_view_attr(struct acrfs *fs, const struct inode *n, struct stat *st);
/* views_set_evicted's function: ctx is the struct acrfs (fs/ll_view.c). */
void acrfs_view_evicted(void *ctx, uint64_t root, const char *name);
void acrfs_view_lookup(struct fuse_req *req, struct inode *dir, const char *name);
/* A "sha256:<hex>" name in repository directory `dir`. */
void acrfs_view_lookup_digest(struct fuse_req *req, struct inode *dir, const char *name);
/*
 * Readdir(plus) of view directory `dir` (K_TAG, K_VROOT, K_VNODE): there is
 * no directory handle (no-opendir mode), so each request resolves `dir`.
 * The kernel keeps what it reads for ever, except a tag directory's listing
 * (the tag may move; `rm -d` sees it empty): at its end it is invalidated.
 */
void acrfs_view_readdir(struct fuse_req *req, struct inode *dir, size_t size, off_t off,
			bool plus);
void acrfs_view_open(struct fuse_req *req, uint64_t ino, struct fuse_file_info *fi);
void acrfs_view_read(struct fuse_req *req, uint64_t ino, size_t size, off_t off,
		     struct fuse_file_info *fi);
void acrfs_view_release(struct fuse_req *req, uint64_t ino, struct fuse_file_info *fi);
void acrfs_view_readlink(struct fuse_req *req, uint64_t ino);
void acrfs_view_getxattr(struct fuse_req *req, uint64_t ino, const char *name, size_t size);
void acrfs_view_listxattr(struct fuse_req *req, uint64_t ino, size_t size);

/*
 * Changing operations (fs/ll_write.c, docs/tagops.md), with the types of
 * struct fuse_lowlevel_ops (fuse_req_t is struct fuse_req *, fuse_ino_t is
 * uint64_t) so that this header needs no libfuse.
 *   rmdir   a tag: delete it (the image too when no other tag uses it);
 *           a repository with nothing left in it: delete it (ACR only).
 *   rename  a tag to another tag, in the same or another repository.
 *   unlink  refused (EPERM; EROFS with -o ro).
 */
void acrfs_ll_rmdir(struct fuse_req *req, uint64_t parent, const char *name);
void acrfs_ll_rename(struct fuse_req *req, uint64_t parent, const char *name,
		     uint64_t newparent, const char *newname, unsigned int flags);
void acrfs_ll_unlink(struct fuse_req *req, uint64_t parent, const char *name);

/*
 * .acrfs/ at the mount root (fs/ll_status.c): read-only files about the
 * mount, generated at open without any registry request:
 *   status  JSON: version, registry, identity source, options, uptime,
 *           requests by kind and status class, bytes, retries, cache,
 *           images and layers loaded, memory;
 *   loads   one line per layer load in progress;
 *   errors  the last failures (fs/errlog.h).
 * The name is found by lookup only, never listed (like ZFS's hidden .zfs),
 * so that walks of the mount (ls -a, find) see repositories alone; no
 * repository name can start with '.'. Open files are snapshots served with
 * direct_io; their handles have bit 0 set (malloc'd pointers never do),
 * which is how read and release tell them from image files without a
 * lookup.
 */
#define ACRFS_STATUS_DIR ".acrfs"
#define ACRFS_FH_STATUS 1u
/* Before threads start: remember `fs`, install the log hook (errors,
 * progress line). */
void acrfs_status_init(struct acrfs *fs);
/* `name` in the root (only ACRFS_STATUS_DIR) or in .acrfs/ (dir K_SDIR). */
void acrfs_status_lookup(struct fuse_req *req, struct inode *dir, const char *name);
void acrfs_status_attr(struct acrfs *fs, const struct inode *n, struct stat *st);
void acrfs_status_readdir(struct fuse_req *req, uint64_t ino, size_t size, off_t off,
			  bool plus);
void acrfs_status_open(struct fuse_req *req, struct inode *n, struct fuse_file_info *fi);
void acrfs_status_read(struct fuse_req *req, size_t size, off_t off, struct fuse_file_info *fi);
void acrfs_status_release(struct fuse_req *req, struct fuse_file_info *fi);
/*
 * The request a worker thread serves, for .acrfs/errors: a warning or error
 * logged until acrfs_req_leave() is recorded with operation `op` (static)
 * and the path of inode `ino` (plus `name`, borrowed for the request).
 * Also the request's reclaim read side (common/reclaim.h): trees borrowed
 * by the request stay valid until it leaves, evicted or not. Every
 * request that may look at an image's trees is bracketed this way.
 */
void acrfs_req_enter(const char *op, uint64_t ino, const char *name);
void acrfs_req_leave(void);
/*
 * With -f on a terminal: a thread that shows, on one line of stderr, the
 * oldest layer load running for more than a second. start returns 0 (also
 * when stderr is no terminal: nothing to do) or -errno; stop clears the
 * line and ends the thread (NULL-safe to call without a start).
 */
int acrfs_progress_start(void);
void acrfs_progress_stop(void);

/*
 * Kernel invalidations (fs/ll_inval.c). Thread-safe; never block on the
 * kernel.
 *   acrfs_inval_entry  queued, sent later by a thread of its own: a handler
 *                      queues it and replies (the kernel takes the parent
 *                      directory's lock for it, which it holds during the
 *                      request concerned: sending it from inside deadlocks).
 *   acrfs_inval_inode  directories only; sent at once: the kernel drops the
 *                      directory's attributes and cached listing before this
 *                      returns, taking no lock a request holds (a listing's
 *                      pages are only locked while the kernel copies them,
 *                      never during a request; a file's are during a READ),
 *                      so a handler calls it before it replies and the
 *                      caller's next look already asks again.
 * acrfs_inval_stop() sends what is queued and ends the thread: main calls
 * it once the session loop has returned, before the session is destroyed.
 */
void acrfs_inval_entry(struct fuse_session *se, uint64_t parent, const char *name);
void acrfs_inval_inode(struct fuse_session *se, uint64_t ino);
void acrfs_inval_stop(void);

#endif
