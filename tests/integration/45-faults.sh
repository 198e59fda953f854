#!/usr/bin/env bash
# test-weight: 4 (tests/run.sh starts heavier scripts first)
# Issue 9 (network half): the fault matrix, request deadlines, single-flight error
# handoff, and serving while the registry is unreachable (the bounds on listings are in
# 47-limits.sh).
# Every fault comes from tests/lib/faultproxy.py in front of a real docker-registry;
# every row names its outcome — a transparent retry that gives the oracle's bytes, or
# an error within a generous guard (never a wrong byte, never a hang) — and checks it.
# No timing assertions: a guard (`timeout`) only tells "it returned" from "it hung".
#
#   row                                        outcome
#   connection reset mid-blob                  resumed: identical bytes
#   truncated body                             resumed: identical bytes
#   corrupted full body (layer, config)        EIO, no byte served
#   corrupted ranged body (gzip, cache_max=0)  identical bytes after a retry, or EIO
#                                              with only correct bytes before it
#   200 instead of 206 (gzip, cache_max=0)     identical bytes
#   trickling server (manifest, blob)          ETIMEDOUT/EIO within the guard
#   endless body (manifest, token)             EIO within the guard
#   storage host: 401 with a foreign realm     EIO; nothing reaches the evil host; the
#                                              mount's realm is unchanged
#   429 with Retry-After                       waited, then identical bytes
# shellcheck disable=SC2154 # REG_*, PROXY_*, MNT_*, TS_* are exported by the helpers
set -u
. "$TESTS_LIB/tap.sh"
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/acrfs.sh"
GUARD=90        # seconds: "returned" vs "hung"; every deadline below is a few seconds
MOUNT_TIMEOUT=3 # -o timeout= of the mounts
. "$TESTS_LIB/faults.sh"
PY=/usr/bin/python3
T=$TEST_TMP
O=$T/o
mkdir -p -- "$O"
tap_trap_cleanup faults_cleanup
mkimage() { "$PY" "$TESTS_LIB/mkimage.py" "$@"; }

reg_start r || exit 1
URL=$REG_r_URL

# ---------------------------------------------------------------- images
# app:v1 — one gzip layer: a 3 MiB random file (its compressed bytes are in the middle
# of the blob) and small files.
cat >"$O/app.json" <<'EOF'
{"mtime": 1700000000, "layers": [
 {"compression": "gzip", "entries": [
  {"type": "file", "path": "hello.txt", "content": "hello\n"},
  {"type": "file", "path": "big.bin", "size": 3145728, "seed": "big", "fill": "random"},
  {"type": "file", "path": "tail.txt", "content": "the end\n"}
 ]}
]}
EOF
# slow:v1 — a 1.5 MiB layer for the "slow but progressing" row.
cat >"$O/slow.json" <<'EOF'
{"mtime": 1700000000, "layers": [
 {"compression": "gzip", "entries": [
  {"type": "file", "path": "slow.bin", "size": 1572864, "seed": "slow", "fill": "random"}
 ]}
]}
EOF
mkimage build "$O/app.json" "$O/oci" --ref app --layers-out "$O/app.layers" >/dev/null &&
	mkimage build "$O/slow.json" "$O/oci" --ref slow --layers-out "$O/slow.layers" >/dev/null &&
	mkimage push "$O/oci" app "$URL/app:v1" >/dev/null &&
	mkimage push "$O/oci" app "$URL/other:v1" >/dev/null &&
	mkimage push "$O/oci" slow "$URL/slow:v1" >/dev/null || {
	fail "build and push the test images"
	tap_done
	exit 1
}
mkdir -p -- "$O/ref" "$O/sref"
tar -xzf "$(mkimage blob "$O/oci" app 0)" -C "$O/ref"
tar -xzf "$(mkimage blob "$O/oci" slow 0)" -C "$O/sref"
LAYER=$(awk '$1 == 0 { print $2 }' "$O/app.layers")
SLOWL=$(awk '$1 == 0 { print $2 }' "$O/slow.layers")
CFG=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["config"]["digest"])' \
	"$(mkimage blob "$O/oci" app manifest)")
