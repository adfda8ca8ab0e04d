#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Runs a program and checks its stdout: `--regex R` must match, or `--file F` must equal it.

  expect_output.py --regex '(?m)^usr$' -- PROGRAM ARGS...
"""
import re
import subprocess
import sys

args = sys.argv[1:]
sep = args.index("--")
opts, command = args[:sep], args[sep + 1:]
proc = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
out = proc.stdout.decode("utf-8", "replace")
if proc.returncode != 0:
    sys.exit(f"{command[0]} exited with {proc.returncode}\nstdout:\n{out}\nstderr:\n{proc.stderr.decode('utf-8', 'replace')}")
if opts[0] == "--regex" and not re.search(opts[1], out):
    sys.exit(f"output does not match /{opts[1]}/:\n{out}")
if opts[0] == "--file":
    with open(opts[1], encoding="utf-8") as f:
        want = f.read()
    if out != want:
        sys.exit(f"output differs from {opts[1]}:\n--- want\n{want}\n--- got\n{out}")
print(out)
