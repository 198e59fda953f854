#!/usr/bin/python3
"""acremu.py — an Azure Container Registry emulator for the tests, in front of a
real CNCF distribution (docker-registry 2.8) on loopback.

    tests/lib/acremu.py --upstream http://127.0.0.1:DPORT --storage-root DIR \\
        --config ids.json --state-dir DIR --log requests.jsonl \\
        [--port 0] [--storage-port 0] [--pid-file F] [--token-ttl 3600] \\
        [--ts-log F] [--token-log F] [--service NAME] &

Once both listeners accept connections it prints one line and flushes it:

    READY port=41234 storage_port=41235 realm=http://127.0.0.1:41234/oauth2/token
          service=127.0.0.1:41234                              (all on one line)

SIGTERM (or SIGINT) stops it cleanly. tests/lib/acremu.sh starts it together with
the distribution behind it; read the helpers there first.

What it is. One process, two origins (two ports of 127.0.0.1, so two origins to an
HTTP client):

  registry origin   the token service in ACR's dialect (tokenserver.py's code:
                    GET/POST /oauth2/token, POST /oauth2/exchange, refresh tokens,
                    replies {"access_token"} without expires_in), the OCI /v2 API
                    (proxied to distribution, except what ACR answers differently),
                    the /acr/v1 metadata API, and a control API for tests.
  storage origin    what *.blob.core.windows.net is to ACR: blobs by SAS URL.

The emulator is the auth boundary: distribution behind it runs without auth, and
every request to /v2 and /acr/v1 is checked here against the Bearer token's access
claim (a JWT this process signed), or against Basic credentials of a configured
identity (ACR accepts Basic on the data plane too). A missing token or scope gives
ACR's 401: a Bearer challenge naming the scope and a body whose detail lists
{"Type","Name","Action"}.

Where the facts live. distribution's filesystem storage (--storage-root, the
directory holding docker/registry/v2) is this registry's database, as ACR's
metadata service has its own: the catalog, a repository's tags (tag -> digest,
tags/<t>/current/link) and its manifests (revision links) are read from there, so
they are always what distribution holds, whoever pushed. Times and locks, which
distribution does not have, live in a small JSON store (<state-dir>/acremu-state.json)
written within SAVE_DELAY of a change and at exit (SIGTERM), so a restart keeps them.
A tag's createdTime is set when the emulator sees the PUT of its manifest, or when it
first sees the tag; the lastUpdateTime moves when the tag is pushed to point elsewhere.

Writes that ACR has and distribution 2.8 lacks are done on that storage the way
distribution 3.x does them: untag removes _manifests/tags/<t>, repository delete
removes the repository's directory (its blobs stay, as after any delete until GC).

Facts: /work/shared/REFERENCE.md ("ACR's ways in", "ACR's data plane beyond /v2",
"Token auth"), the containerregistry data-plane swagger (2021-07-01), recorded ACR
traffic in the Azure SDK test recordings, the Azure/acr docs (AAD-OAuth.md: /v2
pagination), the ACR image-lock docs. Where they are silent the code says
"# assumed:".

Request log (--log): one JSON object a line for every request either origin
answers — {"t", "origin": "registry"|"storage", "method", "path" (path and query;
SAS signatures and any token in a query redacted), "auth" (an Authorization header
came), "status", "ua" (the User-Agent, "" without)} — written when the status is
sent, so it is in the file before the client has the answer. Control requests are not logged.

Control API (registry origin, not ACR's; never logged):
  POST /_acremu/control  JSON object, any of
      "sas_ttl": N          lifetime of SAS URLs issued from now on, seconds
                            (<= 0: already expired when issued); default 1200
      "redirect_blobs": B   blob GETs answered by 307 to storage (default true)
                            or served by the registry origin itself
      "referrers": B        serve GET /v2/<r>/referrers/<d> (default true); false
                            passes it to distribution, which answers 404 (as ACR
                            does for registries with customer-managed keys)
      "token_ttl": N, "bad_tokens": N, "acr_style": B   the token service's knobs
                            (see tokenserver.py /control)
      "times": [{"repo", "tag"|"digest" (neither: the repository),
                 "createdTime"?, "lastUpdateTime"? (RFC 3339),
                 "age"? (seconds before now: sets both)}, ...]
      "attrs": [{"repo", "tag"|"digest"?, "deleteEnabled"?, "writeEnabled"?,
                 "readEnabled"?, "listEnabled"?}, ...]   like PATCH, no scope needed
    → {"sas_ttl", "redirect_blobs", "referrers", "token_ttl", "bad_tokens",
       "acr_style"}
  GET /_acremu/state     the metadata store (JSON)
  GET /_acremu/stats     the token service's counters (tokenserver.py's /stats)
  GET /_acremu/log       the request log file as it is

Locks (REFERENCE; the ACR image-lock docs): an item with writeEnabled=false cannot
be overwritten or deleted, deleteEnabled=false cannot be deleted; a repository
with writeEnabled=false locks every image in it; a repository with
deleteEnabled=false cannot be deleted, its images still can. A refused change is
405 REGISTRY_DISALLOWED_OPERATION. readEnabled/listEnabled are stored and
reported, not enforced.
"""

import argparse
import base64
import bisect
import calendar
import hashlib
import hmac
import http.client
import http.server
import json
import os
import re
import secrets
import shutil
import signal
import sys
import threading
import time
import traceback
import types
import urllib.parse

import jwt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tokenserver as ts  # noqa: E402  (the token dialect the project emulates)

DEFAULT_PAGE = 100  # REFERENCE: /acr/v1 page size 100 by default
MAX_PAGE = 1000  # REFERENCE: at most 1,000 per page
DEFAULT_SAS_TTL = 1200  # REFERENCE: SAS URLs valid ~20 min
ATTR_KEYS = ("deleteEnabled", "writeEnabled", "readEnabled", "listEnabled")
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
IMAGE_CONFIGS = ("application/vnd.oci.image.config.v1+json",
                 "application/vnd.docker.container.image.v1+json")
NAME_RE = re.compile(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"
                     r"(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
ACR_401 = ("authentication required, visit https://aka.ms/acr/authorization "
           "for more information.")
# The storage origin's blob path: distribution's own layout under an Azure
# container, as distribution's azure driver redirects to it
# (<container>/docker/registry/v2/blobs/sha256/ab/<hex>/data).
STORAGE_CONTAINER = "registry"
STORAGE_PATH_RE = re.compile(r"^/%s/docker/registry/v2/blobs/sha256/"
                             r"([0-9a-f]{2})/([0-9a-f]{64})/data$"
                             % STORAGE_CONTAINER)
SAS_VERSION = "2018-03-28"
HOP_HEADERS = ("connection", "keep-alive", "transfer-encoding", "te", "trailer",
               "upgrade", "proxy-authorization", "proxy-authenticate")
BODY_LIMIT = 64 << 20  # bodies the emulator reads itself (JSON, manifests)
# The metadata store is written this long after a change, once for a burst of them
# (a seed of 2,500 tags rewrote the whole file after each push).
SAVE_DELAY = 0.2


# ---- times: 100 ns ticks since the epoch, RFC 3339 with 7 fractional digits ----

def now_ticks():
    return time.time_ns() // 100


def fmt_time(ticks):
    s, frac = divmod(int(ticks), 10 ** 7)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + ".%07dZ" % frac


TIME_RE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$")


def parse_time(text):
    m = TIME_RE.match(text or "")
    if not m:
        raise ValueError("time must be RFC 3339 UTC with Z: %r" % text)
    s = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
    frac = (m.group(2) or "").ljust(7, "0")[:7]
    return s * 10 ** 7 + int(frac)


def sas_time(unix):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix))


