#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Compiles every C++ snippet of a Markdown file (README.md), as a reader would use it.

A ```cpp block that defines `main` is compiled as it stands. Any other block is a fragment: it
is compiled as the body of a function whose parameters are what the fragment uses without
declaring it, given by an HTML comment (invisible on GitHub) on the line before the block:

    <!-- snippet: shannot::LocalSandbox& sandbox -->
    ```cpp
    auto session = sandbox.open_session();
    ```

A fragment that starts with `#include` or declares things at namespace scope can say
`<!-- snippet: file -->`: it is compiled as a file of its own, after `#include <shannot/shannot.hpp>`.
Every snippet gets that include and <cstdio> (what the README's examples print with).

    tools/readme_snippets.py [--file README.md] [--include DIR] [--cxx COMPILER...]
    tools/readme_snippets.py --self-test [--include DIR] [--cxx COMPILER...]

Each snippet is compiled with -std=c++20 -Wall -Wextra -Werror (unused variables aside: a
fragment shows a call, not what is done with its result) and -fsyntax-only. Exits 1 and names the
line of every snippet that does not compile.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CONTEXT = re.compile(r"^<!--\s*snippet:\s*(.*?)\s*-->\s*$")
FLAGS = ["-std=c++20", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-Wno-unused-variable",
         "-Wno-unused-but-set-variable", "-Wno-unused-result"]


def snippets(text: str):
    """(line of the block, context or None, code) for every ```cpp block."""
    out = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() in ("```cpp", "```c++"):
            start = i + 1
            context = None
            if i > 0:
                m = CONTEXT.match(lines[i - 1].strip())
                if m:
                    context = m.group(1)
            j = start
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            out.append((start, context, "\n".join(lines[start:j]) + "\n"))
            i = j
        i += 1
    return out


def translation_unit(context, code: str) -> str:
    head = "#include <shannot/shannot.hpp>\n#include <cstdio>\n"
    if re.search(r"\bint\s+main\s*\(", code) or context == "file":
        return head + code
    return head + f"[[maybe_unused]] static void readme_snippet({context or ''}) {{\n{code}}}\n"


def compile_one(cxx, include: str, source: str):
    with tempfile.NamedTemporaryFile("w", suffix=".cpp", delete=False) as f:
        f.write(source)
        path = f.name
    try:
        r = subprocess.run(cxx + FLAGS + ["-I", include, path], capture_output=True, text=True)
        return r.returncode == 0, r.stderr
    finally:
        os.unlink(path)


def check(markdown: str, cxx, include: str):
    with open(markdown, encoding="utf-8") as f:
        found = snippets(f.read())
    problems = []
    for line, context, code in found:
        ok, err = compile_one(cxx, include, translation_unit(context, code))
        if not ok:
            problems.append(f"{markdown}:{line}: the snippet does not compile:\n{err}")
    return found, problems


def self_test(cxx, include: str) -> int:
    cases = {
        "```cpp\nint main() { return 0; }\n```\n": 0,
        "<!-- snippet: int x -->\n```cpp\nstd::printf(\"%d\\n\", x);\n```\n": 0,
        "```cpp\nstd::printf(\"%d\\n\", x);\n```\n": 1,  # x is not declared: the context matters
        "```cpp\nauto p = shannot::builtin_profile(\"minimal\");\n```\n": 0,
        "```cpp\nauto p = shannot::no_such_function();\n```\n": 1,
        "<!-- snippet: file -->\n```cpp\nstruct A {};\n```\n": 0,
    }
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for text, want in cases.items():
            path = os.path.join(tmp, "README.md")
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            _, problems = check(path, cxx, include)
            if len(problems) != want:
                print(f"self-test FAILED: {text!r}: {len(problems)} problems, expected {want}")
                failed += 1
    print(f"readme_snippets self-test: {len(cases) - failed} passed, {failed} failed")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file", default=os.path.join(ROOT, "README.md"))
    parser.add_argument("--include", default=os.path.join(ROOT, "include"))
    parser.add_argument("--self-test", action="store_true")
    parser.add_argument("--cxx", nargs="+", default=[os.environ.get("CXX", "c++")])
    args = parser.parse_args()
    if args.self_test:
        return self_test(args.cxx, args.include)
    found, problems = check(args.file, args.cxx, args.include)
    for p in problems:
        print(p, file=sys.stderr)
    print(f"readme_snippets: {len(found)} C++ snippets, {len(found) - len(problems)} compile, {len(problems)} do not")
    return 1 if problems or not found else 0


if __name__ == "__main__":
    sys.exit(main())
