#!/usr/bin/python3
"""Populate a registry fast over HTTP(S) keep-alive, standard library only.

  seed.py repos URL [--count 1200] [--prefix ns] [--tag v1]
  seed.py tags  URL REPO [--count 2500] [--tag-prefix t] [--distinct]

common options: --ca FILE | --insecure, --user U --password-env VAR, --jobs N,
                --schema oci|docker, --out FILE

'repos' uploads one tiny image (a config blob and a one-file gzip tar layer) into the
first repository, cross-repo mounts both blobs into every other one and PUTs the same
manifest under --tag. Names cycle through four shapes, flat and nested:
    PREFIX-flatNNNN  PREFIX/repoNNNN  PREFIX/deep/nested/repoNNNN  PREFIX/teamK/svcNNNN
'tags' uploads the image into REPO and PUTs COUNT tags named PREFIXNNNNN; with
--distinct each tag gets its own manifest (an annotation differs), otherwise they all
share one manifest.

What was created goes to --out FILE (or stdout), one line per tag:
    REPO:TAG@sha256:<manifest digest>
The summary ("seed.py: ... in X.XXs") goes to stderr. Exit status 0 on success, 1 on
any HTTP failure (the first failure is reported with its status and body).
"""

import argparse
import base64
import gzip
import hashlib
import http.client
import io
import json
import os
import ssl
import sys
import tarfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


class SeedError(Exception):
    pass


def digest_of(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def seeded_bytes(n, key):
    """n deterministic, incompressible bytes derived from key (a SHA-256 chain)."""
    out, block = bytearray(), hashlib.sha256(key.encode()).digest()
    while len(out) < n:
        block = hashlib.sha256(block).digest()
        out += block
    return bytes(out[:n])


def tar_add(tar, path, data=None, mode=0o644, mtime=1700000000):
    """Add a directory (data None, 0755) or a regular file to an open tarfile."""
    info = tarfile.TarInfo(path)
    info.mtime = mtime
    if data is None:
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        tar.addfile(info)
    else:
        info.mode = mode
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def tiny_image(schema):
    """Return (config_bytes, layer_bytes, manifest_template dict)."""
    content = b"seeded by tests/lib/seed.py\n"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("seed.txt")
        info.size = len(content)
        info.mtime = 1700000000
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(content))
    tar_bytes = buf.getvalue()
    layer = gzip.compress(tar_bytes, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2023-11-14T22:13:20Z",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [digest_of(tar_bytes)]},
            "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "seed.py"}],
        },
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    if schema == "oci":
        mt, cmt, lmt = MT_OCI_MANIFEST, MT_OCI_CONFIG, MT_OCI_LAYER
    else:
        mt, cmt, lmt = MT_DOCKER_MANIFEST, MT_DOCKER_CONFIG, MT_DOCKER_LAYER
    manifest = {
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": cmt, "size": len(config), "digest": digest_of(config)},
        "layers": [{"mediaType": lmt, "size": len(layer), "digest": digest_of(layer)}],
    }
    return config, layer, manifest


def manifest_bytes(template, annotation=None):
    m = dict(template)
    if annotation is not None:
        m["annotations"] = {"org.acrfs.seed": annotation}
    return json.dumps(m, separators=(",", ":")).encode()


class Client:
    """One keep-alive connection per thread."""

    def __init__(self, url, ca=None, insecure=False, user=None, password=None):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise SeedError("bad registry URL %r" % url)
        self.scheme = u.scheme
        self.host = u.hostname
        self.port = u.port or (443 if u.scheme == "https" else 80)
        self.ctx = None
        if self.scheme == "https":
            if insecure:
                self.ctx = ssl._create_unverified_context()
            else:
                self.ctx = ssl.create_default_context(cafile=ca)
        self.headers = {"User-Agent": "acrfs-seed/1"}
        if user is not None:
            cred = base64.b64encode(("%s:%s" % (user, password or "")).encode()).decode()
            self.headers["Authorization"] = "Basic " + cred
        self.local = threading.local()
        self.requests = 0
        self.lock = threading.Lock()

    def _conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            if self.scheme == "https":
                c = http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=60)
            else:
                c = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.local.conn = c
        return c

    def request(self, method, path, body=None, headers=None, expect=(200,)):
        h = dict(self.headers)
        if headers:
            h.update(headers)
        if body is not None:
            h["Content-Length"] = str(len(body))
        elif method in ("POST", "PUT"):
            h["Content-Length"] = "0"
        for attempt in (1, 2):
            c = self._conn()
            try:
                c.request(method, path, body=body, headers=h)
                r = c.getresponse()
                data = r.read()
                break
            except (http.client.HTTPException, OSError):
                # The server closed an idle keep-alive connection: reconnect once.
                c.close()
                self.local.conn = None
                if attempt == 2:
                    raise
        with self.lock:
            self.requests += 1
        if r.status not in expect:
            raise SeedError(
                "%s %s -> %d %s: %s"
                % (method, path, r.status, r.reason, data[:500].decode("utf-8", "replace"))
            )
        return r, data

    def path_of(self, location):
        """Turn an upload Location (absolute or relative) into a request path."""
        u = urllib.parse.urlsplit(location)
        return u.path + ("?" + u.query if u.query else "")

    def upload(self, repo, blob):
        d = digest_of(blob)
        r, _ = self.request("POST", "/v2/%s/blobs/uploads/" % repo, expect=(202,))
        loc = self.path_of(r.getheader("Location"))
        sep = "&" if "?" in loc else "?"
        self.request(
            "PUT",
            loc + sep + "digest=" + urllib.parse.quote(d, safe=""),
            body=blob,
            headers={"Content-Type": "application/octet-stream"},
            expect=(201,),
        )
        return d

    def mount(self, repo, blob, src):
        """Cross-repo mount; falls back to an upload when the registry answers 202."""
        d = digest_of(blob)
        r, _ = self.request(
            "POST",
            "/v2/%s/blobs/uploads/?mount=%s&from=%s"
            % (repo, urllib.parse.quote(d, safe=""), urllib.parse.quote(src, safe="/")),
            expect=(201, 202),
        )
        if r.status == 201:
            return "mounted"
        # 202: an upload session was opened instead; finish it with the bytes.
        loc = self.path_of(r.getheader("Location"))
        sep = "&" if "?" in loc else "?"
        self.request(
            "PUT",
            loc + sep + "digest=" + urllib.parse.quote(d, safe=""),
            body=blob,
            headers={"Content-Type": "application/octet-stream"},
            expect=(201,),
        )
        return "uploaded"

    def put_manifest(self, repo, ref, body, media_type):
        r, _ = self.request(
            "PUT",
            "/v2/%s/manifests/%s" % (repo, ref),
            body=body,
            headers={"Content-Type": media_type},
            expect=(201,),
        )
        return r.getheader("Docker-Content-Digest") or digest_of(body)


