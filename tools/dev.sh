#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The two commands the README opens with, on a fresh Debian 12 machine:
#   tools/dev.sh run [CMD...]   install what is missing (as root), build, run CMD (default: ls /)
#                               in the sandbox with the built-in default profile
#   tools/dev.sh test           install what is missing (as root), build, run the whole suite;
#                               the last line is "N passed, M failed"
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(bubblewrap openssh-server openssh-client meson ninja-build cmake nlohmann-json3-dev
          libexpected-dev doctest-dev pkg-config)
BUILD=${SHANNOT_BUILD_DIR:-build}

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

configure() {
    if [ ! -f "$BUILD/build.ninja" ]; then
        meson setup "$BUILD" "$@" >/dev/null
    fi
    ninja -C "$BUILD"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
run)
    install_missing
    configure
    [ $# -eq 0 ] && set -- ls /
    for tool in "$BUILD/examples/cli/shannot" "$BUILD/examples/shannot"; do
        [ -x "$tool" ] && exec "$tool" "$@"
    done
    exec "$BUILD/examples/quickstart" "$@"
    ;;
test)
    install_missing
    configure
    status=0
    meson test -C "$BUILD" --print-errorlogs --timeout-multiplier 3 </dev/null || status=$?
    python3 tools/test_summary.py "$BUILD/meson-logs/testlog.json" || status=1
    exit $status
    ;;
*)
    echo "usage: tools/dev.sh run [CMD...] | tools/dev.sh test" >&2
    exit 2
    ;;
esac
