#!/usr/bin/env bash
# test-weight: 4 (tests/run.sh starts heavier scripts first)
# Issue 10: 10-namespace.sh (listing: repositories over catalog pages, a big tag list,
# nesting, the clash rule, ENOENT, the dirent cache and its TTL) against the ACR
# emulator. ACRFS_TEST_ACR=1 (tests/lib/registry.sh) puts tests/lib/acremu.py in front
# of the script's registry; seed.py pushes and acrfs mounts as its admin, so acrfs takes
# its ACR paths (tags from /acr/v1/<r>/_tags, 100 a page on /v2). The oracles
# (nsoracle.py, reg_tags) follow ACR's Link pages. The expectations are 10-namespace's.
# Release pass only: the emulator adds little to the ASan pass that 85-acr (the ACR
# code in both builds) does not, and make check's time counts.
if [ "${ACRFS_SAN:-0}" = 1 ]; then
	. "$TESTS_LIB/tap.sh"
	skip "10-namespace.sh against the ACR emulator" "release pass only (make check's time)"
	tap_done
	exit 0
fi
export ACRFS_TEST_ACR=1
# acrfs asks for 1,000 catalog entries a page and ACR gives _tags 1,000 a page: 1,010
# repositories and 1,100 tags take two pages each, in less time than 1,200 and 2,500.
export ACRFS_NS_REPOS=1010 ACRFS_NS_TAGS=1100
. "${ACRFS_ROOT:-$PWD}/tests/integration/10-namespace.sh"
