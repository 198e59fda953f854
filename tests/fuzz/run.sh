#!/usr/bin/env bash
# tests/fuzz/run.sh — run libFuzzer targets, one after the other (`make fuzz`).
#
#   tests/fuzz/run.sh BINDIR TARGET...
#
# For each TARGET: a fresh copy of tests/fuzz/corpus/TARGET/ becomes the working corpus
# in $FUZZ_WORK/TARGET/corpus (the committed corpus never grows by itself), then
# BINDIR/fuzz_TARGET runs for FUZZ_SECONDS with tests/fuzz/TARGET.dict when there is one.
# A crash, sanitizer report, leak, timeout (-timeout=10 s per input) or out-of-memory
# (-rss_limit_mb=2048) is a finding: its input is kept as $FUZZ_WORK/TARGET/<kind>-<sha1>
# and the end of the log is shown. Per target one line: executions (libFuzzer's
# stat::number_of_executed_units), new inputs found, and the result.
#
# Environment:
#   FUZZ_SECONDS  seconds per target (default 60)
#   FUZZ_WORK     working directory (default build/fuzz/work)
#   FUZZ_ARGS     extra libFuzzer arguments (e.g. -use_value_profile=1)
#   ACRFS_FUZZ_LOG=error|warn|info|debug  acrfs's log level inside the targets (debug;
#                 the log goes nowhere: -close_fd_mask=2 — rerun an input by hand to see it)
#
# Exit status: 0 if every target ran clean, 1 if any had a finding, 2 on usage errors.
set -uo pipefail

cd "$(dirname -- "${BASH_SOURCE[0]}")/../.." || exit 2
if [ $# -lt 2 ]; then
	echo "usage: tests/fuzz/run.sh BINDIR TARGET..." >&2
	exit 2
fi
BINDIR=$1
shift
SECONDS_PER=${FUZZ_SECONDS:-60}
WORK=${FUZZ_WORK:-build/fuzz/work}
case $SECONDS_PER in
'' | *[!0-9]*)
	echo "run.sh: FUZZ_SECONDS must be a number of seconds" >&2
	exit 2
	;;
esac

findings=0
summary=()
for t in "$@"; do
	bin=$BINDIR/fuzz_$t
	if [ ! -x "$bin" ]; then
		echo "run.sh: $bin is missing" >&2
		exit 2
	fi
	dir=$WORK/$t
	rm -rf -- "$dir"
	mkdir -p -- "$dir/corpus"
	cp -- tests/fuzz/corpus/"$t"/* "$dir/corpus/"
	args=(-max_total_time="$SECONDS_PER" -print_final_stats=1 -rss_limit_mb=2048
		-timeout=10 -close_fd_mask=2 -artifact_prefix="$dir/")
	[ -f "tests/fuzz/$t.dict" ] && args+=(-dict="tests/fuzz/$t.dict")
	# shellcheck disable=SC2206  # FUZZ_ARGS is a list of words on purpose
	args+=(${FUZZ_ARGS:-})
	echo "=== fuzz_$t: ${SECONDS_PER}s, $(find "$dir/corpus" -type f | wc -l) seed inputs"
	"$bin" "${args[@]}" "$dir/corpus" >"$dir/fuzz.log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$dir/fuzz.log" | tail -n 1)
	added=$(sed -n 's/^stat::new_units_added: *//p' "$dir/fuzz.log" | tail -n 1)
	artifacts=$(find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
		-o -name 'timeout-*' -o -name 'oom-*' \))
	if [ "$rc" -ne 0 ] || [ -n "$artifacts" ]; then
		findings=$((findings + 1))
		line="fuzz_$t: ${execs:-?} executions, ${added:-?} new inputs: FINDING (exit $rc)"
		echo "$line"
		tail -n 60 -- "$dir/fuzz.log" | sed -e 's/^/    /'
		for a in $artifacts; do
			echo "    input: $a (reproduce: $bin $a)"
		done
	else
		line="fuzz_$t: ${execs:-?} executions, ${added:-?} new inputs: clean"
		echo "$line"
	fi
	summary+=("$line")
done
echo "=== summary (${SECONDS_PER}s per target)"
printf '%s\n' "${summary[@]}"
[ "$findings" -eq 0 ] || exit 1
