#!/usr/bin/env bash
# Issue 13: acrfs operated like a file system. The command line's exit codes and
# messages (--help, --version, usage errors); acrfs(1) renders without warnings and
# lists the options of --help; make install / uninstall into a DESTDIR, and the
# installed binary mounts; .acrfs/ (status, loads, errors) read while a layer load is
# held in progress by a proxy: right content, no registry request, no secret; the
# progress line of -f on a terminal; an fstab line mounted with mount -T (through
# mount.fuse3) with credentials from a root-only docker config, and umount.
# shellcheck disable=SC2154 # REG_*, TS_*, PROXY_*, MNT_* are exported by the helpers
set -u
. "$TESTS_LIB/tap.sh"
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/images.sh"
. "$TESTS_LIB/acrfs.sh"
PY=/usr/bin/python3
ROOT=${ACRFS_ROOT:-$PWD}
MANPAGE=$ROOT/docs/acrfs.1
FSTAB_MNT=$TEST_TMP/fstab-mnt
PTY_PID=

cleanup() {
	if is_mounted "$FSTAB_MNT"; then
		umount "$FSTAB_MNT" 2>/dev/null || umount -l "$FSTAB_MNT" 2>/dev/null
	fi
	mnt_stop_all
	[ -n "$PTY_PID" ] && kill "$PTY_PID" 2>/dev/null
	proxy_stop_all
	reg_stop_all
	ts_stop_all
}
tap_trap_cleanup cleanup

export HOME=$TEST_TMP/home
mkdir -p "$HOME"
unset DOCKER_CONFIG REGISTRY_AUTH_FILE XDG_RUNTIME_DIR XDG_CONFIG_HOME ACRFS_USERNAME ACRFS_PASSWORD
ADMIN_PW='0ps-Adm1n-S3cret'
b64() { printf '%s' "$1" | base64 -w0; }
# wait_for SECONDS CMD...: until CMD succeeds (a condition, polled), at most SECONDS.
wait_for() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}
json() { # FILE PYTHON-EXPRESSION-over-d
	$PY -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(eval(sys.argv[2]))' "$1" "$2" 2>&1
}

# ---------------------------------------------------------------- command line
help=$("$ACRFS" --help 2>"$TEST_TMP/help.err")
is "$? $(wc -c <"$TEST_TMP/help.err")" "0 0" "--help exits 0 and writes to stdout only"
check "--help starts with the usage line" grep -q '^usage: acrfs \[options\] REGISTRY MOUNTPOINT' <<<"$help"
ver=$("$ACRFS" --version)
is "$?" 0 "--version exits 0"
VERSION=$(head -n1 <<<"$ver")
check "--version prints 'acrfs X.Y.Z' first ($VERSION)" grep -Eqx 'acrfs [0-9]+\.[0-9]+\.[0-9]+' <<<"$VERSION"
for lib in libfuse libcurl OpenSSL zlib zstd cJSON; do
	check "--version names $lib and its version" grep -Eq "^$lib [0-9]" <<<"$ver"
done

mkdir -p "$TEST_TMP/m"
# usage_error DESC WORD ARGS...: exit 2, nothing on stdout, one line on stderr naming WORD.
usage_error() {
	local desc=$1 word=$2 out rc
	shift 2
	out=$("$ACRFS" "$@" 2>"$TEST_TMP/usage.err")
	rc=$?
	is "$rc $(wc -l <"$TEST_TMP/usage.err") ${#out}" "2 1 0" \
		"usage error, $desc: exit 2, one line on stderr: $(cat "$TEST_TMP/usage.err")"
	check "… naming '$word'" grep -qF -- "$word" "$TEST_TMP/usage.err"
}
usage_error "unknown option" --frobnicate --frobnicate http://127.0.0.1:1 "$TEST_TMP/m"
usage_error "unknown FUSE option" frobnicate -o ro,frobnicate http://127.0.0.1:1 "$TEST_TMP/m"
usage_error "malformed value" ttl=soon -o ttl=soon http://127.0.0.1:1 "$TEST_TMP/m"
usage_error "missing mount point" MOUNTPOINT http://127.0.0.1:1
usage_error "bad registry address" ftp://x ftp://x "$TEST_TMP/m"
usage_error "password in argv" password -o password=hunter2 http://127.0.0.1:1 "$TEST_TMP/m"
port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$ACRFS" "http://127.0.0.1:$port" "$TEST_TMP/m" >/dev/null 2>&1
is "$?" 1 "a registry that cannot be reached: exit 1 (the mount failed)"
"$ACRFS" "http://127.0.0.1:$port" "$TEST_TMP/nonexistent" >/dev/null 2>&1
is "$?" 1 "a mount point that does not exist: exit 1"
printf 'pw\n' >"$TEST_TMP/open.pw"
chmod 644 "$TEST_TMP/open.pw"
out=$("$ACRFS" -o username=u,password_file="$TEST_TMP/open.pw" "http://127.0.0.1:$port" \
	"$TEST_TMP/m" 2>&1)
