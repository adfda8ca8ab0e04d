#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The two commands the README opens with, on a fresh Debian 12 machine:
#   tools/dev.sh run [CMD...]   install what is missing (as root), build the tool alone, run CMD
#                               (default: ls /) in the sandbox with the built-in default profile
#   tools/dev.sh test           install what is missing (as root), build, run the whole suite;
#                               the last line is "N passed, M failed"
# `test` runs, in order, each step with a time limit, a later step running even when an earlier
# one failed:
#   1. g++ build (build/, -Og) and `meson test`: every meson test is one entry of the summary; the
#      doctest suite here is built against include/
#   2. the doctest suite built against single_include/, under ASan+UBSan, clang (tools/sanitize.sh
#      asan; build-asan/)
#   3. the threaded test cases under TSan, clang, without ASLR, built from the test files that hold
#      them (tools/sanitize.sh tsan; build-tsan/)
#   4. the libFuzzer targets: build, then each for $SHANNOT_FUZZ_SECONDS (default 15) s, two at
#      a time (tools/fuzz.sh; build-fuzz/): each target is one entry. When the budget left is
#      short of that, each runs for what is left (said in the output), rather than being cut.
# Steps 2-4 and a failed build are entries too. Each step's output goes to build-steps/*.log; a
# failed step's last 60 lines are printed at the end, before the step timings and the summary.
# The whole run has a budget of $SHANNOT_TEST_BUDGET s (default 2460, CI's 45 minutes less a
# margin): a step that would end past it is cut, and fails.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(bubblewrap openssh-server openssh-client meson ninja-build cmake nlohmann-json3-dev
          libexpected-dev doctest-dev pkg-config)
# `test` only: clang 14 and its sanitizer and libFuzzer runtimes (libclang-rt-14-dev, which
# Debian 12's clang only recommends: apt without recommends leaves it out); shellcheck and dash
# for the lint tests of the shell programs (include/shannot/detail/scripts); groff (the installed
# man page is checked with `groff -man -ww`; minimal images lack it).
TEST_PACKAGES=(clang libclang-rt-14-dev clang-format shellcheck dash groff-base)
# `test` only: node and npm for the MCP client tests (tests/mcp), from Debian when this machine
# has none (a node installed otherwise, e.g. from nodesource, is used as it is).
command -v node >/dev/null 2>&1 || TEST_PACKAGES+=(nodejs)
command -v npm >/dev/null 2>&1 || TEST_PACKAGES+=(npm)
BUILD=${SHANNOT_BUILD_DIR:-build}
STEPS=build-steps

install_missing() {
    local missing=() p
    for p in "${PACKAGES[@]}" "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "dev.sh: missing Debian packages. Run this first, then again:" >&2
        echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
        exit 2
    fi
    echo "dev.sh: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null
    apt-get install -y -qq "${missing[@]}" </dev/null >/dev/null
}

# build/ is compiled with g++ -Og -g: a third of -O2 -g's compile time here (var-tracking of
# doctest's long test functions is most of -O2's), with the flow-based warnings -Og keeps. The
# suite is built against include/ only (tools/sanitize.sh runs it against single_include/), and
# the benchmarks not at all (tools/bench.sh builds them, in release).
# `run` needs the tool only: a first `run` configures without the test suite (whose configure
# step alone takes several seconds: one generated file per header, doctest found through cmake)
# and builds one target; `test` turns the suite on in the same build/ and builds everything, so
# the tool built by `run` is reused.
configure() {
    local tests=$1
    if [ ! -f "$BUILD/build.ninja" ]; then
        meson setup "$BUILD" -Doptimization=g -Dsuite_header=include -Dbenchmarks=false -Dtests="$tests" >/dev/null
    elif [ "$tests" = true ] && ! tests_enabled; then
        meson configure "$BUILD" -Dtests=true >/dev/null
    fi
    if [ "$tests" = true ]; then
        ninja -C "$BUILD"
    else
        ninja -C "$BUILD" examples/cli/shannot
    fi
}

# Whether $BUILD was configured with the test suite (meson's `tests` option).
tests_enabled() {
    python3 -c 'import json, sys
opts = json.load(open(sys.argv[1]))
sys.exit(0 if any(o["name"] == "tests" and o["value"] for o in opts) else 1)' "$BUILD/meson-info/intro-buildoptions.json"
}

load() { cut -d' ' -f1 /proc/loadavg; }

# The official MCP clients the tests of `shannot mcp` drive (tests/mcp/package-lock.json), with
# `npm ci`: once, and again only when the lock file changed. Without them those tests are skipped,
# and fail under CI=true.
install_mcp_clients() {
    local dir=tests/mcp
    local stamp=$dir/node_modules/.shannot-package-lock.json
    if [ -f "$stamp" ] && cmp -s "$dir/package-lock.json" "$stamp"; then return 0; fi
    echo "dev.sh: npm ci in $dir (the MCP clients the tests drive)" >&2
    if (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error </dev/null >&2); then
        cp "$dir/package-lock.json" "$stamp"
    else
        echo "dev.sh: npm ci failed in $dir: the MCP client tests will be skipped (and fail under CI=true)" >&2
    fi
}

