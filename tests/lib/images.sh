# shellcheck shell=bash
# tests/lib/images.sh — build small OCI images from generated files and push them.
# Nothing is downloaded: umoci builds an image layout from scratch, skopeo pushes it.
#
#   img_build_simple OCIDIR TAG [SPEC...]
#       Create (or replace) image OCIDIR:TAG with exactly one layer holding the SPECs
#       (default when none are given: hello.txt, dir/nested.txt, link -> hello.txt).
#       OCIDIR is created as an OCI image layout if it does not exist.
#   img_add_layer OCIDIR TAG SPEC...
#       Add one layer on top of OCIDIR:TAG with the changes SPECs describe; removals
#       ('!PATH') become whiteouts, as umoci repack writes them.
#   img_unpack OCIDIR TAG DEST
#       Oracle: 'umoci unpack --rootless' into DEST (the tree is DEST/rootfs).
#   img_push OCIDIR:TAG DEST [CA|--plain]
#       skopeo copy oci:OCIDIR:TAG docker://HOST/REPO:TAG. DEST is
#       [http://|https://]HOST/REPO:TAG (e.g. "$REG_r_URL/foo/bar:v1"). With CA, the
#       registry's certificate is verified against it; with --plain, or an http:// DEST,
#       or no CA, TLS verification is off (skopeo then also falls back to plain HTTP).
#       Env: IMG_CREDS=user:password → --dest-creds; IMG_FORMAT=oci|v2s2 → --format
#       (default: keep the OCI manifest umoci wrote).
#   img_manifest_digest OCIDIR TAG
#       Print the manifest digest (sha256:...) of OCIDIR:TAG from the layout's index.
#
# SPEC (paths are relative to the image root, no leading '/'):
#   PATH=TEXT        regular file with exactly TEXT (no newline added)
#   PATH=@SRC        copy of host file or directory SRC (cp -a)
#   PATH=#SIZE[:SEED]  SIZE bytes of deterministic pseudo-random data (SIZE accepts
#                    IEC suffixes: 4K, 3M); same SIZE and SEED give the same bytes
#   PATH/            directory
#   PATH->TARGET     symbolic link to TARGET
#   '!PATH'          remove PATH (a whiteout when used with img_add_layer)
# Files get mode 0644, directories 0755, unless a SRC says otherwise.

IMG_UMOCI=${IMG_UMOCI:-umoci}
IMG_SKOPEO=${IMG_SKOPEO:-skopeo}

_img_die() {
	printf 'images.sh: %s\n' "$*" >&2
	return 1
}

# _img_random SIZE SEED → SIZE pseudo-random bytes on stdout.
_img_random() {
	local size=$1 seed=$2 key
	key=$(printf '%s' "$seed" | sha256sum | cut -c1-32)
	head -c "$size" /dev/zero |
		openssl enc -aes-128-ctr -nosalt -K "$key" -iv 00000000000000000000000000000000
}

