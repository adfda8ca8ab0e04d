#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""B10 of issue 6: compile time of a file that includes the single header vs one that includes
only <nlohmann/json.hpp> (both `int main(){}`), interleaved, medians.

usage: bench_compile.py --include SINGLE_INCLUDE_DIR [--reps N] -- COMPILER [ARGS...]
COMPILER and ARGS are the compiler command meson gives (cpp.cmd_array()) and the flags to use.
Prints the uniform result line; exits 0 whatever the ratio, 1 when a compile fails.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

TARGET = 1.5


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def compile_once(command: list[str], source: str, obj: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one compile."""
    cpu0 = children_cpu()
    t0 = time.perf_counter()
    p = subprocess.run(command + ['-c', source, '-o', obj], stdin=subprocess.DEVNULL, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    cpu = children_cpu() - cpu0
    if p.returncode != 0:
        sys.stdout.flush()
        sys.stderr.write(f'bench: measurement failed: compiling {os.path.basename(source)} failed '
                         f'({" ".join(command)}):\n{p.stderr[-4000:]}\n')
        sys.exit(1)
    return wall, cpu


def fmt(seconds: float) -> str:
    return f'{seconds:.2f} s' if seconds >= 1 else f'{seconds * 1e3:.0f} ms'


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--include', required=True, help='the single_include directory')
    parser.add_argument('--reps', type=int, default=5)
    argv = sys.argv[1:]
    if '--' not in argv:
        parser.error('no compiler command: give it after --')
    split = argv.index('--')
    args = parser.parse_args(argv[:split])
    compiler = argv[split + 1:]
    if not compiler:
        parser.error('no compiler command after --')

    with tempfile.TemporaryDirectory(prefix='shannot-bench-compile-') as tmp:
        sources = {}
        for name, header in (('single', '<shannot/shannot.hpp>'), ('json', '<nlohmann/json.hpp>')):
            path = os.path.join(tmp, f'{name}.cpp')
            with open(path, 'w') as f:
                f.write(f'#include {header}\nint main() {{}}\n')
            sources[name] = path
        command = compiler + ['-I', args.include]
        runs = {'single': [], 'json': []}
        # One untimed compile of each warms the page cache with the compiler and the headers.
        for name in ('single', 'json'):
            compile_once(command, sources[name], os.path.join(tmp, name + '.o'))
        for i in range(args.reps):
            order = ('single', 'json') if i % 2 == 0 else ('json', 'single')
            for name in order:
                runs[name].append(compile_once(command, sources[name], os.path.join(tmp, name + '.o')))

    wall = {k: statistics.median(w for w, _ in v) for k, v in runs.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in runs.items()}
    ratio = wall['single'] / wall['json']
    verdict = 'PASS' if ratio <= TARGET else 'MISS'
    shown = f'{ratio:.2f}x'
    if ratio != TARGET and shown == f'{TARGET:.2f}x':
        shown = f'{ratio:.3f}x'  # do not print a MISS next to a figure that reads as the target
    print(f'B10 compile time, #include <shannot/shannot.hpp> (single header) vs <nlohmann/json.hpp> only: '
          f'{fmt(wall["single"])} vs {fmt(wall["json"])} = {shown} (target <= {TARGET}x) {verdict}')
    print(f'    medians of {args.reps} interleaved compiles each (wall); CPU time (user+sys) '
          f'{fmt(cpu["single"])} vs {fmt(cpu["json"])} = {cpu["single"] / cpu["json"]:.2f}x; '
          f'compiler: {" ".join(compiler)}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