# step NAME LIMIT RECORD CMD...: runs CMD with its output in $STEPS/<n>.log, for at most LIMIT s
# (less when the budget is nearly spent). RECORD: "always" adds NAME to the summary as OK or FAIL;
# "failure" only when CMD fails (its entries come from elsewhere); with "failure:N" an exit status
# N is left to those entries too. Sets step_rc.
step() {
    local name=$1 limit=$2 record=$3
    shift 3
    local n=$(( ${#TIMINGS[@]} + 1 )) left=$(( BUDGET - SECONDS - 20 )) start=$SECONDS result=OK note=''
    local log="$STEPS/$n.log"
    [ "$left" -lt "$limit" ] && limit=$left
    echo "== step $n: $name (at most ${limit} s; load $(load))"
    step_rc=0
    if [ "$limit" -le 0 ]; then
        echo "not run: the budget of $BUDGET s is spent" >"$log"
        step_rc=125
    else
        timeout -k 20 "$limit" "$@" </dev/null >"$log" 2>&1 || step_rc=$?
    fi
    local took=$((SECONDS - start))
    case "$step_rc" in
    0) ;;
    124|137) note="cut after ${limit} s" ;;
    125) note="not run, budget spent" ;;
    *) note="exit $step_rc" ;;
    esac
    if [ "$step_rc" -ne 0 ]; then
        result=FAIL
        status=1
        FAILED_LOGS+=("$n|$name|$log")
    fi
    if [ "$record" = always ] || { [ "$step_rc" -ne 0 ] && [ "$record" != "failure:$step_rc" ]; }; then
        python3 -c 'import json, sys; print(json.dumps({"name": sys.argv[1], "result": sys.argv[2]}))' \
            "$name${note:+ ($note)}" "$result" >>"$STEPS/results.jsonl"
    fi
    # The scripts' own remarks (timings, TSan patterns that match nothing, executions per target).
    grep -E '^(sanitize|fuzz)\.sh: ' "$log" | sed 's/^/   /' || true
    echo "-- step $n: ${result}${note:+ ($note)}, ${took} s, load $(load)"
    TIMINGS+=("$(printf '%5d s  %-4s  load %-5s  %s' "$took" "$result" "$(load)" "$name${note:+ ($note)}")")
}

run_test_steps() {
    BUDGET=${SHANNOT_TEST_BUDGET:-2460}
    status=0
    TIMINGS=()
    FAILED_LOGS=()
    rm -rf "$STEPS"
    mkdir -p "$STEPS"
    : >"$STEPS/results.jsonl"
    echo "dev.sh test: $(nproc) cores, load $(load), budget ${BUDGET} s (${SECONDS} s spent installing)"

    # 1. The g++ build and meson test; a test that never ran is missing from testlog.json, so
    #    a cut or failed meson test is an entry of its own.
    rm -f "$BUILD/meson-logs/testlog.json"
    export BUILD
    export -f configure tests_enabled
    step "g++ build ($BUILD/)" 900 failure bash -c 'configure true'
    if [ "$step_rc" -eq 0 ]; then
        # meson test exits 1 when a test failed: those are entries of testlog.json already.
        step "meson test ($BUILD/)" 1200 failure:1 \
            meson test -C "$BUILD" --print-errorlogs --timeout-multiplier 3
        tail -n 80 "$STEPS/${#TIMINGS[@]}.log" | sed 's/^/   /'
    fi
    # 2.-3. Sanitizers, each build + run one entry.
    step "ASan+UBSan: doctest suite (build-asan/, clang)" 900 always tools/sanitize.sh asan
    step "TSan: threaded test cases (build-tsan/, clang)" 600 always tools/sanitize.sh tsan
    # 4. Fuzzers: the build is an entry, each target is one (written by fuzz.sh).
    local fuzz_seconds=${SHANNOT_FUZZ_SECONDS:-15}
    step "fuzz: build the libFuzzer targets (build-fuzz/, clang)" 600 always tools/fuzz.sh --build-only
    if [ "$step_rc" -eq 0 ]; then
        # Six targets two at a time take three rounds and ~10 s more. On a slow machine the
        # earlier steps may leave less than that: the fuzzers then run shorter, not cut.
        local left=$((BUDGET - SECONDS - 20))
        if [ $((fuzz_seconds * 3 + 15)) -gt "$left" ]; then
            fuzz_seconds=$(((left - 15) / 3))
            [ "$fuzz_seconds" -ge 1 ] || fuzz_seconds=1
            echo "dev.sh: ${left} s of the budget left: each fuzzer runs ${fuzz_seconds} s"
        fi
        step "fuzz: run each target ${fuzz_seconds} s, two at a time" $((fuzz_seconds * 3 + 120)) failure:1 \
            tools/fuzz.sh -j 2 --results "$STEPS/results.jsonl" "$fuzz_seconds"
    fi

    local f
    for f in "${FAILED_LOGS[@]}"; do
        IFS='|' read -r n name log <<<"$f"
        echo "==== FAILED step $n: $name; last 60 lines of $log:"
        tail -n 60 "$log" | sed 's/^/   | /'
    done
    echo "==== steps (${SECONDS} s in all, $(nproc) cores, load now $(uptime | sed 's/.*average: //'))"
    printf '  %s\n' "${TIMINGS[@]}"
    python3 tools/test_summary.py "$BUILD/meson-logs/testlog.json" "$STEPS/results.jsonl" || status=1
    exit $status
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
run)
    install_missing
    configure false
    [ $# -eq 0 ] && set -- ls /
    exec "$BUILD/examples/cli/shannot" "$@"
    ;;
test)
    install_missing "${TEST_PACKAGES[@]}"
    install_mcp_clients
    run_test_steps
    ;;
*)
    echo "usage: tools/dev.sh run [CMD...] | tools/dev.sh test" >&2
    exit 2
    ;;
esac
