#!/usr/bin/env bash
# tests/deps.sh — install the Debian packages acrfs needs to build and test, if missing.
# Idempotent and quiet when everything is present. As non-root with something missing,
# it prints the apt-get command to run and exits 1. Arguments name more packages
# (make fuzz: clang-14 libfuzzer-14-dev).
set -euo pipefail

PACKAGES=(
	build-essential pkg-config libfuse3-dev fuse3 libcurl4-openssl-dev libcjson-dev
	zlib1g-dev libssl-dev libzstd-dev libcmocka-dev docker-registry skopeo umoci openssl
	apache2-utils python3-jwt python3-cryptography zstd curl ca-certificates libisal-dev isal
	attr man-db groff-base
	"$@"
)
# attr: getfattr/setfattr, which the README's examples use; man-db and groff-base:
# `man acrfs` and the man page's rendering test (man -l).

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	case $status in
	*' installed') ;;
	*) missing+=("$pkg") ;;
	esac
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}" >&2
	echo "deps.sh: install them with:" >&2
	echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q "${missing[@]}"