# ---- distribution's storage: the registry's database ----

class Dist:
    """Reads (and, for untag and repository delete, changes) distribution's
    filesystem storage. Names are validated before they become paths. Parsed
    manifests are cached by digest (content-addressed, never stale)."""

    def __init__(self, root):
        self.v2 = os.path.join(os.path.abspath(root), "docker", "registry", "v2")
        self.repos_dir = os.path.join(self.v2, "repositories")
        self.lock = threading.Lock()  # guards info_cache only
        self.info_cache = {}

    def _repo(self, name):
        if not NAME_RE.match(name):
            return None
        return os.path.join(self.repos_dir, name)

    @staticmethod
    def _read_link(path):
        try:
            with open(path) as f:
                d = f.read().strip()
        except OSError:
            return None
        return d if DIGEST_RE.match(d) else None

    def manifests(self, name):
        """Digests of the manifests of repository NAME (revision links), sorted;
        None if it has none."""
        base = self._repo(name)
        if base is None:
            return None
        d = os.path.join(base, "_manifests", "revisions", "sha256")
        try:
            hexes = os.listdir(d)
        except OSError:
            return None
        out = sorted("sha256:" + h for h in hexes
                     if os.path.exists(os.path.join(d, h, "link")))
        return out or None

    def tags(self, name):
        """{tag: digest} of repository NAME (empty if none or unknown)."""
        base = self._repo(name)
        if base is None:
            return {}
        d = os.path.join(base, "_manifests", "tags")
        try:
            names = os.listdir(d)
        except OSError:
            return {}
        out = {}
        for t in names:
            dg = self._read_link(os.path.join(d, t, "current", "link"))
            if dg and TAG_RE.match(t):
                out[t] = dg
        return out

    def tag_digest(self, name, tag):
        base = self._repo(name)
        if base is None or not TAG_RE.match(tag):
            return None
        return self._read_link(os.path.join(base, "_manifests", "tags", tag,
                                            "current", "link"))

    def repositories(self):
        """Every repository with at least one manifest, sorted by name.
        assumed: a repository whose last manifest is gone is not listed (ACR
        keeps no empty repositories; distribution lists them)."""
        out = []
        for top, dirs, _files in os.walk(self.repos_dir):
            if "_manifests" in dirs or "_layers" in dirs:
                name = os.path.relpath(top, self.repos_dir).replace(os.sep, "/")
                if self.manifests(name):
                    out.append(name)
            dirs[:] = [d for d in dirs if not d.startswith("_")]
        return sorted(out)

    def blob_path(self, digest):
        h = digest.split(":", 1)[1]
        return os.path.join(self.v2, "blobs", "sha256", h[:2], h, "data")

    def _blob_json(self, digest):
        try:
            with open(self.blob_path(digest), "rb") as f:
                raw = f.read(BODY_LIMIT)
            return raw, json.loads(raw)
        except (OSError, ValueError):
            return None, None

    def manifest_info(self, digest):
        """What ACR reports of a manifest: mediaType, size, configMediaType,
        architecture/os (images), references (indexes), artifactType, subject and
        annotations (referrers). None if the blob is unreadable."""
        with self.lock:
            if digest in self.info_cache:
                return self.info_cache[digest]
        raw, m = self._blob_json(digest)
        if not isinstance(m, dict):
            return None
        mt = m.get("mediaType") or (OCI_INDEX if "manifests" in m else OCI_MANIFEST)
        info = {"mediaType": mt, "size": len(raw)}
        if "manifests" in m:
            refs = []
            for d in m.get("manifests") or []:
                p = d.get("platform") or {}
                r = {"digest": d.get("digest")}
                if p.get("architecture"):
                    r["architecture"] = p["architecture"]
                if p.get("os"):
                    r["os"] = p["os"]
                refs.append(r)
            info["references"] = refs
            if m.get("artifactType"):
                info["artifactType"] = m["artifactType"]
        else:
            cfg = m.get("config") or {}
            cmt = cfg.get("mediaType")
            if cmt:
                info["configMediaType"] = cmt
            # OCI 1.1: an image manifest without artifactType reports its
            # config's media type as the artifact type.
            at = m.get("artifactType") or cmt
            if at:
                info["artifactType"] = at
            if cmt in IMAGE_CONFIGS and DIGEST_RE.match(str(cfg.get("digest"))):
                _, c = self._blob_json(cfg["digest"])
                if isinstance(c, dict):
                    for k in ("architecture", "os"):
                        if c.get(k):
                            info[k] = c[k]
        subj = m.get("subject")
        if isinstance(subj, dict) and DIGEST_RE.match(str(subj.get("digest"))):
            info["subject"] = subj["digest"]
        if isinstance(m.get("annotations"), dict):
            info["annotations"] = m["annotations"]
        with self.lock:
            self.info_cache[digest] = info
        return info

    def untag(self, name, tag):
        base = self._repo(name)
        if base is None or not TAG_RE.match(tag):
            return False
        d = os.path.join(base, "_manifests", "tags", tag)
        if not os.path.isdir(d):
            return False
        shutil.rmtree(d)
        return True

    def delete_repository(self, name):
        base = self._repo(name)
        if base is not None and os.path.isdir(base):
            shutil.rmtree(base)


# ---- the metadata store: times and changeable attributes ----

def default_attrs():
    return {k: True for k in ATTR_KEYS}


def new_entry(t):
    return {"created": t, "updated": t, "attrs": default_attrs()}


