#!/usr/bin/env bash
# test-weight: 2 (tests/run.sh starts heavier scripts first)
# Issue 4, registry side: manifests and blobs through tests/tools/acrfs-fetch (the
# registry/manifest and registry/blob APIs) against a real registry, compared with
# independent oracles: 'skopeo inspect --raw', curl of the blob, dd of that, sha256sum.
# Faults come from tests/lib/faultproxy.py: corrupted bodies, connections cut mid-blob,
# servers that ignore Range, redirects to a storage host on another port (which must
# never see the registry's Authorization).
# shellcheck disable=SC2154 # REG_*, PROXY_* are exported by reg_start / proxy_start
set -u
. "$TESTS_LIB/tap.sh"
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/images.sh"
. "$TESTS_LIB/acrfs.sh"

ROOT=${ACRFS_ROOT:-$PWD}
if [ -n "${ACRFS_FETCH:-}" ]; then
	FETCH=$ACRFS_FETCH
elif [ "${ACRFS_SAN:-0}" = 1 ]; then
	FETCH=$ROOT/build/asan-ubsan/tools/acrfs-fetch
else
	FETCH=$ROOT/build/release/tools/acrfs-fetch
fi
T=$TEST_TMP
OCI=$T/oci

cleanup() {
	proxy_stop_all
	reg_stop_all
}
tap_trap_cleanup cleanup

if [ ! -x "$FETCH" ]; then
	fail "acrfs-fetch is built" "not found: $FETCH"
	tap_done
	exit 1
fi

fetch() { "$FETCH" "$@"; }
sha_of() { sha256sum -- "$1" | cut -d' ' -f1; }
dd_at() { dd if="$1" bs=64K iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none; }
jq_py() { /usr/bin/python3 -c "import json, sys; m = json.load(open(sys.argv[1])); print($2)" "$1"; }
# cmp_files, but an empty oracle is a broken test, not a pass.
cmp_bytes() {
	if [ ! -s "$2" ]; then
		fail "$3" "the oracle $2 is empty"
		return 1
	fi
	cmp_files "$@"
}
raw() { skopeo inspect --raw --tls-verify=false "docker://$HOST/$1"; }

reg_start r || exit 1
URL=$REG_r_URL
HOST=$REG_r_HOST

# ---------------------------------------------------------------- images
# amd64: two layers, one of them 3 MiB of random data (so a cut in the middle of the
# blob is really in the middle of a transfer); arm64: one small layer.
img_build_simple "$OCI" amd64 'hello.txt=hello amd64
' 'big.bin=#3M:big' 'dir/' 'link->hello.txt' >/dev/null || exit 1
img_add_layer "$OCI" amd64 'second.txt=second layer
' '!link' >/dev/null || exit 1
img_build_simple "$OCI" arm64 'hello.txt=hello arm64
' >/dev/null || exit 1
img_push "$OCI:amd64" "$URL/img/oci:v1" || exit 1
IMG_FORMAT=v2s2 img_push "$OCI:amd64" "$URL/img/docker:v1" || exit 1
for a in amd64 arm64; do
	img_push "$OCI:$a" "$URL/img/multi:$a" || exit 1
	IMG_FORMAT=v2s2 img_push "$OCI:$a" "$URL/img/dmulti:$a" || exit 1
done

