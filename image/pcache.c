/*
 * pcache — the persistent cache directory. Design note.
 *
 * The LRU table is a plain array of the blob files we know (a cache holds
 * tens to hundreds of layer blobs, so linear scans cost nothing next to the
 * disk I/O around them). Each entry has a use tick from a counter; the
 * smallest tick is evicted first. At open the ticks are assigned in mtime
 * order, so the order of a previous run survives through the mtimes that
 * pcache_blob_pread refreshes (at most once a minute per file).
 *
 * Writers account their bytes in `pending` as they write, so concurrent
 * writers and the committed files together never exceed the budget; a writer
 * that cannot fit even after evicting every committed file fails with
 * -EFBIG and drops its temporary file.
 *
 * Index and rootfs files have an LRU table of their own (pc->meta, bound
 * index_max), kept the same way: a load marks a file used, a store evicts
 * the least recently used ones until it fits.
 *
 * Stores that wait for the disk can run in the background (the *_async
 * functions: a detached thread per store, listed in pc->jobs); a load,
 * store or removal of a file waits for its store, pcache_flush and
 * pcache_free for all of them.
 *
 * Lock: pc->lock guards both tables, tick and the job list. It is a leaf
 * lock. Eviction unlinks under it (a metadata operation); reads and writes
 * of contents happen outside it. A reader racing with eviction just sees
 * -ENOENT and falls back to the registry.
 */
#include "image/pcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

#define NAME_MAX_LEN 96      /* "<64 hex>.<sfx>" */
#define TOUCH_INTERVAL 60    /* seconds between on-disk mtime refreshes */
#define STALE_TMP_AGE 3600   /* seconds before a temporary file is stale */
#define WRITEBACK_STEP (8u << 20) /* blob bytes written between writeback starts */
#define WRITE_BATCH (1u << 20)    /* blob bytes gathered for one write */

/* Where a file lives: pc->dirs[where]. */
enum { W_BLOB, W_INDEX, W_ROOTFS, W_COUNT };

struct entry {
	char name[NAME_MAX_LEN];
	unsigned char where;
	uint64_t size;
	uint64_t tick;
	time_t disk_touch;
};

/* The files of one bound, least recently used first out. */
struct lru {
	struct entry *entries;
	size_t nentries, cap;
	uint64_t max;
	uint64_t total;   /* bytes of committed files */
	uint64_t pending; /* bytes being written */
	uint64_t evictions;
};

/* A file being stored in the background (pcache_*_async). */
struct job {
	struct job *next;
	struct pcache *pc;
	int where;
	char name[NAME_MAX_LEN];
	struct pcache_writer *w; /* a blob copy to commit, or: */
	struct digest d;	 /* an index or rootfs file to store */
	struct buf data;
};

struct pcache {
	char *dir;       /* DIR */
	char *dirs[W_COUNT]; /* DIR/v1/blobs, DIR/v1/index, DIR/v1/rootfs */

	pthread_mutex_t lock; /* leaf; guards the fields below */
	struct lru blobs;     /* blob files: cache_max */
	struct lru meta;      /* index and rootfs files: index_max */
	uint64_t tick;
	struct job *jobs;	/* background stores not done */
	unsigned njobs;		/* their threads still running */
	pthread_cond_t job_done;
};

struct pcache_writer {
	struct pcache *pc;
	char name[NAME_MAX_LEN];
	char *tmp_path;
	int fd;
	uint64_t written;
	uint64_t flushed; /* bytes handed to writeback (sync_file_range) */
	int err;
	char *batch; /* bytes not written yet (fewer, bigger writes) */
	size_t nbatch, batch_cap;
};

/* ---- helpers ------------------------------------------------------------ */

static char *path_join(const char *a, const char *b)
{
	struct buf p = BUF_INIT;

	if (buf_addf(&p, "%s/%s", a, b)) {
		buf_release(&p);
		return NULL;
	}
	return buf_detach(&p, NULL);
}

