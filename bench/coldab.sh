#!/usr/bin/env bash
# bench/coldab.sh — cold `find rootfs | wc -l` of two configurations, interleaved, to
# compare builds or mount options back to back (issue 12). Not a test: prints figures.
#
#   bench/coldab.sh RUNS KIND BIN_A OPTS_A BIN_B OPTS_B
#
# KIND: multi (bench/content.sh's 3-layer image) or single (its 1 GB single layer), built
# by bench/mkcontent.py (cached in .test-tmp/bench-content-cache, or CONTENT_CACHE=DIR) and
# pushed to a loopback docker-registry. OPTS: extra -o options ("" for none, e.g.
# "cache_max=0"). Per run and configuration: a fresh mount with an empty cache_dir, the
# page cache dropped (root), the walk timed, and the daemon's user and system CPU time
# (from /proc). Medians at the end. Binaries are copied first. CACHE_ON_A, CACHE_ON_B: a
# directory to put that configuration's cache_dir in (default: the test directory, on
# the disk the registry reads from), e.g. /dev/shm to keep the copies off that disk.
# shellcheck disable=SC2154 # REG_c_* are set by reg_start, MNT_a by mnt_start
set -euo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
[ $# = 6 ] || {
	echo "usage: bench/coldab.sh RUNS KIND BIN_A OPTS_A BIN_B OPTS_B" >&2
	exit 2
}
RUNS=$1 KIND=$2
. bench/lib.sh
bench_init coldab

cp "$3" "$TEST_TMP/acrfsA"
cp "$5" "$TEST_TMP/acrfsB"
OPTS_A=$4 OPTS_B=$6
eval "$(/usr/bin/python3 bench/mkcontent.py --cache "$CACHE" --kind "$KIND")"
reg_start c >/dev/null
skopeo copy -q --dest-tls-verify=false "oci:$IMG_LAYOUT:v1" "docker://$REG_c_HOST/bench/ab:v1" \
	>/dev/null
TICK=$(getconf CLK_TCK)
echo "image $KIND: $IMG_NLAYERS layers, $IMG_ENTRIES entries; $RUNS runs, A and B interleaved"
for ((run = 1; run <= RUNS; run++)); do
	line="run $run:"
	for c in A B; do
		opts=OPTS_$c
		on=CACHE_ON_$c
		cd_dir=${!on:-$TEST_TMP}/coldab-cd
		rm -rf "$cd_dir"
		ACRFS=$TEST_TMP/acrfs$c mnt_start a "$REG_c_URL" \
			-o "cache_dir=$cd_dir${!opts:+,${!opts}}" >/dev/null
		pid=$(_mnt_pid_of "$MNT_a")
		drop_caches
		t0=$EPOCHREALTIME
		find "$MNT_a/bench/ab/v1/rootfs" | wc -l >/dev/null
		t1=$EPOCHREALTIME
		read -r ut st < <(awk -v k="$TICK" '{ printf "%.2f %.2f\n", $14 / k, $15 / k }' \
			"/proc/$pid/stat")
		mnt_stop a
		rm -rf "$cd_dir"
		w=$(awk "BEGIN { printf \"%.3f\", $t1 - $t0 }")
		echo "$w" >>"$TEST_TMP/$c.wall"
		line="$line $c ${w} s (CPU user $ut s, system $st s)"
	done
	echo "$line"
done
echo "medians: A $(median <"$TEST_TMP/A.wall") s, B $(median <"$TEST_TMP/B.wall") s"