class Store:
    """Times and locks of repositories, tags and manifests, kept in step with
    distribution's storage by sync(). One lock guards everything; save() runs
    under it and leaves the write (a JSON file, replaced atomically) to a thread
    that does it SAVE_DELAY later; flush() writes at once."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.dirty = False  # guarded by lock
        self.wake = threading.Event()
        try:
            with open(path) as f:
                self.data = json.load(f)
        except (OSError, ValueError):
            self.data = {}
        self.data.setdefault("repos", {})
        self.data.setdefault("settings", {})
        if "sas_key" not in self.data:
            self.data["sas_key"] = secrets.token_hex(32)
            self._write()
        threading.Thread(target=self._saver, daemon=True).start()

    def _write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, separators=(",", ":"), sort_keys=True)
        os.replace(tmp, self.path)
        self.dirty = False

    def save(self):
        """Under self.lock: the store changed; written within SAVE_DELAY."""
        self.dirty = True
        self.wake.set()

    def _saver(self):
        while True:
            self.wake.wait()
            time.sleep(SAVE_DELAY)
            with self.lock:
                self.wake.clear()
                if self.dirty:
                    self._write()

    def flush(self):
        with self.lock:
            if self.dirty:
                self._write()

    def record_push(self, name, tag, digest, before):
        """Under self.lock: a manifest PUT succeeded (TAG None: by digest). New
        repositories, tags and manifests are created now; a tag that pointed
        elsewhere (BEFORE, its digest before the PUT) is updated now. Touches
        only these entries: a push costs the same in a repository of 1,000 tags."""
        t = now_ticks()
        r = self.data["repos"].get(name)
        if r is None:
            r = self.data["repos"][name] = dict(new_entry(t), tags={}, manifests={})
        if digest and digest not in r["manifests"]:
            r["manifests"][digest] = new_entry(t)
        if tag is not None:
            ent = r["tags"].get(tag)
            if ent is None or before is None:
                r["tags"][tag] = new_entry(t)
            elif before != digest:
                # assumed: pushing the same manifest again leaves the times alone.
                ent["updated"] = t
        r["updated"] = t
        self.save()

    def sync(self, name, tags, manifests):
        """Under self.lock: make the entries of repository NAME match what
        distribution holds (new ones are first seen now, vanished ones dropped);
        returns the repository's entry, or None if it does not exist."""
        repos = self.data["repos"]
        if not manifests:
            if repos.pop(name, None) is not None:
                self.save()
            return None
        t = now_ticks()
        changed = False
        r = repos.get(name)
        if r is None:
            r = repos[name] = dict(new_entry(t), tags={}, manifests={})
            changed = True
        for key, live in (("tags", tags), ("manifests", manifests)):
            ents = r[key]
            for k in list(ents):
                if k not in live:
                    del ents[k]
                    changed = True
            for k in live:
                if k not in ents:
                    ents[k] = new_entry(t)
                    changed = True
        if changed:
            self.save()
        return r


# ---- HTTP helpers ----

class Body:
    """The request body, read at most once: Content-Length or chunked."""

    def __init__(self, rfile, headers):
        self.rfile = rfile
        self.chunked = "chunked" in (headers.get("Transfer-Encoding") or "").lower()
        self.left = 0 if self.chunked else int(headers.get("Content-Length") or 0)
        self.done = not self.chunked and self.left == 0

    def chunks(self, size=1 << 16):
        while not self.done:
            if self.chunked:
                line = self.rfile.readline(1024).split(b";", 1)[0].strip()
                n = int(line or b"0", 16)
                if n == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    self.done = True
                    return
                data = self.rfile.read(n)
                self.rfile.readline(16)
                if len(data) < n:
                    raise ConnectionError("short chunk")
                yield data
            else:
                data = self.rfile.read(min(size, self.left))
                if not data:
                    raise ConnectionError("short body")
                self.left -= len(data)
                self.done = self.left == 0
                yield data

    def read_all(self, limit=BODY_LIMIT):
        out = bytearray()
        for c in self.chunks():
            out += c
            if len(out) > limit:
                raise ValueError("body too large")
        return bytes(out)

    def drain(self):
        for _ in self.chunks():
            pass


def redact(path):
    return re.sub(r"(?i)\b(sig|access_token|refresh_token|password)=[^&]*",
                  r"\1=REDACTED", path)


def parse_n(query):
    """The page size a request asks for: default 100, at most 1,000. None if
    n is not a positive integer."""
    v = query.get("n", [""])[0]
    if v == "":
        return DEFAULT_PAGE
    if not v.isdigit() or int(v) < 1:
        # assumed: refused like distribution (400 PAGINATION_NUMBER_INVALID).
        return None
    # assumed: ACR clamps a larger n to 1,000 rather than refusing it.
    return min(int(v), MAX_PAGE)


def page_after(items, key, last, n):
    """ITEMS sorted by KEY: at most N of those whose key is above LAST; and the
    key to continue after (None on the last page)."""
    keys = [key(it) for it in items]
    i = bisect.bisect_right(keys, last) if last else 0
    out = items[i:i + n]
    return out, (key(out[-1]) if out and i + n < len(items) else None)


def page_in_order(items, key, last, n):
    """ITEMS in a given order: those after the one whose KEY is LAST."""
    i = 0
    if last:
        pos = [j for j, it in enumerate(items) if key(it) == last]
        # assumed: a `last` that no longer exists ends a time-ordered walk
        # (ACR's behaviour for it is not documented).
        if not pos:
            return [], None
        i = pos[0] + 1
    out = items[i:i + n]
    more = i + n < len(items)
    return out, (key(out[-1]) if more and out else None)


def err_body(code, message, detail=None):
    """The registry error body: {"errors":[{"code","message","detail"?}]}."""
    e = {"code": code, "message": message}
    if detail is not None:
        e["detail"] = detail
    return {"errors": [e]}


def name_unknown(name):
    return 404, err_body("NAME_UNKNOWN", "repository name not known to registry",
                         {"name": name}), None


def refusal(why):
    """REFERENCE: a change a lock forbids is 405 REGISTRY_DISALLOWED_OPERATION."""
    return 405, err_body("REGISTRY_DISALLOWED_OPERATION",
                         "The operation is disallowed on this registry, repository "
                         "or image.", why), None


def link(path, last, n, extra=""):
    return '<%s?last=%s&n=%d%s>; rel="next"' % (
        path, urllib.parse.quote(last, safe=""), n, extra)


def xml_error(code, message, detail=None):
    now = time.strftime("%Y-%m-%dT%H:%M:%S.0000000Z", time.gmtime())
    body = ('<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code>'
            '<Message>%s\nRequestId:%s\nTime:%s</Message>' % (
                code, message, secrets.token_hex(16), now))
    if detail:
        body += "<AuthenticationErrorDetail>%s</AuthenticationErrorDetail>" % detail
    return (body + "</Error>").encode()


# ---- the emulator ----

