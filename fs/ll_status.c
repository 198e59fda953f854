/*
 * .acrfs/ — what the mount is doing, for the user who waits or wonders
 * (fs/ll.h has the contract). Three parts:
 *
 *   - the files: status (JSON), loads, errors, rendered at open into a
 *     snapshot the handle owns (so one read sees one instant, and `cat`,
 *     `less`, `jq` and `watch cat` see a whole file), served with direct_io
 *     because the size is known only then; getattr reports the size of the
 *     last snapshot of that file (0 before the first open), like /proc a
 *     number to read past, not a promise. Nothing here sends a request:
 *     everything comes from counters kept as the mount works.
 *   - the request context: each worker thread notes which operation on
 *     which inode it serves (thread-local, no lock); the log hook records
 *     every warning and error, already redacted by common/log, in
 *     fs/errlog with that operation and path.
 *   - the progress line of -f on a terminal: a thread redraws one line of
 *     stderr every 250 ms while a layer load runs for more than a second;
 *     the log hook clears it before a message is written. `line_mu` guards
 *     `line_shown` and every write of the line (a leaf lock).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/log.h"
#include "fs/errlog.h"
#include "fs/itable.h"
#include "common/reclaim.h"
#include "fs/dcache.h"
#include "fs/listing.h"
#include "fs/ll.h"
#include "fs/ns.h"
#include "fs/opts.h"
#include "fs/prefetch.h"
#include "fs/view.h"
#include "image/budget.h"
#include "image/pcache.h"
#include "image/progress.h"
#include "registry/http.h"
#include "registry/registry.h"

#define STATUS_TIMEOUT 86400.0 /* the names never change */

enum sfile { SF_ERRORS, SF_LOADS, SF_STATUS, SF_N };
/* Listing order = enum order. */
static const char *const sfile_name[SF_N] = { "errors", "loads", "status" };

static struct acrfs *the_fs; /* set once, before threads start */
static uint64_t last_size[SF_N]; /* atomic: size of the last snapshot */

/* The memory budget's figures (-o mem_max) and what reclaiming freed. */
static void add_budget(cJSON *x, struct budget *b)
{
	struct budget_stats st;
	uint64_t freed, waiting;

	budget_get_stats(b, &st);
	reclaim_counts(&freed, &waiting);
	cJSON_AddNumberToObject(x, "max_bytes", (double)st.max);
	cJSON_AddNumberToObject(x, "bytes", (double)st.bytes);
	cJSON_AddNumberToObject(x, "peak_bytes", (double)st.peak);
	cJSON_AddNumberToObject(x, "units", (double)st.units);
	cJSON_AddNumberToObject(x, "evictions", (double)st.evictions);
	cJSON_AddNumberToObject(x, "busy", (double)st.busy);
	cJSON_AddNumberToObject(x, "reclaimed", (double)freed);
	cJSON_AddNumberToObject(x, "reclaim_pending", (double)waiting);
}

/* ---- request context and the log hook ------------------------------------ */

static __thread const char *req_op;
static __thread uint64_t req_ino;
static __thread const char *req_name;
static __thread unsigned req_reclaim; /* its reclaim read side's token */

void acrfs_req_enter(const char *op, uint64_t ino, const char *name)
{
	req_op = op;
	req_ino = ino;
	req_name = name;
	req_reclaim = reclaim_enter();
}

void acrfs_req_leave(void)
{
	reclaim_leave(req_reclaim);
	req_op = NULL;
}

/* The path of inode `n` as the user would name it, as far as its key tells. */
static void inode_path(const struct inode *n, struct buf *out)
{
	char hex[16];

	switch (n->kind) {
	case K_DIR:
		buf_addf(out, "/%s", n->a);
		break;
	case K_TAG:
		buf_addf(out, "/%s/%s", n->a, n->b);
		break;
	case K_VROOT:
		buf_addf(out, "/%s/%s", n->a, n->b);
		break;
	case K_VNODE: {
		/* b = "<root ino>|sha256:<hex>|<part>" */
		const char *d = strchr(n->b, '|'), *part = d ? strchr(d + 1, '|') : NULL;

		snprintf(hex, sizeof(hex), "%.12s", d && strlen(d) > 8 ? d + 8 : "?");
		buf_addf(out, "/%s@sha256:%s/%s", n->a, hex, part ? part + 1 : "?");
		break;
	}
	case K_SDIR:
		buf_adds(out, "/" ACRFS_STATUS_DIR);
		break;
	case K_SFILE:
		buf_addf(out, "/" ACRFS_STATUS_DIR "/%s", n->a);
		break;
	default:
		buf_adds(out, "?");
	}
}

