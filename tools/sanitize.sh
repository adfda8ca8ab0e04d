#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the doctest suite under ASan+UBSan (build-asan) and its threaded tests under TSan (build-tsan).
#   tools/sanitize.sh [asan|tsan|all]   (default all)
# Each build dir is configured once with clang; only the test executable and the helper programs
# it runs are built (not the single-header copy of the suite, not the examples). Exits non-zero
# when a test fails or a sanitizer reports anything. No suppressions.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-all}
case "$MODE" in asan|tsan|all) ;; *) echo "usage: tools/sanitize.sh [asan|tsan|all]" >&2; exit 2 ;; esac

# The threaded tests: many runs from many threads (locally and on one ssh session pool),
# run_async, cancel from another thread, sandboxes started on threads that end, the spawner
# thread's stop and reap.
TSAN_CASES='*concurrency*,*cancellation*,CancelToken,PosixSpawnTransport stopping and reaping,OpenSshProcessTransport against a real sshd'

# Configures $1 with the given meson options (once), builds the suite and the helper programs.
build() {
    local dir=$1
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        CXX=${CXX:-clang++} meson setup "$dir" -Dexamples=false -Db_lundef=false "$@" >/dev/null
    fi
    # Every executable under tests/ but the single-header copy of the suite and the fuzzers.
    local targets
    mapfile -t targets < <(meson introspect --targets "$dir" | python3 -c '
import json, os, sys
root = os.path.realpath(sys.argv[1])
for t in json.load(sys.stdin):
    if t["type"] != "executable" or t["name"] in ("shannot_tests_single", "noexcept_test"):
        continue
    for f in t["filename"]:
        rel = os.path.relpath(f, root)
        if rel.startswith("tests/") and not rel.startswith("tests/fuzz/"):
            print(rel)' "$dir")
    ninja -C "$dir" "${targets[@]}"
}

# Runs the suite binary of $1 with doctest arguments; fails on a failed test or any sanitizer
# report in its output (a report from a helper process does not always change an exit code).
run_suite() {
    local dir=$1 log=$1/sanitize.log rc=0
    shift
    SHANNOT_SOURCE_ROOT=$ROOT SHANNOT_BUILD_ROOT=$ROOT/$dir "$dir/tests/shannot_tests" "$@" </dev/null 2>&1 | tee "$log" || rc=$?
    if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|WARNING: ThreadSanitizer|SUMMARY: [A-Za-z]+Sanitizer' "$log"; then
        echo "sanitize.sh: sanitizer report in $log" >&2
        [ "$rc" -ne 0 ] || rc=1
    fi
    return "$rc"
}

status=0
if [ "$MODE" != tsan ]; then
    start=$SECONDS
    build build-asan -Db_sanitize=address,undefined
    built=$SECONDS
    # detect_leaks: LSan at exit; strict_string_checks/check_initialization_order: more ASan checks.
    ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        run_suite build-asan || status=1
    echo "sanitize.sh: ASan+UBSan build $((built - start)) s, run $((SECONDS - built)) s"
fi
if [ "$MODE" != asan ]; then
    start=$SECONDS
    build build-tsan -Db_sanitize=thread
    built=$SECONDS
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 run_suite build-tsan "-tc=$TSAN_CASES" || status=1
    echo "sanitize.sh: TSan build $((built - start)) s, run $((SECONDS - built)) s"
fi
exit $status
