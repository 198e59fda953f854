#!/usr/bin/python3
"""A delay-injecting HTTP/1.1 reverse proxy for latency benchmarks (stdlib only).

  delayproxy.py UPSTREAM_URL [--delay-ms 25] [--bw BYTES_PER_S] [--log FILE]

Listens on 127.0.0.1:<free port> and forwards every request to UPSTREAM_URL (plain
HTTP, e.g. a loopback docker-registry). Once both listeners accept connections it
prints "READY port=N control=M" on stdout.

The model is a far registry: each request waits --delay-ms once, after its head
arrived and before it is forwarded (the round trip); the answer then streams back at
loopback speed, or at most --bw bytes/s per connection for bodies (both directions)
when a cap is given (0 = none).

Transparency. Request and response heads are relayed as the bytes that came (request
line, header names, values, order and case untouched, Host included, so a registry
builds its absolute URLs for the proxy's address); bodies stream in 64 KiB pieces
(never a whole blob in memory), framed as they came (Content-Length, chunked with its
chunk lines and trailers, or until close). Range requests, 206 answers, redirects
(Location) and 1xx interim answers (Expect: 100-continue) pass untouched. Each client
connection has its own upstream connection, kept alive as long as both sides keep
theirs (neither says "Connection: close", the body's end is known): keep-alive both
ways, and as many requests in flight as the client has connections. An upstream
connection that was closed while idle is reopened once for a request without a body;
an upstream failure before anything was sent back answers 502 and closes.

Accounting. Every request is counted, by kind, when it ends:
    catalog   /v2/_catalog, /acr/v1/_catalog
    tags      /v2/<name>/tags/list, /acr/v1/<name>/_tags[/<tag>]
    manifest  /v2/<name>/manifests/<ref> (GET, HEAD, PUT, DELETE)
    blob      /v2/<name>/blobs/<digest> (not uploads)
    token     /oauth2/token, /oauth2/exchange, any path ending in /token
    other     everything else (/v2/, uploads, ...)
with the body bytes sent back to the client ("bytes fetched"). --log FILE gets one
line per request when it ends:
    <start unix time> <ms from head to end> <kind> <METHOD> <target> <status> <bytes>
(status "502" for an upstream failure, "-" when the client went away first).

Control (a second port, never delayed): GET /stats answers text/plain lines
    total REQUESTS BYTES
    <kind> REQUESTS BYTES          one line per kind above
    inflight N                     requests begun and not ended
    peak N                         the most in flight at once since the last reset
GET /stats?wait=idle[&quiet=Q][&timeout=S] answers once nothing is in flight and no
request began or ended for Q seconds (default 0: a client between two requests of one
chain is not in flight; Q covers it), at most S seconds (default 120; an extra line
"idle 0" says the wait timed out). GET /reset-peak sets the
peak to what is in flight now. Counters only grow: a reader subtracts two snapshots.
"""
import argparse
import re
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

KINDS = ("catalog", "tags", "manifest", "blob", "token", "other")
KIND_RX = (
    ("catalog", re.compile(r"^/(v2|acr/v1)/_catalog(\?|$)")),
    ("tags", re.compile(r"^/v2/.+/tags/list(\?|$)|^/acr/v1/.+/_tags(/[^/?]+)?(\?|$)")),
    ("manifest", re.compile(r"^/v2/.+/manifests/[^/?]+(\?|$)")),
    ("blob", re.compile(r"^/v2/.+/blobs/[a-z0-9+._-]+:[A-Za-z0-9=_-]+(\?|$)")),
    ("token", re.compile(r"^/oauth2/(token|exchange)(\?|$)|/token(\?|$)")),
)
PIECE = 64 * 1024
MAX_HEAD = 256 * 1024


def classify(target):
    path = target
    if "://" in path:  # absolute-form request target
        u = urllib.parse.urlsplit(path)
        path = u.path + ("?" + u.query if u.query else "")
    for kind, rx in KIND_RX:
        if rx.search(path):
            return kind
    return "other"


class Stats:
    def __init__(self, logfile):
        self.cond = threading.Condition()
        self.req = dict.fromkeys(KINDS, 0)
        self.bytes = dict.fromkeys(KINDS, 0)
        self.inflight = 0
        self.changed = time.monotonic()  # when a request last began or ended
        self.peak = 0
        self.log = logfile

    def begin(self):
        with self.cond:
            self.inflight += 1
            self.changed = time.monotonic()
            self.peak = max(self.peak, self.inflight)

    def end(self, kind, t0, method, target, status, nbytes):
        dur = (time.monotonic() - t0[1]) * 1000
        with self.cond:
            self.req[kind] += 1
            self.bytes[kind] += nbytes
            self.inflight -= 1
            self.changed = time.monotonic()
            if self.log:
                self.log.write("%.3f %.1f %s %s %s %s %d\n"
                               % (t0[0], dur, kind, method, target, status, nbytes))
            self.cond.notify_all()

    def reset_peak(self):
        with self.cond:
            self.peak = self.inflight

    def text(self, wait_idle=False, timeout=120.0, quiet=0.0):
        with self.cond:
            idle = True
            if wait_idle:
                until = time.monotonic() + timeout
                while True:
                    now = time.monotonic()
                    if self.inflight == 0 and now - self.changed >= quiet:
                        break
                    if now >= until:
                        idle = False
                        break
                    self.cond.wait(min(0.05, until - now))
            lines = ["total %d %d" % (sum(self.req.values()), sum(self.bytes.values()))]
            lines += ["%s %d %d" % (k, self.req[k], self.bytes[k]) for k in KINDS]
            lines += ["inflight %d" % self.inflight, "peak %d" % self.peak]
            if not idle:
                lines.append("idle 0")
        return "".join(line + "\n" for line in lines)


