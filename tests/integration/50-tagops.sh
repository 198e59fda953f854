#!/usr/bin/env bash
# test-weight: 4 (tests/run.sh starts heavier scripts first)
# Issue 5: delete and move tags through the filesystem, safely, against real registries
# (deletes enabled; deletes disabled; token auth with pull-only and push-only
# identities). The oracles are the registry's own answers (reg_digest, reg_tags,
# HEAD by digest) and skopeo; every mount uses -o ttl=600 so that a change seen in `ls`
# is the invalidation at work, not an expired cache.
# ACRFS_TEST_ACR=1 (83-acr-tagops.sh): the registries are ACR emulators. The outcomes are
# the same; the way differs, checked from the emulator's request log: untag through
# DELETE /acr/v1/<r>/_tags/<t>, images by digest, never a DELETE by tag through /v2 (ACR
# answers 405), repository delete through DELETE /acr/v1/<r>. ACR has no delete-disabled
# registry: its equivalent, delete locks (deleteEnabled=false), stands in for it; its
# token service is the registry's own (/oauth2/token), with the same three identities.
set -u
. "$TESTS_LIB/tap.sh"
. "$TESTS_LIB/registry.sh"
. "$TESTS_LIB/images.sh"
. "$TESTS_LIB/acrfs.sh"
PY=/usr/bin/python3
ACR=${ACRFS_TEST_ACR:-0}

cleanup() {
	mnt_stop_all
	proxy_stop_all
	ts_stop_all
	reg_stop_all
}
tap_trap_cleanup cleanup

lsw() { ls "$@" 2>&1 | tr '\n' ' ' | sed 's/ $//'; }
tagsw() { reg_tags "$@" | sort | tr '\n' ' ' | sed 's/ $//'; }
# HTTP status of HEAD /v2/REPO/manifests/DIGEST on registry NAME.
head_status() {
	reg_curl "$1" -o /dev/null -w '%{http_code}' -I \
		-H 'Accept: application/vnd.oci.image.manifest.v1+json' "/v2/$2/manifests/$3"
}
# The message of a failing command (its stderr), or "succeeded".
errof() {
	local out
	out=$("$@" 2>&1) && echo "succeeded" || echo "$out"
}
# acr_reqs NAME ERE: "METHOD PATH STATUS" of acrfs's requests to registry NAME matching
# ERE (matched against the access-log line).
acr_reqs() {
	reg_requests "$1" '"acrfs/' | grep -E -- "$2" |
		sed -E 's#^[^"]*"([A-Z]+) ([^ ]+) HTTP/[0-9.]+" ([0-9]+) .*#\1 \2 \3#'
}
# renameat2(SRC, DST, RENAME_NOREPLACE): prints "ok" or the errno name.
rename_noreplace() {
	$PY - "$1" "$2" <<'EOF'
import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
r = libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), 1)
print("ok" if r == 0 else errno.errorcode[ctypes.get_errno()])
EOF
}

# Nine different images.
for i in 1 2 3 4 5 6 7 8 9; do
	img_build_simple "$TEST_TMP/oci" "i$i" "hello.txt=image $i" "big.bin=#64K:$i" >/dev/null ||
		exit 1
done
D() { img_manifest_digest "$TEST_TMP/oci" "i$1"; }

