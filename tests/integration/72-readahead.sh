#!/usr/bin/env bash
# Issue 11, points 2 and 5: the readahead of walks (fs/prefetch.h, -o prefetch=N). A walk
# through a directory's entries in order gets the same answers with it as without it;
# what it fetches ahead is bounded (N entries beyond the last one the walk reached);
# a lone ls, or one entry looked at, fetches nothing ahead; ttl=0 turns it off; a walk
# repeated from the caches sends nothing; a tag deleted while the walk goes on is gone
# for the walk too. Proof comes from the registry's own access log.
# shellcheck disable=SC2154 # REG_r_*, MNT_* are exported by reg_start / mnt_start
set -u
. "$TESTS_LIB/tap.sh"
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/acrfs.sh"
PY=/usr/bin/python3
O=$TEST_TMP/o
mkdir -p -- "$O"

cleanup() {
	mnt_stop_all
	reg_stop_all
}
tap_trap_cleanup cleanup

reg_start r || exit 1
URL=$REG_r_URL
# 12 repositories ra-00.. with one tag v00000 (one tiny image), and "big" with 12 tags,
# each its own image (one can go without taking another tag along).
seed_ok=1
for i in $(seq -w 0 11); do
	"$PY" "$TESTS_LIB/seed.py" tags "$URL" "ra-$i" --count 1 --tag-prefix v >/dev/null ||
		seed_ok=0
done
[ "$seed_ok" = 1 ] &&
	"$PY" "$TESTS_LIB/seed.py" tags "$URL" big --count 12 --tag-prefix t --distinct \
		>/dev/null || {
	fail "seed the registry"
	tap_done
	exit 1
}
mapfile -t REPOS < <(reg_catalog r | grep '^ra-' | LC_ALL=C sort)
mapfile -t TAGS < <(reg_tags r big | LC_ALL=C sort) # the listing's order
is "${#REPOS[@]} ${#TAGS[@]}" "12 12" "fixtures: 12 repositories, 12 tags of big"

manifests() { reg_count_requests r "\"(GET|HEAD) /v2/$1/manifests/"; }
tag_lists() { reg_count_requests r '"GET /v2/[^ ]*/tags/list'; }
all_requests() { reg_count_requests r '"(GET|HEAD) /v2/.'; }
# Wait until the registry's log stops growing (the readahead finishing what it queued).
settle() {
	local a b i
	b=$(all_requests)
	for ((i = 0; i < 50; i++)); do
		sleep 0.2
		a=$b
		b=$(all_requests)
		[ "$a" != "$b" ] || return 0
	done
}
# A key of .acrfs/status's "prefetch" object.
pf_stat() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["prefetch"][sys.argv[2]])' "$1/.acrfs/status" "$2"; }
digests() { getfattr -n user.acrfs.digest --absolute-names -- "$@" 2>&1 | sort; }

# ---- the same answers, with and without
mnt_start a "$URL" -o prefetch=0,cache_dir="$TEST_TMP/cache-a" || fail "mount a (no readahead)"
mnt_start b "$URL" -o prefetch=4,cache_dir="$TEST_TMP/cache-b" || fail "mount b (prefetch=4)"
walk() {
	local m=$1
	(cd "$m" && find . -mindepth 2 -maxdepth 2 | sort)
	(cd "$m" && digests big/*)
	(cd "$m" && find ra-*/v00000/rootfs -type f -exec md5sum {} + | sort)
}
walk "$MNT_a" >"$O/walk-a"
walk "$MNT_b" >"$O/walk-b"
cmp_files "$O/walk-b" "$O/walk-a" "a walk with readahead answers as one without it"
check "… and it walked something ($(wc -l <"$O/walk-a") lines)" test "$(wc -l <"$O/walk-a")" -ge 36
mnt_stop a
mnt_stop b

# ---- a lone ls, or one entry, fetches nothing ahead
n0=$(all_requests)
mnt_start c "$URL" -o prefetch=32,cache_dir="$TEST_TMP/cache-c" || fail "mount c"
ls "$MNT_c" >/dev/null
ls -l "$MNT_c/big" >/dev/null
settle
is "$(reg_requests r '"(GET|HEAD) /v2/.' | tail -n +$((n0 + 1)) | grep -cvE '"GET /v2/ |_catalog')" 1 \
	"ls of the root, then ls -l of a repository (readahead on): its tag list, nothing else"
m0=$(manifests big)
getfattr -n user.acrfs.digest "$MNT_c/big/${TAGS[3]}" >/dev/null 2>&1
settle
is "$(($(manifests big) - m0))" 1 "the digest of one tag: its manifest only"
n1=$(all_requests)
ls -l "$MNT_c/ra-00" >/dev/null
settle
is "$(($(all_requests) - n1))" 1 "ls -l of a second repository: its tag list only"
is "$(pf_stat "$MNT_c" window) $(pf_stat "$MNT_c" queued)" "32 0" \
	".acrfs/status: prefetch window 32, nothing queued"
mnt_stop c

# ---- what a walk fetches ahead is bounded: 3 tags walked, prefetch=4
mnt_start d "$URL" -o prefetch=4,cache_dir="$TEST_TMP/cache-d" || fail "mount d"
ls "$MNT_d/big" >/dev/null
m0=$(manifests big)
ahead=$(printf '%s|' "${TAGS[@]:3:4}")
ahead="\"(GET|HEAD) /v2/big/manifests/(${ahead%|}) "
ahead_before=$(reg_count_requests r "$ahead")
for t in "${TAGS[@]:0:3}"; do
	getfattr -n user.acrfs.digest "$MNT_d/big/$t" >/dev/null 2>&1
