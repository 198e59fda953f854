#!/usr/bin/env bash
# bench/listing.sh — cold and warm listings against curl of the same paginated lists.
# Not a test: prints figures and ratios. Needs the packages `make check` installs.
#
#   bench/listing.sh [RUNS]      (default 5 runs each; the median is reported)
#
# Builds a loopback registry with 1,200+ repositories and a 2,500-tag repository, then
# for each case measures, in the same run:
#   curl   the registry's paginated list fetched by curl, one curl per page, following
#          Link rel="next" with the page size acrfs uses; nothing parses the JSON;
#   cold   `ls` on a fresh mount (mount time not included);
#   warm   the same `ls` again, served by the dirent cache.
set -euo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
RUNS=${1:-5}
export TEST_TMP=$ROOT/.test-tmp/bench-listing-$$ TESTS_LIB=$ROOT/tests/lib
mkdir -p "$TEST_TMP"
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/acrfs.sh"
ACRFS=$ROOT/acrfs
[ -x "$ACRFS" ] || make -s
cleanup() {
	mnt_stop_all
	reg_stop_all
	rm -rf "$TEST_TMP"
}
trap cleanup EXIT

reg_start b >/dev/null
URL=$REG_b_URL
/usr/bin/python3 "$TESTS_LIB/seed.py" repos "$URL" --count 1200 --prefix bulk --out /dev/null
/usr/bin/python3 "$TESTS_LIB/seed.py" tags "$URL" big/tags --count 2500 --out /dev/null

now() { date +%s.%N; }
median() { sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# curl of every page of a list, following Link rel="next" (one curl per page).
curl_pages() {
	local next=$1 hdr=$TEST_TMP/hdr
	while [ -n "$next" ]; do
		curl -sS -f -D "$hdr" -o /dev/null "$URL$next"
		next=$(tr -d '\r' <"$hdr" | sed -n 's/^[Ll]ink: *<\([^>]*\)>; *rel="next".*/\1/p')
	done
}
time_cmd() {
	local t0 t1
	t0=$(now)
	"$@" >/dev/null
	t1=$(now)
	awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f\n", b - a }'
}

bench_case() {
	local label=$1 first=$2 path=$3 prewarm=${4:-} i c cold warm
	: >"$TEST_TMP/curl" && : >"$TEST_TMP/cold" && : >"$TEST_TMP/warm"
	for ((i = 0; i < RUNS; i++)); do
		time_cmd curl_pages "$first" >>"$TEST_TMP/curl"
		mnt_start bm "$URL" -o ttl=600 >/dev/null
		[ -z "$prewarm" ] || ls "$MNT_bm$prewarm" >/dev/null
		time_cmd ls "$MNT_bm$path" >>"$TEST_TMP/cold"
		time_cmd ls "$MNT_bm$path" >>"$TEST_TMP/warm"
		mnt_stop bm
	done
	c=$(median <"$TEST_TMP/curl")
	cold=$(median <"$TEST_TMP/cold")
	warm=$(median <"$TEST_TMP/warm")
	printf '%-28s curl %7.3fs  cold ls %7.3fs (%5.2fx curl)  warm ls %7.4fs (%6.3fx curl)\n' \
		"$label" "$c" "$cold" "$(awk -v a="$cold" -v b="$c" 'BEGIN { print a / b }')" \
		"$warm" "$(awk -v a="$warm" -v b="$c" 'BEGIN { print a / b }')"
}

echo "acrfs listing benchmark: $(nproc) cores, $RUNS runs each, medians"
bench_case "catalog (1,205 repos)" "/v2/_catalog?n=1000" ""
# A cold path lookup of big/tags first reads the catalog (to know that "big" is a
# namespace): the first line includes that, the second has the catalog already cached.
bench_case "tags (2,500), cold path" "/v2/big/tags/tags/list" "/big/tags"
bench_case "tags (2,500), catalog warm" "/v2/big/tags/tags/list" "/big/tags" "/"
