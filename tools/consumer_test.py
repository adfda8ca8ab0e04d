#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Builds and runs downstream projects against shannot as users get it: a meson subproject, and an
# installed tree (CMake package, pkg-config, the single header with -I, the tool and its files).
"""Usage: consumer_test.py CASE --build DIR [--source DIR] [--meson CMD...] [--keep] [-- CXX...]

CASE:
  subproject     tests/consumer/project with this tree as subprojects/shannot (forced, so an
                 installed shannot cannot stand in): dependency('shannot') and ('shannot_single')
  cmake          tests/consumer/cmake against the installed tree: find_package(shannot CONFIG),
                 shannot::shannot and shannot::shannot_single (CMAKE_PREFIX_PATH)
  pkgconfig      tests/consumer/pkgconfig against the installed tree: dependency('shannot') and
                 ('shannot_single') through pkg-config (PKG_CONFIG_PATH)
  single-header  CXX -I <prefix>/include/shannot_single, the way a project without a build
                 system uses the single header
  tool           include/ holds headers only; the installed bin/shannot runs; its man page and bash completion equal what it
                 generates, cover every subcommand and option of its --help (groff -ww finds
                 nothing to say; shellcheck, where installed, neither), and the completion
                 completes them in bash; the installed profiles equal the built-ins

The installed cases share one `meson install --destdir` tree under DIR/consumer-install (made
once under a lock, again only when something installed changed). Each program prints the bwrap
argv of a dry run of `ls /` in the minimal profile (the same for both header forms) and, where
bwrap works (always under CI=true), runs `ls /` in that sandbox. A missing cmake or pkg-config
skips its case (exit 77), except under CI=true, where it fails. Nothing is written to the source
tree; temp dirs are removed."""
import argparse
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

SKIP = 77


def in_ci() -> bool:
    return os.environ.get("CI") == "true"