static pthread_mutex_t line_mu = PTHREAD_MUTEX_INITIALIZER;
static bool line_shown; /* guarded by line_mu */

static void line_clear_locked(void)
{
	static const char clear[] = "\r\033[K";

	if (line_shown && write(STDERR_FILENO, clear, sizeof(clear) - 1) < 0) {
		/* nothing to do: stderr is gone */
	}
	line_shown = false;
}

static void on_log(enum log_level level, const char *msg)
{
	struct buf path = BUF_INIT;
	struct inode *n;

	pthread_mutex_lock(&line_mu);
	line_clear_locked();
	pthread_mutex_unlock(&line_mu);
	if (level > LOG_LVL_WARN)
		return;
	if (req_op && the_fs) {
		/* Borrowed: the kernel holds the inode while its request runs. */
		n = req_ino == FUSE_ROOT_ID ? NULL : itable_get(the_fs->inodes, req_ino);
		if (n)
			inode_path(n, &path);
		if (req_name)
			buf_addf(&path, "/%s", req_name);
		else if (!path.len)
			buf_adds(&path, "/");
	}
	/* Out of memory: the entry keeps its cause with path "-". */
	errlog_add(time(NULL), req_op ? req_op : "-", path.len ? path.data : NULL, msg);
	buf_release(&path);
}

void acrfs_status_init(struct acrfs *fs)
{
	the_fs = fs;
	log_set_hook(on_log);
}

/* ---- rendering ------------------------------------------------------------ */

static int render_loads(struct buf *out)
{
	struct progress_snap *s;
	char line[PROGRESS_REPO_MAX + 160];
	long n = progress_snapshot(&s), i;
	int rc = 0;

	if (n < 0)
		return (int)n;
	for (i = 0; i < n && !rc; i++)
		rc = buf_addf(out, "%s\n", progress_format(&s[i], line, sizeof(line)));
	free(s);
	return rc;
}

static double since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) + (double)(now.tv_nsec - t0->tv_nsec) / 1e9;
}

/* RSS from /proc/self/statm (0 if unreadable). */
static uint64_t rss_bytes(void)
{
	unsigned long long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "re");

	if (!f)
		return 0;
	if (fscanf(f, "%llu %llu", &size, &resident) != 2)
		resident = 0;
	fclose(f);
	return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

static cJSON *add_obj(cJSON *parent, const char *name)
{
	cJSON *o = cJSON_CreateObject();

	if (o && !cJSON_AddItemToObject(parent, name, o)) {
		cJSON_Delete(o);
		o = NULL;
	}
	return o;
}

static void add_str(cJSON *o, const char *name, const char *v)
{
	if (v)
		cJSON_AddStringToObject(o, name, v);
	else
		cJSON_AddNullToObject(o, name);
}

static void add_requests(cJSON *root, const struct http_stats *hs)
{
	static const char *const cls[HTTP_C_N] = { "2xx", "3xx", "4xx", "5xx", "error" };
	cJSON *req = add_obj(root, "requests");
	uint64_t total = 0;

	for (int k = 0; req && k < HTTP_K_N; k++) {
		cJSON *o = add_obj(req, http_kind_name((enum http_kind)k));

		for (int c = 0; o && c < HTTP_C_N; c++) {
			cJSON_AddNumberToObject(o, cls[c], (double)hs->requests[k][c]);
			total += hs->requests[k][c];
		}
	}
	if (req)
		cJSON_AddNumberToObject(req, "total", (double)total);
}