def repo_name(prefix, i):
    kind = i % 4
    if kind == 0:
        return "%s-flat%04d" % (prefix, i)
    if kind == 1:
        return "%s/repo%04d" % (prefix, i)
    if kind == 2:
        return "%s/deep/nested/repo%04d" % (prefix, i)
    return "%s/team%d/svc%04d" % (prefix, i % 7, i)


def run_parallel(jobs, fn, items):
    """Apply fn to items on `jobs` threads; return results in order, raise first error."""
    if jobs <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=jobs) as ex:
        return list(ex.map(fn, items))


def cmd_repos(args, client):
    config, layer, template = tiny_image(args.schema)
    body = manifest_bytes(template)
    names = [repo_name(args.prefix, i) for i in range(args.count)]
    first = names[0]
    client.upload(first, config)
    client.upload(first, layer)
    stats = {"mounted": 0, "uploaded": 0}
    stats_lock = threading.Lock()

    def one(name):
        if name != first:
            for blob in (config, layer):
                how = client.mount(name, blob, first)
                with stats_lock:
                    stats[how] += 1
        d = client.put_manifest(name, args.tag, body, template["mediaType"])
        return "%s:%s@%s" % (name, args.tag, d)

    lines = run_parallel(args.jobs, one, names)
    detail = "%d blob mounts, %d fallback uploads" % (stats["mounted"], stats["uploaded"])
    return lines, "%d repositories (prefix %s, tag %s; %s)" % (
        len(names), args.prefix, args.tag, detail)


def cmd_tags(args, client):
    config, layer, template = tiny_image(args.schema)
    client.upload(args.repo, config)
    client.upload(args.repo, layer)
    shared = manifest_bytes(template)
    tags = ["%s%05d" % (args.tag_prefix, i) for i in range(args.count)]

    def one(tag):
        body = manifest_bytes(template, tag) if args.distinct else shared
        d = client.put_manifest(args.repo, tag, body, template["mediaType"])
        return "%s:%s@%s" % (args.repo, tag, d)

    lines = run_parallel(args.jobs, one, tags)
    kind = "distinct manifests" if args.distinct else "one shared manifest"
    return lines, "%d tags in %s (%s)" % (len(tags), args.repo, kind)


def main(argv):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--ca", help="CA certificate file for https")
    common.add_argument("--insecure", action="store_true", help="do not verify TLS")
    common.add_argument("--user")
    common.add_argument("--password-env", metavar="VAR",
                        help="environment variable holding the password")
    common.add_argument("--jobs", type=int, default=4, help="parallel connections (4)")
    common.add_argument("--schema", choices=("oci", "docker"), default="oci")
    common.add_argument("--out", help="write created REPO:TAG@DIGEST lines here")

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    pr = sub.add_parser("repos", parents=[common])
    pr.add_argument("url")
    pr.add_argument("--count", type=int, default=1200)
    pr.add_argument("--prefix", default="ns")
    pr.add_argument("--tag", default="v1")
    pt = sub.add_parser("tags", parents=[common])
    pt.add_argument("url")
    pt.add_argument("repo")
    pt.add_argument("--count", type=int, default=2500)
    pt.add_argument("--tag-prefix", default="t")
    pt.add_argument("--distinct", action="store_true")
    args = p.parse_args(argv)
    if args.count < 1:
        p.error("--count must be at least 1")

    password = None
    if args.password_env:
        if args.password_env not in os.environ:
            p.error("environment variable %s is not set" % args.password_env)
        password = os.environ[args.password_env]
    if args.user is None and os.environ.get("ACRFS_TEST_ACR") == "1":
        # tests/lib/registry.sh's switch: the registry is the ACR emulator.
        args.user, password = "admin", "adminpw"
    start = time.monotonic()
    try:
        client = Client(args.url.rstrip("/"), ca=args.ca, insecure=args.insecure,
                        user=args.user, password=password)
        if args.cmd == "repos":
            lines, summary = cmd_repos(args, client)
        else:
            lines, summary = cmd_tags(args, client)
    except (SeedError, OSError, http.client.HTTPException, ssl.SSLError) as e:
        print("seed.py: error: %s" % e, file=sys.stderr)
        return 1
    elapsed = time.monotonic() - start
    text = "".join(line + "\n" for line in lines)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    print("seed.py: %s, %d requests in %.2fs" % (summary, client.requests, elapsed),
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