/* Create `path` (0700) if missing; check owner and tighten its mode. */
static int ensure_dir(const char *path)
{
	struct stat st;

	if (mkdir(path, 0700) && errno != EEXIST) {
		int e = errno;

		log_error("cache: cannot create %s: %s", path, strerror(e));
		return -e;
	}
	if (stat(path, &st)) {
		int e = errno;

		log_error("cache: cannot stat %s: %s", path, strerror(e));
		return -e;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_error("cache: %s is not a directory", path);
		return -ENOTDIR;
	}
	if (st.st_uid != geteuid()) {
		log_error("cache: %s belongs to uid %u, not to us (uid %u); refusing it",
			  path, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if ((st.st_mode & 07777) != 0700 && chmod(path, 0700)) {
		int e = errno;

		log_error("cache: cannot chmod 0700 %s: %s", path, strerror(e));
		return -e;
	}
	return 0;
}

/* mkdir -p of the parents of `path` (0700 for those we create). */
static int make_parents(const char *path)
{
	char *p = strdup(path);
	char *s;
	int rc = 0;

	if (!p)
		return -ENOMEM;
	for (s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0700) && errno != EEXIST) {
			rc = -errno;
			log_error("cache: cannot create %s: %s", p, strerror(errno));
			break;
		}
		*s = '/';
	}
	free(p);
	return rc;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

/* A fresh temporary file in `dir` for final name `name`: 0600, O_EXCL. */
static int open_tmp(const char *dir, const char *name, char **path_out)
{
	static unsigned long seq;
	struct buf p = BUF_INIT;
	int fd = -1, tries;

	for (tries = 0; tries < 100; tries++) {
		buf_reset(&p);
		if (buf_addf(&p, "%s/%s.tmp.%ld.%lu", dir, name, (long)getpid(),
			     __atomic_add_fetch(&seq, 1, __ATOMIC_RELAXED))) {
			buf_release(&p);
			return -ENOMEM;
		}
		fd = open(p.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		int e = errno;

		log_error("cache: cannot create a file in %s: %s", dir, strerror(e));
		buf_release(&p);
		return -e;
	}
	*path_out = buf_detach(&p, NULL);
	return fd;
}

/* fsync, close and rename tmp into dir/name. Closes fd in every case. */
static int publish(int fd, const char *tmp, const char *dir, const char *name)
{
	char *final = path_join(dir, name);
	int rc = 0;

	if (!final) {
		rc = -ENOMEM;
	} else if (fsync(fd)) {
		rc = -errno;
	}
	if (close(fd) && !rc)
		rc = -errno;
	if (!rc && rename(tmp, final))
		rc = -errno;
	if (rc) {
		log_error("cache: cannot write %s/%s: %s", dir, name, strerror(-rc));
		unlink(tmp);
	} else {
		fsync_dir(dir);
	}
	free(final);
	return rc;
}

static int blob_name(char out[NAME_MAX_LEN], const struct digest *d, const char *sfx)
{
	char hex[DIGEST_HEX_LEN + 1];
	const char *s;
	int n;

	for (s = sfx ? sfx : ""; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')))
			return -EINVAL;
	if (sfx && strlen(sfx) > 16)
		return -EINVAL;
	digest_hex(d, hex);
	n = snprintf(out, NAME_MAX_LEN, "%s%s%s", hex, sfx && *sfx ? "." : "",
		     sfx ? sfx : "");
	return n > 0 && n < NAME_MAX_LEN ? 0 : -EINVAL;
}

/* A blob file name we manage: 64 hex digits, optionally ".<sfx>". */
static int is_blob_name(const char *s)
{
	size_t i;

	for (i = 0; i < DIGEST_HEX_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	if (s[i] == '\0')
		return 1;
	if (s[i] != '.' || !s[i + 1] || strlen(s) >= NAME_MAX_LEN)
		return 0;
	for (i++; s[i]; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
			return 0;
	return 1;
}

/* ---- the LRU tables (pc->lock held) ------------------------------------- */

static struct entry *find_entry(struct lru *t, int where, const char *name)
{
	size_t i;

	for (i = 0; i < t->nentries; i++)
		if (t->entries[i].where == where && strcmp(t->entries[i].name, name) == 0)
			return &t->entries[i];
	return NULL;
}

static void drop_entry(struct lru *t, struct entry *e)
{
	t->total -= e->size;
	*e = t->entries[--t->nentries];
}

/* Evict least-recently-used files of `t` until `need` more bytes fit. */
static int make_room(struct pcache *pc, struct lru *t, uint64_t need)
{
	while (t->total + t->pending + need > t->max) {
		struct entry *lru = NULL;
		char *path;
		size_t i;

		for (i = 0; i < t->nentries; i++)
			if (!lru || t->entries[i].tick < lru->tick)
				lru = &t->entries[i];
		if (!lru)
			return -EFBIG;
		path = path_join(pc->dirs[lru->where], lru->name);
		if (path) {
			if (unlink(path) && errno != ENOENT)
				log_warn("cache: cannot evict %s: %s", path, strerror(errno));
			else
				log_debug("cache: evicted %s (%llu bytes)", lru->name,
					  (unsigned long long)lru->size);
			free(path);
		}
		t->evictions++;
		drop_entry(t, lru);
	}
	return 0;
}

static int add_entry(struct lru *t, int where, const char *name, uint64_t size,
		     uint64_t tick, time_t touched)
{
	struct entry *e = find_entry(t, where, name);

	if (e) {
		t->total -= e->size;
	} else {
		if (t->nentries == t->cap) {
			size_t cap = t->cap ? 2 * t->cap : 32;
			struct entry *v = realloc(t->entries, cap * sizeof(*v));

			if (!v)
				return -ENOMEM;
			t->entries = v;
			t->cap = cap;
		}
		e = &t->entries[t->nentries++];
		snprintf(e->name, sizeof(e->name), "%s", name);
		e->where = (unsigned char)where;
	}
	e->size = size;
	e->tick = tick;
	e->disk_touch = touched;
	t->total += size;
	return 0;
}

/* Mark `e` used; whether its file's mtime should be refreshed (at most once
 * a TOUCH_INTERVAL, so that the order survives a remount). */
static bool use_entry(struct pcache *pc, struct entry *e, time_t now)
{
	e->tick = ++pc->tick;
	if (now - e->disk_touch < TOUCH_INTERVAL)
		return false;
	e->disk_touch = now;
	return true;
}

/* ---- open / free -------------------------------------------------------- */

int pcache_default_dir(struct buf *out)
{
	const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");

	if (x && x[0] == '/')
		return buf_addf(out, "%s/acrfs", x);
	if (h && h[0] == '/')
		return buf_addf(out, "%s/.cache/acrfs", h);
	log_error("cache: neither XDG_CACHE_HOME nor HOME is set; give -o cache_dir=");
	return -ENOENT;
}

struct scanned {
	char name[NAME_MAX_LEN];
	int where;
	uint64_t size;
	time_t mtime;
};

static int cmp_mtime(const void *a, const void *b)
{
	const struct scanned *x = a, *y = b;

	return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* Remove stale temporary files of `dir` (pc->dirs[where]); append the
 * files we manage to *out. */
static int scan_dir(const char *dir, int where, struct scanned **out, size_t *n,
		    size_t *cap)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	time_t now = time(NULL);
	int rc = 0;

	if (!dp)
		return -errno;
	while ((de = readdir(dp))) {
		struct stat st;

		if (fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (strstr(de->d_name, ".tmp.")) {
			if (now - st.st_mtime > STALE_TMP_AGE)
				unlinkat(dirfd(dp), de->d_name, 0);
			continue;
		}
		if (!S_ISREG(st.st_mode) || !is_blob_name(de->d_name))
			continue;
		if ((st.st_mode & 077) && fchmodat(dirfd(dp), de->d_name, 0600, 0))
			log_warn("cache: cannot chmod 0600 %s/%s", dir, de->d_name);
		if (*n == *cap) {
			size_t c = *cap ? 2 * *cap : 32;
			struct scanned *v = realloc(*out, c * sizeof(*v));

			if (!v) {
				rc = -ENOMEM;
				break;
			}
			*out = v;
			*cap = c;
		}
		snprintf((*out)[*n].name, NAME_MAX_LEN, "%s", de->d_name);
		(*out)[*n].where = where;
		(*out)[*n].size = (uint64_t)st.st_size;
		(*out)[*n].mtime = st.st_mtime;
		(*n)++;
	}
	closedir(dp);
	return rc;
}

int pcache_open(struct pcache **out, const char *dir, uint64_t max_blob_bytes)
{
	struct pcache *pc = NULL;
	struct buf def = BUF_INIT;
	struct scanned *files = NULL;
	char *v1 = NULL;
	size_t nfiles = 0, cap = 0, i;
	int rc, w;

	*out = NULL;
	if (!dir) {
		rc = pcache_default_dir(&def);
		if (rc)
			goto fail;
		dir = def.data;
	}
	if (!dir[0]) {
		rc = -EINVAL;
		goto fail;
	}
	pc = calloc(1, sizeof(*pc));
	if (!pc) {
		rc = -ENOMEM;
		goto fail;
	}
	pthread_mutex_init(&pc->lock, NULL);
	pthread_cond_init(&pc->job_done, NULL);
	pc->blobs.max = max_blob_bytes;
	pc->meta.max = PCACHE_INDEX_BYTES_DEFAULT;
	pc->dir = strdup(dir);
	v1 = path_join(dir, "v1");
	pc->dirs[W_BLOB] = path_join(dir, "v1/blobs");
	pc->dirs[W_INDEX] = path_join(dir, "v1/index");
	pc->dirs[W_ROOTFS] = path_join(dir, "v1/rootfs");
	if (!pc->dir || !v1 || !pc->dirs[W_BLOB] || !pc->dirs[W_INDEX] || !pc->dirs[W_ROOTFS]) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = make_parents(dir);
	if (!rc)
		rc = ensure_dir(dir);
	if (!rc)
		rc = ensure_dir(v1);
	for (w = 0; !rc && w < W_COUNT; w++)
		rc = ensure_dir(pc->dirs[w]);
	for (w = 0; !rc && w < W_COUNT; w++)
		rc = scan_dir(pc->dirs[w], w, &files, &nfiles, &cap);
	if (rc)
		goto fail;
	/* The tables in last-use order: what the mtimes say. */
	if (nfiles)
		qsort(files, nfiles, sizeof(*files), cmp_mtime);
	for (i = 0; i < nfiles; i++) {
		rc = add_entry(files[i].where == W_BLOB ? &pc->blobs : &pc->meta, files[i].where,
			       files[i].name, files[i].size, ++pc->tick, files[i].mtime);
		if (rc)
			goto fail;
	}
	pthread_mutex_lock(&pc->lock);
	(void)make_room(pc, &pc->blobs, 0);
	(void)make_room(pc, &pc->meta, 0);
	pthread_mutex_unlock(&pc->lock);
	free(files);
	free(v1);
	buf_release(&def);
	*out = pc;
	return 0;
fail:
	free(files);
	free(v1);
	buf_release(&def);
	pcache_free(pc);
	return rc;
}

void pcache_free(struct pcache *pc)
{
	if (!pc)
		return;
	pcache_flush(pc);
	pthread_cond_destroy(&pc->job_done);
	pthread_mutex_destroy(&pc->lock);
	free(pc->blobs.entries);
	free(pc->meta.entries);
	free(pc->dir);
	for (int w = 0; w < W_COUNT; w++)
		free(pc->dirs[w]);
	free(pc);
}

const char *pcache_dir(const struct pcache *pc)
{
	return pc->dir;
}

/* ---- background stores -------------------------------------------------- */

/* pc->lock held. Wait while the file (where, name) is being stored in the
 * background: whoever reads, replaces or removes it then sees it stored. */
static void wait_job(struct pcache *pc, int where, const char *name)
{
	const struct job *j = pc->jobs;

	while (j) {
		if (j->where == where && strcmp(j->name, name) == 0) {
			pthread_cond_wait(&pc->job_done, &pc->lock);
			j = pc->jobs;
		} else {
			j = j->next;
		}
	}
}

static int store_now(struct pcache *pc, int where, const struct digest *d, const void *data,
		     size_t len);

static void *job_main(void *arg)
{
	struct job *j = arg, **p;
	struct pcache *pc = j->pc;
	int rc;

	if (j->w) {
		rc = pcache_blob_commit(j->w);
		if (rc)
			log_warn("cache: could not keep %s: %s", j->name, strerror(-rc));
	} else {
		(void)store_now(pc, j->where, &j->d, j->data.data, j->data.len);
	}
	pthread_mutex_lock(&pc->lock);
	for (p = &pc->jobs; *p != j; p = &(*p)->next)
		;
	*p = j->next;
	pc->njobs--;
	pthread_cond_broadcast(&pc->job_done);
	pthread_mutex_unlock(&pc->lock);
	buf_release(&j->data);
	free(j);
	return NULL;
}

void pcache_flush(struct pcache *pc)
{
	pthread_mutex_lock(&pc->lock);
	while (pc->njobs)
		pthread_cond_wait(&pc->job_done, &pc->lock);
	pthread_mutex_unlock(&pc->lock);
}

/* Run job j on a thread of its own (in the caller when there is none). */
static void start_job(struct pcache *pc, struct job *j)
{
	pthread_attr_t attr;
	pthread_t t;
	bool started = false;

	j->pc = pc;
	pthread_mutex_lock(&pc->lock);
	wait_job(pc, j->where, j->name); /* one store of a file at a time, in order */
	j->next = pc->jobs;
	pc->jobs = j;
	pc->njobs++;
	pthread_mutex_unlock(&pc->lock);
	if (!pthread_attr_init(&attr)) {
		started = !pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) &&
			  !pthread_create(&t, &attr, job_main, j);
		pthread_attr_destroy(&attr);
	}
	if (!started)
		job_main(j);
}

/* ---- index and rootfs files --------------------------------------------- */

/* The name of the index (W_INDEX) or rootfs (W_ROOTFS) file for `d`:
 * "<hex>.idx", "<hex>.rfs". */
static void small_name(char name[NAME_MAX_LEN], int where, const struct digest *d)
{
	const char *ext = where == W_INDEX ? "idx" : "rfs";
	char hex[DIGEST_HEX_LEN + 1];

	snprintf(name, NAME_MAX_LEN, "%s.%s", digest_hex(d, hex), ext);
}

static char *small_path(struct pcache *pc, int where, const struct digest *d,
			char name[NAME_MAX_LEN])
{
	small_name(name, where, d);
	return path_join(pc->dirs[where], name);
}

/* Read the index or rootfs file (where, d) and mark it used. A file
 * the table does not know (another acrfs sharing the directory wrote it) is
 * entered, so that it counts against the bound, and older ones are evicted
 * if it puts the files over. */
static int small_load(struct pcache *pc, int where, const struct digest *d, struct buf *out)
{
	char name[NAME_MAX_LEN];
	char *path = small_path(pc, where, d, name);
	struct stat st;
	struct entry *e;
	size_t got = 0;
	bool touch = false;
	int fd = -1, rc = 0;

	if (!path)
		return -ENOMEM;
	pthread_mutex_lock(&pc->lock);
	wait_job(pc, where, name);
	pthread_mutex_unlock(&pc->lock);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (fstat(fd, &st)) {
		rc = -errno;
		goto out;
	}
	if ((uint64_t)st.st_size > PCACHE_INDEX_MAX) {
		log_warn("cache: %s is too large (%lld bytes)", path, (long long)st.st_size);
		rc = -EFBIG;
		goto out;
	}
	rc = buf_grow(out, (size_t)st.st_size);
	if (rc)
		goto out;
	while (got < (size_t)st.st_size) {
		ssize_t n = pread(fd, out->data + out->len + got, (size_t)st.st_size - got,
				  (off_t)got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			log_warn("cache: cannot read %s: %s", path, strerror(-rc));
			goto out;
		}
		got += (size_t)n;
	}
	out->len += got;
	out->data[out->len] = '\0';
	pthread_mutex_lock(&pc->lock);
	e = find_entry(&pc->meta, where, name);
	if (e)
		touch = use_entry(pc, e, time(NULL));
	else if (!add_entry(&pc->meta, where, name, got, ++pc->tick, time(NULL)) &&
		 !make_room(pc, &pc->meta, 0)) /* this file last: it is the newest */
		touch = true;
	pthread_mutex_unlock(&pc->lock);
	if (touch)
		(void)futimens(fd, NULL);
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return rc;
}

/* pc->lock held. -ENOSPC when index and rootfs files are not kept at all,
 * -EFBIG when one of `len` bytes is over their whole bound, else 0. */
static int meta_refuses(const struct pcache *pc, size_t len)
{
	return !pc->meta.max ? -ENOSPC : len > pc->meta.max ? -EFBIG : 0;
}

/* Store (replace) the file (where, d), evicting the least recently
 * used index and rootfs files to keep them all within the bound. No store of
 * it may be in the background. */
static int store_now(struct pcache *pc, int where, const struct digest *d, const void *data,
		     size_t len)
{
	const char *dir = pc->dirs[where];
	char name[NAME_MAX_LEN];
	char *tmp = NULL;
	struct entry *e;
	int fd, rc;

	small_name(name, where, d);
	pthread_mutex_lock(&pc->lock);
	rc = meta_refuses(pc, len);
	if (rc) {
		pthread_mutex_unlock(&pc->lock);
		return rc;
	}
	/* The file it replaces goes first: it is not kept beside the new one. */
	e = find_entry(&pc->meta, where, name);
	if (e)
		drop_entry(&pc->meta, e);
	rc = make_room(pc, &pc->meta, len);
	if (!rc)
		pc->meta.pending += len;
	pthread_mutex_unlock(&pc->lock);
	if (rc)
		return rc;
	fd = open_tmp(dir, name, &tmp);
	if (fd < 0) {
		rc = fd;
	} else {
		rc = write_all(fd, data, len);
		if (rc) {
			log_error("cache: cannot write %s: %s", tmp, strerror(-rc));
			close(fd);
			unlink(tmp);
		} else {
			rc = publish(fd, tmp, dir, name);
		}
	}
	pthread_mutex_lock(&pc->lock);
	pc->meta.pending -= len;
	if (!rc)
		rc = add_entry(&pc->meta, where, name, len, ++pc->tick, time(NULL));
	pthread_mutex_unlock(&pc->lock);
	free(tmp);
	return rc;
}

static int small_store(struct pcache *pc, int where, const struct digest *d, const void *data,
		       size_t len)
{
	char name[NAME_MAX_LEN];

	small_name(name, where, d);
	pthread_mutex_lock(&pc->lock);
	wait_job(pc, where, name);
	pthread_mutex_unlock(&pc->lock);
	return store_now(pc, where, d, data, len);
}

/* small_store in the background; `data` is taken (left empty). -ENOSPC or
 * -EFBIG at once when the bound refuses the file, else 0. */
static int small_store_async(struct pcache *pc, int where, const struct digest *d,
			     struct buf *data)
{
	struct job *j;
	int rc;

	pthread_mutex_lock(&pc->lock);
	rc = meta_refuses(pc, data->len);
	pthread_mutex_unlock(&pc->lock);
	j = rc ? NULL : calloc(1, sizeof(*j));
	if (!j) {
		if (!rc)
			rc = small_store(pc, where, d, data->data, data->len);
		buf_release(data);
		return rc;
	}
	j->where = where;
	small_name(j->name, where, d);
	j->d = *d;
	j->data = *data;
	*data = (struct buf)BUF_INIT;
	start_job(pc, j);
	return 0;
}

static int small_remove(struct pcache *pc, int where, const struct digest *d)
{
	char name[NAME_MAX_LEN];
	char *path = small_path(pc, where, d, name);
	struct entry *e;
	int rc = 0;

	if (!path)
		return -ENOMEM;
	pthread_mutex_lock(&pc->lock);
	wait_job(pc, where, name);
	e = find_entry(&pc->meta, where, name);
	if (e)
		drop_entry(&pc->meta, e);
	if (unlink(path))
		rc = -errno;
	pthread_mutex_unlock(&pc->lock);
	free(path);
	return rc;
}

int pcache_index_load(struct pcache *pc, const struct digest *d, struct buf *out)
{
	return small_load(pc, W_INDEX, d, out);
}

int pcache_index_store(struct pcache *pc, const struct digest *d, const void *data,
		       size_t len)
{
	return small_store(pc, W_INDEX, d, data, len);
}

int pcache_index_store_async(struct pcache *pc, const struct digest *d, struct buf *data)
{
	return small_store_async(pc, W_INDEX, d, data);
}

int pcache_index_remove(struct pcache *pc, const struct digest *d)
{
	return small_remove(pc, W_INDEX, d);
}

int pcache_rootfs_load(struct pcache *pc, const struct digest *key, struct buf *out)
{
	return small_load(pc, W_ROOTFS, key, out);
}

int pcache_rootfs_store(struct pcache *pc, const struct digest *key, const void *data,
			size_t len)
{
	return small_store(pc, W_ROOTFS, key, data, len);
}

int pcache_rootfs_store_async(struct pcache *pc, const struct digest *key, struct buf *data)
{
	return small_store_async(pc, W_ROOTFS, key, data);
}

int pcache_rootfs_remove(struct pcache *pc, const struct digest *key)
{
	return small_remove(pc, W_ROOTFS, key);
}

void pcache_set_index_max(struct pcache *pc, uint64_t max)
{
	pthread_mutex_lock(&pc->lock);
	pc->meta.max = max;
	(void)make_room(pc, &pc->meta, 0);
	pthread_mutex_unlock(&pc->lock);
}

/* ---- blob files --------------------------------------------------------- */

int pcache_blob_begin(struct pcache *pc, const struct digest *d, const char *sfx,
		      uint64_t size_hint, struct pcache_writer **out)
{
	struct pcache_writer *w;
	int rc;

	*out = NULL;
	if (pc->blobs.max == 0)
		return -ENOSPC;
	if (size_hint > pc->blobs.max)
		return -EFBIG;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->pc = pc;
	w->fd = -1;
	/* A small blob needs no more than its size. */
	w->batch_cap = size_hint && size_hint < WRITE_BATCH ? (size_t)size_hint : WRITE_BATCH;
	rc = blob_name(w->name, d, sfx);
	if (rc)
		goto fail;
	w->fd = open_tmp(pc->dirs[W_BLOB], w->name, &w->tmp_path);
	if (w->fd < 0) {
		rc = w->fd;
		goto fail;
	}
	*out = w;
	return 0;
fail:
	free(w);
	return rc;
}

/* Write and account `len` bytes. */
static int write_through(struct pcache_writer *w, const void *data, size_t len)
{
	struct pcache *pc = w->pc;
	int rc;

	if (w->err)
		return w->err;
	pthread_mutex_lock(&pc->lock);
	/* Never evict for a file that cannot fit anyway. */
	rc = w->written + len > pc->blobs.max ? -EFBIG : make_room(pc, &pc->blobs, len);
	if (!rc)
		pc->blobs.pending += len;
	pthread_mutex_unlock(&pc->lock);
	if (!rc) {
		w->written += len;
		rc = write_all(w->fd, data, len);
		if (rc)
			log_error("cache: cannot write %s: %s", w->tmp_path, strerror(-rc));
		/* Start writing back as we go, so that the fsync of the commit
		 * has little left to wait for. */
		if (!rc && w->written - w->flushed >= WRITEBACK_STEP) {
			(void)sync_file_range(w->fd, (off_t)w->flushed,
					      (off_t)(w->written - w->flushed), SYNC_FILE_RANGE_WRITE);
			w->flushed = w->written;
		}
	}
	if (rc) {
		/* Give the space back and drop the file now: it will not be kept. */
		w->err = rc;
		pthread_mutex_lock(&pc->lock);
		pc->blobs.pending -= w->written;
		pthread_mutex_unlock(&pc->lock);
		w->written = 0;
		close(w->fd);
		w->fd = -1;
		unlink(w->tmp_path);
	}
	return rc;
}

/* Write what the batch holds. */
static int flush_batch(struct pcache_writer *w)
{
	int rc = w->nbatch ? write_through(w, w->batch, w->nbatch) : w->err;

	w->nbatch = 0;
	return rc;
}

int pcache_blob_write(struct pcache_writer *w, const void *data, size_t len)
{
	int rc;

	if (w->err)
		return w->err;
	if (!w->batch) {
		w->batch = malloc(w->batch_cap);
		if (!w->batch)
			return write_through(w, data, len);
	}
	if (w->nbatch + len > w->batch_cap) {
		rc = flush_batch(w);
		if (rc)
			return rc;
	}
	if (len >= w->batch_cap)
		return write_through(w, data, len);
	memcpy(w->batch + w->nbatch, data, len);
	w->nbatch += len;
	return 0;
}

static void writer_free(struct pcache_writer *w)
{
	free(w->batch);
	if (w->fd >= 0) {
		close(w->fd);
		unlink(w->tmp_path);
	}
	if (w->written) {
		pthread_mutex_lock(&w->pc->lock);
		w->pc->blobs.pending -= w->written;
		pthread_mutex_unlock(&w->pc->lock);
	}
	free(w->tmp_path);
	free(w);
}

int pcache_blob_commit(struct pcache_writer *w)
{
	struct pcache *pc = w->pc;
	int rc = flush_batch(w);

	if (!rc) {
		rc = publish(w->fd, w->tmp_path, pc->dirs[W_BLOB], w->name);
		w->fd = -1;
	}
	pthread_mutex_lock(&pc->lock);
	pc->blobs.pending -= w->written;
	if (!rc)
		rc = add_entry(&pc->blobs, W_BLOB, w->name, w->written, ++pc->tick, time(NULL));
	pthread_mutex_unlock(&pc->lock);
	w->written = 0;
	writer_free(w);
	return rc;
}

void pcache_blob_commit_async(struct pcache_writer *w)
{
	struct job *j = calloc(1, sizeof(*j));

	if (!j) {
		(void)pcache_blob_commit(w);
		return;
	}
	j->where = W_BLOB;
	memcpy(j->name, w->name, sizeof(j->name));
	j->w = w;
	start_job(w->pc, j);
}

void pcache_blob_abort(struct pcache_writer *w)
{
	if (w)
		writer_free(w);
}

ssize_t pcache_blob_pread(struct pcache *pc, const struct digest *d, const char *sfx,
			  void *buf, size_t len, uint64_t off)
{
	char name[NAME_MAX_LEN];
	struct entry *e;
	char *path;
	time_t now = time(NULL);
	bool touch = false;
	size_t got = 0;
	int fd;

	if (blob_name(name, d, sfx))
		return -EINVAL;
	pthread_mutex_lock(&pc->lock);
	wait_job(pc, W_BLOB, name);
	e = find_entry(&pc->blobs, W_BLOB, name);
	if (e)
		touch = use_entry(pc, e, now);
	pthread_mutex_unlock(&pc->lock);
	if (!e)
		return -ENOENT;
	path = path_join(pc->dirs[W_BLOB], name);
	if (!path)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int en = errno;

		free(path);
		return en == ENOENT ? -ENOENT : -EIO;
	}
	if (touch)
		(void)futimens(fd, NULL);
	while (got < len) {
		ssize_t n = pread(fd, (char *)buf + got, len - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_warn("cache: cannot read %s: %s", path, strerror(errno));
			close(fd);
			free(path);
			return -EIO;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	free(path);
	return (ssize_t)got;
}

int pcache_blob_remove(struct pcache *pc, const struct digest *d, const char *sfx)
{
	char name[NAME_MAX_LEN];
	struct entry *e;
	char *path;
	int rc = 0;

	if (blob_name(name, d, sfx))
		return -EINVAL;
	path = path_join(pc->dirs[W_BLOB], name);
	if (!path)
		return -ENOMEM;
	pthread_mutex_lock(&pc->lock);
	wait_job(pc, W_BLOB, name);
	e = find_entry(&pc->blobs, W_BLOB, name);
	if (e)
		drop_entry(&pc->blobs, e);
	if (unlink(path))
		rc = -errno;
	pthread_mutex_unlock(&pc->lock);
	free(path);
	return rc;
}

int pcache_blob_stat(struct pcache *pc, const struct digest *d, const char *sfx,
		     uint64_t *size)
{
	char name[NAME_MAX_LEN];
	struct entry *e;
	int rc = -ENOENT;

	if (blob_name(name, d, sfx))
		return -EINVAL;
	pthread_mutex_lock(&pc->lock);
	wait_job(pc, W_BLOB, name);
	e = find_entry(&pc->blobs, W_BLOB, name);
	if (e) {
		if (size)
			*size = e->size;
		rc = 0;
	}
	pthread_mutex_unlock(&pc->lock);
	return rc;
}

void pcache_stats(struct pcache *pc, struct pcache_stats *st)
{
	pthread_mutex_lock(&pc->lock);
	st->blob_bytes = pc->blobs.total;
	st->blob_files = pc->blobs.nentries;
	st->evictions = pc->blobs.evictions;
	st->max_blob_bytes = pc->blobs.max;
	st->index_bytes = pc->meta.total;
	st->index_files = pc->meta.nentries;
	st->index_evictions = pc->meta.evictions;
	st->max_index_bytes = pc->meta.max;
	pthread_mutex_unlock(&pc->lock);
}
