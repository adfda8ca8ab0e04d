#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Checks that every test SECURITY.md cites exists.

SECURITY.md backs each claim with tests, written as
    `tests/FILE.cpp` › `TEST CASE` › `SUBCASE`, `ANOTHER SUBCASE`
(a chain of names after a file; a name after `, `, ` and `, `; ` or `, and ` continues the chain,
anything else, e.g. a parenthesis, ends it). Each cited file must exist and each name must be
spelled in it as a string literal (the name a TEST_CASE, TEST_CASE_TEMPLATE or SUBCASE gives).

    tools/check_security_tests.py [--root DIR] [--file SECURITY.md]
    tools/check_security_tests.py --self-test

Exits 1 and names every citation that does not resolve.
"""
import argparse
import os
import re
import sys
import tempfile

FILE_REF = re.compile(r"`(tests/[^`]+\.(?:cpp|hpp|mjs|py|sh))`")
TICKED = re.compile(r"`([^`]+)`")
# What may stand between two names of one chain.
CONTINUES = re.compile(r"^\s*(?:›|,|, and|and|;)\s*$")


def citations(text: str):
    """(line number, file, [names]) for every file reference in `text`."""
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        refs = list(FILE_REF.finditer(line))
        for i, ref in enumerate(refs):
            end = refs[i + 1].start() if i + 1 < len(refs) else len(line)
            segment = line[ref.end():end]
            names = []
            pos = 0
            for tick in TICKED.finditer(segment):
                between = segment[pos:tick.start()]
                if not names:
                    # The first name must follow the file with a ›.
                    if not re.fullmatch(r"\s*›\s*", between):
                        break
                elif not CONTINUES.match(between):
                    break
                names.append(tick.group(1))
                pos = tick.end()
            out.append((lineno, ref.group(1), names))
    return out


def join_adjacent_literals(source: str) -> str:
    """C++ source with adjacent string literals ("a " "b", across lines too) joined, as the
    compiler joins them: a long test name may be written in two pieces."""
    return re.sub(r'"\s*\n\s*"', "", source)


def literal_in(source: str, name: str) -> bool:
    """True when `name` is a string literal in `source` (C++ "...", or JavaScript '...' with
    \\' escapes). A name ending in "..." cites the start of a longer one."""
    prefix = name.endswith("...")
    if prefix:
        name = name[:-3].rstrip()
    for quote in ('"', "'"):
        escaped = name.replace("\\", "\\\\").replace(quote, "\\" + quote)
        if (quote + escaped + ("" if prefix else quote)) in source:
            return True
    return False


def check(root: str, security: str) -> list:
    with open(security, encoding="utf-8") as f:
        text = f.read()
    problems = []
    cited = citations(text)
    if not cited:
        problems.append(f"{security}: cites no test at all (is the format still `tests/FILE` › `NAME`?)")
    for lineno, path, names in cited:
        full = os.path.join(root, path)
        if not os.path.isfile(full):
            problems.append(f"{security}:{lineno}: {path} does not exist")
            continue
        with open(full, encoding="utf-8") as f:
            source = join_adjacent_literals(f.read())
        for name in names:
            if not literal_in(source, name):
                problems.append(f"{security}:{lineno}: {path} has no test or subcase named \"{name}\"")
    return problems


def self_test() -> int:
    failed = 0
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(os.path.join(root, "tests"))
        with open(os.path.join(root, "tests", "a_test.cpp"), "w", encoding="utf-8") as f:
            f.write('TEST_CASE("case one") { SUBCASE("sub, with a comma") {} SUBCASE("two") {} }\n'
                    'SUBCASE("a name written "\n        "in two pieces") {}\n')
        with open(os.path.join(root, "tests", "b.mjs"), "w", encoding="utf-8") as f:
            f.write("test('the server\\'s own stdin, and a long name', async () => {});\n")
        cases = {
            "| x | `tests/a_test.cpp` › `case one` › `sub, with a comma`, `two` (the `/proc` entries) |": 0,
            "| x | `tests/a_test.cpp` › `case one`; `tests/a_test.cpp` › `two` |": 0,
            "| x | `tests/a_test.cpp` › `a name written in two pieces` |": 0,
            "| x | `tests/a_test.cpp` › `case one` › `gone` |": 1,
            "| x | `tests/b_test.cpp` › `case one` |": 1,
            "| x | `tests/a_test.cpp` › `case one`, `missing too` |": 1,
            "| x | `tests/b.mjs` › `the server's own stdin, and a long name` |": 0,
            "| x | `tests/b.mjs` › `the server's own stdin: ...` |": 1,
            "| x | `tests/b.mjs` › `the server's own stdin, ...` |": 0,
        }
        for text, want in cases.items():
            path = os.path.join(root, "SECURITY.md")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text + "\n")
            got = len(check(root, path))
            if got != want:
                print(f"self-test FAILED: {text!r}: {got} problems, expected {want}")
                failed += 1
    print(f"check_security_tests self-test: {len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    parser.add_argument("--file", default=None)
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    if args.self_test:
        return self_test()
    security = args.file or os.path.join(args.root, "SECURITY.md")
    problems = check(args.root, security)
    for p in problems:
        print(p, file=sys.stderr)
    total = sum(len(n) for _, _, n in citations(open(security, encoding="utf-8").read()))
    print(f"check_security_tests: {total} test names cited, {len(problems)} unresolved")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
