/*
 * Kernel cache invalidations, sent from a thread of their own.
 *
 * A handler that changed the registry (rmdir, rename) must tell the kernel
 * to forget entries it may hold for the mount's TTL, but it must not do so
 * itself: fuse_lowlevel_notify_inval_entry() takes the parent directory's
 * lock in the kernel, which the VFS holds until the request concerned is
 * answered — calling it from inside that request deadlocks. So handlers
 * queue the invalidation here and reply; this thread sends it once the
 * request is over.
 *
 * The thread starts on the first queued item (after any fork of
 * fuse_daemonize, since requests only arrive then) and acrfs_inval_stop()
 * ends it before the session goes away. `mu` guards every static below; it
 * is a leaf lock, never held across a notify call.
 */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "fs/ll.h"

enum { INV_ENTRY = 1, INV_INODE = 2 };

struct item {
	struct item *next;
	int kind;
	uint64_t ino; /* INV_ENTRY: the parent */
	char name[];  /* INV_ENTRY only */
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct item *head, **tailp = &head;
static struct fuse_session *sess;
static pthread_t thread;
static bool started, stopping;

static void *run(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&mu);
	for (;;) {
		struct item *it;
		int rc;

		while (!head && !stopping)
			pthread_cond_wait(&cv, &mu);
		if (!head)
			break;
		it = head;
		head = it->next;
		if (!head)
			tailp = &head;
		pthread_mutex_unlock(&mu);
		if (it->kind == INV_ENTRY)
			rc = fuse_lowlevel_notify_inval_entry(sess, it->ino, it->name,
							      strlen(it->name));
		else
			rc = fuse_lowlevel_notify_inval_inode(sess, it->ino, 0, 0);
		/* -ENOENT: the kernel did not have it cached; nothing to do. */
		if (rc && rc != -ENOENT)
			log_debug("kernel invalidation of %llu/%s: %s", (unsigned long long)it->ino,
				  it->kind == INV_ENTRY ? it->name : "", strerror(-rc));
		free(it);
		pthread_mutex_lock(&mu);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

static void enqueue(struct fuse_session *se, int kind, uint64_t ino, const char *name)
{
	size_t len = name ? strlen(name) : 0;
	struct item *it = calloc(1, sizeof(*it) + len + 1);

	if (!it) {
		log_warn("out of memory queueing a kernel invalidation; the kernel may show "
			 "stale entries until the TTL ends");
		return;
	}
	it->kind = kind;
	it->ino = ino;
	if (name)
		memcpy(it->name, name, len + 1);
	pthread_mutex_lock(&mu);
	if (stopping) {
		pthread_mutex_unlock(&mu);
		free(it);
		return;
	}
	if (!started) {
		sess = se;
		if (pthread_create(&thread, NULL, run, NULL)) {
			pthread_mutex_unlock(&mu);
			free(it);
			log_warn("cannot start the invalidation thread; the kernel may show "
				 "stale entries until the TTL ends");
			return;
		}
		started = true;
	}
	*tailp = it;
	tailp = &it->next;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
}

void acrfs_inval_entry(struct fuse_session *se, uint64_t parent, const char *name)
{
	enqueue(se, INV_ENTRY, parent, name);
}

void acrfs_inval_inode(struct fuse_session *se, uint64_t ino)
{
	enqueue(se, INV_INODE, ino, NULL);
}

void acrfs_inval_stop(void)
{
	bool join;

	pthread_mutex_lock(&mu);
	stopping = true;
	join = started;
	pthread_cond_signal(&cv);
	pthread_mutex_unlock(&mu);
	if (join)
		pthread_join(thread, NULL);
	/* The thread drains the queue before it exits; nothing is left here. */
}
