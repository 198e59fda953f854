#!/usr/bin/env bash
# test-weight: 4 (tests/run.sh starts heavier scripts first)
# Issue 11, points 4 and 5: the memory budget (-o mem_max). Six images whose trees
# together take several times the budget are walked and read; trees are evicted
# least recently used first and rebuilt from the index files: every answer stays
# right (against the generator's own list of every file and its SHA-256), each layer
# blob is fetched once (the registry's access log), an open file keeps reading right
# while its layer would be evicted, a directory the kernel holds lists right after
# its tree was rebuilt (same node ids), and readers racing with evictions read right.
# The cached listings are under the budget too: with a budget of a few KiB a walk of a
# registry of many repositories and tags evicts them, and every listing stays right
# (against the registry's own catalog and tag lists), a reader that goes on in a
# directory whose listing was evicted meanwhile included; without evictions a second
# walk sends no request.
# shellcheck disable=SC2154 # REG_r_*, MNT_* are exported by reg_start / mnt_start
set -u
. "$TESTS_LIB/tap.sh"
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/acrfs.sh"
PY=/usr/bin/python3
O=$TEST_TMP/o
NIMG=6
# Files per image; every one is read twice. Fewer under ASan, where opening a file
# costs ~0.1 s.
FILES=400
[ "${ACRFS_SAN:-0}" = 1 ] && FILES=100
mkdir -p -- "$O"

cleanup() {
	mnt_stop_all
	reg_stop_all
}
tap_trap_cleanup cleanup

reg_start r || exit 1
"$PY" "$TESTS_LIB/evictfix.py" "$REG_r_URL" "$O" --images "$NIMG" --files "$FILES" >/dev/null || {
	fail "push the images"
	tap_done
	exit 1
}
ok "fixtures: $NIMG images, $(wc -l <"$O/layers.txt") layer blobs"

# A key of .acrfs/status's "memory" object.
mem_stat() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["memory"][sys.argv[2]])' "$1/.acrfs/status" "$2"; }
# GETs of layer blobs answered with bytes (200 or 206).
blob_gets() { reg_count_requests r '"GET /v2/ev-[0-9]+/blobs/sha256:[0-9a-f]+ HTTP/[0-9.]+" 20[06]'; }
# Every regular file under $1 as "PATH SIZE SHA256", sorted: the oracle's format.
files_of() {
	"$PY" - "$1" <<'EOF'
import hashlib, os, sys
top = sys.argv[1]
out = []
for d, dirs, files in os.walk(top):
    for f in files:
        p = os.path.join(d, f)
        with open(p, "rb") as fh:
            data = fh.read()
        out.append("%s %d %s" % (os.path.relpath(p, top), len(data), hashlib.sha256(data).hexdigest()))
print("\n".join(sorted(out)))
EOF
}

# What the trees of the largest image take (a layer's with its index; the last image
# also has its second layer's and the merged tree; the others show their one layer's
# tree as the rootfs; with them, counted in the budget too, the image's tag list,
# listings and view object, a few KiB): a probe mount without a bound, walking one
# image after the other. The budget is 1.25 times that: the six images need more than
# twice the budget.
mnt_start p "$REG_r_URL" -o mem_max=0,prefetch=0,cache_dir="$TEST_TMP/cache" || fail "probe mount"
ONE=0 before=$(mem_stat "$MNT_p" bytes) sizes=
for ((n = 0; n < NIMG; n++)); do
	find "$MNT_p/ev-$n/v1/rootfs" >/dev/null
	now=$(mem_stat "$MNT_p" bytes)
	sizes="$sizes $((now - before))"
	[ $((now - before)) -gt "$ONE" ] && ONE=$((now - before))
	before=$now
done
ALL=$before
mnt_stop p
MAX=$((ONE * 5 / 4))
diag "each image's trees:$sizes bytes; mem_max=$MAX (all: $ALL)"
check "the images' trees together take over twice the budget ($ALL > 2 × $MAX)" \
	test "$ALL" -gt $((2 * MAX))