# ---------------------------------------------------------------- deletes enabled
reg_start r || exit 1
R=$REG_r_URL
for p in app:solo=1 app:s1=2 app:s2=2 app:ren=3 app:r1=4 app:r2=5 app:gone=6 app:alias=7 \
	app:xmv=8 other:keep=1 empty:only=3 app:rmd=9; do
	ref=${p%=*} img=${p#*=}
	img_push "$TEST_TMP/oci:i$img" "$R/$ref" >/dev/null || {
		fail "push $ref"
		exit 1
	}
done
check "fixture: app:solo is image 1" test "$(reg_digest r app solo)" = "$(D 1)"
if [ "$ACR" = 1 ]; then
	# On ACR a repository goes with its last manifest; "empty" keeps one, untagged, so
	# that its directory is still there once empty/only is gone (as in 85-acr).
	img_push "$TEST_TMP/oci:i1" "$R/empty:untagged" >/dev/null || fail "push empty:untagged"
	is "$(reg_curl r -o /dev/null -w '%{http_code}' -X DELETE /acr/v1/empty/_tags/untagged)" 202 \
		"fixture: empty:untagged untagged through /acr/v1, its manifest stays"
fi

mnt_start_fg a "$R" -o ttl=600 || {
	fail "mount"
	exit 1
}
M=$MNT_a
LOG=$TEST_TMP/mnt-a.log
before=$(lsw "$M/app")
is "$before" "alias gone r1 r2 ren rmd s1 s2 solo xmv" "app lists its tags (the cache is warm now)"

# 1. A tag with a unique digest: the image goes.
d1=$(reg_digest r app solo)
check "rmdir app/solo succeeds although the image view is not empty" rmdir "$M/app/solo"
is "$(head_status r app "$d1")" 404 "… the manifest is gone: HEAD by digest → 404"
check "… the registry lists no solo" test -z "$(reg_tags r app | grep -x solo)"
is "$(lsw "$M/app")" "alias gone r1 r2 ren rmd s1 s2 xmv" "… ls shows it at once (ttl=600)"
check "… stat app/solo fails" test ! -e "$M/app/solo"
is "$(reg_digest r other keep)" "$d1" "… the same image under another repository is untouched"
if [ "$ACR" = 1 ]; then
	is "$(acr_reqs r '"DELETE ')" "DELETE /v2/app/manifests/$d1 202" \
		"ACR: … one DELETE, the manifest by digest"
fi

# 2. A tag sharing its digest: only the tag goes; the sibling keeps its digest.
d2=$(reg_digest r app s2)
is "$(reg_digest r app s1)" "$d2" "fixture: s1 and s2 share a digest"
check "rmdir app/s1" rmdir "$M/app/s1"
is "$(reg_digest r app s2)" "$d2" "… the sibling s2 is still there with the same digest"
is "$(head_status r app "$d2")" 200 "… the manifest stays (HEAD by digest → 200)"
check "… s1 is gone from the registry" test -z "$(reg_tags r app | grep -x s1)"
check "… ls shows s2 without s1" test "$(lsw "$M/app")" = "alias gone r1 r2 ren rmd s2 xmv"
check "… the log says the image stays" grep -q "removing only the tag" "$LOG"
if [ "$ACR" = 1 ]; then
	is "$(acr_reqs r '"DELETE ' | tail -n 1)" "DELETE /acr/v1/app/_tags/s1 202" \
		"ACR: … the tag went through ACR's untag, DELETE /acr/v1/app/_tags/s1"
fi

# rm -d is rmdir. The kernel keeps listings (no-opendir mode), but never a tag
# directory's: rm -d must see it empty right after it was listed in full.
d9=$(reg_digest r app rmd)
is "$(lsw "$M/app/rmd")" "config.json layers manifest.json referrers rootfs" "app/rmd lists its image"
is "$(lsw "$M/app/rmd")" "config.json layers manifest.json referrers rootfs" "… again (not from a kept listing)"
check "rm -d app/rmd is rmdir" rm -d "$M/app/rmd"
is "$(head_status r app "$d9")" 404 "… its image is gone"
is "$(reg_digest r other keep)" "$d1" "… other:keep is untouched"
is "$(tagsw r app)" "alias gone r1 r2 ren s2 xmv" "… the registry lists the rest"

# 3. Rename within a repository keeps the manifest digest byte-exact.
d3=$(reg_digest r app ren)
check "stat app/renamed fails first (a negative entry now cached for 600 s)" \
	test ! -e "$M/app/renamed"
check "mv app/ren app/renamed" mv "$M/app/ren" "$M/app/renamed"
is "$(reg_digest r app renamed)" "$d3" "… renamed has the source's digest"
check "… ren is gone" test -z "$(reg_tags r app | grep -x ren)"
is "$(lsw "$M/app")" "alias gone r1 r2 renamed s2 xmv" "… ls shows it at once"
check "… stat app/renamed works despite the negative entry" test -d "$M/app/renamed"
is "$(head_status r app "$d3")" 200 "… the image is still there"

# 4. Move across repositories: blobs mounted, digest byte-exact, skopeo reads it.
d8=$(reg_digest r app xmv)
check "mv app/xmv other/moved" mv "$M/app/xmv" "$M/other/moved"
is "$(reg_digest r other moved)" "$d8" "… other:moved has the source's digest"
check "… app:xmv is gone" test -z "$(reg_tags r app | grep -x xmv)"
is "$(head_status r app "$d8")" 404 "… and its image left app (no other tag used it)"
check "… the blobs were mounted cross-repository (201)" \
	grep -qE '"POST /v2/other/blobs/uploads/\?mount=sha256[^ ]*&from=app HTTP/1.1" 201' \
	<(reg_requests r 'mount=')
check "… skopeo inspect reads other:moved" \
	skopeo inspect --tls-verify=false "docker://$REG_r_HOST/other:moved"
is "$(lsw "$M/other")" "keep moved" "… ls other shows it at once"

# 5. Rename onto an existing tag replaces it (rename(2) semantics); the replaced image
#    goes when no other tag uses it. RENAME_NOREPLACE refuses.
d4=$(reg_digest r app r1) d5=$(reg_digest r app r2)
is "$(rename_noreplace "$M/app/r1" "$M/app/r2")" EEXIST "renameat2 NOREPLACE onto r2 → EEXIST"
is "$(reg_digest r app r2)" "$d5" "… r2 unchanged"
check "mv -T app/r1 app/r2 replaces r2" mv -T "$M/app/r1" "$M/app/r2"
is "$(reg_digest r app r2)" "$d4" "… r2 now has r1's digest"
check "… r1 is gone" test -z "$(reg_tags r app | grep -x r1)"
is "$(head_status r app "$d5")" 404 "… r2's previous image (no other tag) was deleted"
is "$(lsw "$M/app")" "alias gone r2 renamed s2" "… ls shows it at once"

# 6. The tag vanished meanwhile: ENOENT, and the listing catches up.
d6=$(reg_digest r app gone)
reg_curl r -X DELETE -o /dev/null "/v2/app/manifests/$d6"
check "fixture: deleted behind acrfs's back" test -z "$(reg_tags r app | grep -x gone)"
check "… acrfs still lists it (ttl=600)" grep -qw gone <<<"$(lsw "$M/app")"
out=$(errof rmdir "$M/app/gone")
check "rmdir of a vanished tag → ENOENT: $out" grep -q "No such file or directory" <<<"$out"
is "$(lsw "$M/app")" "alias r2 renamed s2" "… and ls shows the truth at once"
# The failed rmdir left the kernel's positive entry for "gone" (valid 600 s) in place;
# only acrfs's notifier (fs/ll_inval.c) can drop it.
sleep 0.3 # the notifier runs after the reply
check "… stat app/gone fails at once (the kernel entry was invalidated)" test ! -e "$M/app/gone"

# 7. A tag reached as ":N" is gone under that name too.
check "stat app/:alias (a positive entry cached for 600 s)" test -d "$M/app/:alias"
check "rmdir app/alias" rmdir "$M/app/alias"
check "… stat app/:alias fails now" test ! -e "$M/app/:alias"

# 8. Repositories: not empty → ENOTEMPTY; empty on distribution → EPERM with a log line.
out=$(errof rmdir "$M/app")
check "rmdir app (tags left) → ENOTEMPTY: $out" grep -q "Directory not empty" <<<"$out"
is "$(tagsw r app)" "r2 renamed s2" "… app keeps its tags"
check "rmdir empty/only" rmdir "$M/empty/only"
if [ "$ACR" = 1 ]; then
	check "rmdir of a repository with no tags, on ACR: deleted" rmdir "$M/empty"
	is "$(acr_reqs r '"DELETE ' | tail -n 1)" "DELETE /acr/v1/empty 202" \
		"… through DELETE /acr/v1/empty"
	check "… ls shows it gone" test -z "$(lsw "$M" | grep -w empty)"
	check "… and the registry's catalog too" test -z "$(reg_catalog r | grep -x empty)"
else
	out=$(errof rmdir "$M/empty")
	check "rmdir of a repository with no tags, on distribution → EPERM: $out" \
		grep -q "Operation not permitted" <<<"$out"
	check "… with a log line saying why" grep -q "no API for it" "$LOG"
fi

# 9. Things that are not tags.
out=$(errof mv "$M/app" "$M/app2")
check "renaming a repository → EPERM: $out" grep -q "Operation not permitted" <<<"$out"
out=$(errof mv "$M/app/s2" "$M/app/bad:name")
check "an invalid tag name is refused (EPERM): $out" grep -q "Operation not permitted" <<<"$out"
is "$(reg_digest r app s2)" "$d2" "… s2 untouched"
out=$(errof mv "$M/app/s2" "$M/app/r2")
check "mv A B onto an existing tag without -T (= into B/A) → EPERM: $out" \
	grep -q "Operation not permitted" <<<"$out"
is "$(tagsw r app)" "r2 renamed s2" "… nothing changed"
if [ "$ACR" = 1 ]; then
	# ACR deletes manifests only by digest (405 otherwise): acrfs never tries a tag.
	is "$(acr_reqs r '"DELETE /v2/[^ ]*/manifests/' | grep -vc ' /v2/[^ ]*/manifests/sha256:')" 0 \
		"ACR: acrfs sent no DELETE /v2/<r>/manifests/<tag> (all by digest)"
	is "$(acr_reqs r '"DELETE /acr/v1/' | grep -c ' 202$')" \
		"$(acr_reqs r '"DELETE /acr/v1/' | wc -l)" "ACR: … and every /acr/v1 DELETE was accepted (202)"
fi
mnt_stop a

# 10. Read-only mount: EROFS, nothing changes.
mnt_start ro "$R" -o ro,ttl=600 || fail "mount -o ro"
out=$(errof rmdir "$MNT_ro/app/s2")
check "-o ro: rmdir → EROFS: $out" grep -q "Read-only file system" <<<"$out"
out=$(errof mv "$MNT_ro/app/s2" "$MNT_ro/app/s9")
check "-o ro: mv → EROFS: $out" grep -q "Read-only file system" <<<"$out"
is "$(tagsw r app)" "r2 renamed s2" "-o ro: the registry is unchanged"
mnt_stop ro

# 11. Fallback: the registry will not mount blobs (202) → they are copied.
proxy_start nomount "$R" --rule 'mount=:202' || fail "proxy"
mnt_start_fg nm "$PROXY_nomount_URL" -o ttl=600 || fail "mount through proxy"
d3=$(reg_digest r app renamed)
check "mv app/renamed fresh/copied through a registry that refuses mounts" \
	mv "$MNT_nm/app/renamed" "$MNT_nm/other/copied"
is "$(reg_digest r other copied)" "$d3" "… other:copied has the source's digest"
check "… the proxy refused a mount" grep -q 'mount=.* -> 202' "$PROXY_nomount_LOG"
check "… acrfs said it copies" grep -q "could not be mounted" "$TEST_TMP/mnt-nm.log"
check "… skopeo copies other:copied completely (every blob is there)" \
	skopeo copy --src-tls-verify=false "docker://$REG_r_HOST/other:copied" \
	"oci:$TEST_TMP/copied:x"
mnt_stop nm

# 12. Nothing half-done: the copy succeeds, removing the source fails (the proxy lets the
#     pre-flight DELETE probe through, then refuses DELETEs in pf) → both tags stay, the
#     move fails with the error and says so; the new tag is visible at once, although the
#     kernel had a negative entry for it and the failed rename changed nothing in the VFS
#     (only acrfs's notifier, fs/ll_inval.c, drops that entry).
img_push "$TEST_TMP/oci:i4" "$R/pf:src" >/dev/null || fail "push pf:src"
proxy_start half "$R" --rule 'DELETE ^/v2/pf/manifests/:pass:1' \
	--rule 'DELETE ^/v2/pf/manifests/:405' || fail "proxy"
mnt_start_fg half "$PROXY_half_URL" -o ttl=600 || fail "mount through proxy"
dpf=$(reg_digest r pf src)
check "stat other/pfdst fails first (a negative entry now cached for 600 s)" \
	test ! -e "$MNT_half/other/pfdst"
out=$(errof mv "$MNT_half/pf/src" "$MNT_half/other/pfdst")
check "a move whose source cannot be removed fails: $out" \
	grep -q "Operation not permitted" <<<"$out"
is "$(reg_digest r pf src) $(reg_digest r other pfdst)" "$dpf $dpf" \
	"… both tags exist, with the source's digest"
check "… the log says so" grep -q "both tags exist now" "$TEST_TMP/mnt-half.log"
sleep 0.3 # the notifier runs after the reply
check "… stat other/pfdst works at once (the negative kernel entry was invalidated)" \
	test -d "$MNT_half/other/pfdst"
check "… ls pf still shows src" grep -qw src <<<"$(lsw "$MNT_half/pf")"
mnt_stop half

# ---------------------------------------------------------------- deletes disabled
if [ "$ACR" = 1 ]; then
	# ACR cannot disable deletes registry-wide; a delete lock on every image can.
	reg_start nd || exit 1
else
	reg_start nd --no-delete || exit 1
fi
for p in nd:a=1 nd:b=2 nd:c=2; do
	img_push "$TEST_TMP/oci:i${p#*=}" "$REG_nd_URL/${p%=*}" >/dev/null || fail "push $p"
done
if [ "$ACR" = 1 ]; then
	acremu_control nd '{"attrs": [{"repo": "nd", "tag": "a", "deleteEnabled": false},
		{"repo": "nd", "tag": "b", "deleteEnabled": false},
		{"repo": "nd", "tag": "c", "deleteEnabled": false}]}' >/dev/null ||
		fail "lock nd:a, nd:b, nd:c (deleteEnabled=false)"
