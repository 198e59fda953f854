#!/usr/bin/python3
"""A reverse proxy in front of a real registry that injects faults, for tests.

  faultproxy.py UPSTREAM_URL [--log FILE] [--rule RULE ...] [--route PREFIX=URL ...]
                [--header-log FILE] [--tls CERT KEY] [--storage-creds USER:PASS]

Listens on 127.0.0.1:<free port>, prints "READY port=N" on stdout once it
accepts connections, and forwards every request to UPSTREAM_URL (http or https;
an https upstream is not verified) unless a rule fires. Each request is logged to
--log as "<unix time> <METHOD> <path> -> <status|drop> auth=<yes|no>" (auth:
whether the request carried an Authorization header).

With --tls CERT KEY the main listener speaks HTTPS (the storage and evil
listeners stay plain HTTP: a redirect to the storage host is then a downgrade).

A second listener, the "storage host" (another port, so another origin to an
HTTP client), serves what the `redirect` action sends there: it forwards to
UPSTREAM_URL without the client's Authorization (with --storage-creds USER:PASS
it sends its own Basic credentials instead) and logs its requests with the path
prefixed "storage:"; rules are matched against that prefixed path too, so
'^storage:.*/blobs/:403:1' makes the storage host refuse once. Its port is
printed on stdout as "STORAGE port=N" after READY.

A third listener, the "evil host", answers every request with 401 and serves
as the foreign token realm of the `401evil` action. Its port is printed as
"EVIL port=N". Requests to it are logged with the path prefixed "evil:".

--header-log FILE: every request on every listener is also written there, one
JSON object per line: {"listener", "method", "path", "headers": [[k, v], ...],
"body": "<latin-1 text>"}. Tests grep it for credentials that must not arrive.

--route PREFIX=URL: requests whose path starts with PREFIX go to URL (plain
HTTP) instead of UPSTREAM_URL (e.g. "/oauth2/=http://127.0.0.1:N" puts a token
service on the registry's origin, as ACR has it). A WWW-Authenticate realm that
points at a route's URL is rewritten to point at the proxy, so that token
requests come through it too (and rules apply to them).

RULE is "REGEX:ACTION[:COUNT]": for requests whose path (with query) matches
REGEX, the first COUNT (default: all) get ACTION instead of the registry's answer:
  404 / 401 / 403 / 405 / 503 / 429 ...  that status with a registry error body
                                        (codes: 404 NAME_UNKNOWN, 401 UNAUTHORIZED,
                                        403 DENIED, 405 UNSUPPORTED, 429
                                        TOOMANYREQUESTS, 5xx UNAVAILABLE)
  429r1                                 429 with "Retry-After: 1"
  401evil                               401 with "WWW-Authenticate: Bearer
                                        realm=<the evil host>/token" (a storage host
                                        pretending to be a token-protected registry)
  drop                                  close the connection without an answer
  freeze                                accept the request and never answer (until
                                        the client gives up and closes)
  truncate                              forward, but cut the body in half and close
  reset                                 forward, send half the body, then reset the
                                        connection (TCP RST)
  corrupt                               forward, flipping one byte in the middle of
                                        a non-empty 2xx body
  norange                               forward without the Range header (so the
                                        registry answers 200 with the whole body)
  redirect                              answer 307 to the storage host, same path
                                        plus "?sig=s3cr3t-signature" (as a SAS URL)
  slow                                  forward, sending the body in 4 KiB pieces
                                        with 20 ms pauses (~200 KB/s: slow, but
                                        progressing)
  trickle                               forward, sending the body one byte every
                                        250 ms (a server that never gets anywhere)
  endless                               answer 200 with a JSON body that never ends
                                        (no Content-Length; written until the
                                        client closes)
  pages                                 answer a tag list page {"name", "tags":
                                        ["p<N>"]} with a Link rel="next" to the next
                                        one, for ever (a registry announcing endless
                                        pages)
  hugepage                              answer a 200 list page of 9 MiB
  bigpages                              like pages, each page 1 MiB of long tags
  ctlmsg                                400 whose error message holds control
                                        characters: ESC sequences and a newline
                                        followed by a forged "FORGED" log line
  uploadaway                            forward a POST .../blobs/uploads/ without
                                        its query (no cross-repository mount: the
                                        registry opens an upload session) and turn
                                        the Location into an absolute URL on the
                                        storage host
  hold                                  forward the first half of the body, then
                                        wait until the file given with --hold-file
                                        exists (at most 120 s), then the rest: a
                                        transfer a test can observe in progress
  pass                                  forward unchanged (with a COUNT: lets the
                                        first requests through before a later rule)
Rules are checked in order; the first match with COUNT left wins.

A RULE may start with an HTTP method and a space ("DELETE ^/v2/x/manifests/:405"):
it then applies to requests with that method only (rules without one match any).

Rules can be replaced while running: "PUT /__faultproxy/rules" on the main
listener with one RULE per line in the body (an empty body: no rules).
"""
import argparse
import base64
import http.client
import http.server
import json
import os
import re
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import urllib.parse