# _img_apply ROOTFS SPEC...
_img_apply() {
	local root=$1 spec path value size seed
	shift
	for spec in "$@"; do
		# The kind is decided by whichever of '=' and '->' comes first, so text may
		# contain '->' and link targets may contain '='.
		local kind='dir' eq=${spec%%=*} arrow=${spec%%->*}
		if [ "${spec#!}" != "$spec" ]; then
			kind='rm'
		elif [ "$eq" != "$spec" ] && { [ "$arrow" = "$spec" ] || [ ${#eq} -lt ${#arrow} ]; }; then
			kind='file'
		elif [ "$arrow" != "$spec" ]; then
			kind='link'
		elif [ "${spec%/}" = "$spec" ]; then
			_img_die "cannot parse SPEC '$spec'"
			return 1
		fi
		case $kind in
		rm)
			path=${spec#!}
			[ -n "$path" ] || {
				_img_die "empty path in '$spec'"
				return 1
			}
			rm -rf -- "${root:?}/$path" || return 1
			;;
		dir)
			mkdir -p -- "$root/$spec" || return 1
			chmod 0755 -- "$root/$spec"
			;;
		link)
			path=${spec%%->*}
			value=${spec#*->}
			mkdir -p -- "$(dirname -- "$root/$path")" || return 1
			rm -rf -- "${root:?}/$path"
			ln -s -- "$value" "$root/$path" || return 1
			;;
		file)
			path=${spec%%=*}
			value=${spec#*=}
			mkdir -p -- "$(dirname -- "$root/$path")" || return 1
			rm -rf -- "${root:?}/$path"
			case $value in
			@*)
				cp -a -- "${value#@}" "$root/$path" || return 1
				;;
			\#*)
				value=${value#\#}
				size=${value%%:*}
				seed=$path
				[ "$value" = "$size" ] || seed=${value#*:}
				size=$(numfmt --from=iec -- "$size") || {
					_img_die "bad size in '$spec'"
					return 1
				}
				_img_random "$size" "$seed" >"$root/$path" || return 1
				chmod 0644 -- "$root/$path"
				;;
			*)
				printf '%s' "$value" >"$root/$path" || return 1
				chmod 0644 -- "$root/$path"
				;;
			esac
			;;
		esac
	done
}

_img_tag_exists() {
	"$IMG_UMOCI" ls --layout "$1" 2>/dev/null | grep -qxF -- "$2"
}

# _img_layer OCIDIR TAG SPEC... : unpack, apply, repack (one new layer).
_img_layer() {
	local oci=$1 tag=$2 work rc=0
	shift 2
	work=$(mktemp -d "${TEST_TMP:-${TMPDIR:-/tmp}}/img.XXXXXX") || return 1
	if ! "$IMG_UMOCI" unpack --rootless --image "$oci:$tag" "$work/b" >"$work/log" 2>&1; then
		cat -- "$work/log" >&2
		rc=1
	elif ! _img_apply "$work/b/rootfs" "$@"; then
		rc=1
	elif ! "$IMG_UMOCI" repack --image "$oci:$tag" "$work/b" >"$work/log" 2>&1; then
		cat -- "$work/log" >&2
		rc=1
	fi
	rm -rf -- "$work"
	[ "$rc" -eq 0 ] || _img_die "building layer for $oci:$tag failed"
}

img_build_simple() {
	local oci=${1:?OCIDIR} tag=${2:?TAG}
	shift 2
	if [ $# -eq 0 ]; then
		set -- "hello.txt=hello from $tag
" "dir/nested.txt=nested file
" 'link->hello.txt'
	fi
	if [ ! -f "$oci/oci-layout" ]; then
		mkdir -p -- "$(dirname -- "$oci")" || return 1
		"$IMG_UMOCI" init --layout "$oci" || return 1
	fi
	if _img_tag_exists "$oci" "$tag"; then
		"$IMG_UMOCI" rm --image "$oci:$tag" || return 1
	fi
	"$IMG_UMOCI" new --image "$oci:$tag" || return 1
	_img_layer "$oci" "$tag" "$@"
}

img_add_layer() {
	local oci=${1:?OCIDIR} tag=${2:?TAG}
	shift 2
	_img_tag_exists "$oci" "$tag" || {
		_img_die "no image $oci:$tag"
		return 1
	}
	_img_layer "$oci" "$tag" "$@"
}

img_unpack() {
	local oci=${1:?OCIDIR} tag=${2:?TAG} dest=${3:?DEST}
	"$IMG_UMOCI" unpack --rootless --image "$oci:$tag" "$dest" >/dev/null
}

img_manifest_digest() {
	local oci=${1:?OCIDIR} tag=${2:?TAG}
	/usr/bin/python3 - "$oci/index.json" "$tag" <<'EOF'
import json, sys
idx = json.load(open(sys.argv[1]))
for m in idx.get("manifests", []):
    if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == sys.argv[2]:
        print(m["digest"])
        sys.exit(0)
sys.exit("images.sh: no tag %s in %s" % (sys.argv[2], sys.argv[1]))
EOF
}

img_push() {
	local src=${1:?OCIDIR:TAG} dest=${2:?DEST} ca=${3:-} certdir='' rc=0
	local args=(copy --quiet --retry-times 2)
	case $dest in
	http://*)
		dest=${dest#http://}
		args+=(--dest-tls-verify=false)
		;;
	https://* | *)
		dest=${dest#https://}
		if [ -z "$ca" ] || [ "$ca" = --plain ]; then
			args+=(--dest-tls-verify=false)
		else
			# A cert dir of its own: containers/image reads every *.crt as a CA and
			# insists that every *.key has a matching *.cert.
			certdir=$(mktemp -d "${TEST_TMP:-${TMPDIR:-/tmp}}/certs.XXXXXX") || return 1
			cp -- "$ca" "$certdir/ca.crt" || return 1
			args+=(--dest-cert-dir "$certdir")
		fi
		;;
	esac
	# ACRFS_TEST_ACR=1 (registry.sh): the registries are ACR emulators; push as admin.
	local creds=${IMG_CREDS:-}
	[ -n "$creds" ] || [ "${ACRFS_TEST_ACR:-0}" != 1 ] || creds=admin:adminpw
	if [ -n "$creds" ]; then
		args+=(--dest-creds "$creds")
	fi
	if [ -n "${IMG_FORMAT:-}" ]; then
		args+=(--format "$IMG_FORMAT")
	fi
	"$IMG_SKOPEO" "${args[@]}" "oci:$src" "docker://$dest" || rc=$?
	[ -z "$certdir" ] || rm -rf -- "$certdir"
	[ "$rc" -eq 0 ] || _img_die "push $src → $dest failed (skopeo exit $rc)"
}
