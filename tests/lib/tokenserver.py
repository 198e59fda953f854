#!/usr/bin/python3
"""tokenserver.py — a test token service speaking ACR's dialect of docker
token auth, for integration tests against a real distribution registry
(docker-registry 2.8) configured with `auth: token:`.

Start (from a test):

    tests/lib/tokenserver.py --config ids.json --state-dir "$T/ts" \
        --port 0 --ttl 4 [--acr-style] [--tls] --log "$T/ts.log" \
        --pid-file "$T/ts.pid" [--registry-config "$T/registry.yml" \
        --registry-addr 127.0.0.1:5055 --registry-storage "$T/data"] &

Once listening it prints exactly one line on stdout and flushes it:

    READY port=41234 realm=http://127.0.0.1:41234/oauth2/token
          service=acrfs-test issuer=acrfs-test-issuer
          rootcertbundle=/…/ts/ca.pem        (all on one line)

The test reads that line (wait for it; it comes within a second), takes
the port, and stops the server later with `kill $(cat ts.pid)` (SIGTERM:
clean exit, pid file removed). It binds 127.0.0.1 only.

State directory: ca.pem/ca.key (root CA, reused if present — point the
registry's `rootcertbundle` at ca.pem), signing.pem/signing.key (JWT
signing cert issued by the CA; sent as the JWT `x5c` header), and with
--tls tls.pem/tls.key (server cert for 127.0.0.1/localhost, also issued by
the CA: clients trust ca.pem).

Config JSON (--config):

    {
      "service": "acrfs-test",            # optional; --service overrides
      "issuer": "acrfs-test-issuer",      # optional; --issuer overrides
      "identities": [
        {"username": "admin", "password": "adminpw", "catalog": true,
         "repositories": [{"pattern": "*", "actions": ["pull","push","delete"]}]},
        {"username": "reader", "password": "readerpw", "catalog": true,
         "repositories": [{"pattern": "*", "actions": ["pull"]}]}
      ],
      "anonymous": {"catalog": false,
                    "repositories": [{"pattern": "public/*", "actions": ["pull"]}]},
      "aad_tokens": {"aad-token-1": "admin",
                     "aad-token-2": {"identity": "reader", "tenant": "t-1"}}
    }

Patterns are fnmatch globs over the repository name ('*' also matches
'/'). An absent "anonymous" grants anonymous clients nothing (they still
get a token with an empty access list, as Docker Hub does). A token grants
the intersection of the requested and the allowed actions; catalog is
`registry:catalog:*`.

Endpoints:
  GET  /oauth2/token?service=S&scope=A&scope=B   Basic user:password, or
       Basic 00000000-0000-0000-0000-000000000000:<refresh token>, or none
  POST /oauth2/token  grant_type=refresh_token&refresh_token=R&service=&scope=
                      grant_type=password&username=&password=&service=&scope=
                      (null-GUID username: the password is a refresh token;
                       access_type=offline also returns a refresh_token)
  POST /oauth2/exchange grant_type=access_token&service=&tenant=&access_token=
       → {"refresh_token": R}   (R is a JWT this server signed; 3 h)
  GET  /stats   → {"GET /oauth2/token": n, "POST /oauth2/token": n,
                   "POST /oauth2/exchange": n, "refresh_token": n,
                   "password": n, "denied": n, "issued": n}
  POST /stats/reset
  POST /control {"bad_tokens": N}  the next N access tokens are signed by a
       key the registry does not trust: it answers 401 invalid_token while
       the client believes the token valid (tests "refresh once on 401").
       ("issued_untrusted" counts them in /stats.)
       Also {"ttl": N} (lifetime of access tokens issued from now on) and
       {"acr_style": true|false} (reply format from now on); keys may be
       combined; absent keys keep their setting.

distribution 2.8 accepts a token until exp + 60 s (clock-skew leeway): a
--ttl 4 token is refused with 401 only ~64 s after issue. To force a 401
quickly use /control; to watch short-lived tokens being refreshed, watch
"issued" in /stats grow.
Replies: docker style {"token","access_token","expires_in","issued_at"}
(POST: {"access_token","expires_in","issued_at"[,"refresh_token"]}), or
with --acr-style only {"access_token"[,"refresh_token"]}, no expiry fields:
clients must read the JWT's exp.

The log (--log) records method, path, identity, granted access and status,
never a password, token or Authorization header. --token-log FILE (tests
only) appends every token issued (access, refresh), one per line, so a test
can check that none of them leaks anywhere.
"""

