#!/usr/bin/env bash
# 05-fuzz-replay.sh — replay the fuzz corpora: every input of tests/fuzz/corpus/<t>/
# (the seeds and every input that once crashed a target) through the replay driver of
# the build under test, build/release/fuzz/replay_<t> or, in the [san] pass,
# build/asan-ubsan/fuzz/replay_<t> (built by `make unit`; no clang needed). One result per
# target (tests/fuzz/fuzz_<t>.c) with the number of inputs replayed; a crash, a failed
# check or a sanitizer report fails it. No daemon, no registry.
set -u

LIB=${TESTS_LIB:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../lib" && pwd)}
# shellcheck source=../lib/tap.sh
. "$LIB/tap.sh"
ROOT=${ACRFS_ROOT:-$(cd -- "$LIB/../.." && pwd)}
TMP=${TEST_TMP:-$(mktemp -d)}
BUILD=$ROOT/build/release
[ "${ACRFS_SAN:-0}" = 1 ] && BUILD=$ROOT/build/asan-ubsan

found=0
for src in "$ROOT"/tests/fuzz/fuzz_*.c; do
	[ -f "$src" ] || continue
	found=1
	t=${src##*/fuzz_}
	t=${t%.c}
	bin=$BUILD/fuzz/replay_$t
	corpus=$ROOT/tests/fuzz/corpus/$t
	log=$TMP/replay-$t.log
	if [ ! -x "$bin" ]; then
		fail "fuzz_$t: $bin is missing (make unit)"
		continue
	fi
	n=$(find "$corpus" -maxdepth 1 -type f 2>/dev/null | wc -l)
	if [ "$n" -eq 0 ]; then
		fail "fuzz_$t: no inputs in $corpus"
		continue
	fi
	"$bin" "$corpus" >"$log" 2>&1 </dev/null
	rc=$?
	got=$(sed -n 's/^replayed \([0-9][0-9]*\) inputs$/\1/p' "$log")
	if [ "$rc" -eq 0 ] && [ "$got" = "$n" ]; then
		ok "fuzz_$t: $n inputs replayed"
	else
		fail "fuzz_$t: replay of $corpus failed (exit $rc, ${got:-no} inputs replayed of $n)" \
			"$(grep -E '^replay: |fuzz: |ERROR|SUMMARY' "$log" | tail -n 20)"
	fi
done
[ "$found" = 1 ] || fail "no fuzz targets in tests/fuzz/"
tap_done