static void add_loads(cJSON *root)
{
	struct progress_snap *s;
	char ds[DIGEST_STR_SIZE];
	uint64_t done, bytes;
	long n = progress_snapshot(&s);
	cJSON *o = add_obj(root, "layer_loads"), *cur, *l;

	if (!o) {
		free(s);
		return;
	}
	progress_totals(&done, &bytes);
	cJSON_AddNumberToObject(o, "in_progress", n > 0 ? (double)n : 0);
	cJSON_AddNumberToObject(o, "done", (double)done);
	cJSON_AddNumberToObject(o, "bytes_done", (double)bytes);
	cur = cJSON_AddArrayToObject(o, "current");
	for (long i = 0; cur && i < n; i++) {
		l = cJSON_CreateObject();
		if (!l || !cJSON_AddItemToArray(cur, l)) {
			cJSON_Delete(l);
			break;
		}
		cJSON_AddStringToObject(l, "repository", s[i].repo);
		cJSON_AddStringToObject(l, "digest", digest_format(&s[i].digest, ds));
		cJSON_AddNumberToObject(l, "bytes", (double)s[i].done);
		cJSON_AddNumberToObject(l, "total", (double)s[i].total);
		cJSON_AddNumberToObject(l, "elapsed_s", s[i].elapsed);
	}
	free(s);
}