import argparse
import base64
import datetime
import fnmatch
import hashlib
import http.server
import json
import os
import signal
import ssl
import sys
import threading
import time
import urllib.parse
import uuid

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

NULL_GUID = "00000000-0000-0000-0000-000000000000"
REFRESH_TTL = 3 * 3600
ACTIONS = ("pull", "push", "delete")


# ---- keys and certificates ----

def _write_key(path, key):
    data = key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def _load_cert(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def _new_key(alg):
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def _cert(subject_cn, pub, issuer_cert, issuer_key, ca, sans=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    b = (x509.CertificateBuilder()
         .subject_name(name)
         .issuer_name(issuer_cert.subject if issuer_cert else name)
         .public_key(pub)
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=3650))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                        critical=True))
    if ca:
        b = b.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
    if sans:
        import ipaddress
        alt = []
        for s in sans:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(s)))
            except ValueError:
                alt.append(x509.DNSName(s))
        b = b.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        b = b.add_extension(x509.ExtendedKeyUsage(
            [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return b.sign(issuer_key, hashes.SHA256())


def _write_cert(path, cert):
    with open(path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def libtrust_kid(pub):
    """The key id distribution/libtrust computes for a public key."""
    der = pub.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
    s = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(s[i:i + 4] for i in range(0, 48, 4))


class Keys:
    """CA, signing key/cert (and TLS cert) in the state directory."""

    def __init__(self, state_dir, alg, tls):
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        p = lambda n: os.path.join(state_dir, n)  # noqa: E731
        self.ca_path = p("ca.pem")
        if os.path.exists(p("ca.pem")) and os.path.exists(p("ca.key")):
            ca_key, ca = _load_key(p("ca.key")), _load_cert(p("ca.pem"))
        else:
            ca_key = ec.generate_private_key(ec.SECP256R1())
            ca = _cert("acrfs test CA", ca_key.public_key(), None, ca_key, True)
            _write_key(p("ca.key"), ca_key)
            _write_cert(p("ca.pem"), ca)
        self.alg = alg
        key_ok = False
        if os.path.exists(p("signing.key")) and os.path.exists(p("signing.pem")):
            self.key = _load_key(p("signing.key"))
            key_ok = isinstance(self.key, rsa.RSAPrivateKey) == (alg == "RS256")
        if not key_ok:
            self.key = _new_key(alg)
            _write_key(p("signing.key"), self.key)
            _write_cert(p("signing.pem"), _cert(
                "acrfs token signer", self.key.public_key(), ca, ca_key, False))
        cert = _load_cert(p("signing.pem"))
        self.x5c = [base64.b64encode(
            cert.public_bytes(serialization.Encoding.DER)).decode()]
        self.kid = libtrust_kid(self.key.public_key())
        self.tls_cert = self.tls_key = None
        if tls:
            tkey = ec.generate_private_key(ec.SECP256R1())
            _write_key(p("tls.key"), tkey)
            _write_cert(p("tls.pem"), _cert(
                "127.0.0.1", tkey.public_key(), ca, ca_key, False,
                sans=["127.0.0.1", "localhost"]))
            self.tls_cert, self.tls_key = p("tls.pem"), p("tls.key")

    def sign(self, claims, untrusted=False):
        key, x5c = self.key, self.x5c
        if untrusted:
            # A throwaway self-signed signer the registry does not trust.
            if not hasattr(self, "bad_key"):
                self.bad_key = _new_key(self.alg)
                bad = _cert("untrusted signer", self.bad_key.public_key(),
                            None, self.bad_key, False)
                self.bad_x5c = [base64.b64encode(bad.public_bytes(
                    serialization.Encoding.DER)).decode()]
            key, x5c = self.bad_key, self.bad_x5c
        return jwt.encode(claims, key, algorithm=self.alg,
                          headers={"x5c": x5c, "kid": libtrust_kid(
                              key.public_key()), "typ": "JWT"})

    def verify(self, token, audience, issuer):
        return jwt.decode(token, self.key.public_key(),
                          algorithms=[self.alg], audience=audience,
                          issuer=issuer)


# ---- policy ----

class Policy:
    def __init__(self, cfg):
        self.users = {}
        for ident in cfg.get("identities", []):
            self.users[ident["username"]] = ident
        self.anonymous = cfg.get("anonymous",
                                 {"catalog": False, "repositories": []})
        self.aad = {}
        for tok, v in cfg.get("aad_tokens", {}).items():
            if isinstance(v, str):
                v = {"identity": v}
            self.aad[tok] = v

    def rights(self, username):
        if username is None:
            return self.anonymous
        return self.users.get(username)

    def check_password(self, username, password):
        ident = self.users.get(username)
        return ident is not None and ident.get("password") == password

    @staticmethod
    def grant(rights, scopes):
        """Intersect requested scopes with rights: distribution's access
        claim [{type, name, actions}], one entry per resource."""
        out = {}
        for sc in scopes:
            first, last = sc.find(":"), sc.rfind(":")
            if first <= 0 or last == first:
                continue
            typ, name = sc[:first], sc[first + 1:last]
            want = [a for a in sc[last + 1:].split(",") if a]
            allowed = set()
            if typ == "repository":
                for rule in rights.get("repositories", []):
                    if fnmatch.fnmatchcase(name, rule["pattern"]):
                        allowed.update(rule.get("actions", []))
            elif typ == "registry" and name == "catalog":
                if rights.get("catalog"):
                    allowed.add("*")
            got = [a for a in want if a in allowed]
            if not got:
                continue
            entry = out.setdefault((typ, name), [])
            for a in got:
                if a not in entry:
                    entry.append(a)
        return [{"type": t, "name": n, "actions": a}
                for (t, n), a in out.items()]


# ---- HTTP ----

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class Handler(http.server.BaseHTTPRequestHandler):
    # A reply is two writes (head, body): without TCP_NODELAY the body waits for the
    # client's delayed ACK of the head, 40 ms a request on Linux.
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    server_version = "acrfs-tokenserver/1"

    # set on the class by main()
    app = None

    def log_message(self, fmt, *args):  # silence default stderr logging
        pass

    def _log(self, status, who, detail=""):
        self.app.log("%s %s %d user=%s %s" % (
            self.command, self.path.split("?")[0], status,
            "-" if who is None else who, detail))

    def _send(self, status, obj, headers=None):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _deny(self, status, code, who=None, basic_challenge=False):
        self.app.count("denied")
        hdrs = {}
        if basic_challenge:
            hdrs["WWW-Authenticate"] = 'Basic realm="%s"' % self.app.realm
        self._log(status, who, "error=" + code)
        self._send(status, {"error": code,
                            "errors": [{"code": "UNAUTHORIZED",
                                        "message": code}]}, hdrs)

    def _form(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 1 << 20:
            return None
        raw = self.rfile.read(n).decode("utf-8", "replace")
        return urllib.parse.parse_qs(raw, keep_blank_values=True)

    def _scopes(self, params):
        out = []
        for s in params.get("scope", []):
            out.extend(x for x in s.split(" ") if x)
        return out

    def _issue(self, who, scopes, post, want_refresh):
        app = self.app
        rights = app.policy.rights(who)
        access = Policy.grant(rights or {}, scopes)
        now = int(time.time())
        untrusted = app.take_bad_token()
        tok = app.keys.sign({
            "iss": app.issuer, "sub": who or "", "aud": app.service,
            "exp": now + app.ttl, "nbf": now - 1, "iat": now,
            "jti": uuid.uuid4().hex, "access": access}, untrusted)
        app.count("issued_untrusted" if untrusted else "issued")
        app.record_token(tok)
        if app.acr_style:
            reply = {"access_token": tok}
        else:
            reply = {"access_token": tok, "expires_in": app.ttl,
                     "issued_at": datetime.datetime.fromtimestamp(
                         now, datetime.timezone.utc).strftime(
                             "%Y-%m-%dT%H:%M:%SZ")}
            if not post:
                reply["token"] = tok
        if want_refresh and who is not None:
            reply["refresh_token"] = app.refresh_token(who)
        self._log(200, who, "access=" + ";".join(
            "%s:%s:%s" % (a["type"], a["name"], ",".join(a["actions"]))
            for a in access))
        self._send(200, reply)

    def _basic(self):
        h = self.headers.get("Authorization")
        if not h:
            return None, None, False
        parts = h.split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "basic":
            return None, None, True
        try:
            raw = base64.b64decode(parts[1], validate=True).decode()
        except Exception:
            return None, None, True
        if ":" not in raw:
            return None, None, True
        u, p = raw.split(":", 1)
        return u, p, True

    def do_GET(self):
        app = self.app
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/stats":
            self._send(200, app.stats())
            return
        if url.path != "/oauth2/token":
            self._send(404, {"error": "not found"})
            return
        app.count("GET /oauth2/token")
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if q.get("service", [app.service])[0] != app.service:
            self._deny(400, "invalid_service")
            return
        user, pw, had = self._basic()
        who = None
        if had:
            if user is None:
                self._deny(401, "invalid_request", basic_challenge=True)
                return
            if user == NULL_GUID:
                who = app.check_refresh(pw)
            elif app.policy.check_password(user, pw):
                who = user
            if who is None:
                self._deny(401, "invalid_credentials", user,
                           basic_challenge=True)
                return
        self._issue(who, self._scopes(q), False, False)

    def do_POST(self):
        app = self.app
        path = urllib.parse.urlsplit(self.path).path
        if path == "/stats/reset":
            app.reset()
            self._send(200, {})
            return
        if path == "/control":
            n = int(self.headers.get("Content-Length") or 0)
            try:
                ctl = json.loads(self.rfile.read(min(n, 4096)) or b"{}")
                if "bad_tokens" in ctl or not ctl:
                    app.set_bad_tokens(int(ctl.get("bad_tokens", 0)))
                if "ttl" in ctl:
                    ttl = int(ctl["ttl"])
                    if ttl < 1:
                        raise ValueError("ttl")
                    app.ttl = ttl
                if "acr_style" in ctl:
                    app.acr_style = bool(ctl["acr_style"])
            except (ValueError, TypeError, AttributeError):
                self._send(400, {"error": "bad control"})
                return
            self._log(200, None, "control bad_tokens=%d ttl=%d acr_style=%s" % (
                app.bad_tokens, app.ttl, app.acr_style))
            self._send(200, {"bad_tokens": app.bad_tokens, "ttl": app.ttl,
                             "acr_style": app.acr_style})
            return
        form = self._form()
        if form is None:
            self._deny(413, "too_large")
            return
        f = lambda k: form.get(k, [""])[0]  # noqa: E731
        if path == "/oauth2/exchange":
            app.count("POST /oauth2/exchange")
            if f("grant_type") != "access_token":
                self._deny(400, "unsupported_grant_type")
                return
            if f("service") != app.service:
                self._deny(400, "invalid_service")
                return
            ent = app.policy.aad.get(f("access_token"))
            if ent is None or (ent.get("tenant") and f("tenant") and
                               ent["tenant"] != f("tenant")):
                self._deny(401, "invalid_aad_token")
                return
            self._log(200, ent["identity"], "exchange")
            self._send(200, {"refresh_token":
                             app.refresh_token(ent["identity"])})
            return
        if path != "/oauth2/token":
            self._send(404, {"error": "not found"})
            return
        app.count("POST /oauth2/token")
        if form.get("service") and f("service") != app.service:
            self._deny(400, "invalid_service")
            return
        grant = f("grant_type")
        if grant == "refresh_token":
            app.count("refresh_token")
            who = app.check_refresh(f("refresh_token"))
            if who is None:
                self._deny(401, "invalid_grant")
                return
            self._issue(who, self._scopes(form), True, False)
        elif grant == "password":
            app.count("password")
            user = f("username")
            if user == NULL_GUID:
                who = app.check_refresh(f("password"))
            else:
                who = user if app.policy.check_password(
                    user, f("password")) else None
            if who is None:
                self._deny(401, "invalid_grant", user or None)
                return
            self._issue(who, self._scopes(form), True,
                        f("access_type") == "offline")
        else:
            self._deny(400, "unsupported_grant_type")


class App:
    def __init__(self, args, cfg):
        self.service = args.service or cfg.get("service", "acrfs-test")
        self.issuer = args.issuer or cfg.get("issuer", "acrfs-test-issuer")
        self.ttl = args.ttl
        self.acr_style = args.acr_style
        self.policy = Policy(cfg)
        self.keys = Keys(args.state_dir, args.alg, args.tls)
        self.realm = None
        self.lock = threading.Lock()
        self.counts = {}
        self.bad_tokens = 0
        self.logf = open(args.log, "a", buffering=1) if args.log else None
        self.tokf = (open(args.token_log, "a", buffering=1)
                     if args.token_log else None)

    def record_token(self, tok):
        if self.tokf:
            with self.lock:
                self.tokf.write(tok + "\n")

    def log(self, msg):
        if self.logf:
            with self.lock:
                self.logf.write("%s %s\n" % (
                    time.strftime("%H:%M:%S"), msg))

    def count(self, key):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + 1

    def stats(self):
        with self.lock:
            out = {k: 0 for k in ("GET /oauth2/token", "POST /oauth2/token",
                                  "POST /oauth2/exchange", "refresh_token",
                                  "password", "denied", "issued")}
            out.update(self.counts)
            return out

    def set_bad_tokens(self, n):
        with self.lock:
            self.bad_tokens = max(0, n)

    def take_bad_token(self):
        with self.lock:
            if self.bad_tokens > 0:
                self.bad_tokens -= 1
                return True
            return False

    def reset(self):
        with self.lock:
            self.counts = {}

    def refresh_token(self, who):
        now = int(time.time())
        tok = self.keys.sign({
            "iss": self.issuer, "sub": who, "aud": self.service,
            "exp": now + REFRESH_TTL, "nbf": now - 1, "iat": now,
            "jti": uuid.uuid4().hex, "grant_type": "refresh_token",
            "access": []})
        self.record_token(tok)
        return tok

    def check_refresh(self, tok):
        """The identity a refresh token this server issued stands for."""
        try:
            c = self.keys.verify(tok, self.service, self.issuer)
        except Exception:
            return None
        if c.get("grant_type") != "refresh_token":
            return None
        who = c.get("sub")
        return who if who in self.policy.users else None


REGISTRY_YML = """version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: {addr}
auth:
  token:
    realm: {realm}
    service: {service}
    issuer: {issuer}
    rootcertbundle: {bundle}
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True, help="identities JSON")
    ap.add_argument("--state-dir", required=True,
                    help="CA, signing key and certs live here")
    ap.add_argument("--port", type=int, default=0, help="0: any free port")
    ap.add_argument("--ttl", type=int, default=300,
                    help="access token lifetime in seconds")
    ap.add_argument("--acr-style", action="store_true",
                    help='reply {"access_token"} only, like ACR')
    ap.add_argument("--alg", choices=("ES256", "RS256"), default="ES256")
    ap.add_argument("--service", help="service name (aud)")
    ap.add_argument("--issuer", help="iss claim")
    ap.add_argument("--tls", action="store_true", help="serve HTTPS")
    ap.add_argument("--log", help="request log file (no secrets)")
    ap.add_argument("--token-log",
                    help="append every issued token here (tests only)")
    ap.add_argument("--pid-file")
    ap.add_argument("--registry-config",
                    help="also write a docker-registry config.yml here")
    ap.add_argument("--registry-addr", default="127.0.0.1:5000")
    ap.add_argument("--registry-storage", default="/tmp/acrfs-registry")
    args = ap.parse_args()

    with open(args.config) as f:
        cfg = json.load(f)
    app = App(args, cfg)
    Handler.app = app
    srv = Server(("127.0.0.1", args.port), Handler)
    port = srv.server_address[1]
    scheme = "http"
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(app.keys.tls_cert, app.keys.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        scheme = "https"
    app.realm = "%s://127.0.0.1:%d/oauth2/token" % (scheme, port)
    if args.registry_config:
        with open(args.registry_config, "w") as f:
            f.write(REGISTRY_YML.format(
                storage=args.registry_storage, addr=args.registry_addr,
                realm=app.realm, service=app.service, issuer=app.issuer,
                bundle=os.path.abspath(app.keys.ca_path)))
    if args.pid_file:
        with open(args.pid_file, "w") as f:
            f.write("%d\n" % os.getpid())

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    app.log("listening on %s ttl=%d acr_style=%s" % (
        app.realm, app.ttl, app.acr_style))
    print("READY port=%d realm=%s service=%s issuer=%s rootcertbundle=%s" % (
        port, app.realm, app.service, app.issuer,
        os.path.abspath(app.keys.ca_path)), flush=True)
    try:
        srv.serve_forever()
    finally:
        srv.server_close()
        if args.pid_file:
            try:
                os.unlink(args.pid_file)
            except OSError:
                pass
        app.log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