done
settle
m=$(($(manifests big) - m0))
check "3 tags walked in order, prefetch=4: more manifests than the walk asked ($m > 3)" \
	test "$m" -gt 3
check "… but not more than 4 beyond the last tag reached ($m <= 7)" test "$m" -le 7
is "$(pf_stat "$MNT_d" queued) $(pf_stat "$MNT_d" done)" "4 4" ".acrfs/status: 4 jobs queued and run"
# The 4 fetched ahead answer from the cache: the walk going on to them asks for none of
# them again (it sends requests for the next ones, ahead of it).
a0=$(reg_count_requests r "$ahead")
for t in "${TAGS[@]:3:4}"; do
	getfattr -n user.acrfs.digest "$MNT_d/big/$t" >/dev/null 2>&1
done
settle
is "$(reg_count_requests r "$ahead")" "$a0" "… the walk going on to those 4 asks for none of them again"
is "$((a0 - ahead_before))" 4 "… each of them was asked once, ahead of the walk"
# The whole walk, then again: the second sends nothing.
digests "$MNT_d"/big/* >"$O/d1"
settle
n0=$(all_requests)
digests "$MNT_d"/big/* >"$O/d2"
settle
is "$(($(all_requests) - n0))" 0 "a walk repeated within the TTL sends nothing"
cmp_files "$O/d2" "$O/d1" "… and answers the same"
mnt_stop d

# ---- one file in each image, in order (cat of explicit paths: lookups, no listing): the
# next repositories' manifests come ahead of the walk, no tag list is fetched (a tag's
# lookup asks its manifest, which the walk needs anyway), and the files read are right
mnt_start g "$URL" -o prefetch=4,cache_dir="$TEST_TMP/cache-g" || fail "mount g"
rahead=$(printf '%s|' "${REPOS[@]:3:4}")
rahead="\"GET /v2/(${rahead%|})/manifests/v00000 "
r0=$(reg_count_requests r "$rahead")
t0=$(tag_lists)
sum_of() { (cd "$MNT_g" && md5sum "$1/v00000/rootfs/seed.txt"); }
for r in "${REPOS[@]:0:3}"; do sum_of "$r"; done >"$O/sums-g"
settle
is "$(($(reg_count_requests r "$rahead") - r0))" 4 \
	"a file of each of 3 images in order: the manifests of the next 4 repositories' v00000 fetched ahead"
r1=$(reg_count_requests r "$rahead")
for r in "${REPOS[@]:3:4}"; do sum_of "$r"; done >>"$O/sums-g"
settle
is "$(reg_count_requests r "$rahead")" "$r1" "… reading theirs asks for none of them again"
is "$(($(tag_lists) - t0))" 0 "… and no tag list was fetched, by the walk or ahead of it"
grep -E "  ($(printf '%s|' "${REPOS[@]:0:7}" | sed 's/|$//'))/v00000/rootfs/seed.txt\$" "$O/walk-a" \
	>"$O/sums-a"
cmp_files "$O/sums-g" "$O/sums-a" "… and their bytes are those the mount without readahead read"
mnt_stop g

# ---- ttl=0: no readahead (nothing fetched ahead could be used): the same requests as
# with prefetch=0
ttl0_walk() {
	local name=$1 m
	mnt_start "$name" "$URL" -o "ttl=0,$2,cache_dir=$TEST_TMP/cache-$name" || fail "mount $name"
	m=MNT_$name
	ls "${!m}/big" >/dev/null
	local m0
	m0=$(manifests big)
	for t in "${TAGS[@]:0:6}"; do
		getfattr -n user.acrfs.digest "${!m}/big/$t" >/dev/null 2>&1
	done
	settle
	echo "$(($(manifests big) - m0))"
	mnt_stop "$name"
}
e0=$(ttl0_walk e0 prefetch=0)
e1=$(ttl0_walk e1 prefetch=32)
is "$e1" "$e0" "ttl=0: 6 tags walked with prefetch=32, the manifests of prefetch=0 ($e0)"

# ---- a tag deleted while the walk goes on: gone for the walk too
mnt_start f "$URL" -o prefetch=8,cache_dir="$TEST_TMP/cache-f" || fail "mount f"
ls "$MNT_f/big" >/dev/null
for t in "${TAGS[@]:0:3}"; do
	getfattr -n user.acrfs.digest "$MNT_f/big/$t" >/dev/null 2>&1
done
settle
gone=${TAGS[5]}
check "$gone was fetched ahead (its manifest asked before the walk reached it)" \
	test "$(reg_count_requests r "\"GET /v2/big/manifests/$gone ")" -ge 1
check "rmdir $gone (another process, during the walk)" rmdir "$MNT_f/big/$gone"
rc=0
getfattr -n user.acrfs.digest "$MNT_f/big/$gone" >"$O/gone.out" 2>&1 || rc=$?
check "… the walk reaching it: No such file or directory ($(tr '\n' ' ' <"$O/gone.out"))" \
	grep -q 'No such file or directory' "$O/gone.out"
check "… the next tag still answers" getfattr -n user.acrfs.digest "$MNT_f/big/${TAGS[6]}"
is "$(ls "$MNT_f/big" | grep -c -x -- "$gone")" 0 "… and the listing no longer has it"
is "$(reg_tags r big | grep -c -x -- "$gone")" 0 "… nor the registry"
mnt_stop f

tap_done
