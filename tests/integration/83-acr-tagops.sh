#!/usr/bin/env bash
# test-weight: 3 (tests/run.sh starts heavier scripts first)
# Issue 10: 50-tagops.sh (rmdir / rm -d / mv of tags, across repositories, rename onto a
# tag, vanished tags, repositories, -o ro, blobs copied when the registry will not mount
# them, nothing half-done, refused deletes, identities) against the ACR emulator.
# ACRFS_TEST_ACR=1 (tests/lib/registry.sh) puts tests/lib/acremu.py in front of each of
# the script's registries; where ACR's way differs, 50-tagops.sh checks ACR's from the
# emulator's request log (untag through /acr/v1, images by digest, no DELETE by tag,
# repository delete) and says why a setup differs (delete locks for a delete-disabled
# registry, the registry's own token service). Release pass only: 85-acr runs the ACR
# tag operations in both builds, and make check's time counts.
if [ "${ACRFS_SAN:-0}" = 1 ]; then
	. "$TESTS_LIB/tap.sh"
	skip "50-tagops.sh against the ACR emulator" "release pass only (make check's time)"
	tap_done
	exit 0
fi
export ACRFS_TEST_ACR=1
. "${ACRFS_ROOT:-$PWD}/tests/integration/50-tagops.sh"
