#!/usr/bin/env bash
# test-weight: 3 (tests/run.sh starts heavier scripts first)
# Issue 2: repositories and tags as directories, against a real registry.
# ≥ 1,200 repositories (catalog pagination), a repository with 2,500 tags, nested
# repositories, the tag/namespace clash rule, ENOENT, the dirent cache (zero
# requests when warm, changes visible after the TTL, ttl=0 always asks).
set -u
. "$TESTS_LIB/tap.sh"
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/images.sh"
. "$TESTS_LIB/acrfs.sh"
. "$TESTS_LIB/fixture.sh"
PY=/usr/bin/python3

cleanup() {
	mnt_stop_all
	reg_stop_all
}
tap_trap_cleanup cleanup

# Sizes: distribution pages its catalog by 1,000 and never its tag lists; a wrapper may
# choose others (81-acr-namespace: ACR pages /v2 lists by 100 and _tags by 1,000).
NREPOS=${ACRFS_NS_REPOS:-1200}
NTAGS=${ACRFS_NS_TAGS:-2500}

# seed_ns URL DIR: push what this script lists into the registry at URL: a real image
# built here (DIR/oci), under names that exercise nesting and the clash rule, then
# NREPOS repositories and a repository of NTAGS tags (DIR/repos.txt, DIR/tags.txt).
seed_ns() {
	local url=$1 dir=$2 dest
	img_build_simple "$dir/oci" v1 "hello.txt=hello" >/dev/null || return 1
	for dest in ssongman/userlist:v1 ssongman/userlist:latest alpha:v1 alpha:sub \
		alpha/sub:v1 ns/deep/nested/repo:v1; do
		img_push "$dir/oci:v1" "$url/$dest" >/dev/null || {
			fail "push $dest"
			return 1
		}
	done
	$PY "$TESTS_LIB/seed.py" repos "$url" --count "$NREPOS" --prefix bulk \
		--out "$dir/repos.txt" || return 1
	$PY "$TESTS_LIB/seed.py" tags "$url" big/tags --count "$NTAGS" --out "$dir/tags.txt"
}
# ns_fixture DIR NREPOS NTAGS: the seeded registry's storage in DIR/data (fixture.sh:
# the release and [san] passes push it once and start from copies of it).
ns_fixture() {
	local rc=0
	reg_start nsseed || return 1
	seed_ns "$REG_nsseed_URL" "$1" || rc=1
	reg_stop nsseed
	[ "$rc" = 0 ] && mv -- "$TEST_TMP/nsseed/data" "$1/data"
}
if [ "${ACRFS_TEST_ACR:-0}" = 1 ]; then
	# The emulator keeps metadata of its own (when it saw each tag): push through it.
	reg_start r || exit 1
	seed_ns "$REG_r_URL" "$TEST_TMP" || exit 1
else
	fixture_get ns "$TEST_TMP/ns" ns_fixture "$NREPOS" "$NTAGS" || exit 1
	mv -- "$TEST_TMP/ns/oci" "$TEST_TMP/ns/repos.txt" "$TEST_TMP/ns/tags.txt" "$TEST_TMP/" ||
		exit 1
	reg_start r --data-from "$TEST_TMP/ns/data" || exit 1
	rm -rf -- "$TEST_TMP/ns"
fi
URL=$REG_r_URL
ncat=$(reg_catalog r | wc -l)
check "the registry holds ≥ $NREPOS repositories ($ncat)" test "$ncat" -ge $((NREPOS + 5))

# Background mode: acrfs returns once the mount is live.
mnt_start a "$URL" -o ttl=600 || {
	fail "mount"
	exit 1
}
M=$MNT_a
check "acrfs returned with the mount live" is_mounted "$M"

# / lists the first components of every repository, over every catalog page.
reg_catalog r | cut -d/ -f1 | sort -u >"$TEST_TMP/top.want"
ls -1 "$M" | sort >"$TEST_TMP/top.got"
cmp_files "$TEST_TMP/top.got" "$TEST_TMP/top.want" "ls / = first components of the catalog"
pages=$(reg_count_requests r '"GET /v2/_catalog.*"acrfs/')
check "acrfs read the catalog over more than one page ($pages)" test "$pages" -ge 2

