#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Generates the headers that embed the POSIX-sh programs of include/shannot/detail/scripts/.

Each `NAME.sh` there becomes `NAME_script.hpp` beside it, defining the `std::string_view` the C++
runs (ssh_dispatcher_script, session_agent_script). The text loses its full-line comments, its
blank lines and the indentation of its lines: the dispatcher travels on ssh's command line, the
agent in bwrap's argv and, to a remote host, in a request the dispatcher reads a system call per
byte. Nothing else changes. Lines that begin inside a quoted string, a here-document body, a
`${...}`, `$((...))` or a backquoted command, or after a line that ends in a backslash, are kept
exactly, so no string's value changes; a line is stripped only where the shell would drop what is
stripped. The script's quoting must close by its end, or this refuses it. When bash is installed,
each result is also checked against its source through bash's own parser (`declare -f` prints
both the same way, comments and layout aside).

For the session agent it also lists the functions the script defines (a command named like one
runs as `( exec NAME ... )`: shell_may_run_itself) and the variables it assigns (a test gives
commands variables of those names).

Deterministic on purpose (no date, no path of this machine): the checked-in headers must equal a
fresh run byte for byte, which a meson test checks with --check.

  tools/embed_scripts.py --output include/shannot/detail/scripts   # regenerate
  tools/embed_scripts.py --check include/shannot/detail/scripts    # exit 1 when stale
  tools/embed_scripts.py --print session_agent.sh                  # the embedded text
  tools/embed_scripts.py --self-test                               # the stripping on tricky samples
