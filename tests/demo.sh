#!/usr/bin/env bash
# make demo / make demo-stop: a local registry on loopback with a sample image,
# mounted at ./mnt. Its data lives in ./.demo (ignored by git).
set -euo pipefail
cd "$(dirname -- "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
DEMO=$ROOT/.demo
MNT=$ROOT/mnt
export TEST_TMP=$DEMO TESTS_LIB=$ROOT/tests/lib

stop() {
	if awk -v d="$MNT" '$5 == d { f = 1 } END { exit !f }' /proc/self/mountinfo; then
		fusermount3 -u "$MNT" && echo "unmounted $MNT"
	fi
	if [ -f "$DEMO/demo/pid" ]; then
		pid=$(cat "$DEMO/demo/pid")
		if kill -0 "$pid" 2>/dev/null && grep -q docker-registry "/proc/$pid/cmdline" 2>/dev/null; then
			kill "$pid" && echo "stopped the demo registry (pid $pid)"
		fi
		rm -f "$DEMO/demo/pid"
	fi
}

start() {
	stop >/dev/null 2>&1 || true
	mkdir -p "$DEMO" "$MNT"
	# shellcheck source=tests/lib/registry.sh
	. "$TESTS_LIB/registry.sh"
	# shellcheck source=tests/lib/images.sh
	. "$TESTS_LIB/images.sh"
	reg_start demo >/dev/null
	# reg_start's registry outlives this script: it is stopped by 'make demo-stop'.
	url=$REG_demo_URL
	echo "registry: $url (data in .demo/demo/data)"
	img_build_simple "$DEMO/oci" v1 \
		"app/users.json=[{\"name\":\"ssong\"},{\"name\":\"man\"}]" \
		"app/README.txt=userlist demo image, built by make demo" \
		"etc/os-release=NAME=acrfs-demo" "bin/" >/dev/null
	img_push "$DEMO/oci:v1" "$url/ssongman/userlist:v1" >/dev/null
	img_add_layer "$DEMO/oci" v1 "app/users.json=[{\"name\":\"ssong\"}]" "!app/README.txt" >/dev/null
	img_push "$DEMO/oci:v1" "$url/ssongman/userlist:v2" >/dev/null
	img_push "$DEMO/oci:v1" "$url/ssongman/userlist:latest" >/dev/null
	img_push "$DEMO/oci:v1" "$url/tools/nested/probe:1.0" >/dev/null
	"$ROOT/acrfs" -o ttl=30 "$url" "$MNT"
	cat <<EOT
mounted $url at ./mnt — try:
    ls mnt                                        # repositories (az acr repository list)
    ls mnt/ssongman/userlist                      # tags (az acr repository show-tags)
    ls mnt/ssongman/userlist/v2                   # config.json layers manifest.json referrers rootfs
    cat mnt/ssongman/userlist/v2/rootfs/app/users.json
    ls -a mnt/ssongman/userlist/v2/layers/1/app   # the whiteout, as stored in the layer
    sha256sum mnt/ssongman/userlist/v2/manifest.json   # = the image digest
    find mnt                                      # everything, images included
    getfattr -d mnt/ssongman/userlist/v2          # digest and media type (az acr repository show)
    rmdir mnt/ssongman/userlist/latest            # deletes the tag; v2 keeps the image
    cat mnt/.acrfs/status                         # what the mount is doing (JSON)
    watch cat mnt/.acrfs/loads                    # progress of layer loads (in another terminal)
    cat mnt/.acrfs/errors                         # the last failures, with their cause
then: make demo-stop   (to install: make install; then man acrfs)
EOT
}

case ${1:-start} in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