BIG=$O/ref/big.bin
check "the big file is 3 MiB of the oracle" test "$(stat -c %s "$BIG")" = 3145728

# ---------------------------------------------------------------- the matrix
# row NAME RULE... : a proxy with these rules and a mount through it (MNT_<NAME>).
row() {
	local name=$1
	shift
	local args=() r
	for r in "$@"; do args+=(--rule "$r"); done
	proxy_start "$name" "$URL" --header-log "$T/hdr-$name.log" "${args[@]}" || return 1
	local v="PROXY_${name}_URL"
	mount_fg "$name" "${!v}" "${MOUNT_EXTRA[@]}"
}
MOUNT_EXTRA=()

# Connection reset in the middle of the layer: resumed with a Range.
row rst "^/v2/app/blobs/$LAYER:reset:1" || fail "row rst"
rc=$(guarded "$O/rst.out" cat "$MNT_rst/app/v1/rootfs/big.bin")
is "$rc" 0 "reset mid-blob: read succeeds"
cmp_files "$O/rst.out" "$BIG" "reset mid-blob: identical bytes (transparent resume)"
check "… the second request asked for the rest with a Range" \
	grep -q '"Range", "bytes=[1-9][0-9]*-' "$T/hdr-rst.log"
mnt_stop rst

row trc "^/v2/app/blobs/$LAYER:truncate:1" || fail "row trc"
rc=$(guarded "$O/trc.out" cat "$MNT_trc/app/v1/rootfs/big.bin")
is "$rc" 0 "truncated body: read succeeds"
cmp_files "$O/trc.out" "$BIG" "truncated body: identical bytes (transparent resume)"
mnt_stop trc

# Corrupted in transit (every time): the digest check refuses the whole layer.
row cor "^/v2/app/blobs/$LAYER:corrupt" "^/v2/app/blobs/$CFG:corrupt" || fail "row cor"
rc=$(guarded "$O/cor.out" cat "$MNT_cor/app/v1/rootfs/big.bin")
check "corrupted layer: EIO (rc $rc: $(errno_text "$O/cor.out.err"))" \
	grep -q 'Input/output error' "$O/cor.out.err"
is "$(stat -c %s "$O/cor.out")" 0 "corrupted layer: not one byte served"
rc=$(guarded "$O/corc.out" cat "$MNT_cor/app/v1/config.json")
check "corrupted config: EIO (rc $rc)" grep -q 'Input/output error' "$O/corc.out.err"
is "$(stat -c %s "$O/corc.out")" 0 "corrupted config: not one byte served"
mnt_stop cor

# Ranged reads of a gzip layer (cache_max=0: no local copy, bytes by Range requests).
# The first GET (the indexing stream) passes; the first ranged answer is corrupted.
MOUNT_EXTRA=(-o cache_max=0)
row rng "^/v2/app/blobs/$LAYER:pass:1" "^/v2/app/blobs/$LAYER:corrupt:1" || fail "row rng"
ls "$MNT_rng/app/v1/rootfs" >/dev/null 2>&1 # index the layer
rc=$(guarded "$O/rng.out" cat "$MNT_rng/app/v1/rootfs/big.bin")
if [ "$rc" = 0 ]; then
	cmp_files "$O/rng.out" "$BIG" "corrupted ranged body: identical bytes after a retry"
else
	check "corrupted ranged body: EIO (rc $rc: $(errno_text "$O/rng.out.err"))" \
		grep -q 'Input/output error' "$O/rng.out.err"
	check "… and every byte served before the error is right" is_prefix "$O/rng.out" "$BIG"
fi
check "… the corrupted answer was a ranged one (206)" \
	test "$(proxy_count rng "GET /v2/app/blobs/$LAYER -> 206")" -ge 1
mnt_stop rng

row nor "^/v2/app/blobs/$LAYER:pass:1" "^/v2/app/blobs/$LAYER:norange" || fail "row nor"
ls "$MNT_nor/app/v1/rootfs" >/dev/null 2>&1
rc=$(guarded "$O/nor.out" cat "$MNT_nor/app/v1/rootfs/big.bin")
is "$rc" 0 "200 instead of 206: read succeeds"
cmp_files "$O/nor.out" "$BIG" "200 instead of 206: identical bytes"
check "… the registry really answered 200 to the ranged reads" \
	test "$(proxy_count nor "GET /v2/app/blobs/$LAYER -> 200")" -ge 2
