#!/usr/bin/python3
"""Oracle for acrfs's namespace: what `find MOUNT -mindepth 1` must print (relative
paths, sorted) for a registry, computed from the registry's own API with the
rules in fs/ns.h: every repository and each of its path prefixes is a directory,
every tag is a directory inside its repository, and a tag N of repository P that
clashes with a deeper catalog path P/N is listed as ":N".

  nsoracle.py URL [--ca FILE] [--tags-out FILE]

--tags-out FILE also writes the tag entries alone (the image views a namespace walk
must not descend into). Both listings follow Link rel="next" pages (distribution 2.8
sends the tags at once; ACR pages them). With ACRFS_TEST_ACR=1 (tests/lib/registry.sh:
the registry is the ACR emulator) the requests carry its admin's Basic credentials.

Standard library only; one keep-alive connection.
"""
import argparse
import base64
import http.client
import json
import os
import ssl
import sys
import urllib.parse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--ca")
    ap.add_argument("--tags-out")
    a = ap.parse_args()
    u = urllib.parse.urlsplit(a.url)
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=a.ca)
        conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx)
    else:
        conn = http.client.HTTPConnection(u.hostname, u.port)

    hdrs = {}
    if os.environ.get("ACRFS_TEST_ACR") == "1":
        hdrs["Authorization"] = "Basic " + base64.b64encode(b"admin:adminpw").decode()

    def get_all(path, key):
        """Every item of list KEY over the Link rel="next" pages from PATH."""
        out, nxt = [], path
        while nxt:
            conn.request("GET", nxt, headers=hdrs)
            r = conn.getresponse()
            body = r.read()
            if r.status != 200:
                sys.exit(f"nsoracle: GET {nxt}: HTTP {r.status}")
            out += json.loads(body).get(key) or []
            link = r.getheader("Link")
            nxt = None
            if link and 'rel="next"' in link:
                nxt = link[link.index("<") + 1:link.index(">")]
        return out

    repos = sorted(set(get_all("/v2/_catalog?n=100", "repositories")))
    paths = set()
    for r in repos:
        parts = r.split("/")
        for i in range(1, len(parts) + 1):
            paths.add("/".join(parts[:i]))
    dirs = set(paths)
    tags = set()
    for r in repos:
        for t in get_all(f"/v2/{r}/tags/list", "tags"):
            name = ":" + t if f"{r}/{t}" in dirs else t
            paths.add(f"{r}/{name}")
            tags.add(f"{r}/{name}")
    if a.tags_out:
        with open(a.tags_out, "w") as f:
            f.writelines(t + "\n" for t in sorted(tags))
    for p in sorted(paths):
        print(p)


if __name__ == "__main__":
    main()
