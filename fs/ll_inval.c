/*
 * Kernel cache invalidations.
 *
 * Entries: a handler that changed the registry (rmdir, rename) must tell
 * the kernel to forget entries it may hold for the mount's TTL, but it must
 * not do so itself: fuse_lowlevel_notify_inval_entry() takes the parent
 * directory's lock in the kernel, which the VFS holds until the request
 * concerned is answered — calling it from inside that request deadlocks. So
 * handlers queue the entry invalidation here and reply; a thread of its own
 * sends it once the request is over.
 *
 * Directories: fuse_lowlevel_notify_inval_inode() takes no inode lock; it
 * drops the attributes and the pages of the directory's cached listing,
 * which the kernel locks only while copying them to a reader (and a reader
 * holds the directory's lock shared, so none runs during an rmdir or rename
 * of a name in it). It never blocks on a request, so it is sent at once:
 * when the handler replies, the kernel already asks again at the next
 * listing — a queued one could arrive after a caller's next `ls`.
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

struct item {
	struct item *next;
	uint64_t parent;
	char name[];
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
		rc = fuse_lowlevel_notify_inval_entry(sess, it->parent, it->name,
						      strlen(it->name));
		/* -ENOENT: the kernel did not have it cached; nothing to do. */
		if (rc && rc != -ENOENT)
			log_debug("kernel invalidation of %llu/%s: %s",
				  (unsigned long long)it->parent, it->name, strerror(-rc));
		free(it);
		pthread_mutex_lock(&mu);
	}
	pthread_mutex_unlock(&mu);
	return NULL;
}

void acrfs_inval_entry(struct fuse_session *se, uint64_t parent, const char *name)
{
	size_t len = strlen(name);
	struct item *it = calloc(1, sizeof(*it) + len + 1);

	if (!it) {
		log_warn("out of memory queueing a kernel invalidation; the kernel may show "
			 "stale entries until the TTL ends");
		return;
	}
	it->parent = parent;
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

void acrfs_inval_inode(struct fuse_session *se, uint64_t ino)
{
	int rc = fuse_lowlevel_notify_inval_inode(se, ino, 0, 0);

	/* -ENOENT: the kernel did not have it cached; nothing to do. */
	if (rc && rc != -ENOENT)
		log_debug("kernel invalidation of inode %llu: %s", (unsigned long long)ino,
			  strerror(-rc));
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