def run(cmd, **kwargs):
    print("$ " + " ".join(shlex.quote(str(c)) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace", **kwargs)


def must(cmd, **kwargs) -> str:
    proc = run(cmd, **kwargs)
    if proc.returncode != 0:
        print(proc.stdout)
        raise SystemExit(f"FAIL: exit status {proc.returncode}: {cmd[0]}")
    return proc.stdout


def need_program(name: str) -> str:
    path = shutil.which(name)
    if path:
        return path
    if in_ci():
        raise SystemExit(f"FAIL: {name} not found (CI=true: the consumer tests must run)")
    print(f"skipped: {name} not found")
    raise SystemExit(SKIP)


def clean_env() -> dict:
    """The environment for nested builds: the parent meson test's variables must not leak in."""
    env = dict(os.environ)
    for var in ("MESON_TESTTHREADS", "MESONINTROSPECT", "MESON_BUILD_ROOT", "MESON_SOURCE_ROOT"):
        env.pop(var, None)
    return env


def bwrap_works() -> bool:
    """Whether a sandbox can start here; under CI=true it must."""
    bwrap = shutil.which("bwrap")
    ok = bool(bwrap) and subprocess.run([bwrap, "--unshare-user", "--ro-bind", "/", "/", "true"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
    if not ok and in_ci():
        raise SystemExit("FAIL: bwrap cannot start a sandbox here (CI=true)")
    if not ok:
        print("note: bwrap cannot start a sandbox here: the programs only dry-run")
    return ok


def check_program(path: str, form: str, real_run: bool) -> list:
    proc = run([path] + (["--run"] if real_run else []))
    print(proc.stdout, end="")
    if proc.returncode != 0:
        raise SystemExit(f"FAIL: {path} exited with {proc.returncode}")
    lines = proc.stdout.splitlines()
    if not lines or not lines[0].startswith("shannot ") or not lines[0].endswith(f"({form})"):
        raise SystemExit(f"FAIL: {path}: first line should name the {form} form, got {lines[:1]}")
    end = lines.index("ran: exit 0") if real_run and "ran: exit 0" in lines else len(lines)
    argv = lines[1:end]
    if argv[-3:] != ["--", "ls", "/"]:
        raise SystemExit(f"FAIL: {path}: the argv should end with -- ls /, got {argv[-3:]}")
    for flag in ("--unshare-pid", "--die-with-parent", "--new-session", "--clearenv", "--ro-bind"):
        if flag not in argv:
            raise SystemExit(f"FAIL: {path}: the argv lacks {flag}")
    if real_run and "usr" not in lines[end + 1:]:
        raise SystemExit(f"FAIL: {path} --run: `ls /` in the sandbox did not list usr")
    return argv


def check_pair(build: str, real_run: bool, multi="consumer", single="consumer_single") -> None:
    a = check_program(os.path.join(build, multi), "include", real_run)
    b = check_program(os.path.join(build, single), "single_include", real_run)
    if a != b:
        raise SystemExit("FAIL: the include/ and single_include/ builds produce different argv")


# ---- the installed tree --------------------------------------------------------------------------

def file_state(paths) -> str:
    """A digest of every file under `paths` (files or folders): names, sizes, modification times."""
    digest = hashlib.sha256()
    for top in sorted(paths):
        if os.path.isdir(top):
            files = sorted(os.path.join(d, n) for d, _, names in os.walk(top) for n in names)
        else:
            files = [top]
        for path in files:
            st = os.stat(path)
            digest.update(f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def introspect(meson: list, build: str, what: str):
    proc = subprocess.run(meson + ["introspect", build, what], stdout=subprocess.PIPE, text=True, env=clean_env())
    if proc.returncode != 0:
        raise SystemExit(f"FAIL: meson introspect {what} exited {proc.returncode}")
    return json.loads(proc.stdout)


def installed_tree(build: str, meson: list) -> str:
    """`meson install --destdir` of `build` into build/consumer-install, shared by the cases that
    run at once (a lock) and reused until something it installs changes. Returns the prefix in it."""
    env = clean_env()
    plan = introspect(meson, build, "--installed")
    prefix = next(o["value"] for o in introspect(meson, build, "--buildoptions") if o["name"] == "prefix")
    dest = os.path.join(os.path.abspath(build), "consumer-install")
    key = json.dumps(sorted(plan.items())) + file_state(plan.keys())
    with open(dest + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = os.path.join(dest, ".installed")
        try:
            with open(stamp, encoding="utf-8") as f:
                fresh = f.read() == key
        except OSError:
            fresh = False
        if not fresh:
            shutil.rmtree(dest, ignore_errors=True)
            must(meson + ["install", "-C", build, "--no-rebuild", "--quiet", "--destdir", dest], env=env)
            with open(stamp, "w", encoding="utf-8") as f:
                f.write(key)
        else:
            print(f"reusing the installed tree in {dest}")
    return dest + prefix


def copy_consumer(source: str, case_dir: str, tmp: str) -> str:
    """tests/consumer/CASE and the shared main.cpp, copied into tmp/src."""
    src = os.path.join(tmp, "src")
    shutil.copytree(os.path.join(source, "tests", "consumer", case_dir), src)
    shutil.copy(os.path.join(source, "tests", "consumer", "project", "main.cpp"), src)
    return src


def case_subproject(args, tmp: str) -> None:
    src = os.path.join(tmp, "src")
    build = os.path.join(tmp, "build")
    shutil.copytree(os.path.join(args.source, "tests", "consumer", "project"), src)
    os.makedirs(os.path.join(src, "subprojects"))
    os.symlink(os.path.abspath(args.source), os.path.join(src, "subprojects", "shannot"))
    env = clean_env()
    if args.cxx:
        env["CXX"] = " ".join(shlex.quote(c) for c in args.cxx)
    must(args.meson + ["setup", "--force-fallback-for=shannot,shannot_single", build, src], env=env)
    must(args.meson + ["compile", "-C", build], env=env)
    check_pair(build, real_run=False)
    print("ok: dependency('shannot') and dependency('shannot_single') from a subproject both build and agree")


def case_cmake(args, tmp: str) -> None:
    cmake = need_program("cmake")
    root = installed_tree(args.build, args.meson)
    real_run = bwrap_works()
    src = copy_consumer(args.source, "cmake", tmp)
    build = os.path.join(tmp, "build")
    cxx = args.cxx or ["c++"]
    configure = [cmake, "-S", src, "-B", build, f"-DCMAKE_PREFIX_PATH={root}", f"-DCMAKE_CXX_COMPILER={cxx[-1]}"]
    if len(cxx) > 1:
        configure.append("-DCMAKE_CXX_COMPILER_LAUNCHER=" + ";".join(cxx[:-1]))
    if shutil.which("ninja"):
        configure += ["-G", "Ninja"]
    out = must(configure, env=clean_env())
    found = re.search(r"shannot_DIR=(.*)", out)
    if not found or not os.path.realpath(found.group(1).strip()).startswith(os.path.realpath(root) + os.sep):
        raise SystemExit(f"FAIL: find_package did not find the installed tree under {root}: {found and found.group(1)}")
    must([cmake, "--build", build], env=clean_env())
    check_pair(build, real_run)
    print("ok: find_package(shannot CONFIG): shannot::shannot and shannot::shannot_single build, run and agree")


def case_pkgconfig(args, tmp: str) -> None:
    need_program("pkg-config")
    root = installed_tree(args.build, args.meson)
    real_run = bwrap_works()
    src = copy_consumer(args.source, "pkgconfig", tmp)
    build = os.path.join(tmp, "build")
    env = clean_env()
    env["PKG_CONFIG_PATH"] = os.path.join(root, "share", "pkgconfig")
    if args.cxx:
        env["CXX"] = " ".join(shlex.quote(c) for c in args.cxx)
    out = must(args.meson + ["setup", build, src], env=env)
    found = re.search(r"shannot includedir=(.*)", out)
    want = os.path.realpath(os.path.join(root, "include"))
    if not found or os.path.realpath(found.group(1).strip()) != want:
        raise SystemExit(f"FAIL: pkg-config's shannot is not the installed tree's ({want}): {found and found.group(1)}")
    must(args.meson + ["compile", "-C", build], env=env)
    check_pair(build, real_run)
    print("ok: dependency('shannot') and dependency('shannot_single') through pkg-config build, run and agree")


def case_single_header(args, tmp: str) -> None:
    root = installed_tree(args.build, args.meson)
    real_run = bwrap_works()
    program = os.path.join(tmp, "consumer_single")
    cxx = args.cxx or ["c++"]
    main = os.path.join(args.source, "tests", "consumer", "project", "main.cpp")
    must(cxx + ["-std=c++20", "-Wall", "-Wextra", "-Werror", "-pthread", "-DCONSUMER_SINGLE_HEADER",
                "-I", os.path.join(root, "include", "shannot_single"), main, "-o", program])
    check_program(program, "single_include", real_run)
    print("ok: the installed single header builds with a plain -I and runs")


# ---- the installed tool ----------------------------------------------------------------------------

def help_options(text: str) -> set:
    """The long options an "options:" section of --help lists (-h/--help included)."""
    options = set()
    start = text.find("\noptions:\n")
    if start < 0:
        return options
    for line in text[start + 10:].splitlines():
        if not line.startswith(" "):
            break
        match = re.match(r"  (?:-\w, )?(--[\w-]+)", line)
        if match:
            options.add(match.group(1))
    return options


def help_tree(tool: str, env: dict) -> dict:
    """{"run": {options}, "remote add": {options}, ...} from the tool's own --help texts."""
    main = must([tool, "--help"], env=env)
    names = re.findall(r"^  (\w+) ", main[main.index("\nsubcommands:\n"):].split("\n\n")[0], re.M)
    tree = {}
    for name in names:
        text = must([tool, name, "--help"], env=env)
        verbs = re.findall(r"^  (\w+) ", text.split("\n\n")[2], re.M) if "VERB --help" in text else []
        tree[name] = help_options(text)
        for verb in verbs:
            tree[f"{name} {verb}"] = help_options(must([tool, name, verb, "--help"], env=env))
    return tree


def man_problems(page: str, tree: dict) -> list:
    """What the man page lacks of the tool's --help: a subcommand, a verb or an option."""
    problems = []
    for path, options in tree.items():
        if f'.SS "shannot {path}"' not in page:
            problems.append(f"no section for `shannot {path}`")
        for option in options - {"--help"}:
            if "\\fB" + option.replace("-", "\\-") + "\\fR" not in page:
                problems.append(f"`shannot {path}`: no {option}")
    return problems


# bash-completion's helpers (_init_completion), which the script uses when they are loaded.
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"


def complete(completion_file: str, words: list, env: dict, with_helpers: bool = False) -> list:
    """COMPREPLY of the completion function for `words` (the last one is being completed), in a
    bash without rc files, with or without bash-completion's helpers loaded first."""
    script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; '
              'COMP_POINT=${#COMP_LINE}; COMPREPLY=(); _shannot; printf "%s\\n" "${COMPREPLY[@]}"')
    if with_helpers:
        script = f'source {shlex.quote(BASH_COMPLETION)}; ' + script
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", script, "complete", completion_file] + words,
                          capture_output=True, text=True, env=env, timeout=60)
    if proc.returncode != 0:
        raise SystemExit(f"FAIL: completing {words}: bash exited {proc.returncode}: {proc.stderr}")
    return [line for line in proc.stdout.splitlines() if line]


def completion_problems(completion_file: str, tool: str, tree: dict, env: dict, with_helpers: bool = False) -> list:
    """Where completing in bash disagrees with the tool's --help and configuration."""
    problems = []

    def expect(words, want, exact=True):
        got = set(complete(completion_file, [tool] + words, env, with_helpers))
        if (got != set(want)) if exact else not set(want) <= got:
            problems.append(f"`shannot {' '.join(words)}<TAB>`{' (bash-completion loaded)' if with_helpers else ''}: "
                            f"got {sorted(got)}, want {sorted(want)}")

    for path, options in tree.items():
        expect(path.split() + ["--"], {o for o in options if o.startswith("--")} | {"--help"})
    expect(["remote", ""], {p.split()[1] for p in tree if p.startswith("remote ")})
    expect(["re"], {"remote"}, exact=False)
    expect(["help", "v"], {"verify"})
    expect(["--profile", ""], {"minimal", "readonly", "diagnostics", "systemd", "mine"}, exact=False)
    expect(["--target", ""], {"db-1", "web.2"})
    expect(["remote", "test", ""], {"db-1", "web.2"})
    expect(["--timeout", "5", "ls", "--"], set())  # the command's own arguments: not ours
    return problems


def case_tool(args, tmp: str) -> None:
    root = installed_tree(args.build, args.meson)
    tool = os.path.join(root, "bin", "shannot")
    home = os.path.join(tmp, "home")
    env = clean_env()
    env.update({"HOME": home, "XDG_CONFIG_HOME": home})
    os.makedirs(os.path.join(home, "shannot", "profiles"))
    with open(os.path.join(home, "shannot", "config.json"), "w", encoding="utf-8") as f:
        json.dump({"version": 1, "remotes": {"db-1": {"host": "db"}, "web.2": {"host": "web"}}}, f)

    strays = [os.path.join(d, f) for d, _, files in os.walk(os.path.join(root, "include")) for f in files
              if not f.endswith(".hpp")]
    if strays:
        raise SystemExit(f"FAIL: include/ holds files that are not headers: {strays}")
    version = must([tool, "--version"], env=env)
    if not version.startswith("shannot "):
        raise SystemExit(f"FAIL: --version printed {version!r}")
    if bwrap_works():
        listing = must([tool, "ls", "/"], env=env)
        if "usr" not in listing.split():
            raise SystemExit("FAIL: the installed shannot's `ls /` did not list usr")

    # The built-in profiles, installed as JSON, are the built-ins; the tool finds them there.
    for name in ("minimal", "readonly", "diagnostics", "systemd"):
        with open(os.path.join(root, "share", "shannot", "profiles", f"{name}.json"), encoding="utf-8") as f:
            installed = json.load(f)
        if installed != json.loads(must([tool, "export", "--profile", name], env=env)):
            raise SystemExit(f"FAIL: share/shannot/profiles/{name}.json differs from the built-in {name}")
    shutil.copy(os.path.join(root, "share", "shannot", "profiles", "minimal.json"),
                os.path.join(home, "shannot", "profiles", "mine.json"))
    listed = json.loads(must([tool, "profiles", "--json"], env=env))
    installed_files = [f for f in listed["files"] if f["folder"] == "installed" and f["valid"]]
    if len(installed_files) != 4:
        raise SystemExit(f"FAIL: `shannot profiles --json` lists {len(installed_files)} installed profiles, want 4")

    tree = help_tree(tool, env)
    if len(tree) < 10:
        raise SystemExit(f"FAIL: found only {sorted(tree)} in the tool's --help")

    page_file = os.path.join(root, "share", "man", "man1", "shannot.1")
    with open(page_file, encoding="utf-8") as f:
        page = f.read()
    if page != must([tool, "--help-man"], env=env):
        raise SystemExit("FAIL: the installed shannot.1 differs from what the installed tool generates (stale)")
    problems = man_problems(page, tree)
    control = man_problems(page.replace("\\fB\\-\\-max\\-output\\fR", "\\fBmax\\fR"), tree)
    if "`shannot run`: no --max-output" not in control:
        raise SystemExit(f"FAIL: the man page check misses a removed option: {control}")
    if shutil.which("groff"):
        proc = subprocess.run(["groff", "-man", "-ww", "-z", page_file], capture_output=True, text=True)
        if proc.returncode != 0 or proc.stderr:
            problems.append(f"groff -man -ww: {proc.stderr.strip()}")
    elif in_ci():
        problems.append("groff not found (CI=true): the page's roff is not checked")

    completion_file = os.path.join(root, "share", "bash-completion", "completions", "shannot")
    with open(completion_file, encoding="utf-8") as f:
        completion = f.read()
    if completion != must([tool, "--help-completion"], env=env):
        raise SystemExit("FAIL: the installed bash completion differs from what the installed tool generates")
    problems += completion_problems(completion_file, tool, tree, env)
    if os.path.exists(BASH_COMPLETION):
        problems += completion_problems(completion_file, tool, tree, env, with_helpers=True)
        # With the helpers, --opt=VALUE stays one word (_init_completion -n =): its value completes.
        got = complete(completion_file, [tool, "--profile=sys"], env, with_helpers=True)
        if "systemd" not in got and "--profile=systemd" not in got:
            problems.append(f"`shannot --profile=sys<TAB>` (bash-completion loaded): got {got}")
    if shutil.which("shellcheck"):
        proc = subprocess.run(["shellcheck", "-s", "bash", completion_file], capture_output=True, text=True)
        if proc.returncode != 0:
            problems.append(f"shellcheck -s bash:\n{proc.stdout}")
    broken = os.path.join(tmp, "broken-completion")
    with open(broken, "w", encoding="utf-8") as f:
        f.write(completion.replace("'lint') echo '--json --help'", "'lint') echo '--help'"))
    control = completion_problems(broken, tool, tree, env)
    if len(control) != 1 or "shannot lint --" not in control[0]:
        raise SystemExit(f"FAIL: the completion check misses a removed option: {control}")

    if problems:
        raise SystemExit("FAIL:\n  " + "\n  ".join(problems))
    print(f"ok: the installed tool runs; shannot.1 and the bash completion are fresh and cover {len(tree)} "
          "subcommands and verbs of --help; the installed profiles are the built-ins")


CASES = {"subproject": case_subproject, "cmake": case_cmake, "pkgconfig": case_pkgconfig,
         "single-header": case_single_header, "tool": case_tool}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--build", required=True, help="the meson build folder (installed from)")
    parser.add_argument("--source", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."),
                        help="the shannot source tree")
    parser.add_argument("--meson", nargs="+", default=["meson"], help="the meson command")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (for debugging)")
    argv = sys.argv[1:]
    cxx = argv[argv.index("--") + 1:] if "--" in argv else []  # the C++ compiler command, after --
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    args.cxx = cxx
    args.source = os.path.abspath(args.source)

    tmp = tempfile.mkdtemp(prefix=f"shannot-consumer-{args.case}-")
    try:
        CASES[args.case](args, tmp)
        return 0
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