# An index (and a docker manifest list) over the platform images, with an attestation
# entry (unknown/unknown) as buildkit writes them; written by hand, PUT with curl.
mkindex() { # REPO MEDIATYPE ENTRY-MEDIATYPE → index JSON on stdout
	local repo=$1 mt=$2 emt=$3 a d s
	printf '{"schemaVersion":2,"mediaType":"%s","manifests":[' "$mt"
	for a in amd64 arm64 att; do
		local tag=$a plat
		[ "$a" != att ] || tag=amd64
		d=$(reg_digest r "$repo" "$tag")
		s=$(reg_curl r -H "Accept: $emt" "/v2/$repo/manifests/$tag" | wc -c)
		case $a in
		amd64) plat='{"os":"linux","architecture":"amd64"}' ;;
		arm64) plat='{"os":"linux","architecture":"arm64","variant":"v8"}' ;;
		att) plat='{"os":"unknown","architecture":"unknown"}' ;;
		esac
		[ "$a" = amd64 ] || printf ','
		printf '{"mediaType":"%s","digest":"%s","size":%s,"platform":%s}' "$emt" "$d" "$s" "$plat"
	done
	printf ']}'
}
OCI_MT=application/vnd.oci.image.manifest.v1+json
IDX_MT=application/vnd.oci.image.index.v1+json
D2_MT=application/vnd.docker.distribution.manifest.v2+json
DL_MT=application/vnd.docker.distribution.manifest.list.v2+json
mkindex img/multi "$IDX_MT" "$OCI_MT" >"$T/index.json"
mkindex img/dmulti "$DL_MT" "$D2_MT" >"$T/list.json"
check "PUT an OCI index" reg_curl r -f -X PUT -H "Content-Type: $IDX_MT" \
	--data-binary "@$T/index.json" /v2/img/multi/manifests/latest
check "PUT a docker manifest list" reg_curl r -f -X PUT -H "Content-Type: $DL_MT" \
	--data-binary "@$T/list.json" /v2/img/dmulti/manifests/latest

# ---------------------------------------------------------------- manifests
for spec in "img/oci v1 $OCI_MT" "img/docker v1 $D2_MT" "img/multi latest $IDX_MT" \
	"img/dmulti latest $DL_MT"; do
	read -r repo tag mt <<<"$spec"
	want=$(reg_digest r "$repo" "$tag")
	raw "$repo:$tag" >"$T/m.oracle" || fail "skopeo inspect --raw $repo:$tag"
	if fetch "$URL" "$repo" "$tag" --manifest >"$T/m.out" 2>"$T/m.err"; then
		cmp_bytes "$T/m.out" "$T/m.oracle" "$repo:$tag: manifest bytes = skopeo inspect --raw"
		is "sha256:$(sha_of "$T/m.out")" "$want" "$repo:$tag: sha256 of the bytes = the registry's digest"
	else
		fail "$repo:$tag: acrfs-fetch --manifest" "$(cat "$T/m.err")"
	fi
	fetch "$URL" "$repo" "$want" --manifest >"$T/md.out" 2>"$T/m.err"
	cmp_bytes "$T/md.out" "$T/m.oracle" "$repo@$want: by digest, the same bytes"
	is "$(fetch "$URL" "$repo" "$tag" --head 2>&1)" "$want $mt" "$repo:$tag: HEAD gives digest and media type"
done

# ---------------------------------------------------------------- config and layers
for repo in img/oci img/docker; do
	fetch "$URL" "$repo" v1 --manifest >"$T/m.json" || fail "$repo: manifest"
	cfg=$(jq_py "$T/m.json" 'm["config"]["digest"]')
	reg_curl r -f "/v2/$repo/blobs/$cfg" >"$T/cfg.oracle"
	fetch "$URL" "$repo" v1 --config >"$T/cfg.out" 2>"$T/cfg.err" || fail "$repo: --config" "$(cat "$T/cfg.err")"
	cmp_bytes "$T/cfg.out" "$T/cfg.oracle" "$repo: config bytes = curl of the config blob"
	is "sha256:$(sha_of "$T/cfg.out")" "$cfg" "$repo: config sha256 = its digest"
	n=0
	while read -r d s; do
		reg_curl r -f "/v2/$repo/blobs/$d" >"$T/l$n.oracle"
		fetch "$URL" "$repo" - --blob "$d" --size "$s" >"$T/l$n.out" 2>"$T/l.err" ||
			fail "$repo: layer $n" "$(cat "$T/l.err")"
		is "sha256:$(sha_of "$T/l$n.out")" "$d" "$repo: layer $n ($s bytes) streamed, sha256 = digest"
		n=$((n + 1))
	done < <(jq_py "$T/m.json" '"\n".join(l["digest"] + " " + str(l["size"]) for l in m["layers"])')
