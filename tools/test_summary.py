#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reads meson's testlog.json and prints the closing line `N passed, M failed`.

Passed: OK and EXPECTEDFAIL. Failed: everything else but SKIP. Under CI=true a skipped test
counts as failed: CI must not go green because bwrap or sshd tests quietly did not run.
Exit status 1 when anything failed.
"""
import json
import os
import sys

results = {}
with open(sys.argv[1], encoding="utf-8") as log:
    for line in log:
        if line.strip():
            entry = json.loads(line)
            results[entry["name"]] = entry["result"]  # the last run of a test wins

ci = os.environ.get("CI", "").lower() == "true"
passed = sum(r in ("OK", "EXPECTEDFAIL") for r in results.values())
skipped = [n for n, r in results.items() if r == "SKIP"]
failed = [n for n, r in results.items() if r not in ("OK", "EXPECTEDFAIL", "SKIP")]
if ci and skipped:
    print("CI=true: skipped tests count as failed: " + ", ".join(skipped), file=sys.stderr)
    failed += skipped
for name in failed:
    print(f"FAILED: {name}", file=sys.stderr)
print(f"{passed} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