# Every repository, path prefix and tag, with the clash rule: a walk = oracle. The walk
# (find, pruned at tag directories: each holds an image view, tested in 60-image.sh)
# reads every directory the namespace has.
$PY "$TESTS_LIB/nsoracle.py" "$URL" --tags-out "$TEST_TMP/tags.all" >"$TEST_TMP/tree.want" ||
	fail "oracle"
# MOUNT → relative paths, not descending into tag directories
nswalk() { $PY "$TESTS_LIB/nswalk.py" "$1" "$TEST_TMP/tags.all"; }
nswalk "$M" | sort >"$TEST_TMP/tree.got"
cmp_files "$TEST_TMP/tree.got" "$TEST_TMP/tree.want" \
	"a walk shows every repository, namespace and tag ($(wc -l <"$TEST_TMP/tree.want") entries)"

# The $NTAGS-tag repository.
reg_tags r big/tags | sort >"$TEST_TMP/tags.want"
ls -1 "$M/big/tags" | sort >"$TEST_TMP/tags.got"
cmp_files "$TEST_TMP/tags.got" "$TEST_TMP/tags.want" "ls big/tags lists all $NTAGS tags"
is "$(wc -l <"$TEST_TMP/tags.got")" "$NTAGS" "$NTAGS tag directories"

# The seed's workflow.
is "$(ls "$M/ssongman/userlist" | tr '\n' ' ')" "latest v1 " "ls ssongman/userlist shows its tags"
is "$(ls "$M/ns/deep/nested")" "repo" "nested repositories are nested directories"
is "$(ls "$M/alpha" | tr '\n' ' ')" ":sub sub v1 " \
	"a repository that is also a namespace lists both; the clashing tag is :sub"
is "$(ls "$M/alpha/sub")" "v1" "alpha/sub is the deeper repository"
check "the clashing tag is reachable as :sub" test -d "$M/alpha/:sub"
check "any tag is reachable as :TAG" test -d "$M/alpha/:v1"

# stat
is "$(stat -c '%F %a %h' "$M/ssongman")" "directory 755 2" "a namespace is a directory"
is "$(stat -c '%F %a' "$M/ssongman/userlist/v1")" "directory 755" "a tag is a directory"
is "$(stat -c %u "$M/ssongman/userlist")" "$(id -u)" "owned by the mounting user"
ino1=$(stat -c %i "$M/ssongman/userlist")
ino2=$(stat -c %i "$M/ssongman/userlist")
is "$ino1" "$ino2" "inode numbers are stable"

# ENOENT
out=$(stat "$M/no-such-repo" 2>&1)
check "unknown repository: ENOENT" grep -q "No such file or directory" <<<"$out"
out=$(stat "$M/ssongman/userlist/v9" 2>&1)
check "unknown tag: ENOENT" grep -q "No such file or directory" <<<"$out"
out=$(stat "$M/Invalid_Name" 2>&1)
check "an invalid repository name: ENOENT" grep -q "No such file or directory" <<<"$out"

# A warm cache makes zero requests.
nswalk "$M" >/dev/null
before=$(reg_count_requests r)
nswalk "$M" >/dev/null
ls "$M/big/tags" >/dev/null
ls -l "$M/big/tags" >/dev/null
stat "$M/no-such-repo" >/dev/null 2>&1
after=$(reg_count_requests r)
is "$((after - before))" 0 "a second walk of the namespace, ls and ls -l inside the TTL make zero HTTP requests"

mnt_stop a
check "fusermount3 -u unmounts" test ! -d "$M/ssongman"
check "and the daemon exits" test -z "$(_mnt_pid_of "$M")"

# Changes by another client appear after the TTL, not before.
mnt_start e "$URL" -o ttl=5 || fail "mount ttl=5"
M=$MNT_e
ls "$M/ssongman/userlist" "$M/alpha" >/dev/null
img_push "$TEST_TMP/oci:v1" "$URL/ssongman/userlist:v2" >/dev/null
dig=$(reg_digest r alpha sub)
reg_curl r -X DELETE "/v2/alpha/manifests/$dig" >/dev/null # removes alpha:sub (and :v1)
ls "$M/ssongman/userlist" >/dev/null
is "$(ls "$M/ssongman/userlist" | tr '\n' ' ')" "latest v1 " "inside the TTL the listing is cached"
sleep 6
is "$(ls "$M/ssongman/userlist" | tr '\n' ' ')" "latest v1 v2 " "after the TTL a new tag is visible"
check "after the TTL a deleted tag is gone (lookup)" test ! -e "$M/alpha/:sub"
is "$(ls "$M/alpha" | tr '\n' ' ')" "sub " "after the TTL the deleted tags are gone (listing)"
mnt_stop e

