# bench/lib.sh — what the bench scripts that mount images share. Sourced after
# `cd` to the repository root with ROOT set:
#   bench_init NAME   TEST_TMP (.test-tmp/bench-NAME-PID, removed at exit), CACHE (the
#                     content images: CONTENT_CACHE or .test-tmp/bench-content-cache),
#                     tests/lib/registry.sh and acrfs.sh loaded, and an EXIT trap that
#                     stops every mount and registry started and removes TEST_TMP;
#   median            the median of the numbers on stdin ("" when none);
#   drop_caches       sync and drop the page cache (root; else a note on stderr).
# shellcheck shell=bash disable=SC1091 # tests/lib is sourced by path
bench_init() {
	export TEST_TMP=$ROOT/.test-tmp/bench-$1-$$ TESTS_LIB=$ROOT/tests/lib
	CACHE=${CONTENT_CACHE:-$ROOT/.test-tmp/bench-content-cache}
	mkdir -p "$TEST_TMP"
	. "$TESTS_LIB/registry.sh"
	. "$TESTS_LIB/acrfs.sh"
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM
}
bench_cleanup() {
	mnt_stop_all
	reg_stop_all
	rm -rf "$TEST_TMP"
}
median() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print a[int((NR + 1) / 2)]; else print "" }'; }
drop_caches() {
	sync
	echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || echo "(page cache not dropped: not root)" >&2
}
