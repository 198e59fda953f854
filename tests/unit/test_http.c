/*
 * registry/http and the trust rules above it, against tiny scripted HTTP servers on
 * 127.0.0.1 (threads of this process): redirects followed by http_do (Authorization
 * dropped for good once a hop leaves the origin, cross_origin reported), the deadline
 * (a frozen server, a slow body collected vs streamed, a Retry-After beyond what is
 * waited for), the mount-wide throttle a 429 sets (issue 11), and a
 * storage host's 401 with a foreign realm, which is never recorded nor answered with
 * credentials (registry_blob_get: -EIO, the evil realm never asked).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "auth/creds.h"
#include "common/buf.h"
#include "common/digest.h"
#include "common/log.h"
#include "registry/blob.h"
#include "registry/http.h"
#include "registry/registry.h"

#define MAXREQ 64
#define MAXCONN 64

struct srv;
struct req {
	char method[16];
	char path[512];
	bool auth; /* carried an Authorization header */
	char authz[128];
};
typedef void (*handler_fn)(struct srv *s, int fd, const struct req *rq);

struct srv {
	int lfd, port;
	pthread_t accept_th;
	handler_fn handler;
	char arg[256]; /* the handler's parameter (a redirect target, a realm) */
	pthread_mutex_t lock; /* guards reqs, nreq, conns, nconn */
	struct req reqs[MAXREQ];
	int nreq;
	pthread_t conns[MAXCONN];
	int nconn;
};

struct conn {
	struct srv *s;
	int fd;
};

static void send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w <= 0)
			return;
		p += w;
		n -= (size_t)w;
	}
}

static void reply(int fd, const char *status, const char *headers, const char *body)
{
	char head[1024];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %s\r\n%sContent-Length: %zu\r\nConnection: close\r\n\r\n", status,
			 headers ? headers : "", strlen(body));

	send_all(fd, head, (size_t)n);
	send_all(fd, body, strlen(body));
}

static void *conn_run(void *p)
{
	struct conn *c = p;
	struct srv *s = c->s;
	char buf[8192];
	size_t got = 0;
	struct req rq;
	char *line, *save = NULL;

	memset(&rq, 0, sizeof(rq));
	while (got < sizeof(buf) - 1) {
		ssize_t r = recv(c->fd, buf + got, sizeof(buf) - 1 - got, 0);

		if (r <= 0)
			goto out;
		got += (size_t)r;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			break;
	}
	line = strtok_r(buf, "\r\n", &save);
	if (!line || sscanf(line, "%15s %511s", rq.method, rq.path) != 2)
		goto out;
	while ((line = strtok_r(NULL, "\r\n", &save))) {
		if (strncasecmp(line, "Authorization:", 14) == 0) {
			rq.auth = true;
			snprintf(rq.authz, sizeof(rq.authz), "%s", line + 14);
		}
	}
	pthread_mutex_lock(&s->lock);
	if (s->nreq < MAXREQ)
		s->reqs[s->nreq++] = rq;
	pthread_mutex_unlock(&s->lock);
	s->handler(s, c->fd, &rq);
out:
	close(c->fd);
	free(c);
	return NULL;
}

static void *accept_run(void *p)
{
	struct srv *s = p;

	for (;;) {
		int fd = accept(s->lfd, NULL, NULL);
		struct conn *c;

		if (fd < 0)
			return NULL; /* closed: stop */
		c = calloc(1, sizeof(*c));
		c->s = s;
		c->fd = fd;
		pthread_mutex_lock(&s->lock);
		if (s->nconn < MAXCONN && pthread_create(&s->conns[s->nconn], NULL, conn_run, c) == 0)
			s->nconn++;
		else {
			close(fd);
			free(c);
		}
		pthread_mutex_unlock(&s->lock);
	}
}

static struct srv *srv_start(handler_fn h)
{
	struct srv *s = calloc(1, sizeof(*s));
	struct sockaddr_in a = { 0 };
	socklen_t len = sizeof(a);

	assert_non_null(s);
	pthread_mutex_init(&s->lock, NULL);
	s->handler = h;
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(s->lfd, 64), 0);
	assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &len), 0);
	s->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&s->accept_th, NULL, accept_run, s), 0);
	return s;
}