mnt_stop nor
MOUNT_EXTRA=()

# A trickling server: a few bytes per second. Manifest (a collected body: the deadline
# bounds the whole answer) and blob (a stream: the stall bound ends it).
row trm "GET ^/v2/app/manifests/v1:trickle" || fail "row trm"
rc=$(guarded "$O/trm.out" ls "$MNT_trm/app/v1")
check "trickling manifest: ls fails within the guard (rc $rc: $(errno_text "$O/trm.out.err"))" \
	failed_in_time "$rc"
check "… with ETIMEDOUT or EIO" grep -qE 'Connection timed out|Input/output error' "$O/trm.out.err"
mnt_stop trm

row trb "^/v2/app/blobs/$LAYER:trickle" || fail "row trb"
rc=$(guarded "$O/trb.out" cat "$MNT_trb/app/v1/rootfs/hello.txt")
check "trickling blob: the read fails within the guard (rc $rc: $(errno_text "$O/trb.out.err"))" \
	failed_in_time "$rc"
is "$(stat -c %s "$O/trb.out")" 0 "… serving nothing"
mnt_stop trb

# An endless body for a manifest.
row enm "GET ^/v2/app/manifests/v1:endless" || fail "row enm"
rc=$(guarded "$O/enm.out" ls "$MNT_enm/app/v1")
check "endless manifest: ls fails within the guard (rc $rc)" failed_in_time "$rc"
check "… with EIO, and the log names the limit" \
	grep -q 'Input/output error' "$O/enm.out.err"
check "… (log: larger than 4194304 bytes)" grep -q 'larger than 4194304 bytes' "$T/mnt-enm.log"
is "$(ls "$MNT_enm/other" 2>&1)" v1 "… and the mount still serves the rest"
mnt_stop enm

# 429 with Retry-After: 1 on the layer, once: waited, then served.
row tmr "^/v2/app/blobs/$LAYER:429r1:1" || fail "row tmr"
rc=$(guarded "$O/tmr.out" cat "$MNT_tmr/app/v1/rootfs/big.bin")
is "$rc" 0 "429 with Retry-After: read succeeds"
cmp_files "$O/tmr.out" "$BIG" "429 with Retry-After: identical bytes"
is "$(proxy_count tmr "GET /v2/app/blobs/$LAYER -> (429|200)" | tr -d ' ')" 2 \
	"… one 429, then the blob"
mnt_stop tmr

# ---------------------------------------------------------------- token registry rows
# A registry with token auth; the token service sits on the registry's origin (through
# the proxy's route), as on ACR, so that token requests meet the proxy's rules too.
cat >"$T/ids.json" <<'EOF'
{"identities": [
  {"username": "admin", "password": "Adm1n-fault-pw", "catalog": true,
   "repositories": [{"pattern": "*", "actions": ["pull", "push", "delete"]}]}]}
EOF
PW=Adm1n-fault-pw
ts_start a "$T/ids.json" || exit 1
reg_start tok --token "$TS_a_REALM" "$TS_a_ISSUER" "$TS_a_SERVICE" "$TS_a_ROOT" || exit 1
for ref in "app:v1" "other:v1"; do
	skopeo copy -q --dest-tls-verify=false --dest-creds "admin:$PW" --preserve-digests \
		"oci:$O/oci:app" "docker://$REG_tok_HOST/$ref" || fail "push $ref to the token registry"
done

# The storage host answers every blob with 401 and a realm of its own (the evil host).
proxy_start ev "$REG_tok_URL" --route "/oauth2/=$TS_a_URL" --header-log "$T/hdr-ev.log" \
	--rule "^/v2/app/blobs/:redirect" --rule "^storage:/v2/app/blobs/:401evil" || fail "proxy ev"
ACRFS_PASSWORD=$PW mount_fg ev "$PROXY_ev_URL" -o username=admin ||
	fail "mount ev"
rc=$(guarded "$O/ev.out" cat "$MNT_ev/app/v1/config.json")
check "storage 401 with a foreign realm: EIO (rc $rc: $(errno_text "$O/ev.out.err"))" \
	grep -q 'Input/output error' "$O/ev.out.err"