static int render_status(struct acrfs *fs, struct buf *out)
{
	const struct acrfs_opts *o = fs->opts;
	struct http_stats hs;
	struct pcache_stats ps;
	struct mallinfo2 mi = mallinfo2();
	size_t images = 0, layers = 0;
	char started[32] = "", *text;
	struct tm tm;
	cJSON *root = cJSON_CreateObject(), *x;
	int rc;

	if (!root)
		return -ENOMEM;
	cJSON_AddStringToObject(root, "version", ACRFS_VERSION);
	add_str(root, "registry", fs->url);
	add_str(root, "mountpoint", o ? o->mountpoint : NULL);
	if ((x = add_obj(root, "identity"))) {
		add_str(x, "source", fs->identity);
		add_str(x, "kind", fs->identity_kind);
		add_str(x, "username", fs->username);
	}
	if (o && (x = add_obj(root, "options"))) {
		cJSON_AddNumberToObject(x, "ttl", (double)o->ttl);
		cJSON_AddBoolToObject(x, "read_only", o->ro);
		cJSON_AddBoolToObject(x, "allow_other", o->allow_other);
		cJSON_AddNumberToObject(x, "threads", o->threads);
		cJSON_AddBoolToObject(x, "foreground", o->foreground);
		cJSON_AddBoolToObject(x, "debug", o->debug);
		add_str(x, "ca_file", o->ca_file);
		add_str(x, "docker_config", o->docker_config);
		add_str(x, "cache_dir", fs->pcache ? pcache_dir(fs->pcache) : o->cache_dir);
		cJSON_AddNumberToObject(x, "cache_max", (double)o->cache_max);
		cJSON_AddNumberToObject(x, "index_max", (double)o->index_max);
		add_str(x, "fuse", o->fuse_argv.n > 2 ? o->fuse_argv.v[2] : "");
	}
	gmtime_r(&fs->mounted_at.tv_sec, &tm);
	strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", &tm); /* fits: 20 chars */
	cJSON_AddStringToObject(root, "started", started);
	cJSON_AddNumberToObject(root, "uptime_s", (double)(int64_t)(since(&fs->started) * 10) / 10);
	registry_http_stats(fs->reg, &hs);
	add_requests(root, &hs);
	cJSON_AddNumberToObject(root, "retries", (double)hs.retries);
	cJSON_AddNumberToObject(root, "bytes_fetched", (double)hs.bytes);
	if (fs->pcache && (x = add_obj(root, "cache"))) {
		pcache_stats(fs->pcache, &ps);
		cJSON_AddStringToObject(x, "dir", pcache_dir(fs->pcache));
		cJSON_AddNumberToObject(x, "blob_bytes", (double)ps.blob_bytes);
		cJSON_AddNumberToObject(x, "blob_files", (double)ps.blob_files);
		cJSON_AddNumberToObject(x, "max_blob_bytes", (double)ps.max_blob_bytes);
		cJSON_AddNumberToObject(x, "evictions", (double)ps.evictions);
		cJSON_AddNumberToObject(x, "index_bytes", (double)ps.index_bytes);
		cJSON_AddNumberToObject(x, "index_files", (double)ps.index_files);
		cJSON_AddNumberToObject(x, "max_index_bytes", (double)ps.max_index_bytes);
		cJSON_AddNumberToObject(x, "index_evictions", (double)ps.index_evictions);
	} else if (!fs->pcache) {
		cJSON_AddNullToObject(root, "cache");
	}
	views_count(fs->views, &images, &layers);
	cJSON_AddNumberToObject(root, "images", (double)images);
	cJSON_AddNumberToObject(root, "layers_loaded", (double)layers);
	add_loads(root);
	if ((x = add_obj(root, "prefetch"))) { /* fs/prefetch.h */
		struct prefetch_stats pf;

		prefetch_stats(fs->prefetch, &pf);
		cJSON_AddNumberToObject(x, "window", fs->prefetch && o ? (double)o->prefetch : 0);
		cJSON_AddNumberToObject(x, "queued", (double)pf.queued);
		cJSON_AddNumberToObject(x, "done", (double)pf.done);
		cJSON_AddNumberToObject(x, "dropped", (double)pf.dropped);
	}
	cJSON_AddNumberToObject(root, "inodes", (double)itable_count(fs->inodes));
	cJSON_AddNumberToObject(root, "inode_bytes", (double)itable_bytes(fs->inodes));
	/* What the cached lists (catalog, tags, tag resolutions, referrers, ACR
	 * repositories) and the directories' listings take, and the view objects:
	 * all counted in the memory budget too. */
	cJSON_AddNumberToObject(root, "listing_bytes",
				(double)(ns_bytes(fs->ns) + views_list_bytes(fs->views) +
					 dcache_bytes(fs->acr_repos) + listings_bytes(fs->listings)));
	cJSON_AddNumberToObject(root, "view_bytes", (double)views_object_bytes(fs->views));
	cJSON_AddNumberToObject(root, "errors", (double)errlog_total());
	if ((x = add_obj(root, "memory"))) {
		cJSON_AddNumberToObject(x, "rss_bytes", (double)rss_bytes());
		if (fs->budget)
			add_budget(x, fs->budget);
		/* glibc's malloc: 0 everywhere means another allocator (ASan) answers. */
		if (mi.arena || mi.hblkhd) {
			cJSON_AddNumberToObject(x, "heap_in_use_bytes",
						(double)(mi.uordblks + mi.hblkhd));
			cJSON_AddNumberToObject(x, "heap_free_bytes", (double)mi.fordblks);
		} else {
			cJSON_AddNullToObject(x, "heap_in_use_bytes");
			cJSON_AddNullToObject(x, "heap_free_bytes");
		}
	}
	text = cJSON_Print(root);
	cJSON_Delete(root);
	if (!text)
		return -ENOMEM;
	rc = buf_addf(out, "%s\n", text);
	free(text);
	return rc;
}

static int render(struct acrfs *fs, enum sfile f, struct buf *out)
{
	switch (f) {
	case SF_STATUS:
		return render_status(fs, out);
	case SF_LOADS:
		return render_loads(out);
	case SF_ERRORS:
		return errlog_render(out);
	default:
		return -ENOENT;
	}
}

/* ---- the FUSE side ----------------------------------------------------------- */

static int sfile_of(const char *name)
{
	for (int i = 0; i < SF_N; i++)
		if (!strcmp(name, sfile_name[i]))
			return i;
	return -1;
}

void acrfs_status_attr(struct acrfs *fs, const struct inode *n, struct stat *st)
{
	int f = n->kind == K_SFILE ? sfile_of(n->a) : -1;

	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = fs->mounted_at;
	if (n->kind == K_SDIR) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
		return;
	}
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	if (f >= 0)
		st->st_size = (off_t)__atomic_load_n(&last_size[f], __ATOMIC_RELAXED);
	clock_gettime(CLOCK_REALTIME, &st->st_mtim); /* generated when read */
	st->st_ctim = st->st_mtim;
}