done
check "an index has no config" test "$(fetch "$URL" img/multi latest --config 2>&1 >/dev/null | grep -c 'index')" -ge 1

# The big layer of img/oci: the one with 3 MiB of random data.
fetch "$URL" img/oci v1 --manifest >"$T/m.json"
read -r BIG BIGSZ < <(jq_py "$T/m.json" 'sorted((l["size"], l["digest"]) for l in m["layers"])[-1][1] + " " + str(sorted((l["size"], l["digest"]) for l in m["layers"])[-1][0])')
reg_curl r -f "/v2/img/oci/blobs/$BIG" >"$T/big.oracle"
check "the big layer is over 2 MiB ($BIGSZ bytes)" test "$BIGSZ" -gt 2097152

# ---------------------------------------------------------------- ranges
ranges=("0 1" "0 100" "1000 4096" "65535 70000" "$((BIGSZ / 2)) 131072" "$((BIGSZ - 10)) 10")
for rg in "${ranges[@]}"; do
	read -r off len <<<"$rg"
	fetch "$URL" img/oci - --blob "$BIG" --size "$BIGSZ" --range "$off" "$len" >"$T/r.out" 2>"$T/r.err" ||
		fail "range $off+$len" "$(cat "$T/r.err")"
	dd_at "$T/big.oracle" "$off" "$len" >"$T/r.oracle"
	cmp_bytes "$T/r.out" "$T/r.oracle" "pread [$off, +$len) = dd of the blob"
done
fetch "$URL" img/oci - --blob "$BIG" --size "$BIGSZ" --range "$((BIGSZ - 10))" 100 >"$T/r.out"
is "$(wc -c <"$T/r.out")" 10 "a read past the end is clamped to the blob"
fetch "$URL" img/oci - --blob "$BIG" --size "$BIGSZ" --range "$BIGSZ" 100 >"$T/r.out"
is "$(wc -c <"$T/r.out")" 0 "a read at the end returns nothing"
fetch "$URL" img/oci - --blob "$BIG" --size "$BIGSZ" --range 0 "$BIGSZ" --chunk 100003 >"$T/r.out"
cmp_bytes "$T/r.out" "$T/big.oracle" "the whole blob in 100003-byte preads"

fetch "$URL" img/oci - --blob "$BIG" --size "$BIGSZ" --range 0 "$BIGSZ" --chunk 65536 --threads 8 \
	>"$T/r.out" 2>"$T/r.err" || fail "8 threads" "$(cat "$T/r.err")"
cmp_bytes "$T/r.out" "$T/big.oracle" "the whole blob in 64 KiB preads from 8 threads"

# ---------------------------------------------------------------- errors
fetch "$URL" img/oci nosuchtag --manifest >"$T/e.out" 2>"$T/e.err"
check "unknown tag: exit 1, ENOENT" grep -q 'No such file or directory' "$T/e.err"
fetch "$URL" img/oci nosuchtag --head >"$T/e.out" 2>"$T/e.err"
check "unknown tag, HEAD: exit 1, ENOENT" grep -q 'No such file or directory' "$T/e.err"
fetch "$URL" img/nosuchrepo v1 --manifest >"$T/e.out" 2>"$T/e.err"
check "unknown repository: ENOENT" grep -q 'No such file or directory' "$T/e.err"
for sz in $((BIGSZ + 1)) $((BIGSZ - 1)); do
	fetch "$URL" img/oci - --blob "$BIG" --size "$sz" >"$T/e.out" 2>"$T/e.err" && rc=0 || rc=$?
	check "blob with the wrong size ($sz): EIO, nothing printed" \
		test "$rc" = 1 -a ! -s "$T/e.out" -a "$(grep -c 'Input/output error' "$T/e.err")" -ge 1