is "$(proxy_count ev "GET /v2/app/blobs/$CFG -> 307")" 2 \
	"… after asking the registry once more for a fresh redirect"
rc=$(guarded "$O/ev2.out" cat "$MNT_ev/app/v1/rootfs/hello.txt")
check "… a layer too (rc $rc)" grep -q 'Input/output error' "$O/ev2.out.err"
is "$(ls "$MNT_ev/other" 2>&1)" v1 "… the mount keeps its realm: other requests still authenticate"
is "$(grep -c '"listener": "evil"' "$T/hdr-ev.log")" 0 "… the evil realm got no request at all"
foreign=$(grep -E '"listener": "(storage|evil)"' "$T/hdr-ev.log")
check "… the storage and evil hosts saw requests (the test is live)" test -n "$foreign"
check "… none of them carried an Authorization header" \
	test "$(grep -ci '"authorization"' <<<"$foreign")" = 0
check "… nor the password, in the clear or as Basic credentials" \
	test "$(grep -cF -e "$PW" -e "$(printf 'admin:%s' "$PW" | base64 -w0)" <<<"$foreign")" = 0
leaked=0
while read -r tok; do
	[ -n "$tok" ] && grep -qF -- "$tok" <<<"$foreign" && leaked=$((leaked + 1))
done <"$TS_a_TOKENS"
check "… nor any token the token service issued ($(wc -l <"$TS_a_TOKENS") checked)" test "$leaked" = 0
mnt_stop ev

# An endless body from the token service (once the mount is up: for app's token).
proxy_start et "$REG_tok_URL" --route "/oauth2/=$TS_a_URL" \
	--rule "^/oauth2/token.*scope=repository%3Aapp%3A:endless" || fail "proxy et"
ACRFS_PASSWORD=$PW mount_fg et "$PROXY_et_URL" -o username=admin ||
	fail "mount et"
rc=$(guarded "$O/et.out" ls "$MNT_et/app")
check "endless token body: ls fails within the guard (rc $rc: $(errno_text "$O/et.out.err"))" \
	failed_in_time "$rc"
check "… with EIO" grep -q 'Input/output error' "$O/et.out.err"
check "… (log: the token service answered too much)" grep -q 'answered more than' "$T/mnt-et.log"
check "… the token request was really endless" test "$(proxy_count et 'GET /oauth2/token.* -> endless')" -ge 1
is "$(ls "$MNT_et/other" 2>&1)" v1 "… and repositories are still served (their tokens are fine)"
mnt_stop et

# ---------------------------------------------------------------- deadlines
# A frozen registry: it accepts connections and never answers.
proxy_start fz "$URL" --rule "/tags/list:freeze" || fail "proxy fz"
mount_fg fz "$PROXY_fz_URL" || fail "mount fz"
rc=$(guarded "$O/fz.out" ls "$MNT_fz/app")
check "frozen registry: ls of a repository fails within the guard (rc $rc)" failed_in_time "$rc"
check "… with ETIMEDOUT ($(errno_text "$O/fz.out.err"))" grep -q 'Connection timed out' "$O/fz.out.err"
check "… and the log says why" grep -q 'tags/list: .*(after 1 attempt)' "$T/mnt-fz.log"
# Six at once: one fill, whose error every waiter takes (not six fills in turn).
before=$(proxy_count fz '/tags/list -> freeze')
pids=()
for i in 1 2 3 4 5 6; do
	guarded "$O/fz$i.out" ls "$MNT_fz/other" >"$O/fz$i.rc" &
	pids+=($!)
done
wait "${pids[@]}"
ok6=0
for i in 1 2 3 4 5 6; do
	failed_in_time "$(cat "$O/fz$i.rc")" && grep -q 'Connection timed out' "$O/fz$i.out.err" &&
		ok6=$((ok6 + 1))
done
is "$ok6" 6 "six concurrent ls of a frozen repository: all fail with ETIMEDOUT within the guard"
n=$(($(proxy_count fz '/tags/list -> freeze') - before))
check "… sharing the failed fill: $n request(s) for 6 callers" test "$n" -ge 1 -a "$n" -le 2
mnt_stop fz