/* Reference the inode of .acrfs (name NULL) or of .acrfs/<name>. */
static int ref_status(struct acrfs *fs, const char *name, struct inode **out)
{
	char key[32];

	if (!name)
		return itable_ref(fs->inodes, "S/", K_SDIR, "", NULL, out);
	if ((size_t)snprintf(key, sizeof(key), "S/%s", name) >= sizeof(key))
		return -ENAMETOOLONG;
	return itable_ref(fs->inodes, key, K_SFILE, name, NULL, out);
}

static void fill_entry(struct acrfs *fs, const struct inode *n, struct fuse_entry_param *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->ino = n->ino;
	ep->generation = 1;
	acrfs_status_attr(fs, n, &ep->attr);
	ep->entry_timeout = STATUS_TIMEOUT;
	/* Sizes change with every snapshot: ask each time. */
	ep->attr_timeout = n->kind == K_SDIR ? STATUS_TIMEOUT : 0;
}

void acrfs_status_lookup(fuse_req_t req, struct inode *dir, const char *name)
{
	struct acrfs *fs = fuse_req_userdata(req);
	struct fuse_entry_param ep;
	struct inode *n;
	int rc;

	if (dir->kind == K_SDIR) {
		if (sfile_of(name) < 0) {
			acrfs_reply_negative(req, STATUS_TIMEOUT);
			return;
		}
		rc = ref_status(fs, name, &n);
	} else {
		rc = ref_status(fs, NULL, &n);
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fill_entry(fs, n, &ep);
	acrfs_reply_entry_ref(req, fs, n, &ep);
}

void acrfs_status_readdir(fuse_req_t req, uint64_t ino, size_t size, off_t off, bool plus)
{
	struct acrfs *fs = fuse_req_userdata(req);
	char *buf = malloc(size ? size : 1);
	struct dirent_buf d = { buf, size };
	off_t i;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* Offsets: 0 ".", 1 "..", 2+i file i. */
	for (i = off; i < SF_N + 2; i++) {
		struct fuse_entry_param ep;
		struct inode *n = NULL;
		const char *name = i == 0 ? "." : i == 1 ? ".." : sfile_name[i - 2];

		memset(&ep, 0, sizeof(ep));
		if (i < 2) {
			ep.attr.st_mode = S_IFDIR;
			ep.attr.st_ino = i == 0 ? ino : FUSE_ROOT_ID;
		} else if (plus) {
			if (ref_status(fs, name, &n))
				break;
			fill_entry(fs, n, &ep);
		} else {
			ep.attr.st_mode = S_IFREG;
		}
		if (!acrfs_add_dirent(req, fs, &d, name, &ep, i + 1, plus, n))
			break;
	}
	fuse_reply_buf(req, buf, size - d.rem);
	free(buf);
}

/*
 * An open file's snapshot. A read holds a reference while it replies: the
 * kernel may take the reply's bytes, let the reader close the file and send
 * RELEASE, which another thread serves, before fuse_reply_buf has returned
 * here (ASan's writev interceptor even reads the buffer after the syscall),
 * so the bytes must outlive the reply call, not just its delivery.
 */
struct snap {
	uint32_t refs; /* atomic: the open file's, plus one per read replying */
	struct buf b;
};

static void snap_put(struct snap *s)
{
	if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0) {
		buf_release(&s->b);
		free(s);
	}
}

void acrfs_status_open(fuse_req_t req, struct inode *n, struct fuse_file_info *fi)
{
	struct acrfs *fs = fuse_req_userdata(req);
	int f = n->kind == K_SFILE ? sfile_of(n->a) : -1;
	struct snap *snap;
	int rc;

	if (n->kind == K_SDIR) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, fs->ro ? EROFS : EACCES);
		return;
	}
	if (f < 0) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	snap = calloc(1, sizeof(*snap));
	if (!snap) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	snap->refs = 1;
	snap->b = (struct buf)BUF_INIT;
	rc = render(fs, (enum sfile)f, &snap->b);
	if (rc) {
		snap_put(snap);
		fuse_reply_err(req, -rc);
		return;
	}
	__atomic_store_n(&last_size[f], (uint64_t)snap->b.len, __ATOMIC_RELAXED);
	fi->fh = (uint64_t)(uintptr_t)snap | ACRFS_FH_STATUS;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi))
		snap_put(snap);
}