fi
mnt_start_fg nd "$REG_nd_URL" -o ttl=600 || fail "mount nd"
da=$(reg_digest nd nd a) db=$(reg_digest nd nd b)
out=$(errof rmdir "$MNT_nd/nd/a")
check "deletes disabled: rmdir of a unique tag → EPERM: $out" \
	grep -q "Operation not permitted" <<<"$out"
out=$(errof rmdir "$MNT_nd/nd/b")
check "deletes disabled: rmdir of a shared tag → EPERM: $out" \
	grep -q "Operation not permitted" <<<"$out"
out=$(errof mv "$MNT_nd/nd/b" "$MNT_nd/nd/z")
check "deletes disabled: mv → EPERM: $out" grep -q "Operation not permitted" <<<"$out"
is "$(tagsw nd nd)" "a b c" "… nothing changed: every tag is there, no z"
is "$(reg_digest nd nd a) $(reg_digest nd nd b) $(reg_digest nd nd c)" "$da $db $db" \
	"… with the same digests"
is "$(lsw "$MNT_nd/nd")" "a b c" "… and ls agrees"
# rm -d sees the tag directory empty and asks for rmdir, which is refused; the listing rm
# saw must not stay: the next ls shows the image.
is "$(lsw "$MNT_nd/nd/a")" "config.json layers manifest.json referrers rootfs" "nd/a lists its image"
out=$(errof rm -d "$MNT_nd/nd/a")
check "deletes disabled: rm -d → EPERM (rm saw it empty and asked): $out" \
	grep -q "Operation not permitted" <<<"$out"