# A blob whose download never starts; one that trickles in slowly but keeps flowing.
proxy_start fb "$URL" --rule "^/v2/app/blobs/$LAYER:freeze" --rule "^/v2/slow/blobs/$SLOWL:slow" ||
	fail "proxy fb"
mount_fg fb "$PROXY_fb_URL" -o timeout=2 || fail "mount fb"
rc=$(guarded "$O/fb.out" cat "$MNT_fb/app/v1/rootfs/hello.txt")
check "frozen blob: the read fails within the guard (rc $rc: $(errno_text "$O/fb.out.err"))" \
	failed_in_time "$rc"
rc=$(guarded "$O/sl.out" cat "$MNT_fb/slow/v1/rootfs/slow.bin")
is "$rc" 0 "a slow blob (~200 KB/s, ~8 s at -o timeout=2) that keeps flowing: read succeeds"
cmp_files "$O/sl.out" "$O/sref/slow.bin" "… identical bytes"
# (The proxy logs a request once it has sent all of it: wait for that line.)
for _ in $(seq 100); do [ "$(proxy_count fb "GET /v2/slow/blobs/$SLOWL")" -ge 1 ] && break; sleep 0.02; done
is "$(proxy_count fb "GET /v2/slow/blobs/$SLOWL")" 1 "… in one request"
mnt_stop fb

# ---------------------------------------------------------------- while unreachable
# What is indexed or copied (content addressed) is served with the registry frozen: to
# an open file, and through a view whose tag answer is still cached (ttl=600). A listing
# past its TTL (ttl=2) fails rather than showing stale tags.
proxy_start un "$URL" || fail "proxy un"
mount_fg un "$PROXY_un_URL" -o ttl=600 || fail "mount un (ttl 600)"
mount_fg ut "$PROXY_un_URL" -o ttl=2 || fail "mount ut (ttl 2)"
# Index and copy the layer (reading one small file fetches the whole blob).
cat "$MNT_un/app/v1/rootfs/hello.txt" >/dev/null && cat "$MNT_ut/app/v1/rootfs/hello.txt" >/dev/null ||
	fail "read before the freeze"
ls "$MNT_ut/app" >/dev/null
# A reader holding big.bin open (never read: not in the page cache) across the freeze
# and the TTL.
mkfifo "$O/go"
$PY - "$MNT_ut/app/v1/rootfs/big.bin" "$O/go" "$O/opened" >"$O/held.sha" 2>&1 <<'EOF' &
import hashlib, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
open(sys.argv[3], "w").close()  # tell the test
open(sys.argv[2]).read()  # wait for the test
h, off = hashlib.sha256(), 0
while True:
    b = os.pread(fd, 1 << 20, off)
    if not b:
        break
    h.update(b)
    off += len(b)
print(h.hexdigest())
EOF
reader=$!
for ((i = 0; i < 100; i++)); do
	[ -e "$O/opened" ] && break
	kill -0 "$reader" 2>/dev/null || break
	sleep 0.1
done
check "the reader opened big.bin" test -e "$O/opened"
proxy_rules un '.*:freeze'
sleep 3 # past ut's TTL of 2 s
echo go >"$O/go"
wait "$reader"
is "$(cat "$O/held.sha")" "$(sha256sum <"$BIG" | cut -d' ' -f1)" \
	"registry frozen: an open file keeps being served (sha256 of a full pread pass)"
rc=$(guarded "$O/un.out" cat "$MNT_un/app/v1/rootfs/tail.txt")
is "$rc" 0 "registry frozen: a file never looked up, in a view whose tag answer is cached, is served"
cmp_files "$O/un.out" "$O/ref/tail.txt" "… with the right bytes"
rc=$(guarded "$O/ut.out" ls "$MNT_ut/app")
check "registry frozen, TTL over: ls fails within the guard instead of listing stale tags (rc $rc: $(errno_text "$O/ut.out.err"))" \
	failed_in_time "$rc"
check "… with ETIMEDOUT" grep -q 'Connection timed out' "$O/ut.out.err"
mnt_stop ut
mnt_stop un

tap_done
