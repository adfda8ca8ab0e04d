#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds the libFuzzer targets (tests/fuzz) with clang in build-fuzz and runs each for N seconds.
#   tools/fuzz.sh [-j JOBS] [--results FILE] [--build-only] [SECONDS_PER_TARGET [TARGET...]]
#     SECONDS_PER_TARGET  default 20; TARGETs default all six
#     -j JOBS             run JOBS targets at a time (default 1; each fuzzer uses one core)
#     --results FILE      append one JSON line per target ({"name", "result", "executions"}),
#                         the form tools/test_summary.py reads
#     --build-only        configure and build, run nothing
# Prints the executions per target (libFuzzer's stat::number_of_executed_units) and exits
# non-zero on any finding: crash, sanitizer report, broken invariant, timeout or OOM; a finding
# prints the end of that target's log. New corpus entries and crash inputs go under build-fuzz/
# (never into the checked-in seed corpus).
set -euo pipefail
cd "$(dirname "$0")/.."

JOBS=1
RESULTS=
BUILD_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
    -j) JOBS=$2; shift 2 ;;
    --results) RESULTS=$2; shift 2 ;;
    --build-only) BUILD_ONLY=1; shift ;;
    -*) echo "usage: tools/fuzz.sh [-j JOBS] [--results FILE] [--build-only] [SECONDS [TARGET...]]" >&2; exit 2 ;;
    *) break ;;
    esac
done
SECONDS_PER_TARGET=${1:-20}
[ $# -gt 0 ] && shift
BUILD=${SHANNOT_FUZZ_BUILD_DIR:-build-fuzz}
ALL_TARGETS=(profile_loader allowlist shell_quote frame_filter ssh_options seccomp)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL_TARGETS[@]}"); fi

if [ ! -f "$BUILD/build.ninja" ]; then
    CXX=${CXX:-clang++} meson setup "$BUILD" -Dfuzz=true -Dtests=false -Dexamples=false >/dev/null
fi
binaries=()
for t in "${TARGETS[@]}"; do binaries+=("tests/fuzz/${t}_fuzz"); done
ninja -C "$BUILD" "${binaries[@]}"
[ "$BUILD_ONLY" -eq 1 ] && exit 0

# Runs target $1; its outcome goes to $BUILD/fuzz-logs/$1.result: "ok EXECS" or "FAILED RC EXECS".
fuzz_one() {
    local t=$1 rc=0 execs
    local work="$BUILD/fuzz-corpus/$t" artifacts="$BUILD/fuzz-artifacts/$t" log="$BUILD/fuzz-logs/$t.log"
    mkdir -p "$work" "$artifacts" "$(dirname "$log")"
    local args=(-max_total_time="$SECONDS_PER_TARGET" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048
                -artifact_prefix="$artifacts/")
    [ -f "tests/fuzz/$t.dict" ] && args+=(-dict="tests/fuzz/$t.dict")
    # The first corpus dir receives new inputs: the build dir's, seeded from the checked-in one.
    ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
        "$BUILD/tests/fuzz/${t}_fuzz" "${args[@]}" "$work" "tests/fuzz/corpus/$t" >"$log" 2>&1 </dev/null || rc=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    if [ "$rc" -eq 0 ]; then
        echo "ok ${execs:-?}" >"$BUILD/fuzz-logs/$t.result"
    else
        echo "FAILED $rc ${execs:-?}" >"$BUILD/fuzz-logs/$t.result"
    fi
}

echo "== ${#TARGETS[@]} targets, ${SECONDS_PER_TARGET}s each, $JOBS at a time"
rm -f "$BUILD"/fuzz-logs/*.result
running=0
for t in "${TARGETS[@]}"; do
    if [ "$running" -ge "$JOBS" ]; then
        wait -n || true
        running=$((running - 1))
    fi
    fuzz_one "$t" &
    running=$((running + 1))
done
wait || true

status=0
summary=()
for t in "${TARGETS[@]}"; do
    log="$BUILD/fuzz-logs/$t.log"
    read -r outcome rc execs <<<"$(cat "$BUILD/fuzz-logs/$t.result" 2>/dev/null || echo "FAILED ? ?")"
    if [ "$outcome" = ok ]; then
        execs=$rc
        summary+=("$t: ok, $execs executions")
        result=OK
    else
        status=1
        result=FAIL
        summary+=("$t: FAILED (exit $rc) after $execs executions; log: $log")
        echo "== FINDING in $t (exit $rc); last 60 lines of $log:"
        tail -n 60 "$log" 2>/dev/null | sed 's/^/   | /' || true
    fi
    if [ -n "$RESULTS" ]; then
        python3 -c 'import json, sys; print(json.dumps({"name": sys.argv[1], "result": sys.argv[2], "executions": sys.argv[3]}))' \
            "fuzz $t (${SECONDS_PER_TARGET} s, libFuzzer+ASan+UBSan)" "$result" "$execs" >>"$RESULTS"
    fi
done
echo "== summary (${SECONDS_PER_TARGET}s per target)"
printf 'fuzz.sh: %s\n' "${summary[@]}"
exit $status
