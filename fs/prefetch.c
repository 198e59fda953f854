/*
 * Design: one mutex guards the cursors (one per watched directory), the job
 * queue and the counters; it is never held while a job runs or while a
 * thread starts. ns_list_cached (called under it) takes only the dirent
 * cache's own lock and never fetches.
 */
#include "fs/prefetch.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "fs/ns.h"
#include "fs/view.h"
#include "image/image.h"
#include "image/layer.h"

/* What a walk needed of one child: of a tag, `need`; of a repository,
 * `need` (TAGS) and, of the one tag used in it (none if several), sub_need. */
struct want {
	enum prefetch_need need;
	char *sub_tag;
	bool sub_many;
	enum prefetch_need sub_need;
};

struct cursor {
	char *dir;
	struct ns_ent *ents; /* the children, as ns_list_cached gave them */
	size_t n;
	long cur;	      /* the walk's current child, -1: none yet */
	struct want cur_w;    /* what it needed of it so far */
	long hi;	      /* the last child queued in this run */
	unsigned steps;	      /* forward moves in this run */
	unsigned win;	      /* how far ahead this run reads now */
	uint64_t used;	      /* LRU stamp */
	time_t taken;	      /* when ents were taken (CLOCK_MONOTONIC seconds) */
};

struct job {
	struct job *next;
	enum ns_kind kind; /* NS_DIR: the tags of `path`; NS_TAG: `tag` of it */
	char *path;
	char *tag;
	struct want w; /* only w.need */
};

struct prefetch {
	struct ns *ns;
	struct views *views;
	unsigned window, nworkers;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct cursor dirs[PREFETCH_DIRS];
	uint64_t clock;
	struct job *head, *tail;
	size_t queued;
	unsigned started;
	unsigned idle; /* workers not running a job (counted from their start) */
	bool stop;
	pthread_t threads[PREFETCH_WORKERS_MAX];
	struct prefetch_stats st;
	unsigned content_loads;	/* images loading ahead (PREFETCH_CONTENT_AHEAD) */
	uint64_t content_bytes; /* their layer blobs' bytes together */
};

static void want_clear(struct want *w)
{
	free(w->sub_tag);
	memset(w, 0, sizeof(*w));
}

/* Add what was needed now to *w. */
static void want_add(struct want *w, enum prefetch_need need, const char *sub_tag,
		     enum prefetch_need sub_need)
{
	if (need > w->need)
		w->need = need;
	if (sub_tag) {
		if (!w->sub_tag && !w->sub_many)
			w->sub_tag = strdup(sub_tag);
		else if (w->sub_tag && strcmp(w->sub_tag, sub_tag)) {
			free(w->sub_tag);
			w->sub_tag = NULL;
			w->sub_many = true;
		}
	}
	if (sub_need > w->sub_need)
		w->sub_need = sub_need;
}

static void cursor_clear(struct cursor *c)
{
	free(c->dir);
	ns_ents_free(c->ents, c->n);
	want_clear(&c->cur_w);
	memset(c, 0, sizeof(*c));
}

static void job_free(struct job *j)
{
	if (!j)
		return;
	free(j->path);
	free(j->tag);
	want_clear(&j->w);
	free(j);
}

int prefetch_new(struct prefetch **out, struct ns *ns, struct views *views, unsigned window,
		 unsigned workers)
{
	struct prefetch *p = calloc(1, sizeof(*p));

	*out = NULL;
	if (!p)
		return -ENOMEM;
	p->ns = ns;
	p->views = views;
	p->window = window;
	p->nworkers = workers < 1 ? 1 : workers > PREFETCH_WORKERS_MAX ? PREFETCH_WORKERS_MAX :
									    workers;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	*out = p;
	return 0;
}

void prefetch_free(struct prefetch *p)
{
	struct job *j;
	unsigned i;

	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->started; i++)
		pthread_join(p->threads[i], NULL);
	while ((j = p->head)) {
		p->head = j->next;
		job_free(j);
	}
	for (i = 0; i < PREFETCH_DIRS; i++)
		cursor_clear(&p->dirs[i]);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* ---- the jobs --------------------------------------------------------------- */

/* The manifest of repo:tag and, for CONTENT, its layers when they are small. */
static void fetch_tag(struct prefetch *p, const char *repo, const char *tag,
		      enum prefetch_need need)
{
	const struct tree *t;
	struct vobj *o;
	struct image *img;
	uint64_t total = 0;
	size_t i;
	bool admit;