# ttl=0 always asks.
mnt_start z "$URL" -o ttl=0 || fail "mount ttl=0"
ls "$MNT_z/ssongman/userlist" >/dev/null
before=$(reg_count_requests r)
ls "$MNT_z/ssongman/userlist" >/dev/null
after=$(reg_count_requests r)
check "ttl=0: a repeated ls asks the registry again ($((after - before)) requests)" \
	test "$((after - before))" -ge 1
# The kernel keeps listings (no-opendir mode); with ttl=0 it must still show a change at
# once, also over a complete listing it holds.
ls "$MNT_z/big/tags" >/dev/null
ls "$MNT_z/big/tags" >/dev/null
$PY "$TESTS_LIB/seed.py" tags "$URL" big/tags --count 1 --tag-prefix 0new \
	--out "$TEST_TMP/new.txt" 2>/dev/null || fail "push big/tags:0new00000"
check "ttl=0: a tag pushed after a complete listing shows in the next ls at once" \
	grep -qx 0new00000 <(ls "$MNT_z/big/tags")
# A reader half-way through big/tags when another tag appears goes on in the listing it
# started (readdir offsets carry the listing's generation): each tag once, not the new one.
mkfifo "$TEST_TMP/go"
$PY -c 'import os, sys
it = os.scandir(sys.argv[1])
names = [next(it).name for _ in range(60)]
print("HALF", flush=True)
open(sys.argv[2]).read()
names += [e.name for e in it]
print("\n".join(names))' "$MNT_z/big/tags" "$TEST_TMP/go" >"$TEST_TMP/reader.out" &
reader=$!
for ((i = 0; i < 600; i++)); do # until the reader is half-way (or gone)
	grep -q HALF "$TEST_TMP/reader.out" 2>/dev/null && break
	kill -0 "$reader" 2>/dev/null || break
	sleep 0.05
done
$PY "$TESTS_LIB/seed.py" tags "$URL" big/tags --count 1 --tag-prefix 0b \
	--out "$TEST_TMP/new2.txt" 2>/dev/null || fail "push big/tags:0b00000"
check "ttl=0: a tag pushed while a reader is half-way shows in the next ls at once" \
	grep -qx 0b00000 <(ls "$MNT_z/big/tags")
echo go >"$TEST_TMP/go"
wait "$reader"
grep -v HALF "$TEST_TMP/reader.out" | sort >"$TEST_TMP/reader.got"
(cat "$TEST_TMP/tags.want" && echo 0new00000) | sort >"$TEST_TMP/reader.want"
cmp_files "$TEST_TMP/reader.got" "$TEST_TMP/reader.want" \
	"… while that reader went on in its own listing: each of its 2,501 tags once"
mnt_stop z

# Inside the TTL the kernel serves a repeated listing itself: no READDIR reaches acrfs
# (counted in libfuse's debug log, one "opcode:" line per request as it arrives).
mnt_start_fg k "$URL" -o debug,ttl=600 || fail "mount -o debug"
ls "$MNT_k/big/tags" "$MNT_k/alpha" >/dev/null
if [ "${REG_r_ACR:-0}" = 1 ]; then
	# On ACR a repository's mtime becomes its newest tag's once its tags are listed
	# (85-acr); the kernel took its copy of the listing under the mtime it had before,
	# so the next ls (whose stat sees the new one) reads the listing once more, from
	# acrfs's cache. From then on the mtime stays.
	ls "$MNT_k/big/tags" "$MNT_k/alpha" >/dev/null
fi
r0=$(grep -cE 'opcode: (OPENDIR|READDIR|READDIRPLUS) ' "$TEST_TMP/mnt-k.log")
ls "$MNT_k/big/tags" "$MNT_k/alpha" >/dev/null
is "$(($(grep -cE 'opcode: (OPENDIR|READDIR|READDIRPLUS) ' "$TEST_TMP/mnt-k.log") - r0))" 0 \
	"inside the TTL a repeated ls of a repository sends no OPENDIR or READDIR: the kernel keeps it"
mnt_stop k

tap_done