done
OTHER=$(reg_digest r img/multi arm64)
fetch "$URL" img/oci "$OTHER" --manifest >"$T/e.out" 2>"$T/e.err"
check "a digest the repository does not hold: ENOENT" grep -q 'No such file' "$T/e.err"

# ---------------------------------------------------------------- faults
# Corrupted in transit: the streamed blob fails its digest (nothing printed).
proxy_start c "$URL" --rule "/blobs/$BIG:corrupt" --rule "/manifests/:corrupt" || fail "proxy c"
fetch "$PROXY_c_URL" img/oci - --blob "$BIG" --size "$BIGSZ" >"$T/c.out" 2>"$T/c.err" && rc=0 || rc=$?
check "corrupted blob: exit 1, EIO, no bytes" \
	test "$rc" = 1 -a ! -s "$T/c.out" -a "$(grep -c 'Input/output error' "$T/c.err")" -ge 1
check "corrupted blob: the log names both digests" grep -q "hashes to sha256:.*not $BIG" "$T/c.err"
D=$(reg_digest r img/oci v1)
fetch "$PROXY_c_URL" img/oci "$D" --manifest >"$T/c.out" 2>"$T/c.err" && rc=0 || rc=$?
check "manifest by digest with other bytes: exit 1, nothing printed" test "$rc" = 1 -a ! -s "$T/c.out"
check "… and the log names both digests" grep -q "hash to sha256:.*not $D" "$T/c.err"
fetch "$PROXY_c_URL" img/oci v1 --manifest >"$T/c.out" 2>"$T/c.err" && rc=0 || rc=$?
check "manifest by tag whose bytes disagree with Docker-Content-Digest: exit 1" \
	test "$rc" = 1 -a ! -s "$T/c.out" -a "$(grep -c 'Docker-Content-Digest' "$T/c.err")" -ge 1

# Connection cut in the middle of the blob: resumed with a Range, not restarted.
proxy_start t "$URL" --rule "/blobs/$BIG:truncate:1" || fail "proxy t"
fetch "$PROXY_t_URL" img/oci - --blob "$BIG" --size "$BIGSZ" --stats >"$T/t.out" 2>"$T/t.err" ||
	fail "cut blob: acrfs-fetch" "$(cat "$T/t.err")"
cmp_bytes "$T/t.out" "$T/big.oracle" "blob cut mid-body: resumed, the bytes are right"
is "$(grep -c "GET /v2/img/oci/blobs/$BIG" "$PROXY_t_LOG")" 2 "… in two requests"
is "$(sed -n 's/.*blob_bytes_fetched=\([0-9]*\).*/\1/p' "$T/t.err")" "$BIGSZ" \
	"… and each byte fetched once (the second request was a Range)"

# Cut, then the server ignores the Range of the resume: the delivered bytes are skipped.
proxy_start tn "$URL" --rule "/blobs/$BIG:truncate:1" --rule "/blobs/$BIG:norange" || fail "proxy tn"
fetch "$PROXY_tn_URL" img/oci - --blob "$BIG" --size "$BIGSZ" --stats >"$T/t.out" 2>"$T/t.err" ||
	fail "cut blob, Range ignored: acrfs-fetch" "$(cat "$T/t.err")"
cmp_bytes "$T/t.out" "$T/big.oracle" "blob cut, resume answered 200: the bytes are right"
got=$(sed -n 's/.*blob_bytes_fetched=\([0-9]*\).*/\1/p' "$T/t.err")
check "… the whole body came again ($got bytes fetched)" test "${got:-0}" -gt "$BIGSZ"

# Range ignored for preads: the bytes are still the right ones.
proxy_start n "$URL" --rule "/blobs/$BIG:norange" || fail "proxy n"
for rg in "0 100" "1000 4096" "$((BIGSZ / 2)) 131072" "$((BIGSZ - 10)) 10"; do
	read -r off len <<<"$rg"
	fetch "$PROXY_n_URL" img/oci - --blob "$BIG" --size "$BIGSZ" --range "$off" "$len" \
		>"$T/n.out" 2>"$T/n.err" || fail "norange $off+$len" "$(cat "$T/n.err")"
	dd_at "$T/big.oracle" "$off" "$len" >"$T/n.oracle"
	cmp_bytes "$T/n.out" "$T/n.oracle" "server ignores Range: pread [$off, +$len) still right"
