#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Reproduces the benchmark figures of issue 6 (the README's table): configures a release build in
# build-bench (or $SHANNOT_BENCH_DIR), builds the benchmark programs and runs every benchmark()
# target, printing each one's figures, ratio, target and PASS/MISS. Needs bwrap and sshd (the ssh
# benchmarks start a private sshd on 127.0.0.1); a benchmark that cannot run here is SKIPped.
# Extra arguments go to `meson test` (e.g. a benchmark's name to run only that one).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${SHANNOT_BENCH_DIR:-build-bench}

# B14-B16 compare with the fan-out tools users would pick instead: installed from Debian here (as
# root), never by the test command.
missing=()
for tool in parallel-ssh:pssh clush:clustershell ansible:ansible-core; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "bench.sh: installing ${missing[*]} (for B14-B16)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null ||
            echo "bench.sh: could not install ${missing[*]}; B14-B16 leave them out"
    else
        echo "bench.sh: B14-B16 compare with ${missing[*]}: run \`sudo apt-get install ${missing[*]}\` first"
    fi
fi

if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" --buildtype=release >/dev/null
fi
meson test -C "$BUILD" --benchmark --verbose "$@" </dev/null
