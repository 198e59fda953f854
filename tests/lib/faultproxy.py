#!/usr/bin/python3
"""A reverse proxy in front of a real registry that injects faults, for tests.

  faultproxy.py UPSTREAM_URL [--log FILE] [--rule RULE ...]

Listens on 127.0.0.1:<free port>, prints "READY port=N" on stdout once it
accepts connections, and forwards every request to UPSTREAM_URL (plain HTTP)
unless a rule fires. Each request is logged to --log as
"<unix time> <METHOD> <path> -> <status|drop>".

RULE is "REGEX:ACTION[:COUNT]": for requests whose path (with query) matches
REGEX, the first COUNT (default: all) get ACTION instead of the registry's answer:
  404 / 401 / 403 / 405 / 503 / 429 ...  that status with a registry error body
                                        (codes: 404 NAME_UNKNOWN, 401 UNAUTHORIZED,
                                        403 DENIED, 405 UNSUPPORTED, 429
                                        TOOMANYREQUESTS, 5xx UNAVAILABLE)
  429r1                                 429 with "Retry-After: 1"
  drop                                  close the connection without an answer
  truncate                              forward, but cut the body in half and close
Rules are checked in order; the first match with COUNT left wins.
"""
import argparse
import http.client
import http.server
import json
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
        self.rx = re.compile(self.rx)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("upstream")
    ap.add_argument("--log", default="/dev/null")
    ap.add_argument("--rule", action="append", default=[])
    a = ap.parse_args()
    up = urllib.parse.urlsplit(a.upstream)
    rules = [Rule(r) for r in a.rule]
    lock = threading.Lock()
    logf = open(a.log, "a", buffering=1)

    def pick(path):
        with lock:
            for r in rules:
                if r.left != 0 and r.rx.search(path):
                    if r.left > 0:
                        r.left -= 1
                    return r.action
        return None

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def log(self, what):
            logf.write(f"{time.time():.3f} {self.command} {self.path} -> {what}\n")

        def handle_any(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            action = pick(self.path)
            if action == "drop":
                self.log("drop")
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if action and action != "truncate":
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
            hdrs = {k: v for k, v in self.headers.items()
                    if k.lower() not in ("host", "connection", "content-length")}
            c.request(self.command, self.path, body=body, headers=hdrs)
            r = c.getresponse()
            data = r.read()
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
                self.wfile.write(data)
            self.log(r.status)
            c.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_PATCH = handle_any

    class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = S(("127.0.0.1", 0), H)
    print(f"READY port={srv.server_address[1]}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