CODES = {404: "NAME_UNKNOWN", 401: "UNAUTHORIZED", 403: "DENIED", 405: "UNSUPPORTED",
         429: "TOOMANYREQUESTS"}
FORWARDING = ("truncate", "reset", "corrupt", "norange", "slow", "trickle", "hold",
              "uploadaway", "pass")
GENERATED = ("pages", "hugepage", "bigpages", "ctlmsg")


class Rule:
    def __init__(self, spec):
        parts = spec.rsplit(":", 2)
        # REGEX may itself contain ':'; ACTION and COUNT are the last fields.
        if len(parts) == 3 and parts[2].isdigit():
            self.rx, self.action, self.left = parts[0], parts[1], int(parts[2])
        else:
            self.rx, self.action = spec.rsplit(":", 1)
            self.left = -1
        self.method = None
        m = re.match(r"(GET|HEAD|PUT|POST|PATCH|DELETE) (.*)$", self.rx, re.S)
        if m:
            self.method, self.rx = m.group(1), m.group(2)
        self.rx = re.compile(self.rx)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("upstream")
    ap.add_argument("--log", default="/dev/null")
    ap.add_argument("--rule", action="append", default=[])
    ap.add_argument("--route", action="append", default=[])
    ap.add_argument("--storage-creds", default=None)
    ap.add_argument("--hold-file", default=None)
    ap.add_argument("--header-log", default=None)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), default=None)
    a = ap.parse_args()
    up = urllib.parse.urlsplit(a.upstream)
    routes = []
    for r in a.route:
        prefix, url = r.split("=", 1)
        routes.append((prefix, url.rstrip("/"), urllib.parse.urlsplit(url)))
    rules = [Rule(r) for r in a.rule]
    lock = threading.Lock()
    logf = open(a.log, "a", buffering=1)
    hlogf = open(a.header_log, "a", buffering=1) if a.header_log else None
    ports = {}
    scheme = "https" if a.tls else "http"
    page_no = [0]
    huge = []

    def pick(path, method=None):
        with lock:
            for r in rules:
                if r.method and r.method != method:
                    continue
                if r.left != 0 and r.rx.search(path):
                    if r.left > 0:
                        r.left -= 1
                    return r.action
        return None

    def connect(u):
        if u.scheme == "https":
            return http.client.HTTPSConnection(u.hostname, u.port, timeout=60,
                                               context=ssl._create_unverified_context())
        return http.client.HTTPConnection(u.hostname, u.port, timeout=60)

    class H(http.server.BaseHTTPRequestHandler):
        # One reply is two writes (head, body): without TCP_NODELAY the body waits
        # for the client's delayed ACK of the head, 40 ms a request on Linux.
        disable_nagle_algorithm = True
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def prefix(self):
            return {"main": "", "storage": "storage:", "evil": "evil:"}[self.server.role]

        def log(self, what):
            path = self.prefix() + self.path
            auth = "yes" if self.headers.get("Authorization") else "no"
            logf.write(f"{time.time():.3f} {self.command} {path} -> {what} auth={auth}\n")

        def header_log(self, body):
            if not hlogf:
                return
            rec = {"listener": self.server.role, "method": self.command, "path": self.path,
                   "headers": [[k, v] for k, v in self.headers.items()],
                   "body": (body or b"").decode("latin-1")}
            with lock:
                hlogf.write(json.dumps(rec) + "\n")

        def reply(self, status, body=b"", headers=()):
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
            self.log(status)

        def control(self, body):
            with lock:
                text = (body or b"").decode()
                rules[:] = [Rule(line) for line in text.splitlines() if line.strip()]
            self.reply(204)

        def kill_connection(self, rst=False):
            self.close_connection = True
            try:
                if rst:
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                    self.connection.close()
                else:
                    self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def generated(self, action):
            hdrs = [("Content-Type", "application/json")]
            if action == "ctlmsg":
                msg = json.dumps({"errors": [{"code": "NAME_INVALID", "message":
                                  "bad \x1b[31mred\x1b[0m\nFORGED: acrfs error: all is fine",
                                  "detail": None}]}).encode()
                self.reply(400, msg, hdrs)
                return
            if action == "hugepage":
                with lock:
                    if not huge:
                        tags = ["h%07d" % i for i in range(9 * 1024 * 1024 // 11)]
                        huge.append(json.dumps({"name": "x", "tags": tags}).encode())
                self.reply(200, huge[0], hdrs)
                return
            with lock:
                page_no[0] += 1
                n = page_no[0]
            base = self.path.split("?", 1)[0]
            if action == "bigpages":
                # Long names: 1 MiB of page in few strings.
                tags = ["b%06d%06d" % (n, i) + "x" * 88 for i in range(1024 * 1024 // 103)]
            else:
                tags = ["p%d" % n]
            hdrs.append(("Link", f'<{base}?n=1&last=p{n}>; rel="next"'))
            self.reply(200, json.dumps({"name": "x", "tags": tags}).encode(), hdrs)

        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            role = self.server.role
            self.header_log(body)
            if role == "main" and self.path == "/__faultproxy/rules" and self.command == "PUT":
                self.control(body)
                return
            if role == "evil":
                msg = b'{"errors":[{"code":"UNAUTHORIZED","message":"evil"}]}'
                self.reply(401, msg, [("Content-Type", "application/json")])
                return
            action = pick(self.prefix() + self.path, self.command)
            if action == "redirect" and role == "main":
                loc = f"http://127.0.0.1:{ports['storage']}{self.path}?sig=s3cr3t-signature"
                self.reply(307, b"", [("Location", loc),
                                      ("Docker-Distribution-Api-Version", "registry/2.0")])
                return
            if action == "401evil":
                realm = f"http://127.0.0.1:{ports['evil']}/token"
                msg = b'{"errors":[{"code":"UNAUTHORIZED","message":"injected by faultproxy"}]}'
                self.reply(401, msg, [
                    ("Content-Type", "application/json"),
                    ("WWW-Authenticate",
                     f'Bearer realm="{realm}",service="evil",scope="repository:x:pull"')])
                return
            if action == "drop":
                self.log("drop")
                self.kill_connection()
                return
            if action == "freeze":
                self.log("freeze")
                # Read until the client gives up; never answer.
                try:
                    self.connection.settimeout(None)
                    while self.connection.recv(65536):
                        pass
                except OSError:
                    pass
                self.close_connection = True
                return
            if action == "endless":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                self.log("endless")
                chunk = b"a" * 65536
                try:
                    self.wfile.write(b'{"x":"')
                    while True:
                        self.wfile.write(chunk)
                except OSError:
                    pass
                return
            if action in GENERATED:
                self.generated(action)
                return
            if action and action not in FORWARDING and action != "redirect":
                status = int(action[:3])
                code = CODES.get(status, "UNAVAILABLE")
                msg = json.dumps({"errors": [{"code": code, "message": "injected by faultproxy",
                                              "detail": None}]}).encode()
                hdrs = [("Content-Type", "application/json"),
                        ("Docker-Distribution-Api-Version", "registry/2.0")]
                if action.endswith("r1"):
                    hdrs.append(("Retry-After", "1"))
                self.reply(status, msg, hdrs)
                return
            target, path = up, self.path
            for prefix, _, u in routes:
                if self.path.startswith(prefix):
                    target = u
            c = connect(target)
            drop = ("host", "connection", "content-length")
            if action == "norange":
                drop += ("range",)
            if role == "storage":
                drop += ("authorization",)
            hdrs = {k: v for k, v in self.headers.items() if k.lower() not in drop}
            if action == "uploadaway":
                path = path.split("?", 1)[0]
            if role == "storage":
                # The signature the redirect added is ours, not the registry's.
                base, _, query = path.partition("?")
                query = "&".join(q for q in query.split("&") if q and not q.startswith("sig="))
                path = base + ("?" + query if query else "")
                if a.storage_creds:
                    hdrs["Authorization"] = "Basic " + base64.b64encode(
                        a.storage_creds.encode()).decode()
            c.request(self.command, path, body=body, headers=hdrs)
            r = c.getresponse()
            data = r.read()
            if action == "corrupt" and data and 200 <= r.status < 300:
                b = bytearray(data)
                b[len(b) // 2] ^= 0xFF
                data = bytes(b)
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() in ("content-length", "connection", "transfer-encoding"):
                    continue
                if k.lower() == "location" and v.startswith(a.upstream):
                    v = v[len(a.upstream):]
                if k.lower() == "location" and action == "uploadaway":
                    v = f"http://127.0.0.1:{ports['storage']}{v}"
                if k.lower() == "www-authenticate":
                    for _, url, _ in routes:
                        v = v.replace(f'realm="{url}', f'realm="{scheme}://127.0.0.1:{ports["main"]}')
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                if action in ("truncate", "reset"):
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.log(action)
                    self.kill_connection(rst=action == "reset")
                    c.close()
                    return
                try:
                    if action == "slow":
                        # Pauses between pieces, none after the last: the
                        # request is logged as the client gets its end.
                        for i in range(0, len(data), 4096):
                            if i:
                                time.sleep(0.02)
                            self.wfile.write(data[i:i + 4096])
                            self.wfile.flush()
                    elif action == "trickle":
                        for i in range(len(data)):
                            self.wfile.write(data[i:i + 1])
                            self.wfile.flush()
                            time.sleep(0.25)
                    elif action == "hold":
                        half = len(data) // 2
                        self.wfile.write(data[:half])
                        self.wfile.flush()
                        for _ in range(6000):
                            if a.hold_file and os.path.exists(a.hold_file):
                                break
                            time.sleep(0.02)
                        self.wfile.write(data[half:])
                    else:
                        self.wfile.write(data)
                except OSError:
                    self.log(f"{r.status}-aborted")
                    self.close_connection = True
                    c.close()
                    return
            self.log(r.status)
            c.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = handle_any

    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = S(("127.0.0.1", 0), H)
    srv.role = "main"
    if a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls[0], a.tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    sto = S(("127.0.0.1", 0), H)
    sto.role = "storage"
    evil = S(("127.0.0.1", 0), H)
    evil.role = "evil"
    ports.update(main=srv.server_address[1], storage=sto.server_address[1],
                 evil=evil.server_address[1])
    threading.Thread(target=sto.serve_forever, daemon=True).start()
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    print(f"READY port={ports['main']}", flush=True)
    print(f"STORAGE port={ports['storage']}", flush=True)
    print(f"EVIL port={ports['evil']}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
