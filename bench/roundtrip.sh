#!/usr/bin/env bash
# bench/roundtrip.sh — what one FUSE round trip costs on this machine, and where it goes.
# Not a test. Mounts bench/fusefloor.c (a FUSE server that does no work per request) over a
# one-file tree with timeouts 0, so that every fstat(2) of the open file is one GETATTR
# request, and times N of them (default 20000) from one process:
#   any CPU      the scheduler places the caller and the server's threads;
#   same CPU     caller and every server thread pinned to CPU 0 (taskset);
#   other CPUs   server on CPU 0, caller on CPU 1 (every request and every reply wakes
#                a task on the other CPU).
# The gap between "same CPU" and "other CPUs" is the cost of waking a task on another CPU
# (on a virtual machine without guest halt-polling, a sleeping vCPU must be woken by the
# host). A `find` over a large tree is a chain of such round trips: bench/content.sh's
# F row is that chain for its image.
#
#   bench/roundtrip.sh [N]
set -euo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
N=${1:-20000}
T=$(mktemp -d /tmp/acrfs-roundtrip.XXXXXX)
MNT=$T/mnt
cleanup() {
	mountpoint -q "$MNT" && fusermount3 -u -- "$MNT"
	rm -rf "$T"
}
trap cleanup EXIT
# shellcheck disable=SC2046 # pkg-config prints several words
cc -O2 -o "$T/fusefloor" bench/fusefloor.c $(pkg-config --cflags --libs fuse3) -lpthread
printf 'f 644 1 0 0 0.0 file\0' >"$T/list"
mkdir -p "$MNT"
"$T/fusefloor" --timeout 0 "$T/list" "$MNT"
PID=$(pgrep -n -f "^$T/fusefloor" || true) # the server this script just started
[ -n "$PID" ] || {
	echo "bench/roundtrip.sh: cannot find the server's pid" >&2
	exit 1
}
fstat_loop() { # PATH [taskset args] → µs per fstat(2) of PATH
	local path=$1
	shift
	"$@" /usr/bin/python3 -c 'import os, sys, time
fd, n = os.open(sys.argv[1], os.O_RDONLY), int(sys.argv[2])
os.fstat(fd)
t = time.perf_counter()
for _ in range(n):
    os.fstat(fd)
print("%.1f" % ((time.perf_counter() - t) / n * 1e6))' "$path" "$N"
}
echo "FUSE round trip (GETATTR via fstat(2)), $N per figure, $(nproc) CPUs:"
echo "  any CPU:    $(fstat_loop "$MNT/file") µs"
taskset -a -p -c 0 "$PID" >/dev/null
echo "  same CPU:   $(fstat_loop "$MNT/file" taskset -c 0) µs"
if [ "$(nproc)" -ge 2 ]; then
	echo "  other CPUs: $(fstat_loop "$MNT/file" taskset -c 1) µs"
fi
echo "  (python loop overhead without FUSE: $(fstat_loop /) µs)"
grep -o 'haltpoll.guest_halt_poll_ns=[0-9]*' /proc/cmdline | sed 's/^/  kernel command line: /' || true