class Emu:
    def __init__(self, args, tsapp, dist, store):
        self.args = args
        self.ts = tsapp
        self.dist = dist
        self.store = store
        self.upstream = urllib.parse.urlsplit(args.upstream)
        self.storage_origin = None  # set once the storage port is known
        self.loglock = threading.Lock()
        self.logf = open(args.log, "a", buffering=1) if args.log else None
        st = store.data["settings"]
        st.setdefault("sas_ttl", DEFAULT_SAS_TTL)
        st.setdefault("redirect_blobs", True)
        st.setdefault("referrers", True)
        self.settings = st

    def log_request(self, origin, method, path, auth, status, ua=""):
        if not self.logf:
            return
        line = json.dumps({"t": round(time.time(), 3), "origin": origin,
                           "method": method, "path": redact(path),
                           "auth": auth, "status": status, "ua": ua or ""})
        with self.loglock:
            self.logf.write(line + "\n")

    # SAS: HMAC-SHA256 over permissions, expiry and path with a key kept in the
    # state directory (URLs stay valid across a restart until they expire).
    def sas_sig(self, sp, se, path):
        key = bytes.fromhex(self.store.data["sas_key"])
        mac = hmac.new(key, ("%s\n%s\n%s" % (sp, se, path)).encode(),
                       hashlib.sha256).digest()
        return base64.b64encode(mac).decode()

    def sas_url(self, digest):
        h = digest.split(":", 1)[1]
        path = "/%s/docker/registry/v2/blobs/sha256/%s/%s/data" % (
            STORAGE_CONTAINER, h[:2], h)
        se = sas_time(int(time.time()) + int(self.settings["sas_ttl"]))
        q = urllib.parse.urlencode([("se", se), ("sig", self.sas_sig("r", se, path)),
                                    ("sp", "r"), ("sr", "b"), ("sv", SAS_VERSION)])
        return "%s%s?%s" % (self.storage_origin, path, q)

    def sync(self, name):
        """Under store.lock: (tags, manifests, repository entry) of NAME."""
        tags = self.dist.tags(name)
        mans = self.dist.manifests(name)
        return tags, mans, self.store.sync(name, tags, mans or [])

    def control(self, ctl):
        """Apply a control request (see the module doc). Raises ValueError."""
        if not isinstance(ctl, dict):
            raise ValueError("control body must be a JSON object")
        st = self.settings
        with self.store.lock:
            for k in ("redirect_blobs", "referrers"):
                if k in ctl:
                    st[k] = bool(ctl[k])
            if "sas_ttl" in ctl:
                st["sas_ttl"] = int(ctl["sas_ttl"])
            for item in ctl.get("times", []):
                ent = self._control_entry(item)
                t = now_ticks()
                if "age" in item:
                    ent["created"] = ent["updated"] = t - int(
                        float(item["age"]) * 10 ** 7)
                if "createdTime" in item:
                    ent["created"] = parse_time(item["createdTime"])
                if "lastUpdateTime" in item:
                    ent["updated"] = parse_time(item["lastUpdateTime"])
            for item in ctl.get("attrs", []):
                ent = self._control_entry(item)
                for k in ATTR_KEYS:
                    if k in item:
                        ent["attrs"][k] = bool(item[k])
            self.store.save()
        if "token_ttl" in ctl:
            if int(ctl["token_ttl"]) < 1:
                raise ValueError("token_ttl must be >= 1")
            self.ts.ttl = int(ctl["token_ttl"])
        if "bad_tokens" in ctl:
            self.ts.set_bad_tokens(int(ctl["bad_tokens"]))
        if "acr_style" in ctl:
            self.ts.acr_style = bool(ctl["acr_style"])
        return {"sas_ttl": st["sas_ttl"], "redirect_blobs": st["redirect_blobs"],
                "referrers": st["referrers"], "token_ttl": self.ts.ttl,
                "bad_tokens": self.ts.bad_tokens, "acr_style": self.ts.acr_style}

    def _control_entry(self, item):
        name = item.get("repo", "")
        _, _, r = self.sync(name)
        if r is None:
            raise ValueError("no repository %r" % name)
        if "tag" in item:
            ent = r["tags"].get(item["tag"])
        elif "digest" in item:
            ent = r["manifests"].get(item["digest"])
        else:
            ent = r
        if ent is None:
            raise ValueError("no such tag or manifest in %r" % name)
        return ent


