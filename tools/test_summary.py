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

For a failed entry that carries its output (meson's "stdout"), the lines that say why (doctest's
failed test cases and assertions) are printed just before the summary: a CI report that keeps only
the end of the output still names the failing case.
"""
import json
import os
import sys

if len(sys.argv) < 2:
    sys.exit("usage: test_summary.py TESTLOG [RESULTS...]")

# doctest prints a failed case as a block: a line of '=', the file and line, "TEST CASE:", the
# subcases, then "ERROR:"/"FATAL ERROR:" and the expression and values.
WHY_MARKERS = ("TEST CASE:", "ERROR:", "CHECK", "REQUIRE", "values:", "logged:", "with expansion:")
WHY_LIMIT = 40  # lines per failed entry


def why_lines(output):
    """The lines of a failed entry's output that say why it failed, at most WHY_LIMIT."""
    lines = output.splitlines()
    keep = []
    for i, line in enumerate(lines):
        if any(marker in line for marker in WHY_MARKERS):
            keep.append(line.rstrip())
            # the expression or the values come on the next line
            if i + 1 < len(lines) and lines[i + 1].strip() and not any(m in lines[i + 1] for m in WHY_MARKERS):
                keep.append(lines[i + 1].rstrip())
    return keep[:WHY_LIMIT]


results = {}
outputs = {}
for path in sys.argv[1:]:
    try:
        with open(path, encoding="utf-8") as log:
            for line in log:
                if line.strip():
                    entry = json.loads(line)
                    results[entry["name"]] = entry["result"]  # the last run of a test wins
                    outputs[entry["name"]] = (entry.get("stdout") or "") + (entry.get("stderr") or "")
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
    why = why_lines(outputs.get(name, ""))
    if why:
        print(f"---- why {name} failed:", file=sys.stderr)
        for line in why:
            print(f"  {line}", file=sys.stderr)
for name in failed:
    print(f"FAILED: {name}", file=sys.stderr)
sys.stderr.flush()
print(f"{passed} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