static struct snap *snap_of(const struct fuse_file_info *fi)
{
	return (struct snap *)(uintptr_t)(fi->fh & ~(uint64_t)ACRFS_FH_STATUS);
}

void acrfs_status_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct snap *snap = snap_of(fi);

	__atomic_add_fetch(&snap->refs, 1, __ATOMIC_ACQ_REL);
	if (off < 0 || (uint64_t)off >= snap->b.len)
		size = 0;
	else if (size > snap->b.len - (size_t)off)
		size = snap->b.len - (size_t)off;
	fuse_reply_buf(req, size ? snap->b.data + off : NULL, size);
	snap_put(snap);
}

void acrfs_status_release(fuse_req_t req, struct fuse_file_info *fi)
{
	snap_put(snap_of(fi));
	fuse_reply_err(req, 0);
}

/* ---- the progress line of -f on a terminal -------------------------------- */

static pthread_mutex_t tick_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t tick_cv;
static bool tick_stop; /* guarded by tick_mu */
static bool tick_running; /* main thread only (start, stop) */
static pthread_t tick_thread;

/* Draw the oldest load running for more than a second, or clear the line. */
static void tick_once(void)
{
	struct progress_snap *s;
	struct winsize ws;
	char line[PROGRESS_REPO_MAX + 200], more[32] = "";
	size_t cols = 80, len;
	long n = progress_snapshot(&s), i, shown = -1, waiting = 0;

	for (i = 0; i < n; i++)
		if (s[i].elapsed >= 1.0) {
			waiting++;
			if (shown < 0)
				shown = i;
		}
	pthread_mutex_lock(&line_mu);
	if (shown < 0) {
		line_clear_locked();
	} else {
		if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
			cols = ws.ws_col;
		if (waiting > 1)
			snprintf(more, sizeof(more), " (+%ld more)", waiting - 1);
		memcpy(line, "\racrfs: loading ", 16);
		progress_format(&s[shown], line + 16, sizeof(line) - 16 - sizeof(more));
		strcat(line, more);
		/* One line only: never wrap on a narrow terminal. */
		len = strlen(line);
		if (len > cols)
			len = cols;
		if (write(STDERR_FILENO, line, len) < 0 || write(STDERR_FILENO, "\033[K", 3) < 0) {
			/* stderr is gone: nothing to show */
		}
		line_shown = true;
	}
	pthread_mutex_unlock(&line_mu);
	free(s);
}

static void *tick_main(void *arg)
{
	struct timespec t;

	(void)arg;
	pthread_mutex_lock(&tick_mu);
	while (!tick_stop) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		t.tv_nsec += 250 * 1000000L;
		if (t.tv_nsec >= 1000000000L) {
			t.tv_sec++;
			t.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&tick_cv, &tick_mu, &t);
		if (tick_stop)
			break;
		pthread_mutex_unlock(&tick_mu);
		tick_once();
		pthread_mutex_lock(&tick_mu);
	}
	pthread_mutex_unlock(&tick_mu);
	return NULL;
}

int acrfs_progress_start(void)
{
	pthread_condattr_t ca;
	int rc;

	if (!isatty(STDERR_FILENO))
		return 0;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&tick_cv, &ca);
	pthread_condattr_destroy(&ca);
	rc = pthread_create(&tick_thread, NULL, tick_main, NULL);
	if (rc) {
		pthread_cond_destroy(&tick_cv);
		return -rc;
	}
	tick_running = true;
	return 0;
}

void acrfs_progress_stop(void)
{
	if (!tick_running)
		return;
	pthread_mutex_lock(&tick_mu);
	tick_stop = true;
	pthread_cond_signal(&tick_cv);
	pthread_mutex_unlock(&tick_mu);
	pthread_join(tick_thread, NULL);
	pthread_cond_destroy(&tick_cv);
	tick_running = false;
	pthread_mutex_lock(&line_mu);
	line_clear_locked();
	pthread_mutex_unlock(&line_mu);
}