is "$(lsw "$MNT_nd/nd/a")" "config.json layers manifest.json referrers rootfs" \
	"… and the next ls shows the image, not the empty listing rm saw"
if [ "$ACR" = 1 ]; then
	is "$(acr_reqs nd '"(DELETE|PUT|POST|PATCH) ')" "" \
		"ACR: the locks were seen in /acr/v1 first: no request that could change anything"
fi
mnt_stop nd

# ---------------------------------------------------------------- token auth identities
cat >"$TEST_TMP/ids.json" <<EOF
{"identities": [
  {"username": "admin", "password": "adminpw", "catalog": true,
   "repositories": [{"pattern": "*", "actions": ["pull", "push", "delete"]}]},
  {"username": "pusher", "password": "pusherpw", "catalog": true,
   "repositories": [{"pattern": "*", "actions": ["pull", "push"]}]},
  {"username": "reader", "password": "readerpw", "catalog": true,
   "repositories": [{"pattern": "*", "actions": ["pull"]}]}
 ]}
EOF
export HOME=$TEST_TMP/home
mkdir -p "$HOME"
unset DOCKER_CONFIG REGISTRY_AUTH_FILE ACRFS_PASSWORD
if [ "$ACR" = 1 ]; then
	# ACR's token service is the registry's own; the emulator's default identities are
	# these three (with ACR's metadata_read for pusher and reader, metadata_write and
	# delete for admin).
	reg_start tok || exit 1
	TS_a_REALM=$ACR_tok_REALM TS_a_SERVICE=$ACR_tok_SERVICE TS_a_LOG=$ACR_tok_TSLOG