"""

import argparse
import difflib
import os
import re
import shutil
import subprocess
import sys

REGENERATE = "python3 tools/embed_scripts.py --output include/shannot/detail/scripts"


class Script:
    def __init__(self, source, variable, summary, doc, names=None):
        self.source = source        # NAME.sh in the scripts folder
        self.variable = variable    # the std::string_view it becomes
        self.summary = summary      # the header's purpose line
        self.doc = doc              # the constant's /// comment, one line each
        self.names = names          # prefix of the function and variable lists, or None

    @property
    def header(self):
        return self.source[:-len(".sh")] + "_script.hpp"


SCRIPTS = [
    Script("dispatcher.sh", "ssh_dispatcher_script",
           "The ssh dispatcher's POSIX-sh text, embedded from dispatcher.sh.",
           ["The ssh dispatcher (detail/scripts/dispatcher.sh; its protocol: docs/protocol.md), run once per",
            "ssh session as `sh -c ssh_dispatcher_script shannot HELLO`."]),
    Script("session_agent.sh", "session_agent_script",
           "The session agent's POSIX-sh text, embedded from session_agent.sh.",
           ["The session agent (detail/scripts/session_agent.sh; its protocol: docs/protocol.md), PID 1 of a",
            "warm session's sandbox, run as `/dev/.shannot/sh -c session_agent_script shannot HELLO`."],
           names="session_agent"),
]


class ScriptError(Exception):
    pass


# ---- A small lexer of POSIX sh: enough to know, at the start of each line, whether the shell is
# ---- reading plain code there (where a comment line and indentation mean nothing) or the inside
# ---- of a string, a here-document, an expansion or a continued line (kept as is).

NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Frame:
    """One open context: "code" (the script, or the body of a $(...)), "single", "double",
    "param" (${...}), "arith" ($((...))) or "backquote"."""

    def __init__(self, kind):
        self.kind = kind
        self.parens = 0      # code, arith: open parentheses
        self.cases = 0       # code: open case ... esac, whose patterns end in an unmatched ")"
        self.braces = 0      # param: nested braces


class Lexer:
    def __init__(self, name):
        self.name = name
        self.stack = [Frame("code")]
        self.heredocs = []   # delimiters (and whether tabs are stripped) whose bodies come next

    def fail(self, number, what):
        raise ScriptError(f"{self.name}:{number}: {what}")

    def plain(self):
        """True when the shell reads plain code at this point (outside quotes and expansions)."""
        return len(self.stack) == 1 or all(f.kind == "code" for f in self.stack)

    def line(self, text, number):
        """Reads one line (without its newline). Returns (skeleton, continued): the line with
        everything but plain code blanked out, and whether it ends in a backslash-newline."""
        skeleton = []
        i, n = 0, len(text)
        word_start = True
        while i < n:
            frame = self.stack[-1]
            c = text[i]
            plain = frame.kind == "code"
            skeleton.append(c if plain else " ")
            if frame.kind == "single":
                if c == "'":
                    self.stack.pop()
                i += 1
                continue
            if c == "\\":
                if i + 1 == n:
                    skeleton.pop()
                    return "".join(skeleton), True
                skeleton.append(text[i + 1] if plain else " ")
                i += 2
                word_start = False
                continue
            if frame.kind == "backquote":
                if c == "`":
                    self.stack.pop()
                i += 1
                continue
            if frame.kind == "double":
                if c == '"':
                    self.stack.pop()
                elif c == "$" or c == "`":
                    i, word_start = self.expansion(text, i, number)
                    continue
                i += 1
                continue
            if frame.kind == "param":
                if c == "}":
                    if frame.braces == 0:
                        self.stack.pop()
                    else:
                        frame.braces -= 1
                elif c == "{":
                    frame.braces += 1
                elif c == "'":
                    self.stack.append(Frame("single"))
                elif c == '"':
                    self.stack.append(Frame("double"))
                elif c == "$" or c == "`":
                    i, word_start = self.expansion(text, i, number)
                    continue
                i += 1
                continue
            if frame.kind == "arith":
                if c == "(":
                    frame.parens += 1
                elif c == ")":
                    frame.parens -= 1
                    if frame.parens == 0:
                        self.stack.pop()
                elif c == "$" or c == "`":
                    i, word_start = self.expansion(text, i, number)
                    continue
                i += 1
                continue
            # Plain code (the script, or inside $(...)).
            if c == "#" and word_start:
                skeleton.pop()
                break
            if c in " \t;&|<>()":
                if c == "<" and text.startswith("<<", i) and not text.startswith("<<<", i):
                    i = self.heredoc(text, i, number, skeleton)
                    word_start = True
                    continue
                if c == "(":
                    frame.parens += 1
                elif c == ")":
                    if frame.parens > 0:
                        frame.parens -= 1
                    elif frame.cases > 0:
                        pass  # the end of a case pattern
                    elif len(self.stack) > 1:
                        self.stack.pop()
                    # a ")" of the script itself at depth 0 is a case pattern's too
                word_start = True
                i += 1
                continue
            if word_start:
                m = NAME_RE.match(text, i)
                if m:
                    end = m.end()
                    word = m.group(0)
                    if end == n or text[end] in " \t;&|()":
                        if word == "case":
                            frame.cases += 1
                        elif word == "esac":
                            frame.cases = max(0, frame.cases - 1)
            word_start = False
            if c == "'":
                self.stack.append(Frame("single"))
            elif c == '"':
                self.stack.append(Frame("double"))
            elif c == "$" or c == "`":
                i, word_start = self.expansion(text, i, number)
                continue
            i += 1
        return "".join(skeleton), False

    def expansion(self, text, i, number):
        """Opens what `$` or a backquote starts at text[i]; returns where to go on, and whether a
        word starts there (the first of a command substitution)."""
        if text[i] == "`":
            self.stack.append(Frame("backquote"))
            return i + 1, False
        if text.startswith("$((", i):
            frame = Frame("arith")
            frame.parens = 2
            self.stack.append(frame)
            return i + 3, False
        if text.startswith("$(", i):
            self.stack.append(Frame("code"))
            return i + 2, True
        if text.startswith("${", i):
            self.stack.append(Frame("param"))
            return i + 2, False
        return i + 1, False

    def heredoc(self, text, i, number, skeleton):
        """Reads the operator and delimiter of a here-document starting at text[i] ("<<")."""
        j = i + 2
        strip_tabs = text.startswith("-", j)
        if strip_tabs:
            j += 1
        while j < len(text) and text[j] in " \t":
            j += 1
        m = re.compile(r"(['\"]?)([A-Za-z0-9_]+)\1").match(text, j)
        if not m:
            self.fail(number, "a here-document whose delimiter this tool cannot read (use a plain or quoted word)")
        self.heredocs.append((m.group(2), strip_tabs))
        skeleton.extend(text[i + 1:m.end()])
        return m.end()


def strip(text, name):
    """Returns (the text without full-line comments, blank lines and indentation; the skeletons
    of its plain lines, for the name lists)."""
    lexer = Lexer(name)
    out, skeletons = [], []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    literal_next = False
    pending_body = []
    for number, line in enumerate(lines, 1):
        if pending_body:
            delimiter, strip_tabs = pending_body[0]
            out.append(line)
            if (line.lstrip("\t") if strip_tabs else line) == delimiter:
                pending_body.pop(0)
            continue
        literal = literal_next or not lexer.plain()
        skeleton, continued = lexer.line(line, number)
        literal_next = continued
        pending_body = lexer.heredocs
        lexer.heredocs = []
        if literal:
            out.append(line)
            continue
        body = line.lstrip(" \t")
        if body == "" or body.startswith("#"):
            continue
        out.append(body)
        skeletons.append(skeleton)
    if pending_body:
        raise ScriptError(f"{name}: the here-document ending in '{pending_body[0][0]}' does not end")
    if len(lexer.stack) != 1:
        raise ScriptError(f"{name}: a {lexer.stack[-1].kind} context is still open at the end")
    return "\n".join(out) + "\n", skeletons


def same_parse(original, stripped, name):
    """Checks, when bash is installed, that bash parses both texts into the same commands."""
    bash = shutil.which("bash")
    if not bash:
        return
    program = 'eval "__shannot_embedded() {\n$1\n}" && declare -f __shannot_embedded'
    printed = []
    for text in (original, stripped):
        r = subprocess.run([bash, "--posix", "-c", program, "bash", text], capture_output=True, text=True)
        if r.returncode != 0:
            raise ScriptError(f"{name}: bash cannot parse {'the source' if text is original else 'the stripped text'}: "
                              + r.stderr.strip())
        printed.append(r.stdout)
    if printed[0] != printed[1]:
        diff = difflib.unified_diff(printed[0].splitlines(), printed[1].splitlines(), "source", "stripped",
                                    n=1, lineterm="")
        raise ScriptError(f"{name}: stripping changed what bash parses:\n" + "\n".join(list(diff)[:40]))


def defined_functions(skeletons):
    names = set()
    for s in skeletons:
        for m in re.finditer(r"(?:^|[;&|{}\s])([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*\)", s):
            names.add(m.group(1))
    return sorted(names)


def assigned_variables(skeletons):
    names = set()
    for s in skeletons:
        for m in re.finditer(r"(?:^|[;&|(){}\s])([A-Za-z_][A-Za-z0-9_]*)=", s):
            names.add(m.group(1))
        for m in re.finditer(r"(?:^|[;&|(){}\s])for\s+([A-Za-z_][A-Za-z0-9_]*)", s):
            names.add(m.group(1))
        for m in re.finditer(r"(?:^|[;&|(){}\s])read((?:\s+-r)?(?:\s+[A-Za-z_][A-Za-z0-9_]*)+)", s):
            names.update(w for w in m.group(1).split() if w != "-r")
    return sorted(names)


def raw_string(text, name):
    for delimiter in ("sh", "shell", "script"):
        if ")" + delimiter + '"' not in text:
            return f'R"{delimiter}(' + text + f'){delimiter}"'
    raise ScriptError(f"{name}: no raw-string delimiter fits")


def string_list(names, indent):
    lines, line = [], indent
    for n in names:
        item = f'"{n}", '
        if len(line) + len(item) > 120:
            lines.append(line.rstrip())
            line = indent
        line += item
    lines.append(line.rstrip().rstrip(","))
    return "\n".join(lines)


def generate(folder, script):
    path = os.path.join(folder, script.source)
    with open(path, encoding="utf-8") as f:
        source = f.read()
    stripped, skeletons = strip(source, script.source)
    same_parse(source, stripped, script.source)
    out = [
        "// SPDX-License-Identifier: MIT",
        "// " + script.summary + " GENERATED by tools/embed_scripts.py from",
        f"// include/shannot/detail/scripts/{script.source} (full-line comments and indentation dropped); do not edit.",
        "// Regenerate with:",
        f"//   {REGENERATE}",
        "#pragma once",
        "",
        "#include <string_view>",
        "",
        "namespace shannot::detail {",
        "",
    ]
    out += ["/// " + line for line in script.doc]
    out.append(f"inline constexpr std::string_view {script.variable} = {raw_string(stripped, script.source)};")
    if script.names:
        functions = defined_functions(skeletons)
        variables = assigned_variables(skeletons)
        out += [
            "",
            "/// The functions the agent defines: a command named like one runs as `( exec NAME ... )`",
            "/// (shell_may_run_itself), so that it is always the program.",
            f"inline constexpr std::string_view {script.names}_functions[] = {{",
            string_list(functions, "    "),
            "};",
            "",
            "/// The variables the agent assigns: a command's own variables of these names must reach it",
            "/// and change nothing else (session_test).",
            f"inline constexpr std::string_view {script.names}_variables[] = {{",
            string_list(variables, "    "),
            "};",
        ]
    out += ["", "}  // namespace shannot::detail", ""]
    return "\n".join(out)


# ---- --self-test: the stripping keeps what it must, and the check against bash's parser catches a
# ---- stripping that would not (a control).

SELF_TESTS = [
    # (what, source, expected)
    ("comment lines and indentation go; a comment after code stays",
     "f() {\n  # a comment\n\n  echo a  # after code\n}\n",
     "f() {\necho a  # after code\n}\n"),
    ("a single-quoted string keeps its lines, '#' lines and indentation included",
     "x='a\n  # not a comment\n  b'\n  echo \"$x\"\n",
     "x='a\n  # not a comment\n  b'\necho \"$x\"\n"),
    ("a double-quoted string with a command substitution and quotes inside keeps its lines",
     "y=\"one\n  $(echo ')' \"\n  two\")\n  # three\"\n  echo \"$y\"\n",
     "y=\"one\n  $(echo ')' \"\n  two\")\n  # three\"\necho \"$y\"\n"),
    ("here-document bodies and delimiters stay as written, tabs of <<- and quoted delimiters too",
     "cat <<EOF\n  # kept\n    indented $x\nEOF\n  cat <<-'END' >&2\n\t# tab\n\tEND\n  echo after\n",
     "cat <<EOF\n  # kept\n    indented $x\nEOF\ncat <<-'END' >&2\n\t# tab\n\tEND\necho after\n"),
    ("a line after a backslash-newline stays as written (its blanks may separate words)",
     "echo a\\\n  b\n  echo c\n",
     "echo a\\\n  b\necho c\n"),
    ("case patterns inside a command substitution do not end it",
     "z=$(case $1 in\n  a) echo ')' ;;\n  # a comment\n  (b) echo \"(\" ;;\n  esac)\n  echo \"$z\"\n",
     "z=$(case $1 in\na) echo ')' ;;\n(b) echo \"(\" ;;\nesac)\necho \"$z\"\n"),
    ("a case pattern inside a quoted command substitution does not end it early",
     "w=\"$(case $1 in\n  a) echo \"x ;;\n  # y\" ;;\n  esac)\"\n  echo done\n",
     "w=\"$(case $1 in\n  a) echo \"x ;;\n  # y\" ;;\n  esac)\"\necho done\n"),
    ("parameter and arithmetic expansions with quotes and parentheses",
     "  a=${b#*') '} c=$(( (1 + 2) * 3 )) d=${e%\"}\"}\n  # gone\n",
     "a=${b#*') '} c=$(( (1 + 2) * 3 )) d=${e%\"}\"}\n"),
]


def self_test():
    failures = 0
    for what, source, expected in SELF_TESTS:
        try:
            got = strip(source, "self-test")[0]
            same_parse(source, got, "self-test")
            parse_ok = True
        except ScriptError as e:
            got, parse_ok = None, False
            print(f"FAIL: {what}: {e}")
        if got is not None and got != expected:
            print(f"FAIL: {what}:\n  expected {expected!r}\n  got      {got!r}")
        failures += got != expected or not parse_ok
    for what, source in [("an unterminated quote is refused", "x='a\n"),
                         ("an unterminated here-document is refused", "cat <<EOF\nbody\n")]:
        try:
            strip(source, "self-test")
            print(f"FAIL: {what}: it was not")
            failures += 1
        except ScriptError:
            pass
    # The control: stripping every line, strings included, must be caught by the bash check.
    if shutil.which("bash"):
        source = SELF_TESTS[1][1]
        naive = "".join(line.lstrip(" \t") + "\n" for line in source.splitlines() if line.strip())
        try:
            same_parse(source, naive, "self-test")
            print("FAIL: the check against bash's parser missed a stripped string")
            failures += 1
        except ScriptError:
            pass
    elif os.environ.get("CI") == "true":
        print("FAIL: bash is not installed (CI=true): the check against its parser cannot run")
        failures += 1
    else:
        print("note: bash is not installed: the check against its parser was not tried")
    print(f"embed_scripts self-test: {len(SELF_TESTS) + 3 - failures} passed, {failures} failed")
    return 1 if failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--output", metavar="DIR", help="write each NAME_script.hpp into DIR, from DIR/NAME.sh")
    mode.add_argument("--check", metavar="DIR", help="exit 1 when a header in DIR differs from a fresh run")
    mode.add_argument("--print", metavar="NAME.sh", help="print the text that would be embedded")
    mode.add_argument("--self-test", action="store_true", help="check the stripping on tricky samples")
    parser.add_argument("--folder", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                         "include", "shannot", "detail", "scripts"),
                        help="where --print finds the scripts (default: include/shannot/detail/scripts)")
    args = parser.parse_args()

    try:
        if args.self_test:
            return self_test()
        if args.print:
            with open(os.path.join(args.folder, args.print), encoding="utf-8") as f:
                sys.stdout.write(strip(f.read(), args.print)[0])
            return 0
        folder = args.output or args.check
        status = 0
        for script in SCRIPTS:
            text = generate(folder, script)
            target = os.path.join(folder, script.header)
            if args.output:
                tmp = target + ".tmp"
                with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                    f.write(text)
                os.replace(tmp, target)
                continue
            try:
                with open(target, encoding="utf-8") as f:
                    current = f.read()
            except OSError as e:
                print(f"embed_scripts: {target}: cannot read ({e.strerror}); regenerate with: {REGENERATE}",
                      file=sys.stderr)
                status = 1
                continue
            if current != text:
                diff = list(difflib.unified_diff(current.splitlines(), text.splitlines(), "checked-in", "fresh",
                                                 n=1, lineterm=""))
                print(f"embed_scripts: {target} is stale ({script.source} changed):", file=sys.stderr)
                for d in diff[:40]:
                    print("  " + d, file=sys.stderr)
                print(f"Regenerate with: {REGENERATE}", file=sys.stderr)
                status = 1
            else:
                print(f"embed_scripts: {script.header} is up to date")
        return status
    except ScriptError as e:
        print(f"embed_scripts: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