done
fetch "$PROXY_n_URL" img/oci - --blob "$BIG" --size "$BIGSZ" --range 1000 100 --stats \
	>/dev/null 2>"$T/n.err"
got=$(sed -n 's/.*blob_bytes_fetched=\([0-9]*\).*/\1/p' "$T/n.err")
check "… and a 200 is cut off after the bytes wanted ($got bytes fetched for [1000, +100))" \
	test "${got:-999999999}" -lt "$BIGSZ"

# A pread whose connection drops half way: resumed.
proxy_start pt "$URL" --rule "/blobs/$BIG:truncate:1" || fail "proxy pt"
fetch "$PROXY_pt_URL" img/oci - --blob "$BIG" --size "$BIGSZ" --range 100 2000000 >"$T/p.out" 2>"$T/p.err" ||
	fail "cut pread" "$(cat "$T/p.err")"
dd_at "$T/big.oracle" 100 2000000 >"$T/p.oracle"
cmp_bytes "$T/p.out" "$T/p.oracle" "pread cut mid-body: resumed, the bytes are right"

# Redirect to a storage host (another port): followed, remembered, no Authorization there.
proxy_start rd "$URL" --rule "^/v2/img/oci/blobs/$BIG:redirect" || fail "proxy rd"
fetch "$PROXY_rd_URL" img/oci - --blob "$BIG" --size "$BIGSZ" --range 5000 70000 --repeat 3 --stats \
	>"$T/rd.out" 2>"$T/rd.err" || fail "redirect: acrfs-fetch" "$(cat "$T/rd.err")"
dd_at "$T/big.oracle" 5000 70000 >"$T/rd.oracle"
cmp_bytes "$T/rd.out" "$T/rd.oracle" "redirected preads: the bytes are right"
is "$(grep -c "GET /v2/img/oci/blobs/$BIG -> 307" "$PROXY_rd_LOG")" 1 \
	"… the registry was asked once for three reads (the target is remembered)"
is "$(grep -c "GET storage:/v2/img/oci/blobs/$BIG?sig=.* -> 206 auth=no" "$PROXY_rd_LOG")" 3 \
	"… the storage host served three 206s, none with Authorization"
check "… --stats shows the remembered target" grep -q 'redirects=1' "$T/rd.err"
fetch "$PROXY_rd_URL" img/oci - --blob "$BIG" --size "$BIGSZ" >"$T/rd.out" 2>"$T/rd.err" ||
	fail "redirect: stream" "$(cat "$T/rd.err")"
cmp_bytes "$T/rd.out" "$T/big.oracle" "a redirected stream: the bytes are right"

before=$(grep -c "GET /v2/img/oci/blobs/$BIG -> 307" "$PROXY_rd_LOG")
fetch "$PROXY_rd_URL" img/oci - --blob "$BIG" --size "$BIGSZ" --range 0 "$BIGSZ" --chunk 262144 \
	--threads 6 --stats >"$T/rd.out" 2>"$T/rd.err" || fail "redirect: 6 threads" "$(cat "$T/rd.err")"
cmp_bytes "$T/rd.out" "$T/big.oracle" "redirected preads from 6 threads: the bytes are right"
n307=$(($(grep -c "GET /v2/img/oci/blobs/$BIG -> 307" "$PROXY_rd_LOG") - before))
nchunks=$(((BIGSZ + 262143) / 262144))
check "… at most one redirect per thread for $nchunks reads ($n307)" test "$n307" -ge 1 -a "$n307" -le 6

# Storage refuses a remembered target once (an expired SAS): asked the registry again.
proxy_start rx "$URL" --rule "^/v2/img/oci/blobs/$BIG:redirect" \
	--rule "^storage:/v2/img/oci/blobs/:pass:1" --rule "^storage:/v2/img/oci/blobs/:403:1" ||
	fail "proxy rx"
