#!/usr/bin/env bash
# test-weight: 2 (tests/run.sh starts heavier scripts first)
# Issue 10: acrfs against the ACR emulator (tests/lib/acremu.py) on 127.0.0.1 takes the
# ACR code paths, recognised by behaviour (one probe of /acr/v1 at mount; -o acr=off: no
# /acr/v1 request at all). Tag operations are checked by the requests the emulator
# received, not only by their outcome: untag of a shared image through
# DELETE /acr/v1/<r>/_tags/<t> (no delete-by-tag first, no HEAD per sibling: one
# _manifests page), a unique image deleted by digest, an emptied repository deleted
# through DELETE /acr/v1/<r>; locks (tag and repository; a repository's shows in its mode
# and user.acrfs.lock once asked for) refuse rmdir / mv with EPERM
# before any DELETE or PUT, naming the lock; an identity that may not read metadata meets
# the registry's own 405 REGISTRY_DISALLOWED_OPERATION, also EPERM with the same words.
# shellcheck disable=SC2154 # ACR_<NAME>_*, MNT_* are exported by the helpers
set -u
. "$TESTS_LIB/tap.sh"
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/images.sh"
. "$TESTS_LIB/acremu.sh"
. "$TESTS_LIB/acrfs.sh"
PY=/usr/bin/python3

cleanup() {
	mnt_stop_all
	acremu_stop_all
	reg_stop_all
}
tap_trap_cleanup cleanup
export HOME=$TEST_TMP/home
mkdir -p "$HOME"
unset DOCKER_CONFIG REGISTRY_AUTH_FILE XDG_RUNTIME_DIR XDG_CONFIG_HOME ACRFS_USERNAME ACRFS_PASSWORD