class RegistryHandler(ts.Handler):
    """The registry origin. tokenserver.Handler serves /oauth2/*; everything
    else is dispatched here."""

    server_version = "acremu/1"
    emu = None  # set by main()
    origin = "registry"

    # -- plumbing --

    def send_response(self, code, message=None):
        self.responded = True
        if getattr(self, "loggable", True):
            self.emu.log_request(self.origin, self.command, self.path,
                                 bool(self.headers.get("Authorization")), code,
                                 self.headers.get("User-Agent"))
        super().send_response(code, message)

    def _dispatch(self):
        self.loggable = True
        self.responded = False
        url = urllib.parse.urlsplit(self.path)
        self.url = url
        self.query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if url.path.startswith("/oauth2/") and self.command in ("GET", "POST"):
            getattr(ts.Handler, "do_" + self.command)(self)
            return
        self.body = Body(self.rfile, self.headers)
        try:
            if url.path.startswith("/_acremu/"):
                self.loggable = False
                self.handle_control()
            elif url.path == "/v2" or url.path.startswith("/v2/"):
                self.handle_v2()
            elif url.path.startswith("/acr/v1/"):
                self.handle_acr()
            else:
                self.error(404, "NOT_FOUND", "no such route")
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True
        except Exception:
            traceback.print_exc()
            self.close_connection = True
            if not self.responded:
                try:
                    self.error(500, "INTERNAL", "emulator error")
                except OSError:
                    pass

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _dispatch

    def _finish_body(self):
        if not self.body.done:
            try:
                self.body.drain()
            except (ConnectionError, ValueError):
                self.close_connection = True

    def send_raw(self, status, body, ctype="application/json; charset=utf-8",
                 headers=None):
        self._finish_body()
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body or b"")))
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, obj, headers=None, ctype=None):
        # ACR's JSON bodies are compact and end with a newline.
        self.send_raw(status, (json.dumps(obj, separators=(",", ":")) + "\n").encode(),
                      ctype or "application/json; charset=utf-8", headers)

    def answer(self, status, body, headers=None):
        if body is None:
            self.send_raw(status, None, headers=headers)
        else:
            self.send_json(status, body, headers)

    def error(self, status, code, message, detail=None, headers=None):
        self.send_json(status, err_body(code, message, detail), headers)

    # -- auth --

    def _granted(self):
        """(access entries, error) for the request's credentials: error is None
        (no credentials), "" (valid) or a challenge error."""
        h = self.headers.get("Authorization")
        if not h:
            return [], None
        parts = h.split(None, 1)
        scheme = parts[0].lower() if parts else ""
        cred = parts[1].strip() if len(parts) == 2 else ""
        app = self.emu.ts
        if scheme == "bearer":
            try:
                claims = app.keys.verify(cred, app.service, app.issuer)
            except jwt.PyJWTError:
                return [], "invalid_token"
            if claims.get("grant_type") == "refresh_token":
                return [], "invalid_token"
            acc = claims.get("access")
            return (acc if isinstance(acc, list) else []), ""
        if scheme == "basic":
            # ACR accepts the admin user / service principal as Basic on the
            # data plane too (Azure/acr docs/AAD-OAuth.md).
            try:
                u, p = base64.b64decode(cred, validate=True).decode().split(":", 1)
            except (ValueError, UnicodeDecodeError):
                return [], "invalid_token"
            if not app.policy.check_password(u, p):
                return [], "invalid_token"
            self._basic_rights = app.policy.rights(u)
            return None, ""
        return [], "invalid_token"

    def authorize(self, typ, name, actions):
        """True if the credentials grant every action of TYP:NAME; else sends
        ACR's 401 and returns False. typ None: any valid credentials."""
        acc, err = self._granted()
        if err == "" and typ is None:
            return True
        scope = None
        missing = []
        if typ is not None:
            scope = "%s:%s:%s" % (typ, name, ",".join(actions))
            if acc is None:  # Basic: the identity's rights
                acc = ts.Policy.grant(self._basic_rights or {}, [scope])
            have = set()
            for e in acc or []:
                if (isinstance(e, dict) and e.get("type") == typ and
                        e.get("name") == name):
                    have.update(e.get("actions") or [])
            missing = [a for a in actions if a not in have]
            if err == "" and not missing:
                return True
        chal = 'Bearer realm="%s",service="%s"' % (self.emu.ts.realm,
                                                    self.emu.ts.service)
        if scope:
            chal += ',scope="%s"' % scope
        if err == "" and missing:
            # assumed: distribution's error name for a token lacking a scope
            # (ACR's recorded challenges show only error="invalid_token").
            chal += ',error="insufficient_scope"'
        elif err:
            chal += ',error="%s"' % err
        detail = [{"Type": typ, "Name": name, "Action": a}
                  for a in (missing or actions)] if typ else None
        self.error(401, "UNAUTHORIZED", ACR_401, detail,
                   {"WWW-Authenticate": chal})
        return False

    # -- proxy to distribution --

    def proxy(self, body=None, path=None, add_headers=None):
        """Forward the request to distribution and relay the answer (streamed).
        BODY: bytes already read, or None to stream the request's own body.
        Returns (status, headers) of distribution's answer."""
        up = self.emu.upstream
        c = http.client.HTTPConnection(up.hostname, up.port, timeout=300)
        try:
            # A list, not a dict: a header may come several times (Go clients such
            # as skopeo send one Accept line per media type), and distribution
            # reads them all; a dict kept only the last one.
            hdrs = [(k, v) for k, v in self.headers.items()
                    if k.lower() not in HOP_HEADERS + ("authorization",
                                                       "content-length", "expect")]
            send = b""
            chunked = False
            if body is not None:
                send = body
                hdrs.append(("Content-Length", str(len(body))))
            elif self.body.chunked:
                send = self.body.chunks()
                hdrs.append(("Transfer-Encoding", "chunked"))
                chunked = True
            elif not self.body.done:
                send = self.body.chunks()
                hdrs.append(("Content-Length", str(self.body.left)))
            elif self.command in ("PUT", "POST", "PATCH"):
                hdrs.append(("Content-Length", "0"))
            c.putrequest(self.command, path or self.path, skip_host=True,
                         skip_accept_encoding=True)
            for k, v in hdrs:
                c.putheader(k, v)
            c.endheaders()
            if isinstance(send, bytes):
                if send:
                    c.send(send)
            else:
                for piece in send:
                    if chunked:
                        c.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                    else:
                        c.send(piece)
                if chunked:
                    c.send(b"0\r\n\r\n")
            r = c.getresponse()
            rh = r.getheaders()
            clen = r.getheader("Content-Length")
            data = None
            if clen is None and self.command != "HEAD" and r.status not in (204, 304):
                data = r.read()
            self._finish_body()
            self.send_response(r.status)
            for k, v in rh:
                if k.lower() in HOP_HEADERS or (data is not None and
                                                k.lower() == "content-length"):
                    continue
                self.send_header(k, v)
            if data is not None:
                self.send_header("Content-Length", str(len(data)))
            for k, v in (add_headers or {}).items():
                if r.status < 300:
                    self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                if data is not None:
                    self.wfile.write(data)
                else:
                    while True:
                        piece = r.read(1 << 16)
                        if not piece:
                            break
                        self.wfile.write(piece)
            return r.status, dict((k.lower(), v) for k, v in rh)
        finally:
            c.close()

    # -- /v2 --

    V2_ROUTES = [
        ("tags", re.compile(r"^/v2/(.+)/tags/list$")),
        ("manifest", re.compile(r"^/v2/(.+)/manifests/([^/]+)$")),
        ("upload", re.compile(r"^/v2/(.+)/blobs/uploads(?:/[^/]*)?$")),
        ("blob", re.compile(r"^/v2/(.+)/blobs/([^/]+)$")),
        ("referrers", re.compile(r"^/v2/(.+)/referrers/([^/]+)$")),
    ]

    def handle_v2(self):
        upath = urllib.parse.unquote(self.url.path)
        if upath == "/v2/_catalog":
            if self.authorize("registry", "catalog", ["*"]):
                self.v2_catalog()
            return
        for kind, rx in self.V2_ROUTES:
            m = rx.match(upath)
            if m and NAME_RE.match(m.group(1)):
                getattr(self, "v2_" + kind)(*m.groups())
                return
        # /v2/ itself and unknown routes: any valid credentials, then distribution.
        if self.authorize(None, None, None):
            self.proxy()

    def paged_names(self, names, path, label, extra_obj=None):
        """One page of NAMES (sorted). assumed: /v2 listings page like /acr/v1
        (100 by default, at most 1,000)."""
        n = parse_n(self.query)
        if n is None:
            self.error(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested")
            return
        out, nxt = page_after(names, str, self.query.get("last", [""])[0], n)
        obj = dict(extra_obj or {})
        obj[label] = out
        # REFERENCE: ACR's Link keeps n and adds an empty orderby.
        hdrs = {"Link": link(path, nxt, n, "&orderby=")} if nxt else None
        self.send_json(200, obj, hdrs)

    def v2_catalog(self):
        self.paged_names(self.emu.dist.repositories(), "/v2/_catalog", "repositories")

    def v2_tags(self, name):
        if not self.authorize("repository", name, ["pull"]):
            return
        if not self.emu.dist.manifests(name):
            self.answer(*name_unknown(name))
            return
        self.paged_names(sorted(self.emu.dist.tags(name)),
                         "/v2/%s/tags/list" % name, "tags", {"name": name})

    def locked(self, name, tag=None, digest=None, op="write"):
        """A text naming the lock that forbids OP ("write": push over, "delete")
        on NAME[:TAG][@DIGEST], or None. Under store.lock. A push reads only
        the entries it concerns (entries not yet in the store are unlocked)."""
        if op == "delete":
            tags, _, r = self.emu.sync(name)
        else:
            tags, r = {}, self.emu.store.data["repos"].get(name)
        if r is None:
            return None
        if not r["attrs"]["writeEnabled"]:
            return "repository %s has writeEnabled=false" % name
        keys = ("writeEnabled",) if op == "write" else ("writeEnabled", "deleteEnabled")
        items = []
        if tag is not None and tag in r["tags"]:
            items.append(("%s:%s" % (name, tag), r["tags"][tag]))
        if digest is not None and digest in r["manifests"]:
            items.append(("%s@%s" % (name, digest), r["manifests"][digest]))
            if op == "delete":
                # Deleting a manifest deletes every tag on it.
                items += [("%s:%s" % (name, t), r["tags"][t])
                          for t, d in tags.items() if d == digest and t in r["tags"]]
        for label, ent in items:
            for k in keys:
                if not ent["attrs"][k]:
                    return "%s has %s=false" % (label, k)
        return None

    def v2_manifest(self, name, ref):
        cmd = self.command
        is_digest = DIGEST_RE.match(ref) is not None
        if cmd in ("GET", "HEAD"):
            if self.authorize("repository", name, ["pull"]):
                self.proxy()
            return
        if cmd == "DELETE":
            if not self.authorize("repository", name, ["delete"]):
                return
            if not is_digest:
                # REFERENCE: ACR deletes manifests only by digest.
                self.error(405, "UNSUPPORTED", "The operation is unsupported.",
                           "A manifest can only be deleted by digest.")
                return
            with self.emu.store.lock:
                why = self.locked(name, digest=ref, op="delete")
            if why:
                self.answer(*refusal(why))
                return
            status, _ = self.proxy()
            if status == 202:
                self._touch(name)
            return
        if cmd != "PUT":
            self.error(405, "UNSUPPORTED", "The operation is unsupported.")
            return
        if not self.authorize("repository", name, ["pull", "push"]):
            return
        try:
            body = self.body.read_all(4 << 20)
        except ValueError:
            self.close_connection = True
            self.error(413, "SIZE_INVALID", "manifest too large")
            return
        with self.emu.store.lock:
            why = self.locked(name, tag=None if is_digest else ref)
            before = None if is_digest else self.emu.dist.tag_digest(name, ref)
        if why:
            self.answer(*refusal(why))
            return
        extra = {}
        try:
            subj = (json.loads(body).get("subject") or {}).get("digest")
            if subj and DIGEST_RE.match(str(subj)):
                # OCI 1.1: a registry with the referrers API says it saw the subject.
                extra["OCI-Subject"] = subj
        except (ValueError, AttributeError):
            pass
        status, rh = self.proxy(body=body, add_headers=extra)
        if status == 201:
            with self.emu.store.lock:
                self.emu.store.record_push(name, None if is_digest else ref,
                                           rh.get("docker-content-digest"), before)

    def _touch(self, name):
        with self.emu.store.lock:
            _, _, r = self.emu.sync(name)
            if r is not None:
                r["updated"] = now_ticks()
                self.emu.store.save()

    def v2_upload(self, name):
        if not self.authorize("repository", name, ["pull", "push"]):
            return
        path = None
        frm = self.query.get("from", [None])[0]
        if self.command == "POST" and frm:
            acc, _ = self._granted()
            if acc is None:
                acc = ts.Policy.grant(self._basic_rights or {},
                                      ["repository:%s:pull" % frm])
            ok = any(isinstance(e, dict) and e.get("type") == "repository" and
                     e.get("name") == frm and "pull" in (e.get("actions") or [])
                     for e in acc)
            if not ok:
                # As distribution does: no pull on the source, no mount; the
                # client gets a plain upload session (202).
                q = [(k, v) for k, vs in self.query.items() for v in vs
                     if k not in ("mount", "from")]
                path = self.url.path + ("?" + urllib.parse.urlencode(q) if q else "")
        self.proxy(path=path)

    def v2_blob(self, name, digest):
        if self.command == "DELETE":
            if self.authorize("repository", name, ["delete"]):
                self.proxy()
            return
        if not self.authorize("repository", name, ["pull"]):
            return
        if self.command != "GET" or not self.emu.settings["redirect_blobs"]:
            self.proxy()
            return
        if not DIGEST_RE.match(digest):
            self.proxy()
            return
        # ACR answers a blob GET with a 307 to its storage (REFERENCE), once it
        # knows the blob is in this repository.
        up = self.emu.upstream
        c = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        try:
            c.request("HEAD", self.url.path)
            st = c.getresponse().status
        finally:
            c.close()
        if st == 404:
            self.error(404, "BLOB_UNKNOWN", "blob unknown to registry", digest)
        elif st != 200:
            self.proxy()
        else:
            self.send_raw(307, None, headers={"Location": self.emu.sas_url(digest)})

    def v2_referrers(self, name, digest):
        if not self.authorize("repository", name, ["pull"]):
            return
        if not self.emu.settings["referrers"]:
            self.proxy()
            return
        if not DIGEST_RE.match(digest):
            self.error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
            return
        n = parse_n(self.query)
        if n is None:
            self.error(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested")
            return
        want = self.query.get("artifactType", [""])[0]
        descs = []
        # assumed: an unknown repository gives an empty index, as the OCI spec
        # asks of a registry with the API (never 404).
        for d in self.emu.dist.manifests(name) or []:
            info = self.emu.dist.manifest_info(d)
            if not info or info.get("subject") != digest:
                continue
            if want and info.get("artifactType") != want:
                continue
            desc = {"mediaType": info["mediaType"], "digest": d, "size": info["size"]}
            if info.get("artifactType"):
                desc["artifactType"] = info["artifactType"]
            if info.get("annotations"):
                desc["annotations"] = info["annotations"]
            descs.append(desc)
        out, nxt = page_after(descs, lambda x: x["digest"],
                              self.query.get("last", [""])[0], n)
        hdrs = {}
        if want:
            hdrs["OCI-Filters-Applied"] = "artifactType"
        if nxt:
            # assumed: the Link form (the spec leaves it to the registry).
            extra = "&artifactType=" + urllib.parse.quote(want, safe="") if want else ""
            hdrs["Link"] = link("/v2/%s/referrers/%s" % (name, digest), nxt, n, extra)
        self.send_json(200, {"schemaVersion": 2, "mediaType": OCI_INDEX,
                             "manifests": out},
                       hdrs, OCI_INDEX)

    # -- /acr/v1 --

    ACR_ROUTES = [
        ("tags", re.compile(r"^(.+?)/_tags(?:/([^/]+))?$")),
        ("manifests", re.compile(r"^(.+?)/_manifests(?:/([^/]+))?$")),
        ("repository", re.compile(r"^(.+)$")),
    ]
    SCOPE_OF = {"GET": "metadata_read", "HEAD": "metadata_read",
                "PATCH": "metadata_write", "DELETE": "delete"}

    def handle_acr(self):
        # REFERENCE: names come raw (a/b) or escaped (a%2Fb).
        rest = urllib.parse.unquote(self.url.path)[len("/acr/v1/"):]
        if rest == "_catalog":
            if self.command not in ("GET", "HEAD"):
                self.error(405, "UNSUPPORTED", "The operation is unsupported.")
            elif self.authorize("registry", "catalog", ["*"]):
                self.paged_names(self.emu.dist.repositories(), "/acr/v1/_catalog",
                                 "repositories")
            return
        m = None
        for kind, rx in self.ACR_ROUTES:
            m = rx.match(rest)
            if m:
                break
        if m is None:
            self.error(404, "NOT_FOUND", "no such route")
            return
        name, item = m.group(1), (m.group(2) if kind != "repository" else None)
        action = self.SCOPE_OF.get(self.command)
        allowed = {"tags": ("GET", "HEAD") if item is None else ("GET", "HEAD", "PATCH", "DELETE"),
                   "manifests": ("GET", "HEAD") if item is None else ("GET", "HEAD", "PATCH"),
                   "repository": ("GET", "HEAD", "PATCH", "DELETE")}[kind]
        # assumed: what ACR answers for a name or a method it does not serve.
        if not NAME_RE.match(name):
            self.error(404, "NAME_INVALID", "invalid repository name")
            return
        if self.command not in allowed:
            self.error(405, "UNSUPPORTED", "The operation is unsupported.")
            return
        if not self.authorize("repository", name, [action]):
            return
        if kind != "repository" and item is None:
            self.orderby = self.query.get("orderby", [""])[0]
            self.n = parse_n(self.query)
            if self.n is None:
                self.error(400, "PAGINATION_NUMBER_INVALID",
                           "invalid number of results requested")
                return
            if self.orderby not in ("", "timedesc", "timeasc"):
                # assumed: ACR's answer to an orderby it does not know.
                self.error(400, "BAD_REQUEST", "invalid orderby")
                return
        patch = None
        if self.command == "PATCH":
            patch = self.read_patch()
            if patch is None:
                return
        with self.emu.store.lock:
            status, body, hdrs = getattr(self, "acr_" + kind)(name, item, patch)
        self.answer(status, body, hdrs)

    def read_patch(self):
        try:
            p = json.loads(self.body.read_all(1 << 20) or b"{}")
            if not isinstance(p, dict):
                raise ValueError
            for k in ATTR_KEYS:
                if k in p and not isinstance(p[k], bool):
                    raise ValueError
        except ValueError:
            # assumed: ACR's code for a malformed attributes body.
            self.error(400, "BAD_REQUEST", "invalid changeable attributes")
            return None
        return p

    @staticmethod
    def apply_patch(ent, patch):
        for k in ATTR_KEYS:
            if k in patch:
                ent["attrs"][k] = patch[k]

    def base_obj(self, name):
        return {"registry": self.emu.ts.service, "imageName": name}

    @staticmethod
    def tag_obj(tag, digest, ent):
        return {"name": tag, "digest": digest,
                "createdTime": fmt_time(ent["created"]),
                "lastUpdateTime": fmt_time(ent["updated"]),
                "signed": False, "changeableAttributes": dict(ent["attrs"])}

    def manifest_obj(self, digest, ent, tags, detail):
        info = self.emu.dist.manifest_info(digest) or {"mediaType": OCI_MANIFEST,
                                                       "size": 0}
        # The recorded ACR answers give the manifest's own size as imageSize.
        o = {"digest": digest, "imageSize": info["size"],
             "createdTime": fmt_time(ent["created"]),
             "lastUpdateTime": fmt_time(ent["updated"])}
        for k in ("architecture", "os"):
            if k in info:
                o[k] = info[k]
        o["mediaType"] = info["mediaType"]
        if "configMediaType" in info:
            o["configMediaType"] = info["configMediaType"]
        if tags:
            o["tags"] = tags
        o["changeableAttributes"] = dict(ent["attrs"])
        if detail and "references" in info:
            o["references"] = info["references"]
        return o

    def ordered(self, items, orderby):
        """ITEMS [(key, entry, ...)] in ACR's order: by key, or by
        lastUpdateTime (ties by key)."""
        if orderby == "timedesc":
            return sorted(items, key=lambda it: (-it[1]["updated"], it[0]))
        if orderby == "timeasc":
            return sorted(items, key=lambda it: (it[1]["updated"], it[0]))
        return sorted(items, key=lambda it: it[0])

    def acr_page(self, path, items, render, extra_q=""):
        """One page of ITEMS [(key, entry, ...)] for the request's n, last and
        orderby (checked by handle_acr): (rendered items, headers). PATH spells
        the name %2F-escaped, as ACR did for clients that sent it so (assumed:
        also for clients that sent it raw)."""
        orderby, n, last = self.orderby, self.n, self.query.get("last", [""])[0]
        items = self.ordered(items, orderby)
        pager = page_in_order if orderby else page_after
        out, nxt = pager(items, lambda it: it[0], last, n)
        hdrs = {"Link": link(path, nxt, n, "&orderby=" + orderby + extra_q)} if nxt else None
        return [render(it) for it in out], hdrs

    # Each acr_* runs under store.lock and returns the answer (status, JSON body or
    # None, headers), which handle_acr sends once the lock is released.

    def acr_repository(self, name, _item, patch):
        tags, mans, r = self.emu.sync(name)
        if r is None:
            return name_unknown(name)
        if self.command == "DELETE":
            a = r["attrs"]
            why = None
            for k in ("writeEnabled", "deleteEnabled"):
                if not a[k] and not why:
                    why = "repository %s has %s=false" % (name, k)
            # assumed: a locked image in it refuses the whole delete.
            for label, ents in (("tag", r["tags"]), ("manifest", r["manifests"])):
                for k, ent in ents.items():
                    if not why and not (ent["attrs"]["deleteEnabled"] and
                                        ent["attrs"]["writeEnabled"]):
                        why = "%s %s of %s is locked" % (label, k, name)
            if why:
                return refusal(why)
            self.emu.dist.delete_repository(name)
            self.emu.store.sync(name, {}, [])
            return 202, {"manifestsDeleted": sorted(mans), "tagsDeleted": sorted(tags)}, None
        if patch is not None:
            self.apply_patch(r, patch)
            self.emu.store.save()
        return 200, dict(self.base_obj(name),
                         createdTime=fmt_time(r["created"]),
                         lastUpdateTime=fmt_time(r["updated"]),
                         manifestCount=len(mans), tagCount=len(tags),
                         changeableAttributes=dict(r["attrs"], teleportEnabled=False)), None

    def acr_tags(self, name, tag, patch):
        tags, _, r = self.emu.sync(name)
        if r is None:
            return name_unknown(name)
        if tag is None:
            want = self.query.get("digest", [""])[0]
            items = [(t, r["tags"][t], d) for t, d in tags.items() if not want or d == want]
            # assumed: a digest filter is kept in the Link.
            extra = "&digest=" + urllib.parse.quote(want, safe="") if want else ""
            objs, hdrs = self.acr_page("/acr/v1/%s/_tags" % urllib.parse.quote(name, safe=""),
                                       items, lambda it: self.tag_obj(it[0], it[2], it[1]),
                                       extra)
            return 200, dict(self.base_obj(name), tags=objs), hdrs
        if tag not in tags:
            return 404, err_body("TAG_UNKNOWN", "the specified tag does not exist"), None
        if self.command == "DELETE":
            why = self.locked(name, tag=tag, op="delete")
            if why:
                return refusal(why)
            self.emu.dist.untag(name, tag)
            _, _, r = self.emu.sync(name)
            if r is not None:
                r["updated"] = now_ticks()
                self.emu.store.save()
            return 202, None, None  # REFERENCE: 202 with an empty body
        if patch is not None:
            self.apply_patch(r["tags"][tag], patch)
            self.emu.store.save()
        return 200, dict(self.base_obj(name),
                         tag=self.tag_obj(tag, tags[tag], r["tags"][tag])), None

    def acr_manifests(self, name, digest, patch):
        tags, mans, r = self.emu.sync(name)
        if r is None:
            return name_unknown(name)
        by_digest = {}
        for t, d in sorted(tags.items()):
            by_digest.setdefault(d, []).append(t)
        if digest is None:
            items = [(d, r["manifests"][d]) for d in mans]
            # assumed: without orderby, manifests come in digest order (as in the
            # recorded ACR answers).
            objs, hdrs = self.acr_page(
                "/acr/v1/%s/_manifests" % urllib.parse.quote(name, safe=""), items,
                lambda it: self.manifest_obj(it[0], it[1], by_digest.get(it[0]), False))
            return 200, dict(self.base_obj(name), manifests=objs), hdrs
        if digest not in r["manifests"]:
            return 404, err_body("MANIFEST_UNKNOWN", "manifest unknown", {"digest": digest}), None
        if patch is not None:
            self.apply_patch(r["manifests"][digest], patch)
            self.emu.store.save()
        return 200, dict(self.base_obj(name), manifest=self.manifest_obj(
            digest, r["manifests"][digest], by_digest.get(digest), True)), None

    # -- control --

    def handle_control(self):
        p = self.url.path
        if p == "/_acremu/control" and self.command == "POST":
            try:
                ctl = json.loads(self.body.read_all(1 << 20) or b"{}")
                self.send_json(200, self.emu.control(ctl))
            except (ValueError, TypeError, AttributeError, KeyError) as e:
                self.send_json(400, {"error": str(e)})
        elif p == "/_acremu/state" and self.command == "GET":
            with self.emu.store.lock:
                data = json.loads(json.dumps(self.emu.store.data))
            data.pop("sas_key", None)
            self.send_json(200, data)
        elif p == "/_acremu/stats" and self.command == "GET":
            self.send_json(200, self.emu.ts.stats())
        elif p == "/_acremu/log" and self.command == "GET":
            try:
                with open(self.emu.args.log, "rb") as f:
                    raw = f.read()
            except (OSError, TypeError):
                raw = b""
            self.send_raw(200, raw, "application/x-ndjson")
        else:
            self.send_json(404, {"error": "no such control route"})


class StorageHandler(http.server.BaseHTTPRequestHandler):
    """The storage origin: a blob by SAS URL, like Azure Blob Storage."""

    disable_nagle_algorithm = True  # as in tokenserver.Handler
    protocol_version = "HTTP/1.1"
    server_version = "acremu-storage/1"
    emu = None

    def log_message(self, fmt, *args):
        pass

    def send_response(self, code, message=None):
        self.emu.log_request("storage", self.command, self.path,
                             bool(self.headers.get("Authorization")), code,
                             self.headers.get("User-Agent"))
        super().send_response(code, message)

    def fail(self, status, code, message, detail=None, headers=None):
        body = xml_error(code, message, detail)
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-ms-error-code", code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        m = STORAGE_PATH_RE.match(url.path)
        if self.headers.get("Authorization"):
            # A SAS request must not carry another credential: Azure Storage
            # answers "Authentication information is not given in the correct
            # format" (seen by clients that forwarded the registry's Bearer, e.g.
            # Azure/acr#217). assumed: the status, 400.
            self.fail(400, "InvalidAuthenticationInfo",
                      "Authentication information is not given in the correct "
                      "format. Check the value of Authorization header.")
            return
        se, sig = q.get("se", [""])[0], q.get("sig", [""])[0]
        sp = q.get("sp", [""])[0]
        good = self.emu.sas_sig(sp, se, url.path)
        if not m or not sig or not hmac.compare_digest(sig, good) or sp != "r":
            self.fail(403, "AuthenticationFailed",
                      "Server failed to authenticate the request. Make sure the "
                      "value of Authorization header is formed correctly including "
                      "the signature.", "Signature did not match.")
            return
        try:
            exp = calendar.timegm(time.strptime(se, "%Y-%m-%dT%H:%M:%SZ"))
        except ValueError:
            exp = 0
        if time.time() >= exp:
            self.fail(403, "AuthenticationFailed",
                      "Server failed to authenticate the request. Make sure the "
                      "value of Authorization header is formed correctly including "
                      "the signature.",
                      "Signed expiry time [%s] has to be after signed start time "
                      "[%s]" % (se, sas_time(int(time.time()))))
            return
        path = self.emu.dist.blob_path("sha256:" + m.group(2))
        try:
            f = open(path, "rb")
        except OSError:
            self.fail(404, "BlobNotFound", "The specified blob does not exist.")
            return
        with f:
            self.serve_file(f, os.fstat(f.fileno()))

    do_HEAD = do_GET

    def serve_file(self, f, st):
        total = st.st_size
        start, end = 0, total - 1
        status = 200
        rng = self.headers.get("Range") or self.headers.get("x-ms-range")
        m = re.match(r"^bytes=(\d*)-(\d*)$", (rng or "").strip())
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), total - 1) if m.group(2) else total - 1
            else:
                start = max(0, total - int(m.group(2)))
            if start >= total or start > end:
                self.fail(416, "InvalidRange",
                          "The range specified is invalid for the current size "
                          "of the resource.", headers={"Content-Range": "bytes */%d" % total})
                return
            status = 206
        # assumed: a Range header of another form (several ranges) is ignored.
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("ETag", '"0x%X"' % st.st_mtime_ns)
        self.send_header("Last-Modified", self.date_time_string(int(st.st_mtime)))
        self.send_header("x-ms-blob-type", "BlockBlob")
        self.send_header("x-ms-version", SAS_VERSION)
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, total))
        self.end_headers()
        if self.command == "HEAD":
            return
        f.seek(start)
        left = end - start + 1
        while left > 0:
            piece = f.read(min(left, 1 << 16))
            if not piece:
                break
            self.wfile.write(piece)
            left -= len(piece)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True,
                    help="distribution's URL (http://127.0.0.1:PORT)")
    ap.add_argument("--storage-root", required=True,
                    help="distribution's filesystem rootdirectory")
    ap.add_argument("--config", required=True,
                    help="identities JSON (tokenserver.py's format)")
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--log", help="request log (JSON lines)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--storage-port", type=int, default=0)
    ap.add_argument("--service", help="service name (default 127.0.0.1:PORT, "
                    "the login server, as on ACR)")
    ap.add_argument("--issuer", default="acremu-issuer")
    # assumed: ACR access tokens live about an hour.
    ap.add_argument("--token-ttl", type=int, default=3600)
    ap.add_argument("--ts-log", help="the token service's own log (no secrets)")
    ap.add_argument("--token-log", help="every token issued (tests only)")
    ap.add_argument("--pid-file")
    args = ap.parse_args()

    with open(args.config) as f:
        cfg = json.load(f)
    os.makedirs(args.state_dir, mode=0o700, exist_ok=True)
    srv = ts.Server(("127.0.0.1", args.port), RegistryHandler)
    sto = ts.Server(("127.0.0.1", args.storage_port), StorageHandler)
    port, sport = srv.server_address[1], sto.server_address[1]
    tsargs = types.SimpleNamespace(
        service=args.service or cfg.get("service") or "127.0.0.1:%d" % port,
        issuer=args.issuer, ttl=args.token_ttl, acr_style=True,
        state_dir=args.state_dir, alg="ES256", tls=False, log=args.ts_log,
        token_log=args.token_log)
    tsapp = ts.App(tsargs, cfg)
    tsapp.realm = "http://127.0.0.1:%d/oauth2/token" % port
    store = Store(os.path.join(args.state_dir, "acremu-state.json"))
    emu = Emu(args, tsapp, Dist(args.storage_root), store)
    emu.storage_origin = "http://127.0.0.1:%d" % sport
    RegistryHandler.app = tsapp
    RegistryHandler.emu = emu
    StorageHandler.emu = emu
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write("%d\n" % os.getpid())

    def stop(signum, frame):
        threading.Thread(target=sto.shutdown, daemon=True).start()
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    t = threading.Thread(target=sto.serve_forever, daemon=True)
    t.start()
    print("READY port=%d storage_port=%d realm=%s service=%s" % (
        port, sport, tsapp.realm, tsapp.service), flush=True)
    try:
        srv.serve_forever()
    finally:
        sto.shutdown()
        store.flush()
        srv.server_close()
        sto.server_close()
        if args.pid_file:
            try:
                os.unlink(args.pid_file)
            except OSError:
                pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
