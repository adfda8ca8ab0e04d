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

if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" --buildtype=release >/dev/null
fi
meson test -C "$BUILD" --benchmark --verbose "$@" </dev/null