fetch "$PROXY_rx_URL" img/oci - --blob "$BIG" --size "$BIGSZ" --range 0 1000 --repeat 2 \
	>"$T/rx.out" 2>"$T/rx.err" || fail "storage 403: acrfs-fetch" "$(cat "$T/rx.err")"
dd_at "$T/big.oracle" 0 1000 >"$T/rx.oracle"
cmp_bytes "$T/rx.out" "$T/rx.oracle" "storage answers 403 for a remembered target: re-resolved, right bytes"
is "$(grep -c "GET /v2/img/oci/blobs/$BIG -> 307" "$PROXY_rx_LOG")" 2 "… through the registry a second time"
check "… the log does not show the storage URL's signature" test "$(grep -c 's3cr3t' "$T/rx.err")" = 0

# libcurl and a custom Authorization header across a redirect to another port.
fetch - - - --http-get "$PROXY_rd_URL/v2/img/oci/blobs/$BIG" \
	--header "Authorization: Basic YWNyZnM6bm90LXNlbnQ=" >"$T/h.out" 2>"$T/h.err" ||
	fail "http_do with Authorization through a redirect" "$(cat "$T/h.err")"
cmp_bytes "$T/h.out" "$T/big.oracle" "http_do follows the redirect"
check "… the registry hop carried the Authorization header" \
	grep -q "GET /v2/img/oci/blobs/$BIG -> 307 auth=yes" "$PROXY_rd_LOG"
check "… the storage host served it without Authorization" \
	grep -q "GET storage:/v2/img/oci/blobs/$BIG?sig=[^ ]* -> 200 auth=no" "$PROXY_rd_LOG"
is "$(grep -c 'storage:.* auth=yes' "$PROXY_rd_LOG")" 0 "… the storage host never saw it"

# The same with real credentials (htpasswd registry).
if command -v htpasswd >/dev/null; then
	htpasswd -Bbn alice 'wonder-land' >"$T/htpasswd" 2>/dev/null
	reg_start a --htpasswd "$T/htpasswd" || fail "htpasswd registry"
	IMG_CREDS=alice:wonder-land img_push "$OCI:amd64" "$REG_a_URL/img/oci:v1" || fail "push to a"
	proxy_start ra "$REG_a_URL" --storage-creds alice:wonder-land \
		--rule "^/v2/img/oci/blobs/$BIG:redirect" || fail "proxy ra"
	ACRFS_USERNAME=alice ACRFS_PASSWORD=wonder-land fetch "$PROXY_ra_URL" img/oci v1 \
		--manifest >/dev/null 2>"$T/ra.err"
	is "$?" 0 "htpasswd registry: acrfs-fetch logs in with \$ACRFS_USERNAME/PASSWORD ($(tail -1 "$T/ra.err"))"
	ACRFS_USERNAME=alice ACRFS_PASSWORD=wonder-land fetch "$PROXY_ra_URL" img/oci - \
		--blob "$BIG" --size "$BIGSZ" --range 0 4096 >"$T/ra.out" 2>"$T/ra.err" ||
		fail "htpasswd + redirect" "$(cat "$T/ra.err")"
	dd_at "$T/big.oracle" 0 4096 >"$T/ra.oracle"
	cmp_bytes "$T/ra.out" "$T/ra.oracle" "htpasswd registry + redirect: right bytes"
	check "… the registry hop was authenticated" \
		grep -q "GET /v2/img/oci/blobs/$BIG -> 307 auth=yes" "$PROXY_ra_LOG"
	check "… the storage host served the range" grep -q 'storage:.* -> 206 auth=no' "$PROXY_ra_LOG"
	is "$(grep -c 'storage:.* auth=yes' "$PROXY_ra_LOG")" 0 "… the storage host never saw Authorization"
else
	skip "htpasswd registry + redirect" "no htpasswd (apache2-utils)"
fi

tap_done
