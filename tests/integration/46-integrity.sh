#!/usr/bin/env bash
# Issue 9, points 4-5: every byte served is proven against the blob digest. For a gzip,
# a tar and a zstd image (one layer each, mostly one 3 MiB file), through the real mount:
#   - after a cold load with -o cache_max=0 (later reads are Range requests), a proxy
#     corrupting every ranged answer: cat fails with EIO, prints no wrong byte, and the
#     log names the block;
#   - a proxy answering 200 with the whole (correct) blob for each Range: right bytes;
#   - a byte flipped in the local copy in the cache (the compressed blob for gzip and
#     tar, the decompressed tar for zstd): the copy is refused and dropped, the bytes come
#     by range and are right.
# Oracles: the layer blobs in the OCI layout, decompressed by gzip/zstd and unpacked by
# GNU tar; faults from tests/lib/faultproxy.py; requests from its log and the registry's.
# shellcheck disable=SC2154 # REG_r_*, MNT_*, PROXY_* are exported by the lib helpers
set -u
. "$TESTS_LIB/tap.sh"
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/acrfs.sh"
PY=/usr/bin/python3
mkimage() { "$PY" "$TESTS_LIB/mkimage.py" "$@"; }
OCI=$TEST_TMP/oci
O=$TEST_TMP/o
mkdir -p -- "$O"

cleanup() {
	mnt_stop_all
	proxy_stop_all
	reg_stop_all
}
tap_trap_cleanup cleanup

reg_start r || exit 1
URL=$REG_r_URL
KINDS=(gzip none zstd)
F=data/big.bin

# ---------------------------------------------------------------- images and oracles
for k in "${KINDS[@]}"; do
	cat >"$O/$k.json" <<EOF
{"mtime": 1700000000, "layers": [
 {"compression": "$k", "entries": [
  {"type": "file", "path": "etc/hello", "content": "hello $k\n"},
  {"type": "file", "path": "$F", "size": 3145728, "seed": "$k", "fill": "mixed"}
 ]}
]}
EOF
	mkimage build "$O/$k.json" "$OCI" --ref "$k" --layers-out "$O/$k.layers" >/dev/null ||
		fail "build the $k image"
	mkimage push "$OCI" "$k" "$URL/integ/$k:v1" >/dev/null || fail "push the $k image"
	blob=$(mkimage blob "$OCI" "$k" 0)
	mkdir -p -- "$O/ref-$k"
	case $k in
	gzip) gzip -dc <"$blob" ;;
	zstd) zstd -qdc <"$blob" ;;
	none) cat -- "$blob" ;;
	esac | tar -x -C "$O/ref-$k" || fail "unpack the $k layer"
	check "$k: the oracle holds the 3 MiB file" test "$(stat -c %s "$O/ref-$k/$F")" = 3145728
done

layer_of() { awk '$1 == 0 { print $2 }' "$O/$1.layers"; }
file_of() { printf '%s/integ/%s/v1/rootfs/%s' "$1" "$2" "$F"; }
# no_wrong_bytes OUT REF: whatever OUT holds is a prefix of REF (a failed read may stop
# anywhere, but never shows a byte that is not the file's).
no_wrong_bytes() {
	local n
	n=$(stat -c %s "$1")
	[ "$n" -eq 0 ] || cmp -s -n "$n" -- "$1" "$2"
}
blob_gets() { reg_count_requests r "\"GET /v2/integ/$1/blobs/$2 "; }