else
	ts_start a "$TEST_TMP/ids.json" || exit 1
	reg_start tok --token "$TS_a_REALM" "$TS_a_ISSUER" "$TS_a_SERVICE" "$TS_a_ROOT" || exit 1
fi
for p in t:u=1 t:v=2 t:w=2; do
	IMG_CREDS=admin:adminpw img_push "$TEST_TMP/oci:i${p#*=}" "$REG_tok_URL/${p%=*}" \
		>/dev/null || fail "push $p"
done
tokcurl() { reg_curl tok -u admin:adminpw "$@"; }
ttags() {
	local t
	t=$(curl -sS -u admin:adminpw "$TS_a_REALM?service=$TS_a_SERVICE&scope=repository:t:pull" |
		$PY -c 'import json,sys; d = json.load(sys.stdin); print(d.get("token") or d["access_token"])')
	reg_tags tok t -H "Authorization: Bearer $t" | sort | tr '\n' ' ' | sed 's/ $//'
}
is "$(ttags)" "u v w" "token registry: fixture"
for who in reader pusher; do
	ACRFS_PASSWORD=${who}pw mnt_start_fg "$who" "$REG_tok_URL" -o "username=$who,ttl=600" ||
		fail "mount as $who"
	v="MNT_$who"
	out=$(errof rmdir "${!v}/t/u")
	check "$who: rmdir of a unique tag → EACCES: $out" grep -q "Permission denied" <<<"$out"
	out=$(errof rmdir "${!v}/t/v")
	check "$who: rmdir of a shared tag → EACCES: $out" grep -q "Permission denied" <<<"$out"
	out=$(errof mv "${!v}/t/v" "${!v}/t/x")
	check "$who: mv → EACCES: $out" grep -q "Permission denied" <<<"$out"
	is "$(ttags)" "u v w" "$who: nothing changed"
	mnt_stop "$who"
done
ACRFS_PASSWORD=adminpw mnt_start_fg admin "$REG_tok_URL" -o "username=admin,ttl=600" ||
	fail "mount as admin"
check "admin (pull,push,delete): mv t/v t/x" mv "$MNT_admin/t/v" "$MNT_admin/t/x"
check "admin: rmdir t/u" rmdir "$MNT_admin/t/u"
is "$(ttags)" "w x" "admin: the registry shows both changes"
is "$(lsw "$MNT_admin/t")" "w x" "admin: ls shows them at once"
check "admin: the token service was asked for delete and push scopes" \
	grep -qE 'access=[^ ]*repository:t:[^ ]*delete' "$TS_a_LOG"
mnt_stop admin

tap_done