class Pacer:
    """At most `bw` bytes/s through one connection's bodies (0: no cap)."""

    def __init__(self, bw):
        self.bw = bw
        self.t0 = 0.0
        self.sent = 0

    def start(self):
        self.t0 = time.monotonic()
        self.sent = 0

    def piece(self):
        return PIECE if not self.bw else max(1024, min(PIECE, self.bw // 20))

    def account(self, n):
        if not self.bw:
            return
        self.sent += n
        ahead = self.t0 + self.sent / self.bw - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


class UpstreamGone(Exception):
    """The upstream connection failed before anything was sent to the client."""


def read_head(f):
    """Raw lines of one message head, the blank line included; None at a clean EOF."""
    lines, size = [], 0
    while True:
        line = f.readline(MAX_HEAD)
        if not line:
            if lines:
                raise ConnectionError("connection closed inside a message head")
            return None
        if not lines and line in (b"\r\n", b"\n"):
            continue  # tolerated: stray CRLF between messages (RFC 9112 2.2)
        lines.append(line)
        size += len(line)
        if size > MAX_HEAD:
            raise ConnectionError("message head too large")
        if line in (b"\r\n", b"\n"):
            return lines


def header_map(lines):
    """Lower-case name → list of values, from raw head lines (first line skipped)."""
    h = {}
    for line in lines[1:-1]:
        name, sep, value = line.decode("latin-1").partition(":")
        if sep:
            h.setdefault(name.strip().lower(), []).append(value.strip())
    return h


def tokens(h, name):
    return [t.strip().lower() for v in h.get(name, ()) for t in v.split(",") if t.strip()]


def body_framing(h):
    """("chunked" | "length" | "close", length) for a message with a body."""
    te = tokens(h, "transfer-encoding")
    if te:
        return ("chunked", 0) if te[-1] == "chunked" else ("close", 0)
    if "content-length" in h:
        return "length", int(h["content-length"][0])
    return "close", 0


def copy_exact(src, dst, n, pacer):
    """Copy n bytes from file src to socket dst; returns n."""
    left = n
    while left:
        data = src.read(min(left, pacer.piece()))
        if not data:
            raise ConnectionError("connection closed inside a body")
        dst.sendall(data)
        pacer.account(len(data))
        left -= len(data)
    return n


def copy_chunked(src, dst, pacer):
    """Relay a chunked body as it came (chunk lines, data, trailers); returns data bytes."""
    total = 0
    while True:
        line = src.readline(MAX_HEAD)
        if not line.endswith(b"\n"):
            raise ConnectionError("bad chunk line")
        dst.sendall(line)
        size = int(line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while True:  # trailer section, up to its blank line
                t = src.readline(MAX_HEAD)
                if not t:
                    raise ConnectionError("connection closed inside trailers")
                dst.sendall(t)
                if t in (b"\r\n", b"\n"):
                    return total
        total += copy_exact(src, dst, size, pacer)
        crlf = src.readline(MAX_HEAD)
        dst.sendall(crlf)


def copy_to_eof(src, dst, pacer):
    total = 0
    while True:
        data = src.read1(pacer.piece()) if hasattr(src, "read1") else src.read(pacer.piece())
        if not data:
            return total
        dst.sendall(data)
        pacer.account(len(data))
        total += len(data)


def copy_body(h, src, dst, pacer):
    kind, n = body_framing(h)
    pacer.start()
    if kind == "length":
        return copy_exact(src, dst, n, pacer)
    if kind == "chunked":
        return copy_chunked(src, dst, pacer)
    return copy_to_eof(src, dst, pacer)


def make_handler(up_host, up_port, delay, bw, stats):
    class Relay(socketserver.StreamRequestHandler):
        rbufsize = PIECE

        def setup(self):
            super().setup()
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.up = None
            self.up_r = None
            self.pacer = Pacer(bw)

        def up_close(self):
            if self.up is not None:
                try:
                    self.up_r.close()
                    self.up.close()
                except OSError:
                    pass
            self.up = self.up_r = None

        def up_open(self):
            self.up_close()
            s = socket.create_connection((up_host, up_port), timeout=300)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.up, self.up_r = s, s.makefile("rb", buffering=PIECE)

        def finish(self):
            self.up_close()
            super().finish()

        def send_head(self, head, h, has_body, expect):
            """Send the request head (and body); returns the first answer head."""
            reused = self.up is not None
            for attempt in (1, 2):
                if self.up is None:
                    self.up_open()
                try:
                    self.up.sendall(b"".join(head))
                    if has_body and not expect:
                        copy_body(h, self.rfile, self.up, self.pacer)
                    rhead = read_head(self.up_r)
                    if rhead is None:
                        raise ConnectionError("upstream closed")
                    return rhead
                except OSError:
                    self.up_close()
                    # Only a request without a body on a reused connection is retried.
                    if attempt == 2 or has_body or not reused:
                        raise UpstreamGone()
            raise UpstreamGone()

        def one(self, head):
            """Relay one exchange; returns whether both connections stay open."""
            first = head[0].decode("latin-1").split()
            if len(first) != 3:
                return False
            method, target, version = first
            h = header_map(head)
            keep = version == "HTTP/1.1" and "close" not in tokens(h, "connection")
            has_body = "transfer-encoding" in h or int(
                (h.get("content-length") or ["0"])[0] or 0) > 0
            expect = has_body and "100-continue" in tokens(h, "expect")
            kind = classify(target)
            t0 = (time.time(), time.monotonic())
            status, nbytes = "-", 0
            stats.begin()
            try:
                if delay:
                    time.sleep(delay)
                try:
                    rhead = self.send_head(head, h, has_body, expect)
                except UpstreamGone:
                    status = "502"
                    msg = b"delayproxy: upstream connection failed\n"
                    self.request.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\n"
                                     b"Connection: close\r\nContent-Length: %d\r\n\r\n%s"
                                     % (len(msg), msg))
                    return False
                while True:
                    code = int(rhead[0].split()[1])
                    rh = header_map(rhead)
                    self.request.sendall(b"".join(rhead))
                    if code >= 200 or code == 101:
                        break
                    if expect and code == 100:  # the client may send its body now
                        copy_body(h, self.rfile, self.up, self.pacer)
                        expect = False
                    rhead = read_head(self.up_r)
                    if rhead is None:
                        raise ConnectionError("upstream closed after an interim answer")
                if expect:
                    keep = False  # final answer without 100: the client's body is unread
                status = str(code)
                if method != "HEAD" and code not in (101, 204, 304):
                    nbytes = copy_body(rh, self.up_r, self.request, self.pacer)
                    if body_framing(rh)[0] == "close":
                        keep = False
                if code == 101 or "close" in tokens(rh, "connection") or \
                        rhead[0].startswith(b"HTTP/1.0"):
                    keep = False
                return keep
            finally:
                stats.end(kind, t0, method, target, status, nbytes)

        def handle(self):
            try:
                while True:
                    head = read_head(self.rfile)
                    if head is None or not self.one(head):
                        break
            except (OSError, ValueError, IndexError):
                pass  # a side went away or spoke nonsense: drop both connections

    return Relay


def make_control(stats):
    class Control(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            u = urllib.parse.urlsplit(self.path)
            q = urllib.parse.parse_qs(u.query)
            if u.path == "/stats":
                body = stats.text(q.get("wait", [""])[0] == "idle",
                                  float(q.get("timeout", ["120"])[0]),
                                  float(q.get("quiet", ["0"])[0])).encode()
                code = 200
            elif u.path == "/reset-peak":
                stats.reset_peak()
                body, code = b"ok\n", 200
            else:
                body, code = b"not found\n", 404
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Control


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


class ControlServer(socketserver.ThreadingMixIn, HTTPServer):
    daemon_threads = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("upstream", help="http://HOST:PORT of the registry")
    ap.add_argument("--delay-ms", type=float, default=25.0,
                    help="added once per request before forwarding (25)")
    ap.add_argument("--bw", type=int, default=0,
                    help="bytes/s per connection for bodies, 0 = no cap (0)")
    ap.add_argument("--log", help="one line per request (see above)")
    ap.add_argument("--port", type=int, default=0, help="listen port (free one)")
    a = ap.parse_args()
    up = urllib.parse.urlsplit(a.upstream)
    if up.scheme != "http" or not up.hostname:
        ap.error("UPSTREAM_URL must be http://HOST:PORT")
    if a.delay_ms < 0 or a.bw < 0:
        ap.error("--delay-ms and --bw must not be negative")
    logf = open(a.log, "a", buffering=1) if a.log else None
    stats = Stats(logf)
    srv = Server(("127.0.0.1", a.port),
                 make_handler(up.hostname, up.port or 80, a.delay_ms / 1000.0, a.bw, stats))
    ctl = ControlServer(("127.0.0.1", 0), make_control(stats))
    threading.Thread(target=ctl.serve_forever, daemon=True).start()
    print("READY port=%d control=%d" % (srv.server_address[1], ctl.server_address[1]),
          flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