dd_at() { dd if="$1" bs=64K iflag=skip_bytes,count_bytes skip="$2" count="$3" status=none; }
lsw() { ls "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }
# The message of a failing command (its stderr), or "succeeded".
errof() {
	local out
	out=$("$@" 2>&1) && echo "succeeded" || echo "$out"
}
# reqs [ERE]: "METHOD PATH STATUS" of the emulator's requests since the mark.
reqs() {
	acremu_log_since a "${1:-.}" | $PY -c 'import json, sys
for line in sys.stdin:
    d = json.loads(line)
    print(d["method"], d["path"], d["status"])'
}
# dels: the DELETEs since the mark; a probe of delete rights (a random digest: 404) shows
# as "(probe)".
dels() { reqs DELETE | sed -E 's#/manifests/sha256:[0-9a-f]{64} 404$#/manifests/(probe) 404#'; }
# A config: the default identities and "deleter", who may delete but not read metadata.
acremu_default_config_plus() {
	$PY -c 'import json, sys
c = json.loads(sys.stdin.read())
c["identities"].append({"username": "deleter", "password": "deleterpw", "catalog": True,
    "repositories": [{"pattern": "*", "actions": ["pull", "delete"]}]})
print(json.dumps(c))' < <(_acremu_default_config)
}

acremu_default_config_plus >"$TEST_TMP/acremu.json"
acremu_start a --config "$TEST_TMP/acremu.json" || {
	fail "the emulator starts"
	exit 1
}
U=$ACR_a_URL
ADM=$(acremu_token a admin:adminpw 'repository:app:pull,push,delete,metadata_read')

for i in 1 2 3 4 5; do
	img_build_simple "$TEST_TMP/oci" "i$i" "hello.txt=image $i" >/dev/null || exit 1
done
img_build_simple "$TEST_TMP/oci" big "big.bin=#12M:acr" >/dev/null || exit 1
_img_random 12M acr >"$TEST_TMP/big.oracle"
D() { img_manifest_digest "$TEST_TMP/oci" "i$1"; }
for p in blob:big=big app:solo=1 app:s1=2 app:s2=2 app:s3=2 app:lockt=3 app:lockd=4 app:mv=5 \
	empty:only=1 rlock:a=3 rlock:b=4; do
	ref=${p%=*} img=${p#*=}
	[ "$img" = big ] || img=i$img
	IMG_CREDS=admin:adminpw img_push "$TEST_TMP/oci:$img" "$U/$ref" >/dev/null || {
		fail "push $ref through the emulator"
		exit 1
	}
done
# empty: its one manifest stays, untagged (ACR keeps it; the directory is empty).
code=$(curl -sS -o /dev/null -w '%{http_code}' -X DELETE \
	-H "Authorization: Bearer $(acremu_token a admin:adminpw 'repository:empty:delete')" \
	"$U/acr/v1/empty/_tags/only")
is "$code" 202 "fixture: empty:only untagged through the emulator, its manifest stays"

# Ages in days (lastUpdateTime = createdTime = now - age), and locks.
ages='solo:200 s1:120 s2:95 s3:60 lockt:30 lockd:20 mv:10'
json=$(for a in $ages; do
	printf '{"repo": "app", "tag": "%s", "age": %d},' "${a%%:*}" $((${a#*:} * 86400))
done)
acremu_control a "{\"times\": [${json%,}]}" >/dev/null
acremu_control a '{"attrs": [{"repo": "app", "tag": "lockt", "writeEnabled": false},
	{"repo": "app", "tag": "lockd", "deleteEnabled": false},
	{"repo": "rlock", "writeEnabled": false}]}' >/dev/null
ts() { curl -sS -H "Authorization: Bearer $ADM" "$U/acr/v1/app/_tags/$1" |
	$PY -c 'import json, sys; print(json.load(sys.stdin)["tag"][sys.argv[1]])' "$2"; }

# ---- recognised by behaviour ----
acremu_log_mark a
ACRFS_USERNAME=admin ACRFS_PASSWORD=adminpw mnt_start_fg a "$U" -o ttl=600 || {
	fail "mount the emulator"
	exit 1
}
M=$MNT_a
LOG=$TEST_TMP/mnt-a.log
is "$(reqs '"/acr/v1/')" "GET /acr/v1/_catalog?n=1 401" \
	"mount: one probe of /acr/v1 (GET /acr/v1/_catalog, answered with ACR's challenge)"
check "… without credentials" test -z "$(acremu_log_since a '"/acr/v1/' | grep '"auth": *true')"
check "… and the log says the registry answers ACR's API" grep -q "answers Azure Container Registry's API" "$LOG"
is "$(lsw "$M")" "app blob empty rlock" "ls: the repositories"
is "$(lsw "$M/empty")" "" "ls empty: no tag (one untagged manifest)"

# ---- tag times, digests and locks from the _tags listing ----
acremu_log_mark a
is "$(lsw "$M/app")" "lockd lockt mv s1 s2 s3 solo" "ls app: its tags"
is "$(ls -t "$M/app" | tr '\n' ' ')" "mv lockd lockt s3 s2 s1 solo " "ls -t app: newest tag first"
is "$(cd "$M" && find . -mindepth 2 -maxdepth 2 -path './app/*' -mtime +90 | sort | tr '\n' ' ')" \
	"./app/s1 ./app/s2 ./app/solo " "find -mtime +90: the tags older than 90 days"
is "$(stat -c %Y "$M/app/s1")" "$($PY -c 'import calendar, sys, time
print(calendar.timegm(time.strptime(sys.argv[1][:19], "%Y-%m-%dT%H:%M:%S")))' "$(ts s1 lastUpdateTime)")" \
	"a tag's mtime is its lastUpdateTime (to the second)"
is "$(getfattr --only-values -n user.acrfs.created "$M/app/s1" 2>/dev/null)" "$(ts s1 createdTime)" \
	"user.acrfs.created is its createdTime"
is "$(getfattr --only-values -n user.acrfs.digest "$M/app/s1" 2>/dev/null)" "$(D 2)" "user.acrfs.digest its digest"
is "$(stat -c %A "$M/app/lockt") $(stat -c %A "$M/app/lockd") $(stat -c %A "$M/app/s1")" \
	"dr-xr-xr-x dr-xr-xr-x drwxr-xr-x" "locked tags show without write permission bits"
is "$(getfattr --only-values -n user.acrfs.lock "$M/app/lockd" 2>/dev/null)" "deleteEnabled=false" \
	"user.acrfs.lock names a tag's lock"
is "$(stat -c %Y "$M/app")" "$(stat -c %Y "$M/app/mv")" \
	"the repository's mtime is its newest tag's, once its tags are listed"
is "$(reqs '"/acr/v1/app/_tags\?' | sed 's/ 200$//')" "GET /acr/v1/app/_tags?n=1000" \
	"… all of it from one _tags page (the cached listing)"
is "$(reqs '/manifests/' | wc -l)" 0 "… without a manifest request"

# ---- rmdir of a tag whose image other tags share: ACR's untag ----
acremu_log_mark a
check "rmdir app/s1 (s2 and s3 share its image)" rmdir "$M/app/s1"
is "$(reqs 'DELETE')" "DELETE /acr/v1/app/_tags/s1 202" \
	"… one DELETE: /acr/v1/app/_tags/s1 (no delete-by-tag through /v2 first)"
is "$(reqs '"/acr/v1/app/_manifests' | wc -l)" 1 "… the sibling scan is one _manifests page"
is "$(reqs '"HEAD"' | grep -c '/manifests/')" 0 "… and no HEAD of any tag"
is "$(reqs '"/v2/app/tags/list' | wc -l)" 0 "… nor a /v2 tag list"
is "$(lsw "$M/app")" "lockd lockt mv s2 s3 solo" "… ls app shows it gone"
out=$(curl -sS -H "Authorization: Bearer $ADM" "$U/acr/v1/app/_tags/s2" |
	$PY -c 'import json, sys; print(json.load(sys.stdin)["tag"]["digest"])')
is "$out" "$(D 2)" "… s2 still points at the image"

# ---- rmdir of a tag with a unique image: the image goes, by digest ----
acremu_log_mark a
check "rmdir app/solo (no other tag uses its image)" rmdir "$M/app/solo"
is "$(reqs 'DELETE')" "DELETE /v2/app/manifests/$(D 1) 202" \
	"… one DELETE: the manifest by digest"
is "$(reqs '"HEAD"' | grep -v '/manifests/solo ' | grep -c '/manifests/')" 0 \
	"… no HEAD of another tag"

# ---- locks ----
acremu_log_mark a
is "$(errof rmdir "$M/app/lockt")" "rmdir: failed to remove '$M/app/lockt': Operation not permitted" \
	"rmdir of a tag with writeEnabled=false: EPERM"
check "… the log names the lock" grep -q "app:lockt is locked in the registry .*(writeEnabled=false): not removed" "$LOG"
is "$(errof rmdir "$M/app/lockd")" "rmdir: failed to remove '$M/app/lockd': Operation not permitted" \
	"rmdir of a tag with deleteEnabled=false: EPERM"
check "… the log names the lock" grep -q "app:lockd is locked .*(deleteEnabled=false)" "$LOG"
is "$(errof mv "$M/app/lockt" "$M/app/moved")" \
	"mv: cannot move '$M/app/lockt' to '$M/app/moved': Operation not permitted" \
	"mv of a locked tag: EPERM"
is "$(errof rmdir "$M/rlock/a")" "rmdir: failed to remove '$M/rlock/a': Operation not permitted" \
	"rmdir of a tag in a repository with writeEnabled=false: EPERM"
check "… the log names the repository's lock" \
	grep -q "repository rlock is locked .*(writeEnabled=false)" "$LOG"
is "$(reqs '"(DELETE|PUT|POST|PATCH)"')" "" "… no request that could change anything was sent"
is "$(lsw "$M/app")" "lockd lockt mv s2 s3" "… the locked tags stay"

# ---- a repository's lock and times: one request when asked, then its mode shows it ----
acremu_log_mark a
ls -l "$M" >/dev/null
is "$(reqs '"/acr/v1/(app|rlock|blob|empty)"')" "" "ls -l of the root: no request per repository"
is "$(getfattr --absolute-names --only-values -n user.acrfs.lock "$M/rlock" 2>&1)" "writeEnabled=false" \
	"user.acrfs.lock of a repository with writeEnabled=false names the lock"
is "$(reqs '"/acr/v1/rlock')" "GET /acr/v1/rlock 200" "… one request: GET /acr/v1/rlock"
is "$(stat -c %A "$M/rlock") $(stat -c %A "$M/app")" "dr-xr-xr-x drwxr-xr-x" \
	"… the locked repository then shows without write bits, another keeps them"
check "… and lists user.acrfs.lock" sh -c "getfattr -d '$M/rlock' | grep -q '^user.acrfs.lock='"
getfattr -n user.acrfs.lock "$M/rlock" >/dev/null 2>&1
is "$(reqs '"/acr/v1/rlock')" "GET /acr/v1/rlock 200" "… asked again within the TTL: no request"
is "$(getfattr --absolute-names --only-values -n user.acrfs.lock "$M/app" 2>&1 | sed 's/.*: //')" "No such attribute" \
	"an unlocked repository has no user.acrfs.lock"
check "a repository's user.acrfs.updated: ACR's lastUpdateTime (RFC 3339)" \
	sh -c "getfattr --only-values -n user.acrfs.updated '$M/app' | grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T'"

# ---- mv on ACR: copy, then ACR's untag of the source ----
acremu_log_mark a
check "mv app/mv app/moved" mv "$M/app/mv" "$M/app/moved"
is "$(dels)" "DELETE /v2/app/manifests/(probe) 404
DELETE /acr/v1/app/_tags/mv 202" \
	"… a probe of delete rights (an unknown digest: 404), then the source is untagged through /acr/v1"
is "$(lsw "$M/app")" "lockd lockt moved s2 s3" "… ls app shows the new name"

# ---- rmdir of an emptied repository: DELETE /acr/v1/<r> ----
acremu_log_mark a
check "rmdir empty (no tag left)" rmdir "$M/empty"
is "$(reqs 'DELETE')" "DELETE /acr/v1/empty 202" "… through DELETE /acr/v1/empty"
is "$(lsw "$M")" "app blob rlock" "… ls shows it gone"
acremu_log_mark a
is "$(errof rmdir "$M/app")" "rmdir: failed to remove '$M/app': Directory not empty" \
	"rmdir of a repository with tags: ENOTEMPTY"
is "$(reqs 'DELETE')" "" "… and no DELETE"
mnt_stop a

# ---- the registry's own refusal: 405 REGISTRY_DISALLOWED_OPERATION → EPERM ----
# deleter may not read metadata, so acrfs cannot see the lock; the registry refuses.
ACRFS_USERNAME=deleter ACRFS_PASSWORD=deleterpw mnt_start_fg d "$U" -o ttl=600 || {
	fail "mount as deleter"
	exit 1
}
acremu_control a '{"attrs": [{"repo": "app", "tag": "s2", "deleteEnabled": false}]}' >/dev/null
acremu_log_mark a
is "$(errof rmdir "$MNT_d/app/s2")" \
	"rmdir: failed to remove '$MNT_d/app/s2': Operation not permitted" \
	"without metadata_read: rmdir of a locked tag (image shared with s3) is EPERM all the same"
is "$(dels | grep -v '(probe)')" "DELETE /acr/v1/app/_tags/s2 405" \
	"… the registry refused ACR's untag with 405"
check "… the log names REGISTRY_DISALLOWED_OPERATION and the lock" \
	grep -q "HTTP 405 REGISTRY_DISALLOWED_OPERATION.*app:s2 has deleteEnabled=false.*locked in the registry" \
	"$TEST_TMP/mnt-d.log"
acremu_log_mark a
is "$(errof rmdir "$MNT_d/app/lockd")" \
	"rmdir: failed to remove '$MNT_d/app/lockd': Operation not permitted" \
	"… and of a locked tag whose image no other tag uses"
is "$(dels | grep -v '(probe)')" "DELETE /v2/app/manifests/$(D 4) 405" \
	"… the registry refused the manifest delete with 405"
check "… the log names the lock" \
	grep -q "HTTP 405 REGISTRY_DISALLOWED_OPERATION.*app:lockd has deleteEnabled=false.*locked in the registry" \
	"$TEST_TMP/mnt-d.log"
mnt_stop d

# ---- -o acr=off: a plain OCI registry, no /acr/v1 request ----
acremu_log_mark a
ACRFS_USERNAME=admin ACRFS_PASSWORD=adminpw mnt_start_fg o "$U" -o acr=off,ttl=600 || {
	fail "mount -o acr=off"
	exit 1
}
is "$(lsw "$MNT_o/app")" "lockd lockt moved s2 s3" "-o acr=off: ls app"
check "… rmdir app/s3 (s2 shares its image) works the /v2 way" rmdir "$MNT_o/app/s3"
is "$(reqs '"/acr/v1/')" "" "… and no request went to /acr/v1"
check "… the untag went through /v2 (delete by tag refused, then a placeholder)" \
	test -n "$(reqs 'DELETE' | grep '/v2/app/manifests/s3 405')"
mnt_stop o

# ---- blobs: 307 to storage, no Authorization there, a new URL when storage says 403 ----
# cache_max=0: no local blob copy, so reads after the load are Range requests. SAS URLs
# live 8 s at first (a loaded machine took 1.7 s for the load: with 2 s, the first Range
# read found its URL expired already): those issued before the pause have expired after it.
acremu_control a '{"sas_ttl": 8}' >/dev/null
ACRFS_USERNAME=reader ACRFS_PASSWORD=readerpw mnt_start_fg r "$U" \
	-o "cache_max=0,cache_dir=$TEST_TMP/cache-r" || {
	fail "mount as reader, cache_max=0"
	exit 1
}
B=$MNT_r/blob/big/rootfs/big.bin
L=$(getfattr --only-values -n user.acrfs.digest "$MNT_r/blob/big/layers/0" 2>/dev/null)
SP=/registry/docker/registry/v2/blobs/sha256/${L:7:2}/${L#sha256:}/data
M1=1048576
# The long cat: one process, one open file, 64 KiB at 0, 9, 5 and 1 MiB; it waits for
# $TEST_TMP/cat.go after 9 MiB and for cat.go2 after 5 MiB (it says cat.at9 / cat.at5).
$PY - "$B" "$TEST_TMP/cat" <<'PYEOF' &
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
out = open(sys.argv[2], "wb")
for off, say, wait in ((0, None, None), (9, ".at9", ".go"), (5, ".at5", ".go2"), (1, None, None)):
    out.write(os.pread(fd, 65536, off * 1048576))
    out.flush()
    if say:
        open(sys.argv[2] + say, "w").close()
        while not os.path.exists(sys.argv[2] + wait):
            time.sleep(0.05)
PYEOF
CAT=$!
acremu_log_mark a
until [ -e "$TEST_TMP/cat.at9" ] || ! kill -0 "$CAT" 2>/dev/null; do sleep 0.1; done
is "$(reqs "/blobs/$L")" "GET /v2/blob/blobs/$L 307" \
	"the layer's load: one blob GET at the registry, answered 307"
is "$(acremu_log_since a '"storage"' | grep -c '"auth": *false')" \
	"$(acremu_log_since a '"storage"' | wc -l)" "… storage got no Authorization header"
check "… and was asked more than once (the load, then a Range read)" \
	test "$(acremu_log_since a '"storage"' | grep -c '"status": *20[06]')" -ge 2
# Let every URL issued so far expire; the next ones live 20 min.
sleep 9
acremu_control a '{"sas_ttl": 1200}' >/dev/null
acremu_log_mark a
: >"$TEST_TMP/cat.go"
until [ -e "$TEST_TMP/cat.at5" ] || ! kill -0 "$CAT" 2>/dev/null; do sleep 0.1; done
is "$(acremu_log_since a | $PY -c 'import json, sys
for line in sys.stdin:
    d = json.loads(line)
    print(d["origin"], d["method"], d["path"].split("?")[0], d["status"], d["auth"])' | uniq)" \
	"storage GET $SP 403 False
registry GET /v2/blob/blobs/$L 307 True
storage GET $SP 206 False" \
	"an expired URL (storage 403): the registry is asked for a new one, storage serves the read"
acremu_log_mark a
: >"$TEST_TMP/cat.go2"
wait "$CAT"
is "$?" 0 "the long read ends without an error"
is "$(reqs "/blobs/$L")" "" "… its next Range read reuses the new URL (no registry request)"
check "… which storage served" test -n "$(acremu_log_since a '"storage"' | grep '"status": *206')"
for off in 0 9 5 1; do dd_at "$TEST_TMP/big.oracle" $((off * M1)) 65536; done >"$TEST_TMP/cat.oracle"
check "… and every byte read is right" cmp -s "$TEST_TMP/cat" "$TEST_TMP/cat.oracle"
mnt_stop r

tap_done