mnt_start_fg a "$REG_r_URL" -o mem_max=$MAX,prefetch=0,cache_dir="$TEST_TMP/cache" || {
	fail "mount"
	tap_done
	exit 1
}
M=$MNT_a
is "$(mem_stat "$M" max_bytes)" "$MAX" ".acrfs/status shows the budget (memory.max_bytes)"

# The kernel keeps entries, attributes and listings of image contents (they never
# change): drop what nobody holds, so that a walk asks acrfs again.
drop_kernel_caches() {
	sync
	echo 2 >/proc/sys/vm/drop_caches
}

# ---- every file of every image, twice over: the second pass rebuilds what the first evicted
for pass in 1 2; do
	drop_kernel_caches
	bad=
	for ((n = 0; n < NIMG; n++)); do
		files_of "$M/ev-$n/v1/rootfs" >"$O/got-$n-$pass.txt"
		cmp -s "$O/got-$n-$pass.txt" "$O/expect-$n.txt" || bad="$bad ev-$n"
	done
	is "$bad" "" "pass $pass: every file of the $NIMG images, content and size as pushed"
done
ev=$(mem_stat "$M" evictions)
diag "memory after two passes: $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["memory"])' "$M/.acrfs/status")"
check "trees were evicted ($ev evictions)" test "$ev" -ge 6
peak=$(mem_stat "$M" peak_bytes)
bytes=$(mem_stat "$M" bytes)
check "the charged bytes stay within the budget after each load (peak $peak, now $bytes)" \
	test "$peak" -le "$MAX"
blobs=$(wc -l <"$O/layers.txt")
is "$(blob_gets)" "$blobs" "each layer blob fetched once: rebuilt from index files, not the blob"
# The kernel is told to drop the entries of evicted trees, so it forgets their inodes
# and acrfs's inode table shrinks: after the pass, about the last images' entries
# remain, not the six images' (the kernel answers the invalidations on its own time).
status_key() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1/.acrfs/status" "$2"; }
limit=$((2 * (FILES + 20) + 50))
for ((i = 0; i < 100; i++)); do
	[ "$(status_key "$M" inodes)" -le "$limit" ] && break
	sleep 0.1
done
inodes=$(status_key "$M" inodes)
check "evicted trees leave the kernel and the inode table: $inodes inodes after walking $((NIMG * (FILES + 6))) entries (at most $limit)" \
	test "$inodes" -le "$limit"

# ---- an open file reads right while everything else is walked (its layer is pinned)
exec 7<"$M/ev-0/v1/rootfs/big.bin"
head -c 1000000 <&7 >"$O/part1"
drop_kernel_caches
for ((n = 1; n < NIMG; n++)); do
	find "$M/ev-$n/v1/rootfs" >/dev/null
done
cat <&7 >"$O/part2"
exec 7<&-
want=$(grep '^big.bin ' "$O/expect-0.txt" | cut -d' ' -f3)
got=$(cat "$O/part1" "$O/part2" | sha256sum | cut -d' ' -f1)
is "$got" "$want" "a file open across the walk of five other images reads whole and right"
check "… some evictions found that layer in use (memory.busy $(mem_stat "$M" busy))" \
	test "$(mem_stat "$M" busy)" -ge 1

# ---- a directory the kernel holds: listed and read after its tree was rebuilt
dir=$M/ev-1/v1/rootfs/d000
(
	cd "$dir" || exit 1
	ls >"$O/held-before"
	drop_kernel_caches
	for ((n = 2; n < NIMG; n++)); do find "$M/ev-$n/v1/rootfs" >/dev/null; done
	find "$M/ev-0/v1/rootfs" >/dev/null
	drop_kernel_caches
	ls >"$O/held-after"
	cat f00001 f00099
) >"$O/held-cat" 2>"$O/held-err"
cmp_files "$O/held-after" "$O/held-before" "a held directory lists the same after its tree was evicted and rebuilt"
is "$(cat "$O/held-cat")" "image 1 file 1
image 1 file 99" "… and its files read right by name (lookups in the rebuilt tree)"
is "$(cat "$O/held-err")" "" "… with no error"