is "$?" 1 "a password_file others may read is refused: exit 1"
check "… saying how to fix it: $out" grep -q "chmod 600 $TEST_TMP/open.pw" <<<"$out"

# ---------------------------------------------------------------- the man page
out=$(MANWIDTH=80 man --warnings -l "$MANPAGE" 2>&1 >/dev/null)
is "$out" "" "man -l docs/acrfs.1 renders without warnings"
out=$(groff -man -ww -z "$MANPAGE" 2>&1)
is "$out" "" "groff -man -ww finds nothing to warn about either"
man_text=$(MANWIDTH=200 man -l "$MANPAGE" 2>/dev/null)
# Option keys of a list: "-h", "--help", "-o ttl=", "-o ro", "-o OPT[,OPT...]".
# INDENT is where an option starts a line (--help: 4 spaces; man: 7).
opt_keys() {
	$PY -c 'import re, sys
ind = int(sys.argv[1])
keys = set()
for line in sys.stdin:
    m = re.match(r"^ {%d}(-\S.*?)(\s{2,}|$)" % ind, line.rstrip("\n"))
    if not m:
        continue
    for k in m.group(1).split(", "):
        if k.startswith("-o ") and "=" in k:
            k = k[:k.index("=") + 1]
        keys.add(k)
print("\n".join(sorted(keys)))' "$1"
}
sed -n '/^options:/,/^$/p' <<<"$help" | opt_keys 4 >"$TEST_TMP/opts.help"
sed -n '/^OPTIONS/,/^[A-Z]/p' <<<"$man_text" | opt_keys 7 >"$TEST_TMP/opts.man"
check "the options list of --help is not empty ($(wc -l <"$TEST_TMP/opts.help") options)" \
	test "$(wc -l <"$TEST_TMP/opts.help")" -ge 18