	if (need < PF_MANIFEST || views_tag(p->views, repo, tag, &o))
		return;
	img = need >= PF_CONTENT ? vobj_image(o) : NULL;
	if (!img)
		return;
	for (i = 0; i < image_nlayers(img); i++) {
		struct layer *l = image_layer(img, i);

		if (layer_kind(l) < 0)
			return; /* the walk will say what is wrong, not a guess */
		total += layer_size(l);
	}
	if (total > PREFETCH_CONTENT_MAX)
		return;
	/* Admitted: the first image, or one whose blobs fit in what loads
	 * ahead already (a walk over small images keeps every worker busy, one
	 * over fat-tree images loads one at a time). Else left to the walk.
	 * (Loads are at most the workers: each runs on one.) */
	pthread_mutex_lock(&p->lock);
	admit = !p->content_loads || p->content_bytes + total <= PREFETCH_CONTENT_AHEAD;
	if (admit) {
		p->content_loads++;
		p->content_bytes += total;
	}
	pthread_mutex_unlock(&p->lock);
	if (!admit)
		return;
	(void)image_rootfs(img, &t); /* (t unused: no read side needed) */
	pthread_mutex_lock(&p->lock);
	p->content_loads--;
	p->content_bytes -= total;
	pthread_mutex_unlock(&p->lock);
}

static void run_job(struct prefetch *p, const struct job *j)
{
	struct ns_ent *ents;
	size_t n;

	if (j->kind == NS_TAG) {
		fetch_tag(p, j->path, j->tag, j->w.need);
		return;
	}
	if (!ns_list(p->ns, j->path, &ents, &n))
		ns_ents_free(ents, n);
}

static void *worker(void *arg)
{
	struct prefetch *p = arg;
	struct job *j;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->head && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop)
			break;
		j = p->head;
		p->head = j->next;
		if (!p->head)
			p->tail = NULL;
		p->queued--;
		p->idle--;
		pthread_mutex_unlock(&p->lock);
		run_job(p, j);
		job_free(j);
		pthread_mutex_lock(&p->lock);
		p->idle++;
		p->st.done++;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* Queue a job (lock held): the tags of repository `path` (tag NULL), or
 * what `need` says of tag `tag` of it. */
static void queue_job(struct prefetch *p, const char *path, const char *tag,
		      enum prefetch_need need)
{
	struct job *j;

	if (p->queued >= PREFETCH_QUEUE_MAX) {
		p->st.dropped++;
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j)
		return;
	j->kind = tag ? NS_TAG : NS_DIR;
	j->path = strdup(path);
	j->tag = tag ? strdup(tag) : NULL;
	j->w.need = need;
	if (!j->path || (tag && !j->tag)) {
		job_free(j);
		return;
	}
	if (p->tail)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->queued++;
	p->st.queued++;
	pthread_cond_signal(&p->cond);
}

/*
 * Queue what `w` says the walk will need of child i of cursor c (lock
 * held). For a repository, its tags and — at the same time, not after
 * them: one round trip instead of two — the manifest (and layers) of the
 * tag the walk used in the previous one; if this one has no such tag, the
 * registry's "no such tag" is what the walk would get too.
 */
static void queue_child(struct prefetch *p, const struct cursor *c, size_t i,
			const struct want *w)
{
	const struct ns_ent *e = &c->ents[i];

	if (e->kind == NS_TAG) {
		if (w->need >= PF_MANIFEST)
			queue_job(p, c->dir, e->target, w->need);
		return;
	}
	if (w->need >= PF_TAGS)
		queue_job(p, e->target, NULL, PF_TAGS);
	if (w->sub_tag && w->sub_need >= PF_MANIFEST)
		queue_job(p, e->target, w->sub_tag, w->sub_need);
}

/* ---- the cursors ------------------------------------------------------------- */

static time_t mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* The cursor of `dir`, taken over from the least recently used one if new;
 * NULL if the children of `dir` are not known without a request. */
static struct cursor *cursor_of(struct prefetch *p, const char *dir)
{
	struct cursor *c = NULL, *lru = &p->dirs[0];
	struct ns_ent *ents;
	size_t i, n;

	for (i = 0; i < PREFETCH_DIRS; i++) {
		if (p->dirs[i].dir && !strcmp(p->dirs[i].dir, dir)) {
			c = &p->dirs[i];
			break;
		}
		if (p->dirs[i].used < lru->used)
			lru = &p->dirs[i];
	}
	if (!c) {
		if (ns_list_cached(p->ns, dir, &ents, &n))
			return NULL;
		cursor_clear(lru);
		lru->dir = strdup(dir);
		if (!lru->dir) {
			ns_ents_free(ents, n);
			return NULL;
		}
		lru->ents = ents;
		lru->n = n;
		lru->cur = lru->hi = -1;
		lru->taken = mono_s();
		c = lru;
	}
	c->used = ++p->clock;
	return c;
}

/* Position of the child called `name` (kind NS_DIR) or of tag `name` (NS_TAG,
 * listed as `name` or ":name"), or -1. */
