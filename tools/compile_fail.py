#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Compiles one TU and checks the outcome: must fail with a given message, or must compile.
"""Usage:
  compile_fail.py --source TU.cpp --expect-error TEXT [-I DIR ...] -- COMPILER [ARGS...]
  compile_fail.py --source TU.cpp --expect-success   [-I DIR ...] -- COMPILER [ARGS...]

With --expect-error the test passes only if the compiler exits non-zero AND its output contains
TEXT (so an unrelated error, a typo, a missing header, cannot pass for the expected one). With
--expect-success the TU must compile: the positive control that proves the harness itself.
The compiler runs with -std=c++20 -fsyntax-only; nothing is written."""
import argparse
import subprocess
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--expect-error", metavar="TEXT")
    mode.add_argument("--expect-success", action="store_true")
    parser.add_argument("-I", dest="includes", action="append", default=[])
    parser.add_argument("--isystem", dest="system_includes", action="append", default=[])
    parser.add_argument("compiler", nargs="+", help="the compiler command (after --)")
    args = parser.parse_args()

    cmd = list(args.compiler) + ["-std=c++20", "-fsyntax-only", "-fno-diagnostics-color"]
    cmd += ["-I" + d for d in args.includes]
    for d in args.system_includes:
        if d:
            cmd += ["-isystem", d]
    cmd.append(args.source)
    print("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
    output = proc.stdout
    shown = output if len(output) <= 20000 else output[:20000] + "\n... (output cut at 20000 characters)\n"

    if args.expect_success:
        if proc.returncode != 0:
            print(shown)
            print(f"FAIL: {args.source} must compile, but the compiler exited with {proc.returncode}")
            return 1
        print(f"ok: {args.source} compiles")
        return 0

    if proc.returncode == 0:
        print(shown)
        print(f"FAIL: {args.source} compiled, but it must fail with: {args.expect_error}")
        return 1
    if args.expect_error not in output:
        print(shown)
        print(f"FAIL: {args.source} failed to compile, but not with the expected message: {args.expect_error}")
        return 1
    print(f"ok: {args.source} fails to compile with: {args.expect_error}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