/* Stop accepting and join every connection (the clients must be gone: http_free). */
static void srv_stop(struct srv *s)
{
	shutdown(s->lfd, SHUT_RDWR);
	close(s->lfd);
	pthread_join(s->accept_th, NULL);
	for (int i = 0; i < s->nconn; i++)
		pthread_join(s->conns[i], NULL);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static int srv_count(struct srv *s, const char *path_prefix, bool *any_auth)
{
	int n = 0;

	pthread_mutex_lock(&s->lock);
	for (int i = 0; i < s->nreq; i++) {
		if (strncmp(s->reqs[i].path, path_prefix, strlen(path_prefix)) != 0)
			continue;
		n++;
		if (any_auth && s->reqs[i].auth)
			*any_auth = true;
	}
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ------------------------------------------------------------ handlers */

static void h_redirect(struct srv *s, int fd, const struct req *rq)
{
	char hdr[400];

	(void)rq;
	snprintf(hdr, sizeof(hdr), "Location: %s\r\n", s->arg);
	reply(fd, "307 Temporary Redirect", hdr, "");
}

static void h_hello(struct srv *s, int fd, const struct req *rq)
{
	(void)s;
	(void)rq;
	reply(fd, "200 OK", "Content-Type: text/plain\r\n", "hello from the target");
}

/* Redirects /a to /b on itself, serves /b. */
static void h_self(struct srv *s, int fd, const struct req *rq)
{
	(void)s;
	if (strcmp(rq->path, "/a") == 0)
		reply(fd, "302 Found", "Location: /b\r\n", "");
	else
		reply(fd, "200 OK", NULL, "b");
}

static void h_frozen(struct srv *s, int fd, const struct req *rq)
{
	char b[256];

	(void)s;
	(void)rq;
	while (recv(fd, b, sizeof(b), 0) > 0)
		;
}

/* 10 x 4 KiB, 250 ms apart: ~16 KiB/s, 2.5 s in all. */
static void h_slow(struct srv *s, int fd, const struct req *rq)
{
	char chunk[4096];
	char head[] = "HTTP/1.1 200 OK\r\nContent-Length: 40960\r\nConnection: close\r\n\r\n";

	(void)s;
	(void)rq;
	memset(chunk, 'z', sizeof(chunk));
	send_all(fd, head, strlen(head));
	for (int i = 0; i < 10; i++) {
		send_all(fd, chunk, sizeof(chunk));
		usleep(250000);
	}
}

static void h_429_long(struct srv *s, int fd, const struct req *rq)
{
	(void)s;
	(void)rq;
	reply(fd, "429 Too Many Requests", "Retry-After: 3600\r\n", "{}");
}

/*
 * A registry that throttles: the first 3 requests for /busy get a 429 with
 * Retry-After: 1; /busy then /other answer 200. A violation: a /busy retry
 * arriving before the second its last 429 asked for is over, or /other
 * arriving within the second the first 429 asked for (other_run sends it
 * only after the second 429: by then the client knew of the first).
 */
static int throttle_busy, throttle_violations;
static int64_t throttle_closed_until, throttle_first_until; /* monotonic ms; s->lock */

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void h_throttle(struct srv *s, int fd, const struct req *rq)
{
	bool busy;

	pthread_mutex_lock(&s->lock);
	if (now_ms() < (strcmp(rq->path, "/busy") ? throttle_first_until : throttle_closed_until))
		throttle_violations++;
	busy = !strcmp(rq->path, "/busy") && throttle_busy < 3;
	if (busy) {
		throttle_busy++;
		throttle_closed_until = now_ms() + 1000;
		if (!throttle_first_until)
			throttle_first_until = throttle_closed_until;
	}
	pthread_mutex_unlock(&s->lock);
	if (busy)
		reply(fd, "429 Too Many Requests", "Retry-After: 1\r\n", "{}");
	else
		reply(fd, "200 OK", NULL, rq->path);
}

/* A storage host that claims to be a token-protected registry. */
static void h_evil_storage(struct srv *s, int fd, const struct req *rq)
{
	char hdr[400];

	(void)rq;
	snprintf(hdr, sizeof(hdr),
		 "WWW-Authenticate: Bearer realm=\"%s\",service=\"evil\",scope=\"x\"\r\n", s->arg);
	reply(fd, "401 Unauthorized", hdr, "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}");
}

static void h_unauthorized(struct srv *s, int fd, const struct req *rq)
{
	(void)s;
	(void)rq;
	reply(fd, "401 Unauthorized", NULL, "{}");
}

/* A registry with Basic auth whose blobs live on a storage host (s->arg). */
static void h_registry(struct srv *s, int fd, const struct req *rq)
{
	char hdr[1024];

	if (!rq->auth) {
		reply(fd, "401 Unauthorized", "WWW-Authenticate: Basic realm=\"reg\"\r\n",
		      "{\"errors\":[{\"code\":\"UNAUTHORIZED\"}]}");
	} else if (strstr(rq->path, "/blobs/")) {
		snprintf(hdr, sizeof(hdr), "Location: %s%s?sig=SECRET\r\n", s->arg, rq->path);
		reply(fd, "307 Temporary Redirect", hdr, "");
	} else if (strstr(rq->path, "/tags/list")) {
		reply(fd, "200 OK", "Content-Type: application/json\r\n",
		      "{\"name\":\"app\",\"tags\":[\"v1\"]}");
	} else {
		reply(fd, "200 OK", NULL, "{}");
	}
}

/* ------------------------------------------------------------ tests */

static struct http *new_http(long deadline_ms)
{
	struct http *h = NULL;
	struct http_opts o = { 0 };

	o.max_retries = 2;
	o.backoff_ms = 50;
	o.deadline_ms = deadline_ms;
	assert_int_equal(http_new(&h, &o), 0);
	return h;
}

static void test_cross_origin_redirect(void **st)
{
	struct srv *a = srv_start(h_redirect), *b = srv_start(h_hello);
	struct http *h = new_http(10000);
	static const char *const hdrs[] = { "Accept: */*", "Authorization: Bearer reg-token", NULL };
	struct http_req req = { 0 };
	struct http_resp resp = HTTP_RESP_INIT;
	char url[128], target[128];
	bool auth = false;

	(void)st;
	snprintf(target, sizeof(target), "http://127.0.0.1:%d/blob?sig=x", b->port);
	snprintf(a->arg, sizeof(a->arg), "%s", target);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/app/blobs/x", a->port);
	req.url = url;
	req.headers = hdrs;
	req.follow_redirects = true;
	assert_int_equal(http_do(h, &req, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_string_equal(buf_cstr(&resp.body), "hello from the target");
	assert_true(resp.cross_origin);
	assert_int_equal(resp.redirects, 1);
	assert_string_equal(resp.effective_url, target);
	assert_int_equal(srv_count(a, "/v2/", &auth), 1);
	assert_true(auth); /* the registry got its header */
	auth = false;
	assert_int_equal(srv_count(b, "/blob", &auth), 1);
	assert_false(auth); /* the other origin did not */
	http_resp_release(&resp);

	/* Without follow_redirects, the 307 is the answer. */
	req.follow_redirects = false;
	assert_int_equal(http_do(h, &req, &resp), 0);
	assert_int_equal(resp.status, 307);
	assert_false(resp.cross_origin);
	http_resp_release(&resp);
	http_free(h);
	srv_stop(a);
	srv_stop(b);
}

static void test_same_origin_redirect_keeps_auth(void **st)
{
	struct srv *a = srv_start(h_self);
	struct http *h = new_http(10000);
	static const char *const hdrs[] = { "Authorization: Basic dTpw", NULL };
	struct http_req req = { 0 };
	struct http_resp resp = HTTP_RESP_INIT;
	char url[128];
	bool auth = false;

	(void)st;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/a", a->port);
	req.url = url;
	req.headers = hdrs;
	req.follow_redirects = true;
	assert_int_equal(http_do(h, &req, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_false(resp.cross_origin);
	assert_int_equal(srv_count(a, "/b", &auth), 1);
	assert_true(auth);
	http_resp_release(&resp);
	http_free(h);
	srv_stop(a);
}

static int sink_count(void *ctx, const void *data, size_t n)
{
	(void)data;
	*(size_t *)ctx += n;
	return 0;
}

static void test_deadline(void **st)
{
	struct srv *f = srv_start(h_frozen), *s = srv_start(h_slow), *t = srv_start(h_429_long);
	struct http *h = new_http(1000);
	struct http_req req = { 0 };
	struct http_resp resp = HTTP_RESP_INIT;
	char url[128];
	size_t n = 0;

	(void)st;
	/* Accepts, never answers: bounded, collected or streamed. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/", f->port);
	req.url = url;
	assert_int_equal(http_do(h, &req, &resp), -ETIMEDOUT);
	assert_int_equal(resp.attempts, 1); /* no time left to try again */
	http_resp_release(&resp);
	req.sink = sink_count;
	req.sink_ctx = &n;
	assert_int_equal(http_do(h, &req, &resp), -ETIMEDOUT);
	http_resp_release(&resp);

	/* A body that takes 2.5 s at ~16 KiB/s: a collected one must be complete by the
	 * deadline, a streamed one only started. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/blob", s->port);
	req.sink = NULL;
	assert_int_equal(http_do(h, &req, &resp), -ETIMEDOUT);
	http_resp_release(&resp);
	req.sink = sink_count;
	assert_int_equal(http_do(h, &req, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(n, 40960);
	http_resp_release(&resp);

	/* Retry-After: 3600, beyond retry_after_max_s: not waited for; the 429 is the answer. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v2/", t->port);
	req.sink = NULL;
	assert_int_equal(http_do(h, &req, &resp), 0);
	assert_int_equal(resp.status, 429);
	assert_int_equal(resp.attempts, 1);
	http_resp_release(&resp);
	http_free(h);
	srv_stop(f);
	srv_stop(s);
	srv_stop(t);
}

struct other_req {
	struct http *h;
	char url[128];
	long status;
	int rc;
};

/* Once the throttle is on (the client has had a 429 and retried: the
 * second one was sent), another request of the same mount. */
static void *other_run(void *p)
{
	struct other_req *o = p;
	struct http_req req = { 0 };
	struct http_resp resp = HTTP_RESP_INIT;

	while (__atomic_load_n(&throttle_busy, __ATOMIC_SEQ_CST) < 2)
		usleep(1000);
	req.url = o->url;
	o->rc = http_do(o->h, &req, &resp);
	o->status = resp.status;
	http_resp_release(&resp);
	return NULL;
}

/* Issue 11: a 429 slows every request of the mount down and fails none, even
 * past max_retries and the deadline (1 s here; three Retry-After: 1). */
static void test_throttle(void **st)
{
	struct srv *s = srv_start(h_throttle);
	struct http *h = new_http(1000);
	struct http_req req = { 0 };
	struct http_resp resp = HTTP_RESP_INIT;
	struct other_req o = { 0 };
	pthread_t th;
	char url[128];

	(void)st;
	o.h = h;
	snprintf(o.url, sizeof(o.url), "http://127.0.0.1:%d/other", s->port);
	assert_int_equal(pthread_create(&th, NULL, other_run, &o), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/busy", s->port);
	req.url = url;
	assert_int_equal(http_do(h, &req, &resp), 0);
	assert_int_equal(resp.status, 200);
	assert_int_equal(resp.attempts, 4);
	http_resp_release(&resp);
	pthread_join(th, NULL);
	assert_int_equal(o.rc, 0);
	assert_int_equal(o.status, 200);
	/* Nothing was sent while the registry had said to wait. */
	assert_int_equal(throttle_violations, 0);
	assert_int_equal(throttle_busy, 3);
	http_free(h);
	srv_stop(s);
}

static void test_storage_challenge_not_recorded(void **st)
{
	struct srv *evil = srv_start(h_unauthorized), *sto = srv_start(h_evil_storage),
		   *reg = srv_start(h_registry);
	struct auth_creds creds = { AUTH_CRED_BASIC, (char *)"user", (char *)"pw-never-leaves",
				    NULL, (char *)"test" };
	struct registry_opts ro = { 0 };
	struct registry *r = NULL;
	struct buf out = BUF_INIT, why = BUF_INIT;
	struct strvec tags = STRVEC_INIT;
	struct digest d;
	char url[128];
	bool auth = false;

	(void)st;
	snprintf(evil->arg, sizeof(evil->arg), "-");
	snprintf(sto->arg, sizeof(sto->arg), "http://127.0.0.1:%d/token", evil->port);
	snprintf(reg->arg, sizeof(reg->arg), "http://127.0.0.1:%d", sto->port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", reg->port);
	ro.url = url;
	ro.max_retries = 0;
	ro.timeout_ms = 10000;
	ro.creds = &creds;
	assert_int_equal(registry_new(&r, &ro), 0);
	assert_int_equal(registry_ping(r, &why), 0); /* learns the Basic challenge */
	assert_int_equal(digest_of_buf(&d, "x", 1), 0);
	assert_int_equal(registry_blob_get(r, "app", &d, 1024, &out), -EIO);
	assert_int_equal(out.len, 0);
	/* Asked the registry twice (a fresh redirect once), the storage host twice. */
	assert_int_equal(srv_count(reg, "/v2/app/blobs/", NULL), 2);
	assert_int_equal(srv_count(sto, "/v2/app/blobs/", &auth), 2);
	assert_false(auth);
	assert_int_equal(srv_count(evil, "/", NULL), 0); /* the foreign realm: never */
	assert_int_equal(registry_blob_redirects(r), 0);
	/* The registry's own challenge still holds: the next request authenticates. */
	auth = false;
	assert_int_equal(registry_tags(r, "app", &tags), 0);
	assert_int_equal(tags.n, 1);
	assert_int_equal(srv_count(reg, "/v2/app/tags/list", &auth), 1);
	assert_true(auth);
	strvec_clear(&tags);
	registry_free(r);
	buf_release(&why);
	srv_stop(evil);
	srv_stop(sto);
	srv_stop(reg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cross_origin_redirect),
		cmocka_unit_test(test_same_origin_redirect_keeps_auth),
		cmocka_unit_test(test_deadline),
		cmocka_unit_test(test_throttle),
		cmocka_unit_test(test_storage_challenge_not_recorded),
	};

	log_init(LOG_LVL_ERROR, false);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