static long child_index(const struct cursor *c, enum ns_kind kind, const char *name)
{
	size_t lo = 0, hi = c->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int d = strcmp(c->ents[mid].name, name);

		if (!d)
			return c->ents[mid].kind == kind ? (long)mid : -1;
		if (d < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (kind == NS_TAG) /* a tag clashing with a directory is listed as ":tag" */
		for (size_t i = 0; i < c->n; i++)
			if (c->ents[i].kind == NS_TAG && !strcmp(c->ents[i].target, name))
				return (long)i;
	return -1;
}

/* The walk needed `need` (and, of tag `sub_tag` inside, `sub_need`) of the
 * child `name` of `dir`. */
static void note_child(struct prefetch *p, const char *dir, enum ns_kind kind, const char *name,
		       enum prefetch_need need, const char *sub_tag, enum prefetch_need sub_need)
{
	struct cursor *c;
	struct want learned;
	long i, k, end;

	pthread_mutex_lock(&p->lock);
	c = cursor_of(p, dir);
	i = c ? child_index(c, kind, name) : -1;
	if (c && i < 0 && c->taken != mono_s()) {
		/* Maybe the listing changed since the cursor took it: once more
		 * (at most once a second: a name no listing has costs no copy). */
		cursor_clear(c);
		c = cursor_of(p, dir);
		i = c ? child_index(c, kind, name) : -1;
	}
	if (i < 0 || i == c->cur) {
		if (c && i >= 0)
			want_add(&c->cur_w, need, sub_tag, sub_need);
		pthread_mutex_unlock(&p->lock);
		return;
	}
	if (c->cur < 0 || i < c->cur || i - c->cur > (long)p->window) {
		/* Not a walk in order (or its first step): a new run starts here. */
		want_clear(&c->cur_w);
		c->cur = c->hi = i;
		c->steps = 0;
		c->win = 0;
		want_add(&c->cur_w, need, sub_tag, sub_need);
		pthread_mutex_unlock(&p->lock);
		return;
	}
	/* Forward: what the walk needed of the last child it will need of the
	 * next ones. */
	learned = c->cur_w;
	memset(&c->cur_w, 0, sizeof(c->cur_w));
	c->cur = i;
	want_add(&c->cur_w, need, sub_tag, sub_need);
	if (++c->steps < PREFETCH_STEPS) {
		want_clear(&learned);
		pthread_mutex_unlock(&p->lock);
		return;
	}
	if (learned.sub_many)
		learned.sub_need = PF_NONE;
	/* Like the kernel's file readahead: start small, double while the walk
	 * goes on, so that a short walk wastes little. */
	c->win = c->win ? c->win * 2 : PREFETCH_WINDOW_START;
	if (c->win > p->window)
		c->win = p->window;
	/* Layers are the costly guess: fewer of them ahead. */
	if ((learned.need >= PF_CONTENT || learned.sub_need >= PF_CONTENT) &&
	    c->win > PREFETCH_CONTENT_WINDOW)
		c->win = PREFETCH_CONTENT_WINDOW;
	end = i + (long)c->win;
	if (end >= (long)c->n)
		end = (long)c->n - 1;
	for (k = (c->hi > i ? c->hi : i) + 1; k <= end; k++)
		queue_child(p, c, (size_t)k, &learned);
	if (end > c->hi)
		c->hi = end;
	want_clear(&learned);
	/* A worker more for each job no idle one will take (those running
	 * jobs are busy: starting only up to the queue's length at one time
	 * left a walk with as many workers as its first batch of jobs). */
	while (p->started < p->nworkers && p->queued > p->idle && !p->stop) {
		if (pthread_create(&p->threads[p->started], NULL, worker, p))
			break;
		p->started++;
		p->idle++; /* it takes the next job: worker() */
	}
	pthread_mutex_unlock(&p->lock);
}

/* "a/b/c" -> parent "a/b" (in buf), base "c". */
static bool split(const char *path, char *buf, size_t size, const char **base)
{
	const char *slash = strrchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) : 0;

	if (len >= size)
		return false;
	memcpy(buf, path, len);
	buf[len] = 0;
	*base = slash ? slash + 1 : path;
	return true;
}

void prefetch_note_dir(struct prefetch *p, const char *path, enum prefetch_need need)
{
	char parent[256];
	const char *base;

	if (!p || !p->window || !*path || !split(path, parent, sizeof(parent), &base))
		return;
	note_child(p, parent, NS_DIR, base, need, NULL, PF_NONE);
}

void prefetch_note_tag(struct prefetch *p, const char *repo, const char *tag,
		       enum prefetch_need need)
{
	char parent[256];
	const char *base;

	if (!p || !p->window)
		return;
	note_child(p, repo, NS_TAG, tag, need, NULL, PF_NONE);
	/* Looking into a tag needs its repository's tag list only where a
	 * lookup cannot ask the tag itself (ns_lookup_probes). */
	if (split(repo, parent, sizeof(parent), &base))
		note_child(p, parent, NS_DIR, base,
			   ns_lookup_probes(p->ns) ? PF_NONE : PF_TAGS, tag, need);
}

void prefetch_stats(struct prefetch *p, struct prefetch_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!p)
		return;
	pthread_mutex_lock(&p->lock);
	*out = p->st;
	pthread_mutex_unlock(&p->lock);
}
