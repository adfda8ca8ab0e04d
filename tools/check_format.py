#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks (or applies) the project's .clang-format on every C++ source it owns.

    tools/check_format.py            exits 1 and names each file clang-format would change
    tools/check_format.py --fix      formats them in place
    tools/check_format.py --self-test

The files: include/, tests/, examples/ (*.hpp, *.cpp), but the generated ones (the single header
and the embedded scripts, which their generators write) and the fuzz corpora. Uses Debian's
clang-format (14); a missing clang-format skips (exit 77), except under CI=true, where it fails.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
FOLDERS = ("include", "tests", "examples")
GENERATED = (
    os.path.join("include", "shannot", "detail", "scripts", "dispatcher_script.hpp"),
    os.path.join("include", "shannot", "detail", "scripts", "session_agent_script.hpp"),
)
SKIPPED_DIRS = ("corpus", "node_modules")


def sources(root: str):
    out = []
    for folder in FOLDERS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, folder)):
            dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS]
            for name in filenames:
                if not name.endswith((".hpp", ".cpp")):
                    continue
                path = os.path.join(dirpath, name)
                if os.path.relpath(path, root) in GENERATED:
                    continue
                out.append(path)
    return sorted(out)


def unformatted(clang_format: str, files, root: str):
    bad = []
    for path in files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        r = subprocess.run([clang_format, "--style=file", "--assume-filename=" + path], input=text,
                           capture_output=True, text=True, cwd=root)
        if r.returncode != 0:
            raise SystemExit(f"clang-format failed on {path}: {r.stderr}")
        if r.stdout != text:
            bad.append(path)
    return bad


def self_test(clang_format: str) -> int:
    failed = 0
    with tempfile.TemporaryDirectory() as root:
        shutil.copy(os.path.join(ROOT, ".clang-format"), root)
        os.makedirs(os.path.join(root, "include"))
        good = os.path.join(root, "include", "good.hpp")
        bad = os.path.join(root, "include", "bad.hpp")
        with open(good, "w", encoding="utf-8") as f:
            f.write("int f(int x) { return x + 1; }\n")
        with open(bad, "w", encoding="utf-8") as f:
            f.write("int  f(int x){return x+1;}\n")
        found = unformatted(clang_format, sources(root), root)
        if found != [bad]:
            print(f"self-test FAILED: expected only {bad}, got {found}")
            failed += 1
    print(f"check_format self-test: {1 - failed} passed, {failed} failed")
    return failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fix", action="store_true")
    parser.add_argument("--self-test", action="store_true")
    parser.add_argument("--clang-format", default=shutil.which("clang-format") or shutil.which("clang-format-14"))
    args = parser.parse_args()
    if not args.clang_format:
        print("clang-format is not installed (apt-get install clang-format)")
        return 1 if os.environ.get("CI") == "true" else 77
    if args.self_test:
        return self_test(args.clang_format)
    files = sources(ROOT)
    if args.fix:
        subprocess.run([args.clang_format, "-i", "--style=file"] + files, check=True, cwd=ROOT)
        print(f"check_format: formatted {len(files)} files")
        return 0
    bad = unformatted(args.clang_format, files, ROOT)
    for path in bad:
        print(f"{os.path.relpath(path, ROOT)}: not formatted (tools/check_format.py --fix)", file=sys.stderr)
    print(f"check_format: {len(files)} files, {len(bad)} not formatted")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
