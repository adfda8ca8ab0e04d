#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Builds tests/consumer/project against this tree as a meson subproject, in a temp dir, and runs it.
"""Usage: consumer_test.py --repo DIR --consumer DIR [--meson CMD...] [--keep] [-- CXX...]

Copies the consumer project into a fresh temp dir, links the repository in as
subprojects/shannot, configures it with meson (forcing the subproject, so an installed shannot
cannot stand in), builds both programs (dependency('shannot') and dependency('shannot_single'))
and runs them: each must print the bwrap argv of a dry run of `ls /` in the minimal profile, the
same argv for both forms. Nothing is written to the source tree; the temp dir is removed."""
import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile


def run(cmd, **kwargs):
    print("$ " + " ".join(shlex.quote(c) for c in cmd), flush=True)
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace", **kwargs)


def check_program(path: str, form: str) -> list:
    proc = run([path])
    print(proc.stdout, end="")
    if proc.returncode != 0:
        raise SystemExit(f"FAIL: {path} exited with {proc.returncode}")
    lines = proc.stdout.splitlines()
    if not lines or not lines[0].startswith("shannot ") or not lines[0].endswith(f"({form})"):
        raise SystemExit(f"FAIL: {path}: first line should name the {form} form, got {lines[:1]}")
    argv = lines[1:]
    if argv[-3:] != ["--", "ls", "/"]:
        raise SystemExit(f"FAIL: {path}: the argv should end with -- ls /, got {argv[-3:]}")
    for flag in ("--unshare-pid", "--die-with-parent", "--new-session", "--clearenv", "--ro-bind"):
        if flag not in argv:
            raise SystemExit(f"FAIL: {path}: the argv lacks {flag}")
    return argv


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", required=True, help="the shannot source tree")
    parser.add_argument("--consumer", required=True, help="tests/consumer/project")
    parser.add_argument("--meson", nargs="+", default=["meson"], help="the meson command")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (for debugging)")
    parser.add_argument("cxx", nargs="*", help="the C++ compiler command (after --)")
    args = parser.parse_args()

    env = dict(os.environ)
    if args.cxx:
        env["CXX"] = " ".join(shlex.quote(c) for c in args.cxx)
    # The parent build's test environment must not leak into the nested meson.
    for var in ("MESON_TESTTHREADS", "MESONINTROSPECT", "MESON_BUILD_ROOT", "MESON_SOURCE_ROOT"):
        env.pop(var, None)

    tmp = tempfile.mkdtemp(prefix="shannot-consumer-")
    try:
        src = os.path.join(tmp, "src")
        build = os.path.join(tmp, "build")
        shutil.copytree(args.consumer, src)
        os.makedirs(os.path.join(src, "subprojects"))
        os.symlink(os.path.abspath(args.repo), os.path.join(src, "subprojects", "shannot"))

        for cmd in (args.meson + ["setup", "--force-fallback-for=shannot,shannot_single", build, src],
                    args.meson + ["compile", "-C", build]):
            proc = run(cmd, env=env)
            if proc.returncode != 0:
                print(proc.stdout)
                raise SystemExit(f"FAIL: exit status {proc.returncode}")

        multi = check_program(os.path.join(build, "consumer"), "include")
        single = check_program(os.path.join(build, "consumer_single"), "single_include")
        if multi != single:
            raise SystemExit("FAIL: the include/ and single_include/ builds produce different argv")
        print("ok: dependency('shannot') and dependency('shannot_single') both build and agree")
        return 0
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
