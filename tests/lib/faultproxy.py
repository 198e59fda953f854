#!/usr/bin/python3
"""A reverse proxy in front of a real registry that injects faults, for tests.

  faultproxy.py UPSTREAM_URL [--log FILE] [--rule RULE ...]

Listens on 127.0.0.1:<free port>, prints "READY port=N" on stdout once it
accepts connections, and forwards every request to UPSTREAM_URL (plain HTTP)
unless a rule fires. Each request is logged to --log as
"<unix time> <METHOD> <path> -> <status|drop> auth=<yes|no>" (auth: whether the
request carried an Authorization header).

A second listener, the "storage host" (another port, so another origin to an
HTTP client), serves what the `redirect` action sends there: it forwards to
UPSTREAM_URL without the client's Authorization (with --storage-creds USER:PASS
it sends its own Basic credentials instead) and logs its requests with the path
prefixed "storage:"; rules are matched against that prefixed path too, so
'^storage:.*/blobs/:403:1' makes the storage host refuse once. Its port is
printed on stdout as "STORAGE port=N" after READY.

RULE is "REGEX:ACTION[:COUNT]": for requests whose path (with query) matches
REGEX, the first COUNT (default: all) get ACTION instead of the registry's answer:
  404 / 401 / 403 / 405 / 503 / 429 ...  that status with a registry error body
                                        (codes: 404 NAME_UNKNOWN, 401 UNAUTHORIZED,
                                        403 DENIED, 405 UNSUPPORTED, 429
                                        TOOMANYREQUESTS, 5xx UNAVAILABLE)
  429r1                                 429 with "Retry-After: 1"
  drop                                  close the connection without an answer
  truncate                              forward, but cut the body in half and close
  corrupt                               forward, flipping one byte in the middle of
                                        a non-empty 2xx body
  norange                               forward without the Range header (so the
                                        registry answers 200 with the whole body)
  redirect                              answer 307 to the storage host, same path
                                        plus "?sig=s3cr3t-signature" (as a SAS URL)
  slow                                  forward, sending the body in 4 KiB pieces
                                        with 20 ms pauses
  hold                                  forward the first half of the body, then
                                        wait until the file given with --hold-file
                                        exists (at most 120 s), then the rest: a
                                        transfer a test can observe in progress
  pass                                  forward unchanged (with a COUNT: lets the
                                        first requests through before a later rule)
Rules are checked in order; the first match with COUNT left wins.

A RULE may start with an HTTP method and a space ("DELETE ^/v2/x/manifests/:405"):
it then applies to requests with that method only (rules without one match any).
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
import sys
import threading
import time
import urllib.parse

CODES = {404: "NAME_UNKNOWN", 401: "UNAUTHORIZED", 403: "DENIED", 405: "UNSUPPORTED",
         429: "TOOMANYREQUESTS"}


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
    ap.add_argument("--storage-creds", default=None)
    ap.add_argument("--hold-file", default=None)
    a = ap.parse_args()
    up = urllib.parse.urlsplit(a.upstream)
    rules = [Rule(r) for r in a.rule]
    lock = threading.Lock()
    logf = open(a.log, "a", buffering=1)

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

    storage_port = [0]

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def log(self, what):
            path = ("storage:" if self.server.storage else "") + self.path
            auth = "yes" if self.headers.get("Authorization") else "no"
            logf.write(f"{time.time():.3f} {self.command} {path} -> {what} auth={auth}\n")

        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            storage = self.server.storage
            action = pick(("storage:" if storage else "") + self.path, self.command)
            if action == "redirect" and not storage:
                loc = f"http://127.0.0.1:{storage_port[0]}{self.path}?sig=s3cr3t-signature"
                self.send_response(307)
                self.send_header("Location", loc)
                self.send_header("Content-Length", "0")
                self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
                self.end_headers()
                self.log(307)
                return
            if action == "drop":
                self.log("drop")
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if action and action not in ("truncate", "corrupt", "norange", "slow", "hold", "redirect",
                                       "pass"):
                status = int(action[:3])
                code = CODES.get(status, "UNAVAILABLE")
                msg = json.dumps({"errors": [{"code": code, "message": "injected by faultproxy",
                                              "detail": None}]}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(msg)))
                self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
                if action.endswith("r1"):
                    self.send_header("Retry-After", "1")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(msg)
                self.log(status)
                return
            c = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
            drop = ("host", "connection", "content-length")
            if action == "norange":
                drop += ("range",)
            if storage:
                drop += ("authorization",)
            hdrs = {k: v for k, v in self.headers.items() if k.lower() not in drop}
            path = self.path
            if storage:
                path = path.split("?", 1)[0]
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
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                if action == "truncate":
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.log("truncate")
                    return
                if action == "hold":
                    half = len(data) // 2
                    self.wfile.write(data[:half])
                    self.wfile.flush()
                    for _ in range(6000):
                        if a.hold_file and os.path.exists(a.hold_file):
                            break
                        time.sleep(0.02)
                    self.wfile.write(data[half:])
                elif action == "slow":
                    for i in range(0, len(data), 4096):
                        self.wfile.write(data[i:i + 4096])
                        self.wfile.flush()
                        time.sleep(0.02)
                else:
                    self.wfile.write(data)
            self.log(r.status)
            c.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = handle_any

    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = S(("127.0.0.1", 0), H)
    srv.storage = False
    sto = S(("127.0.0.1", 0), H)
    sto.storage = True
    storage_port[0] = sto.server_address[1]
    threading.Thread(target=sto.serve_forever, daemon=True).start()
    print(f"READY port={srv.server_address[1]}", flush=True)
    print(f"STORAGE port={storage_port[0]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
