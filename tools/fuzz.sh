#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets (tests/fuzz) with clang in build-fuzz and runs each for N seconds.
#   tools/fuzz.sh [SECONDS_PER_TARGET]   (default 20)
# Prints the executions per target (libFuzzer's stat::number_of_executed_units) and exits
# non-zero on any finding: crash, sanitizer report, broken invariant, timeout or OOM. New corpus
# entries and crash inputs go under build-fuzz/ (never into the checked-in seed corpus).
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET=${1:-20}
BUILD=${SHANNOT_FUZZ_BUILD_DIR:-build-fuzz}
TARGETS=(profile_loader allowlist shell_quote frame_filter ssh_options)

if [ ! -f "$BUILD/build.ninja" ]; then
    CXX=${CXX:-clang++} meson setup "$BUILD" -Dfuzz=true -Dtests=false -Dexamples=false >/dev/null
fi
binaries=()
for t in "${TARGETS[@]}"; do binaries+=("tests/fuzz/${t}_fuzz"); done
ninja -C "$BUILD" "${binaries[@]}"

status=0
summary=()
for t in "${TARGETS[@]}"; do
    work="$BUILD/fuzz-corpus/$t"
    artifacts="$BUILD/fuzz-artifacts/$t"
    log="$BUILD/fuzz-logs/$t.log"
    mkdir -p "$work" "$artifacts" "$(dirname "$log")"
    args=(-max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
          -artifact_prefix="$artifacts/")
    [ -f "tests/fuzz/$t.dict" ] && args+=(-dict="tests/fuzz/$t.dict")
    echo "== $t: ${SECONDS_PER_TARGET}s"
    rc=0
    # The first corpus dir receives new inputs: the build dir's, seeded from the checked-in one.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
        "$BUILD/tests/fuzz/${t}_fuzz" "${args[@]}" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ "$rc" -ne 0 ]; then
        status=1
        echo "FINDING in $t (exit $rc); log: $log"
        grep -E "ERROR|invariant broken|runtime error|Test unit written|SUMMARY" "$log" | head -20 || true
        summary+=("$t: FAILED (exit $rc) after ${execs:-?} executions")
    else
        summary+=("$t: ok, ${execs:-?} executions")
    fi
done
echo "== summary (${SECONDS_PER_TARGET}s per target)"
printf '  %s\n' "${summary[@]}"
exit $status