# ---- readers racing with evictions: 4 readers over every image at once
"$PY" - "$M" "$O" "$NIMG" >"$O/race" 2>&1 <<'EOF'
import hashlib, random, sys, threading
mnt, o, nimg = sys.argv[1], sys.argv[2], int(sys.argv[3])
expect = []
for n in range(nimg):
    with open("%s/expect-%d.txt" % (o, n)) as f:
        expect.append([l.split() for l in f])
bad = []
def reader(seed):
    rnd = random.Random(seed)
    for _ in range(100):
        n = rnd.randrange(nimg)
        path, size, sha = rnd.choice(expect[n])
        try:
            with open("%s/ev-%d/v1/rootfs/%s" % (mnt, n, path), "rb") as f:
                data = f.read()
        except OSError as e:
            bad.append("%d %s: %s" % (n, path, e))
            continue
        if len(data) != int(size) or hashlib.sha256(data).hexdigest() != sha:
            bad.append("%d %s: wrong content" % (n, path))
ts = [threading.Thread(target=reader, args=(k,)) for k in range(4)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print("\n".join(bad) if bad else "ok")
EOF
is "$(cat "$O/race")" "ok" "400 reads by 4 readers across the images while trees come and go: all right"
is "$(blob_gets)" "$blobs" "… still each layer blob fetched once"
check "the daemon logged no error" test -z "$(grep -i ' error' "$TEST_TMP/mnt-a.log")"
mnt_stop a

# ---- mem_max=0: no bound (nothing evicted)
mnt_start b "$REG_r_URL" -o mem_max=0,prefetch=0,cache_dir="$TEST_TMP/cache" || fail "mount b"
for ((n = 0; n < NIMG; n++)); do find "$MNT_b/ev-$n/v1/rootfs" >/dev/null; done
is "$(mem_stat "$MNT_b" evictions)" 0 "mem_max=0: nothing evicted"
is "$(mem_stat "$MNT_b" max_bytes)" 0 "… and the status says there is no bound"
mnt_stop b

# ---- cached listings under the budget
reg_start l || exit 1
if "$PY" "$TESTS_LIB/seed.py" repos "$REG_l_URL" --count 240 --prefix ls --out /dev/null \
	2>"$O/seed.err" &&
	"$PY" "$TESTS_LIB/seed.py" tags "$REG_l_URL" ls/big --count 600 --out /dev/null \
		2>>"$O/seed.err"; then
	ok "fixtures: 240 repositories and one of 600 tags"
else
	fail "seed the listing registry" "$(cat "$O/seed.err")"
fi
"$PY" "$TESTS_LIB/nsoracle.py" "$REG_l_URL" --tags-out "$O/ls-tags.all" >"$O/ls-tree.want" ||
	fail "oracle"
reg_tags l ls/big | sort >"$O/big.want"
# MOUNT → relative paths, sorted, not descending into tag directories
nswalk() { "$PY" "$TESTS_LIB/nswalk.py" "$1" "$O/ls-tags.all" | sort; }
list_gets() { reg_count_requests l '"GET /v2/(_catalog|[^ ]*/tags/list)[^ ]* HTTP'; }
# A key of .acrfs/status, or of its "memory" object.
status_of() {
	"$PY" -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(d.get(sys.argv[2], d["memory"].get(sys.argv[2])))' "$1/.acrfs/status" "$2"
}

mnt_start_fg s "$REG_l_URL" -d -o mem_max=8K,prefetch=0,ttl=600,cache_dir="$TEST_TMP/cache-l" || {
	fail "mount with mem_max=8K"
	tap_done
	exit 1
}
S=$MNT_s
# A reader takes the first entries of ls/big (one READDIR), then other directories are
# listed (each listing charges the budget and evicts what nobody holds, ls/big's
# listing too), then it reads on from its offset: into a listing rebuilt from the
# registry's tag list, which must go on exactly where it stopped.
"$PY" - "$S" >"$O/big.got.raw" 2>"$O/big.err" <<'PYEOF'
import ctypes, os, platform, struct, sys
mnt = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
NR = {"x86_64": 217, "aarch64": 61}[platform.machine()]
def getdents(fd, size):
    buf = ctypes.create_string_buffer(size)
    n = libc.syscall(NR, fd, buf, size)
    if n < 0:
        raise OSError(ctypes.get_errno(), "getdents64")
    out, pos = [], 0
    while pos < n:
        _, _, reclen, _ = struct.unpack_from("QqHB", buf.raw, pos)
        out.append(buf.raw[pos + 19:pos + reclen].split(b"\0", 1)[0].decode())
        pos += reclen
    return out
fd = os.open(os.path.join(mnt, "ls/big"), os.O_RDONLY | os.O_DIRECTORY)
names = getdents(fd, 1024)
others = [n for n in sorted(os.listdir(os.path.join(mnt, "ls"))) if n.startswith("repo")]
for n in others[:30]:
    os.listdir(os.path.join(mnt, "ls", n))
while True:
    more = getdents(fd, 1024)
    if not more:
        break
    names += more
os.close(fd)
print("\n".join(n for n in names if n not in (".", "..")))
PYEOF
sort "$O/big.got.raw" >"$O/big.got"
cmp_files "$O/big.got" "$O/big.want" \
	"mem_max=8K: a reader of ls/big going on after other listings evicted its listing reads all $(wc -l <"$O/big.want") tags, each once"
check "… and it went on in a listing rebuilt after the eviction (debug log)" \
	grep -q 'readdir /ls/big: listing [0-9]* is not kept (evicted), going on at entry' "$TEST_TMP/mnt-s.log"
nswalk "$S" >"$O/ls-tree.got"
cmp_files "$O/ls-tree.got" "$O/ls-tree.want" \
	"mem_max=8K: a walk of $(wc -l <"$O/ls-tree.want") repositories, namespaces and tags = the registry's catalog and tag lists"
lb=$(status_of "$S" listing_bytes)
ev=$(status_of "$S" evictions)
check "listings were counted (listing_bytes $lb) and evicted ($ev evictions)" \
	test "$lb" -gt 0 -a "$ev" -gt 100
before=$(list_gets)
drop_kernel_caches
nswalk "$S" >"$O/ls-tree.got2"
cmp_files "$O/ls-tree.got2" "$O/ls-tree.want" "… walked again once the kernel dropped its copy: the same"
after=$(list_gets)
check "… the evicted lists were asked of the registry again ($((after - before)) catalog and tag list requests)" \
	test "$after" -gt "$before"
cat "$S/ls/big/t00000/manifest.json" >/dev/null
vb=$(status_of "$S" view_bytes)
check "view_bytes counts the manifest looked at ($vb)" test "$vb" -gt 0
check "the daemon logged no error" test -z "$(grep -i ' error' "$TEST_TMP/mnt-s.log")"
mnt_stop s

# Within the default budget nothing is evicted: a second walk is served from the caches.
mnt_start n "$REG_l_URL" -o prefetch=0,ttl=600,cache_dir="$TEST_TMP/cache-l" || fail "mount n"
nswalk "$MNT_n" >"$O/ls-tree.got3"
cmp_files "$O/ls-tree.got3" "$O/ls-tree.want" "default mem_max: the walk = the registry's lists"
before=$(list_gets)
drop_kernel_caches
nswalk "$MNT_n" >"$O/ls-tree.got4"
cmp_files "$O/ls-tree.got4" "$O/ls-tree.want" "… walked again: the same"
is "$(($(list_gets) - before))" 0 "… without a catalog or tag list request (nothing evicted)"
is "$(status_of "$MNT_n" evictions)" 0 "… memory.evictions 0"
lb=$(status_of "$MNT_n" listing_bytes)
check "listing_bytes counts the kept lists and listings ($lb)" test "$lb" -gt 50000
mnt_stop n

tap_done
