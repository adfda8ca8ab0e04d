#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs the doctest suite under ASan+UBSan (build-asan) and its threaded tests under TSan (build-tsan).
#   tools/sanitize.sh [asan|tsan|all]   (default all)
# Each build dir is configured once with clang (CXX overrides). ASan+UBSan runs the suite built
# against the generated single header (shannot_tests_single: the g++ build of tools/dev.sh test
# runs it against include/), TSan the threaded cases (shannot_tests_threaded: only the test files
# that hold them, against include/). Built besides: the helper programs the suite runs and, for
# ASan, the examples (tests/cli_test.cpp and operations_test.cpp run examples/cli/shannot and
# examples/remote; under CI=true a missing one is a failure). Not built: the fuzzers. Exits non-zero when a test fails or a sanitizer reports
# anything. No suppressions.
# Optimization: -O0 under ASan (a third of -O2's compile time with clang 14 here; the sanitizers
# check the same at any level), -O1 under TSan (its documented minimum for usable speed).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=${1:-all}
case "$MODE" in asan|tsan|all) ;; *) echo "usage: tools/sanitize.sh [asan|tsan|all]" >&2; exit 2 ;; esac

# The threaded tests (doctest -tc patterns, comma-separated; the one place this list lives):
# many runs from many threads (locally and on one ssh session pool), run_async, cancel from
# another thread, sandboxes started on threads that end, the spawner thread's stop and reap.
# They must live in the files tests/meson.build builds into shannot_tests_threaded. A pattern that
# matches no test case there (a test renamed, removed or moved to another file) is a failure.
TSAN_CASES='*concurrency*,*cancellation*,spare sandbox*,CancelToken,PosixSpawnTransport stopping and reaping,OpenSshProcessTransport against a real sshd'

# Configures $1 with the given meson options (once), then builds every executable under the
# directories named in $BUILD_UNDER (built by default: not the benchmarks) but the fuzzers, the
# -fno-exceptions check and the portable build of the tool (no sanitizer run uses them).
build() {
    local dir=$1
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        CXX=${CXX:-clang++} meson setup "$dir" -Db_lundef=false "$@" >/dev/null
    fi
    local targets
    mapfile -t targets < <(meson introspect --targets "$dir" | python3 -c '
import json, os, sys
root = os.path.realpath(sys.argv[1])
under = tuple(d + "/" for d in sys.argv[2:])
for t in json.load(sys.stdin):
    if (t["type"] != "executable" or not t["build_by_default"]
            or t["name"] in ("noexcept_test", "shannot-portable")):
        continue
    for f in t["filename"]:
        rel = os.path.relpath(f, root)
        if rel.startswith(under) and not rel.startswith("tests/fuzz/"):
            print(rel)' "$dir" $BUILD_UNDER)
    ninja -C "$dir" "${targets[@]}"
}

# Runs the suite binary $2 (under $1/tests) with doctest arguments; fails on a failed test, on a
# run of no test case, or on any sanitizer report in its output (a report from a helper process
# does not always change an exit code).
run_suite() {
    local dir=$1 exe=$2 log=$1/sanitize.log rc=0
    shift 2
    SHANNOT_SOURCE_ROOT=$ROOT SHANNOT_BUILD_ROOT=$ROOT/$dir $LAUNCHER "$dir/tests/$exe" "$@" </dev/null 2>&1 | tee "$log" || rc=$?
    if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|WARNING: ThreadSanitizer|SUMMARY: [A-Za-z]+Sanitizer|FATAL: ThreadSanitizer|Sanitizer:DEADLYSIGNAL' "$log"; then
        echo "sanitize.sh: sanitizer report in $log:" >&2
        grep -m 5 -E 'ERROR: |runtime error:|WARNING: ThreadSanitizer|SUMMARY: |FATAL: ' "$log" | sed 's/^/sanitize.sh:   /' >&2 || true
        [ "$rc" -ne 0 ] || rc=1
    fi
    if grep -qE '^\[doctest\] test cases: +0 \|' "$log"; then
        echo "sanitize.sh: no test case ran in $dir" >&2
        [ "$rc" -ne 0 ] || rc=1
    fi
    return "$rc"
}

status=0
if [ "$MODE" != tsan ]; then
    start=$SECONDS
    BUILD_UNDER="tests examples" LAUNCHER='' build build-asan -Db_sanitize=address,undefined \
        -Doptimization=0 -Dsuite_header=single_include -Dbenchmarks=false
    built=$SECONDS
    # detect_leaks: LSan at exit; strict_string_checks/check_initialization_order: more ASan checks.
    ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=1 \
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 LAUNCHER='' \
        run_suite build-asan shannot_tests_single || status=1
    echo "sanitize.sh: ASan+UBSan build $((built - start)) s, run $((SECONDS - built)) s"
fi
if [ "$MODE" != asan ]; then
    start=$SECONDS
    BUILD_UNDER="tests" build build-tsan -Db_sanitize=thread -Dexamples=false \
        -Doptimization=1 -Dsuite_header=threaded -Dbenchmarks=false
    built=$SECONDS
    # Name the patterns that select nothing, so the list (or the file list) gets fixed.
    IFS=, read -ra patterns <<<"$TSAN_CASES"
    for p in "${patterns[@]}"; do
        if ! build-tsan/tests/shannot_tests_threaded -ltc "-tc=$p" 2>/dev/null | grep -qE 'passing the current filters: [1-9]'; then
            echo "sanitize.sh: TSan pattern '$p' matches no test case in shannot_tests_threaded" >&2
            status=1
        fi
    done
    # clang 14's TSan aborts ("FATAL: ThreadSanitizer: unexpected memory mapping") on kernels with
    # more mmap ASLR bits than it knows (vm.mmap_rnd_bits > 28 or so): run without ASLR.
    launcher=''
    if command -v setarch >/dev/null && setarch "$(uname -m)" -R true 2>/dev/null; then
        launcher="setarch $(uname -m) -R"
    fi
    TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 LAUNCHER=$launcher \
        run_suite build-tsan shannot_tests_threaded "-tc=$TSAN_CASES" || status=1
    echo "sanitize.sh: TSan build $((built - start)) s, run $((SECONDS - built)) s"
fi
exit $status
