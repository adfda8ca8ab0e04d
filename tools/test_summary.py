#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Reads meson's testlog.json (and more result files) and prints the closing line `N passed, M failed`.

    test_summary.py TESTLOG [RESULTS...]

Every file holds JSON lines with at least "name" and "result", as meson's testlog.json does;
tools/dev.sh writes the sanitizer and fuzzer steps to a file of that form. A file that does not
exist counts as one failed entry (its step never got as far as writing it).

Passed: OK and EXPECTEDFAIL. Failed: everything else but SKIP. Under CI=true a skipped test
counts as failed: CI must not go green because bwrap or sshd tests quietly did not run.
Exit status 1 when anything failed.
"""
import json
import os
import sys

if len(sys.argv) < 2:
    sys.exit("usage: test_summary.py TESTLOG [RESULTS...]")

results = {}
for path in sys.argv[1:]:
    try:
        with open(path, encoding="utf-8") as log:
            for line in log:
                if line.strip():
                    entry = json.loads(line)
                    results[entry["name"]] = entry["result"]  # the last run of a test wins
    except FileNotFoundError:
        results[f"{path} (missing: its step did not run to the end)"] = "ERROR"

ci = os.environ.get("CI", "").lower() == "true"
passed = sum(r in ("OK", "EXPECTEDFAIL") for r in results.values())
skipped = [n for n, r in results.items() if r == "SKIP"]
failed = [n for n, r in results.items() if r not in ("OK", "EXPECTEDFAIL", "SKIP")]
if ci and skipped:
    print("CI=true: skipped tests count as failed: " + ", ".join(skipped), file=sys.stderr)
    failed += skipped
for name in failed:
    print(f"FAILED: {name}", file=sys.stderr)
sys.stderr.flush()
print(f"{passed} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