cmp_files "$TEST_TMP/opts.help" "$TEST_TMP/opts.man" "acrfs(1) lists exactly the options of --help"
is "$(sed -n 's/^\.TH ACRFS 1 [^ ]* "\([^"]*\)".*/\1/p' "$MANPAGE")" "$VERSION" \
	"the man page's version is acrfs --version's"
for s in SYNOPSIS OPTIONS CREDENTIALS "THE MOUNT" "TAG OPERATIONS" CACHING FILES ENVIRONMENT \
	"EXIT STATUS" EXAMPLES; do
	check "acrfs(1) has a $s section" grep -qx "$s" <<<"$man_text"
done
check "acrfs(1) shows the seed workflow (az acr login, then mount)" grep -q 'az acr login' <<<"$man_text"
check "acrfs(1) shows an fstab line and a systemd unit" \
	grep -q 'fuse.acrfs ro,allow_other,_netdev' <<<"$man_text"

# ---------------------------------------------------------------- a registry with token auth
cat >"$TEST_TMP/ids.json" <<EOF
{"identities": [
  {"username": "admin", "password": "$ADMIN_PW", "catalog": true,
   "repositories": [{"pattern": "*", "actions": ["pull", "push", "delete"]}]}
]}
EOF
ts_start a "$TEST_TMP/ids.json" || exit 1
reg_start r --token "$TS_a_REALM" "$TS_a_ISSUER" "$TS_a_SERVICE" "$TS_a_ROOT" || exit 1
img_build_simple "$TEST_TMP/oci" v1 "big.bin=#3M:big" "etc/os-release=ID=ops" >/dev/null || exit 1
for d in ops/big:v1 ops/denied:v1 ops/small:v1; do
	IMG_CREDS="admin:$ADMIN_PW" img_push "$TEST_TMP/oci:v1" "$REG_r_URL/$d" >/dev/null ||
		{ fail "push $d"; exit 1; }
done
LAYER=$($PY -c 'import json, sys
oci = sys.argv[1]
idx = json.load(open(oci + "/index.json"))
m = [x for x in idx["manifests"] if x.get("annotations", {}).get("org.opencontainers.image.ref.name") == "v1"][0]
man = json.load(open(oci + "/blobs/" + m["digest"].replace(":", "/")))
print(man["layers"][0]["digest"])' "$TEST_TMP/oci")
LAYER_HEX=${LAYER#sha256:}
printf '%s\n' "$ADMIN_PW" >"$TEST_TMP/admin.pw"
chmod 600 "$TEST_TMP/admin.pw"

# ---------------------------------------------------------------- make install into a DESTDIR
DEST=$TEST_TMP/dest
if make -s -C "$ROOT" WERROR=1 install DESTDIR="$DEST" PREFIX=/usr >"$TEST_TMP/install.log" 2>&1; then
	ok "make install DESTDIR=… PREFIX=/usr"
else
	fail "make install DESTDIR=… PREFIX=/usr" "$(tail -n 20 "$TEST_TMP/install.log")"
fi
for f in bin/acrfs share/man/man1/acrfs.1 share/doc/acrfs/README.md share/doc/acrfs/auth.md \
	share/doc/acrfs/tagops.md share/doc/acrfs/examples/mnt-acr.mount \
	share/doc/acrfs/examples/acrfs@.service; do
	check "installed: \$PREFIX/$f" test -s "$DEST/usr/$f"
done
check "the installed binary is executable" test -x "$DEST/usr/bin/acrfs"
is "$("$DEST/usr/bin/acrfs" --version | head -n1)" "$VERSION" "the installed acrfs runs: --version"
is "$(man --manpath="$DEST/usr/share/man" -w acrfs 2>&1)" "$DEST/usr/share/man/man1/acrfs.1" \
	"man finds the installed page"
mkdir -p "$TEST_TMP/mi"
if "$DEST/usr/bin/acrfs" -o username=admin,password_file="$TEST_TMP/admin.pw" \
	-o cache_dir="$TEST_TMP/cache-i" "$REG_r_URL" "$TEST_TMP/mi" 2>"$TEST_TMP/mi.err"; then
	is "$(ls "$TEST_TMP/mi/ops" | tr '\n' ' ')" "big denied small " \
		"the installed acrfs mounts the registry and lists it"
	fusermount3 -u "$TEST_TMP/mi"
	wait_for 10 test -z "$(_mnt_pid_of "$TEST_TMP/mi")"
else
	fail "the installed acrfs mounts the registry" "$(cat "$TEST_TMP/mi.err")"
fi
if command -v systemd-analyze >/dev/null; then
	# The examples, pointed at the installed binary, as systemd reads them.
	mkdir -p "$TEST_TMP/units"
	cp "$DEST/usr/share/doc/acrfs/examples/mnt-acr.mount" "$TEST_TMP/units/"
	sed "s|/usr/local/bin/acrfs|$DEST/usr/bin/acrfs|" \
		"$DEST/usr/share/doc/acrfs/examples/acrfs@.service" \
		>"$TEST_TMP/units/acrfs@myreg.azurecr.io.service"
	check "systemd-analyze verify accepts the example units" \
		systemd-analyze verify --man=no "$TEST_TMP/units/mnt-acr.mount" \
		"$TEST_TMP/units/acrfs@myreg.azurecr.io.service"
else
	skip "systemd-analyze verify of the example units" "no systemd-analyze"
fi
if make -s -C "$ROOT" uninstall DESTDIR="$DEST" PREFIX=/usr >"$TEST_TMP/uninstall.log" 2>&1; then
	is "$(find "$DEST" -type f | wc -l)" 0 "make uninstall removes every installed file"
else
	fail "make uninstall" "$(cat "$TEST_TMP/uninstall.log")"
fi

# ---------------------------------------------------------------- .acrfs/ during a load
# The proxy holds the layer blob half-sent until $TEST_TMP/release exists; ops/denied
# answers 403 to its tag list.
proxy_start p "$REG_r_URL" --rule "^/v2/ops/denied/tags/list:403" \
	--rule "GET ^/v2/ops/big/blobs/$LAYER:hold:1" --hold-file "$TEST_TMP/release" || exit 1
mnt_start_fg a "$PROXY_p_URL" -o username=admin,password_file="$TEST_TMP/admin.pw" \
	-o cache_dir="$TEST_TMP/cache-a" || { fail "mount"; tap_done; exit 1; }
M=$MNT_a
S=$M/.acrfs

is "$(ls -A "$M" | tr '\n' ' ')" "ops " ".acrfs is not listed (ls -A shows the repositories only)"
is "$(find "$M" -mindepth 1 -maxdepth 1 | wc -l)" 1 "… nor seen by find"
is "$(stat -c '%F %a' "$S")" "directory 555" ".acrfs is a read-only directory found by name"
is "$(ls "$S" | tr '\n' ' ')" "errors loads status " "it holds errors, loads and status"
check "… read-only regular files" test -f "$S/status" -a "$(stat -c %a "$S/status")" = 444
ls "$M/ops/denied" >/dev/null 2>&1
check "a repository whose tag list is refused (403) fails to list" test $? -ne 0

ls "$M/ops/big/v1/rootfs" >"$TEST_TMP/ls.out" 2>&1 &
LS_PID=$!
loading() { grep -q "^ops/big sha256:${LAYER_HEX:0:12} " "$S/loads" && ! grep -q ' 0 B / ' "$S/loads"; }
if wait_for 60 loading; then
	ok "loads shows the held layer load with bytes received"
else
	fail "loads shows the held layer load with bytes received" "loads: $(cat "$S/loads")"
fi
# Everything below is read while the load is held: nothing may reach the registry.
r0=$(reg_count_requests r)
t0=$(wc -l <"$TS_a_LOG")
for i in 1 2 3; do
	for f in status loads errors; do
		cat "$S/$f" >"$TEST_TMP/during.$f" || fail "cat .acrfs/$f"
	done
done
$PY -c 'import json, sys; json.load(open(sys.argv[1]))' "$S/status" 2>/dev/null ||
	fail "status is JSON (python json)"
r1=$(reg_count_requests r)
t1=$(wc -l <"$TS_a_LOG")
is "$((r1 - r0)) $((t1 - t0))" "0 0" "reading .acrfs/ sends no request (registry, token service)"

is "$(wc -l <"$TEST_TMP/during.loads")" 1 "loads: one line per load in progress"
check "loads: repository, short digest, fetched / total, percent, rate, elapsed: $(cat "$TEST_TMP/during.loads")" \
	grep -Eq "^ops/big sha256:${LAYER_HEX:0:12} [0-9.]+ (B|KiB|MiB) / 3\.[0-9]+ MiB +[0-9]+% [0-9.]+ (B|KiB|MiB|GiB)/s [0-9]+ s$" \
	"$TEST_TMP/during.loads"
D=$TEST_TMP/during.status
is "$(json "$D" 'd["version"]')" "${VERSION#acrfs }" "status: version"
is "$(json "$D" 'd["registry"]')" "$PROXY_p_URL" "status: registry URL"
is "$(json "$D" 'd["mountpoint"]')" "$M" "status: mount point"
is "$(json "$D" '(d["identity"]["kind"], d["identity"]["username"], "password_file" in d["identity"]["source"])')" \
	"('basic', 'admin', True)" "status: identity (kind, user, source) without its secret"
is "$(json "$D" '(d["options"]["ttl"], d["options"]["read_only"], d["options"]["cache_dir"])')" \
	"(60, False, '$TEST_TMP/cache-a')" "status: mount options"
is "$(json "$D" 'sorted(d["requests"]["blob"])')" "['2xx', '3xx', '4xx', '5xx', 'error']" \
	"status: requests by status class"
is "$(json "$D" 'sorted(k for k in d["requests"] if k != "total")')" \
	"['blob', 'catalog', 'manifest', 'other', 'tags', 'token']" "status: requests by kind"
is "$(json "$D" '(d["requests"]["tags"]["4xx"] >= 1, d["requests"]["token"]["2xx"] >= 1, d["requests"]["catalog"]["2xx"] >= 1, d["requests"]["total"] == sum(sum(v.values()) for k, v in d["requests"].items() if k != "total"))')" \
	"(True, True, True, True)" "status: the 403 tag list, token and catalog requests are counted; total adds up"
is "$(json "$D" '(d["layer_loads"]["in_progress"], d["layer_loads"]["current"][0]["repository"], d["layer_loads"]["current"][0]["digest"], d["layer_loads"]["current"][0]["bytes"] > 0)')" \
	"(1, 'ops/big', '$LAYER', True)" "status: the load in progress"
is "$(json "$D" '(d["images"] >= 1, d["errors"] >= 1, d["uptime_s"] >= 0, d["retries"] >= 0, d["bytes_fetched"] > 0)')" \
	"(True, True, True, True, True)" "status: images, errors, uptime, retries, bytes"
is "$(json "$D" '(d["cache"]["dir"], d["cache"]["max_blob_bytes"], d["cache"]["blob_bytes"] >= 0)')" \
	"('$TEST_TMP/cache-a', 4294967296, True)" "status: cache use and limit"
# The heap figures come from glibc's malloc (null under ASan, which replaces it).
is "$(json "$D" '(d["memory"]["rss_bytes"] > 1 << 20, (d["memory"]["heap_in_use_bytes"] or 1) > 0, (d["memory"]["heap_in_use_bytes"] is None) == ("'"$ACRFS_SAN"'" == "1"))')" \
	"(True, True, True)" "status: memory in use"
check "errors: the refused tag list, with time, operation, path and cause" \
	grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z opendir /ops/denied GET .*/v2/ops/denied/tags/list.*403' \
	"$TEST_TMP/during.errors"
check "errors: every line has time, operation, path and cause" \
	test -z "$(grep -Ev '^[0-9-]{10}T[0-9:]{8}Z [^ ]+ [^ ]+ .' "$TEST_TMP/during.errors")"
# No secret anywhere: the password, every token the token service issued.
leaks=0
for f in "$TEST_TMP"/during.*; do
	grep -qF -- "$ADMIN_PW" "$f" && leaks=$((leaks + 1))
	while read -r tok; do
		[ -n "$tok" ] && grep -qF -- "$tok" "$f" && leaks=$((leaks + 1))
	done < <(sed 's/.* //' "$TS_a_TOKENS")
	grep -qiE 'authorization|bearer ey|basic [a-z0-9+/=]{8}' "$f" && leaks=$((leaks + 1))
done
check "no password or token in .acrfs/ ($(wc -l <"$TS_a_TOKENS") tokens issued)" \
	test "$leaks" -eq 0 -a "$(wc -l <"$TS_a_TOKENS")" -ge 1
is "$($PY -c 'import os, sys
with open(sys.argv[1], "rb") as f:
    n = len(f.read())
    print(os.fstat(f.fileno()).st_size == n, n > 100)' "$S/status")" "True True" \
	"an open status file's size is its snapshot's"
out=$( (cd "$S" && $PY -c 'import os
for call in (lambda: open("status", "w"), lambda: open("new", "w"), lambda: os.unlink("status"),
             lambda: os.mkdir("d"), lambda: os.rename("status", "s2"), lambda: os.rmdir("../.acrfs"),
             lambda: os.rename("../.acrfs", "../x")):
    try:
        call()
        print("allowed")
    except OSError as e:
        print(e.errno != 0)') 2>&1 | sort -u)
is "$out" "True" ".acrfs/ refuses writes, creation, unlink, mkdir, rename, rmdir"
ls "$S/nope" >/dev/null 2>&1
check "a name .acrfs/ does not have: ENOENT" test $? -ne 0

touch "$TEST_TMP/release"
wait "$LS_PID"
is "$? $(tr '\n' ' ' <"$TEST_TMP/ls.out")" "0 big.bin etc " "the held load completes once released"
is "$(cat "$S/loads")" "" "loads is empty when nothing loads"
cat "$S/status" >"$TEST_TMP/after.status"
is "$(json "$TEST_TMP/after.status" '(d["layer_loads"]["in_progress"], d["layer_loads"]["done"], d["layers_loaded"], d["requests"]["blob"]["2xx"] >= 1, d["bytes_fetched"] > 3 << 20)')" \
	"(0, 1, 1, True, True)" "status after the load: done, loaded, blob requests and bytes counted"
check "the log says when the load started, with its size" \
	grep -Eq "info: layer sha256:${LAYER_HEX:0:12} of ops/big: fetching 3\.[0-9]+ MiB" "$TEST_TMP/mnt-a.log"
check "… and when it finished, with size, time and rate" \
	grep -Eq "info: layer sha256:${LAYER_HEX:0:12} of ops/big: 3\.[0-9]+ MiB fetched in [0-9.]+ s \([0-9.]+ [KMG]?i?B/s\)" \
	"$TEST_TMP/mnt-a.log"
mnt_stop a

# ---------------------------------------------------------------- -f on a terminal
# acrfs -f with its standard streams on a pseudo-terminal; the proxy holds the blob.
proxy_start q "$REG_r_URL" --rule "GET ^/v2/ops/big/blobs/$LAYER:hold:1" \
	--hold-file "$TEST_TMP/release-q" || exit 1
MB=$TEST_TMP/mnt-tty
mkdir -p "$MB"
$PY -c 'import os, pty, sys
log = open(sys.argv[1], "wb")
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
while True:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    log.write(data)
    log.flush()
sys.exit(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))' "$TEST_TMP/tty.log" "$ACRFS" -f \
	-o username=admin,password_file="$TEST_TMP/admin.pw" -o cache_dir="$TEST_TMP/cache-tty" \
	"$PROXY_q_URL" "$MB" &
PTY_PID=$!
if wait_for 30 is_mounted "$MB"; then
	ls "$MB/ops/big/v1/rootfs" >/dev/null 2>&1 &
	LS_PID=$!
	if wait_for 60 grep -q "acrfs: loading ops/big sha256:${LAYER_HEX:0:12} .* / 3\.[0-9]* MiB .*%" "$TEST_TMP/tty.log"; then
		ok "on a terminal, a load over a second shows a progress line: $(grep -ao 'acrfs: loading [^%]*%' "$TEST_TMP/tty.log" | tail -n1)"
	else
		fail "on a terminal, a load over a second shows a progress line" "$(cat -v "$TEST_TMP/tty.log")"
	fi
	touch "$TEST_TMP/release-q"
	wait "$LS_PID"
	check "the progress line is redrawn in place (carriage return, erase to end of line)" \
		grep -qaF $'\r''acrfs: loading ' "$TEST_TMP/tty.log"
	wait_for 10 grep -qa 'fetched in' "$TEST_TMP/tty.log"
	# Cleared (CR, erase line) after its last drawing: by the log line that ends the
	# load or by the next redraw, whichever comes first.
	check "… and cleared once the load is over" $PY -c 'import sys
t = open(sys.argv[1], "rb").read()
sys.exit(b"\r\x1b[K" not in t[t.rindex(b"acrfs: loading "):])' "$TEST_TMP/tty.log"
	fusermount3 -u "$MB"
	wait "$PTY_PID"
	is "$?" 0 "acrfs -f on a terminal exits 0 after fusermount3 -u"
else
	fail "acrfs -f on a terminal mounts" "$(cat -v "$TEST_TMP/tty.log")"
fi
PTY_PID=

# ---------------------------------------------------------------- fstab: mount -T, umount
# mount.fuse3 runs "PROGRAM#SOURCE" for type fuse (the fuse.acrfs form is tested below,
# in a mount namespace of its own); the options are what an fstab user writes.
mkdir -p "$FSTAB_MNT" "$TEST_TMP/dcfg"
printf '{"auths": {"%s": {"auth": "%s"}}}\n' "$REG_r_HOST" "$(b64 "admin:$ADMIN_PW")" \
	>"$TEST_TMP/dcfg/config.json"
chmod 644 "$TEST_TMP/dcfg/config.json"
printf '%s#%s %s fuse ro,ttl=30,allow_other,_netdev,nofail,x-systemd.automount,x-systemd.mount-timeout=30,cache_dir=%s,docker_config=%s 0 0\n' \
	"$ACRFS" "$REG_r_URL" "$FSTAB_MNT" "$TEST_TMP/cache-f" "$TEST_TMP/dcfg" >"$TEST_TMP/fstab"
out=$(mount -T "$TEST_TMP/fstab" "$FSTAB_MNT" 2>&1)
rc=$?
check "mount refuses a docker config others may read (exit $rc): $out" test "$rc" -ne 0
check "… saying how to fix it" grep -q "chmod 600 $TEST_TMP/dcfg/config.json" <<<"$out"
check "… and mounts nothing" test -z "$(is_mounted "$FSTAB_MNT" && echo mounted)"
chmod 600 "$TEST_TMP/dcfg/config.json"
out=$(mount -T "$TEST_TMP/fstab" "$FSTAB_MNT" 2>&1)
if [ $? -eq 0 ] && is_mounted "$FSTAB_MNT"; then
	ok "mount -T FSTAB MOUNTPOINT with a 0600 docker config"
	line=$(awk -v d="$FSTAB_MNT" '$2 == d' /proc/mounts)
	check "… read-only, nosuid, nodev, allow_other: $line" \
		grep -Eq ' ro,nosuid,nodev,.*allow_other' <<<"$line"
	is "$(ls "$FSTAB_MNT/ops" | tr '\n' ' ')" "big denied small " \
		"… lists the registry with the config's credentials (the catalog needs them)"
	cat "$FSTAB_MNT/.acrfs/status" >"$TEST_TMP/fstab.status"
	is "$(json "$TEST_TMP/fstab.status" '(d["options"]["read_only"], d["options"]["ttl"], d["options"]["allow_other"], d["options"]["docker_config"], "config.json" in d["identity"]["source"])')" \
		"(True, 30, True, '$TEST_TMP/dcfg', True)" "… with the fstab line's options and identity source"
	check "… no secret in its status" test -z "$(grep -F -- "$ADMIN_PW" "$TEST_TMP/fstab.status")"
	mkdir "$FSTAB_MNT/ops/x" 2>/dev/null
	check "… refuses changes (ro)" test $? -ne 0
	pid=$(_mnt_pid_of "$FSTAB_MNT")
	out=$(umount "$FSTAB_MNT" 2>&1)
	is "$? $out" "0 " "umount MOUNTPOINT"
	check "… unmounts" test -z "$(is_mounted "$FSTAB_MNT" && echo mounted)"
	if [ -n "$pid" ] && wait_for 10 test ! -e "/proc/$pid"; then
		ok "… and the daemon exits"
	else
		fail "… and the daemon exits" "pid ${pid:-not found}"
	fi
else
	fail "mount -T FSTAB MOUNTPOINT with a 0600 docker config" "$out"
fi

# ---------------------------------------------------------------- fstab: type fuse.acrfs
# The documented fstab form: mount.fuse3 runs "acrfs" from its own fixed PATH
# (/usr/local/bin, /usr/bin, ...). In a private mount namespace whose /usr/local/bin
# is a directory holding only our binary — what `make install` makes — the real
# lookup runs without installing anything on this machine.
mkdir -p "$TEST_TMP/ns-bin" "$TEST_TMP/ns-mnt"
ln -sf "$ACRFS" "$TEST_TMP/ns-bin/acrfs"
printf '%s %s fuse.acrfs ro,ttl=30,_netdev,nofail,cache_dir=%s,docker_config=%s 0 0\n' \
	"$REG_r_URL" "$TEST_TMP/ns-mnt" "$TEST_TMP/cache-ns" "$TEST_TMP/dcfg" >"$TEST_TMP/fstab-type"
out=$(unshare -m --propagation private sh -c '
	mount --bind "$1" /usr/local/bin || exit 3
	mount -T "$2" "$3" 2>"$4" || exit 4
	grep -F " $3 " /proc/self/mounts | cut -d" " -f3
	ls "$3/ops" | tr "\n" " "; echo
	umount "$3" || exit 5
	grep -qF " $3 " /proc/self/mounts && exit 6
	exit 0' sh "$TEST_TMP/ns-bin" "$TEST_TMP/fstab-type" "$TEST_TMP/ns-mnt" "$TEST_TMP/ns-mount.err" 2>&1)
is "$? $(echo "$out" | tr '\n' '|')" "0 fuse.acrfs|big denied small |" \
	"fstab type fuse.acrfs: mount -T finds acrfs on mount.fuse3's PATH, lists, umount"

tap_done
