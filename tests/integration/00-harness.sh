#!/usr/bin/env bash
# 00-harness.sh — the test harness tests itself: registries (plain, TLS, htpasswd),
# request counting, image building and pushing, bulk seeding. No acrfs involved.
# shellcheck source-path=SCRIPTDIR disable=SC2154  # REG_<NAME>_* are exported by reg_start
set -u

LIB=${TESTS_LIB:-$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../lib" && pwd)}
# shellcheck source=../lib/tap.sh
. "$LIB/tap.sh"
# shellcheck source=../lib/registry.sh
. "$LIB/registry.sh"
# shellcheck source=../lib/images.sh
. "$LIB/images.sh"
PY=/usr/bin/python3
SEED=$LIB/seed.py

cleanup() {
	reg_stop_all
}
tap_trap_cleanup cleanup

bail() {
	fail "$1"
	tap_done
	exit 1
}

# ---------------------------------------------------------------- registries

reg_start plain || bail "start a plain-HTTP registry"
ok "start a plain-HTTP registry at $REG_plain_URL"
reg_start sec --tls || bail "start a TLS registry"
ok "start a TLS registry at $REG_sec_URL"
printf '%s\n' "$(htpasswd -Bbn alice s3cret)" >"$TEST_TMP/htpasswd"
reg_start auth --htpasswd "$TEST_TMP/htpasswd" || bail "start an htpasswd registry"
ok "start an htpasswd registry at $REG_auth_URL"

is "$(curl -s -o /dev/null -w '%{http_code}' "$REG_plain_URL/v2/")" 200 "plain: GET /v2/ is 200"
check "TLS: server certificate verifies against REG_sec_CA" \
	curl -sSf --cacert "$REG_sec_CA" "$REG_sec_URL/v2/"
check "TLS: certificate is valid for DNS:localhost too" \
	curl -sSf --cacert "$REG_sec_CA" "https://localhost:${REG_sec_HOST#*:}/v2/"
if curl -s -o /dev/null "$REG_sec_URL/v2/" 2>/dev/null; then
	fail "TLS: untrusted without the test CA"
else
	ok "TLS: untrusted without the test CA"
fi
is "$(curl -s -o /dev/null -w '%{http_code}' "$REG_auth_URL/v2/")" 401 \
	"htpasswd: anonymous GET /v2/ is 401"
is "$(curl -s -o /dev/null -w '%{http_code}' -u alice:s3cret "$REG_auth_URL/v2/")" 200 \
	"htpasswd: GET /v2/ with credentials is 200"

# ---------------------------------------------------------------- request counting

is "$(reg_count_requests sec)" 2 "count: TLS registry saw exactly the two requests above"
n0=$(reg_count_requests plain)
curl -s -o /dev/null "$REG_plain_URL/v2/_catalog"
n1=$(reg_count_requests plain)
is "$((n1 - n0))" 1 "count: one curl request counts exactly +1"
curl -s -o /dev/null -I "$REG_plain_URL/v2/nothing/manifests/latest"
curl -s -o /dev/null "$REG_plain_URL/not-an-api-route"
n2=$(reg_count_requests plain)
is "$((n2 - n1))" 2 "count: 404s and unknown routes count too"
is "$(reg_count_requests plain '"GET /v2/_catalog')" 1 "count: ERE filter selects by method and path"
is "$(reg_count_requests plain '"HEAD ')" 1 "count: HEAD requests are counted"
a0=$(reg_count_requests auth ' 401 ')
curl -s -o /dev/null "$REG_auth_URL/v2/_catalog"
is "$(($(reg_count_requests auth ' 401 ') - a0))" 1 "count: 401 challenges are counted"

# ---------------------------------------------------------------- images

OCI=$TEST_TMP/oci
check "img_build_simple with default files" img_build_simple "$OCI" v1
check "img_add_layer: add a 200 KiB file, remove one (whiteout)" \
	img_add_layer "$OCI" v1 'big.bin=#200K' 'sub/dir/' 'sub/text=a -> b = c' '!dir/nested.txt'
check "img_build_simple with explicit specs" img_build_simple "$OCI" v2 'only.txt=only'
check "img_unpack v1" img_unpack "$OCI" v1 "$TEST_TMP/unpacked"
R=$TEST_TMP/unpacked/rootfs
is "$(cat "$R/hello.txt")" "hello from v1" "image: hello.txt content"
is "$(readlink "$R/link")" hello.txt "image: link -> hello.txt"
is "$(stat -c %s "$R/big.bin")" 204800 "image: big.bin is 200 KiB"
is "$(cat "$R/sub/text")" "a -> b = c" "image: text containing '->' and '=' is a file"
check "image: empty directory kept" test -d "$R/sub/dir"
check "image: nested.txt removed by the upper layer" test ! -e "$R/dir/nested.txt"
_img_random 204800 big.bin >"$TEST_TMP/big.expected"
cmp_files "$R/big.bin" "$TEST_TMP/big.expected" "image: #SIZE data is deterministic"
layers=$(umoci stat --image "$OCI:v1" --json |
	"$PY" -c 'import json,sys; print(sum(1 for h in json.load(sys.stdin)["history"] if not h.get("empty_layer")))')
is "$layers" 2 "image: v1 has two layers"
top=$("$PY" - "$OCI" "$(img_manifest_digest "$OCI" v1)" <<'EOF'
import json, sys
d = sys.argv[2].split(":")[1]
m = json.load(open("%s/blobs/sha256/%s" % (sys.argv[1], d)))
print(m["layers"][-1]["digest"].split(":")[1])
EOF
)
check "image: the upper layer holds the whiteout dir/.wh.nested.txt" \
	bash -c "tar -tzf '$OCI/blobs/sha256/$top' | grep -qx 'dir/.wh.nested.txt'"

check "push v1 to the plain registry" img_push "$OCI:v1" "$REG_plain_URL/foo/bar:v1"
check "push v1 to the TLS registry, verified with the CA" \
	img_push "$OCI:v1" "$REG_sec_URL/foo/bar:v1" "$REG_sec_CA"
check "push v2 to the TLS registry with --plain" img_push "$OCI:v2" "$REG_sec_URL/foo/bar:v2" --plain
check "push v1 as docker schema2 (IMG_FORMAT=v2s2)" \
	env IMG_FORMAT=v2s2 bash -c ". '$LIB/images.sh'; img_push '$OCI:v1' '$REG_sec_URL/foo/docker:v1' '$REG_sec_CA'"
if img_push "$OCI:v1" "$REG_auth_URL/foo/bar:v1" >/dev/null 2>&1; then
	fail "push without credentials is refused"
else
	ok "push without credentials is refused"
fi
check "push with IMG_CREDS" \
	env IMG_CREDS=alice:s3cret bash -c ". '$LIB/images.sh'; img_push '$OCI:v1' '$REG_auth_URL/foo/bar:v1'"

want=$(img_manifest_digest "$OCI" v1)
got=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$REG_plain_HOST/foo/bar:v1" 2>&1)
is "$got" "$want" "skopeo inspect: pushed manifest digest equals the layout's"
mkdir -p "$TEST_TMP/certs" && cp "$REG_sec_CA" "$TEST_TMP/certs/ca.crt"
got=$(skopeo inspect --cert-dir "$TEST_TMP/certs" --format '{{.Digest}}' "docker://$REG_sec_HOST/foo/bar:v1" 2>&1)
is "$got" "$want" "skopeo inspect over verified TLS: same digest"
is "$(reg_digest sec foo/bar v1)" "$want" "reg_digest: HEAD Docker-Content-Digest agrees"
mt=$(skopeo inspect --raw --cert-dir "$TEST_TMP/certs" "docker://$REG_sec_HOST/foo/docker:v1" |
	"$PY" -c 'import json,sys; print(json.load(sys.stdin)["mediaType"])')
is "$mt" application/vnd.docker.distribution.manifest.v2+json "v2s2 push has a schema2 manifest"
is "$(reg_catalog sec | tr '\n' ' ')" "foo/bar foo/docker " "curl /v2/_catalog lists the pushed repos"
is "$(reg_tags sec foo/bar | tr '\n' ' ')" "v1 v2 " "curl tags/list lists both tags"
is "$(reg_catalog auth 100 -u alice:s3cret)" "foo/bar" "reg_catalog with credentials"

# ---------------------------------------------------------------- seed.py

if "$SEED" repos "$REG_plain_URL" --count 50 --prefix hs --out "$TEST_TMP/repos.txt" \
	2>"$TEST_TMP/seed.err"; then
	ok "seed.py repos --count 50: $(cat "$TEST_TMP/seed.err")"
else
	fail "seed.py repos --count 50" "$(cat "$TEST_TMP/seed.err")"
fi
is "$(wc -l <"$TEST_TMP/repos.txt")" 50 "seed.py: 50 lines in --out"
check "seed.py: has flat and deeply nested names" \
	grep -qE '^hs-flat0000:v1@sha256:[0-9a-f]{64}$|^hs/deep/nested/repo0002:' "$TEST_TMP/repos.txt"
{
	echo foo/bar
	cut -d: -f1 "$TEST_TMP/repos.txt"
} | LC_ALL=C sort >"$TEST_TMP/catalog.expected"
# distribution 2.8 lists the catalog in storage-walk order ("hs/x" before "hs-flat"),
# not byte order: compare sorted, and compare the paged and one-page orders as they are.
reg_catalog plain 7 >"$TEST_TMP/catalog.n7"
LC_ALL=C sort "$TEST_TMP/catalog.n7" >"$TEST_TMP/catalog.n7.sorted"
cmp_files "$TEST_TMP/catalog.n7.sorted" "$TEST_TMP/catalog.expected" \
	"catalog paged by 7 (Link) = seeded repos, no duplicates"
reg_catalog plain 1000 >"$TEST_TMP/catalog.n1000"
cmp_files "$TEST_TMP/catalog.n1000" "$TEST_TMP/catalog.n7" "catalog in one page = paged, same order"
before=$(reg_count_requests plain '"GET /v2/_catalog')
reg_catalog plain 10 >/dev/null
is "$(($(reg_count_requests plain '"GET /v2/_catalog') - before))" 6 \
	"catalog of 51 repos by 10 takes 6 requests"
is "$(curl -s -o /dev/null -w '%{http_code}' "$REG_plain_URL/v2/_catalog?n=1001")" 400 \
	"catalog.maxentries is the default 1000 (n=1001 → 400)"
digest=$(reg_digest plain hs/team3/svc0003 v1)
is "$digest" "$(sed -n 's/^hs\/team3\/svc0003:v1@//p' "$TEST_TMP/repos.txt")" \
	"seeded manifest digest matches the --out line"
check "seeded image is pullable by skopeo" \
	skopeo inspect --tls-verify=false "docker://$REG_plain_HOST/hs/deep/nested/repo0002:v1"

if "$SEED" tags "$REG_plain_URL" hs/many --count 100 --distinct --out "$TEST_TMP/tags.txt" \
	2>"$TEST_TMP/seed.err"; then
	ok "seed.py tags --count 100 --distinct: $(cat "$TEST_TMP/seed.err")"
else
	fail "seed.py tags --count 100 --distinct" "$(cat "$TEST_TMP/seed.err")"
fi
sed -n 's/^hs\/many:\([^@]*\)@.*/\1/p' "$TEST_TMP/tags.txt" | LC_ALL=C sort >"$TEST_TMP/tags.expected"
# distribution 2.8 returns tags unsorted (directory order).
reg_tags plain hs/many | LC_ALL=C sort >"$TEST_TMP/tags.got"
cmp_files "$TEST_TMP/tags.got" "$TEST_TMP/tags.expected" "tags/list = the 100 seeded tags"
is "$(cut -d@ -f2 "$TEST_TMP/tags.txt" | sort -u | wc -l)" 100 "--distinct: 100 different manifests"
is "$(reg_digest plain hs/many t00042)" "$(sed -n 's/^hs\/many:t00042@//p' "$TEST_TMP/tags.txt")" \
	"tag t00042 resolves to its seeded digest"

"$SEED" tags "$REG_plain_URL" hs/same --count 20 --schema docker --out "$TEST_TMP/same.txt" 2>/dev/null
is "$(cut -d@ -f2 "$TEST_TMP/same.txt" | sort -u | wc -l)" 1 "without --distinct: one shared manifest"
is "$(reg_tags plain hs/same | wc -l)" 20 "without --distinct: 20 tags"

check "seed.py over TLS with --ca" \
	"$SEED" repos "$REG_sec_URL" --ca "$REG_sec_CA" --count 5 --prefix tls --out /dev/null
check "seed.py over TLS with --insecure" \
	"$SEED" tags "$REG_sec_URL" tls/tags --insecure --count 3 --out /dev/null
check "seed.py with Basic auth" \
	env SEED_PW=s3cret "$SEED" repos "$REG_auth_URL" --user alice --password-env SEED_PW \
	--count 4 --prefix authd --out /dev/null
if "$SEED" repos "$REG_auth_URL" --count 1 --out /dev/null 2>/dev/null; then
	fail "seed.py without credentials fails on an htpasswd registry"
else
	ok "seed.py without credentials fails on an htpasswd registry"
fi

# ---------------------------------------------------------------- stop

pid=$REG_plain_PID
reg_stop plain
if kill -0 "$pid" 2>/dev/null; then
	fail "reg_stop: registry process $pid is gone"
else
	ok "reg_stop: registry process $pid is gone"
fi

tap_done