for k in "${KINDS[@]}"; do
	L=$(layer_of "$k")
	REF=$O/ref-$k/$F

	# ------------------------------------------------------------ corrupted ranges
	# The first GET of the layer (the cold load's stream) passes; every later one, a
	# Range request of a read, comes back with one byte flipped.
	proxy_start "c$k" "$URL" --rule "/blobs/$L:pass:1" --rule "/blobs/$L:corrupt" ||
		fail "$k: start the corrupting proxy"
	pu=PROXY_c${k}_URL pl=PROXY_c${k}_LOG
	if mnt_start_fg "c$k" "${!pu}" -o cache_dir="$TEST_TMP/cache-c$k",cache_max=0; then
		m=MNT_c$k
		check "$k: cold load with cache_max=0 lists rootfs" \
			test -n "$(ls "${!m}/integ/$k/v1/rootfs/data")"
		out=$(cat -- "$(file_of "${!m}" "$k")" 2>&1 >"$O/c-$k.out")
		check "$k: cat of a file whose ranged answers are corrupted: EIO ($out)" \
			grep -q 'Input/output error' <<<"$out"
		check "… and it printed no wrong byte ($(stat -c %s "$O/c-$k.out") bytes)" \
			no_wrong_bytes "$O/c-$k.out" "$REF"
		check "… the reads were Range requests the proxy corrupted" \
			test "$(grep -c "GET /v2/integ/$k/blobs/$L -> 206" "${!pl}")" -ge 2
		check "… the log names the block and the source" \
			grep -Eq "layer $L: block [0-9]+ \(blob bytes [0-9]+-[0-9]+\) from a ranged read does not match its digest-verified sum; Input/output error" \
			"$TEST_TMP/mnt-c$k.log"
		mnt_stop "c$k"
	else
		fail "$k: mount through the corrupting proxy"
	fi

	# ------------------------------------------------------------ Range ignored
	proxy_start "n$k" "$URL" --rule "/blobs/$L:pass:1" --rule "/blobs/$L:norange" ||
		fail "$k: start the norange proxy"
	pu=PROXY_n${k}_URL pl=PROXY_n${k}_LOG
	if mnt_start "n$k" "${!pu}" -o cache_dir="$TEST_TMP/cache-n$k",cache_max=0; then
		m=MNT_n$k
		ls "${!m}/integ/$k/v1/rootfs" >/dev/null
		check "$k: a server answering 200 with the whole blob for each Range: right bytes" \
			cmp -- "$(file_of "${!m}" "$k")" "$REF"
		check "… (the reads were answered 200)" \
			test "$(grep -c "GET /v2/integ/$k/blobs/$L -> 200" "${!pl}")" -ge 2
		mnt_stop "n$k"
	else
		fail "$k: mount through the norange proxy"
	fi

	# ------------------------------------------------------------ damaged local copy
	C=$TEST_TMP/cache-l$k
	copy=$C/v1/blobs/${L#sha256:}
	[ "$k" != zstd ] || copy=$copy.tar # zstd layers keep the decompressed tar
	if mnt_start "l$k" "$URL" -o cache_dir="$C"; then
		m=MNT_l$k
		ls "${!m}/integ/$k/v1/rootfs" >/dev/null
		mnt_stop "l$k"
	fi
	if [ -f "$copy" ]; then
		$PY - "$copy" <<'EOF'
import os, sys
with open(sys.argv[1], "r+b") as f:
    n = os.fstat(f.fileno()).st_size
    f.seek(n // 2)
    b = f.read(1)
    f.seek(n // 2)
    f.write(bytes([b[0] ^ 0x08]))
EOF
		g0=$(blob_gets "$k" "$L")
		if mnt_start_fg "l$k" "$URL" -o cache_dir="$C"; then
			m=MNT_l$k
			cat -- "$(file_of "${!m}" "$k")" >"$O/l-$k.out" 2>"$O/l-$k.err"
			check "$k: a bit flipped in the local copy: cat gives the right bytes" \
				cmp -- "$O/l-$k.out" "$REF"
			check "… the log names the block of the local copy" \
				grep -Eq "layer $L: block [0-9]+ \((blob|tar) bytes [0-9]+-[0-9]+\) of the local copy does not match its digest-verified sum; dropping the copy" \
				"$TEST_TMP/mnt-l$k.log"
			check "… the damaged copy is gone" test ! -e "$copy"
			check "… and the bytes came from the registry by range" \
				test "$(blob_gets "$k" "$L")" -gt "$g0"
			mnt_stop "l$k"
		else
			fail "$k: remount over the damaged copy"
		fi
	else
		fail "$k: the cold load kept a local copy ($copy)"
	fi
done

tap_done
