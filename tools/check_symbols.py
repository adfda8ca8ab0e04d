#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Fails when a SHANNOT_PORTABLE_POSIX=1 binary links a Linux-only symbol, or when the control
# (the same program built for Linux) links none: then the check could not see them.
"""Usage:
  check_symbols.py --portable BINARY --control BINARY

Lists each binary's undefined dynamic symbols (`nm -D --undefined-only`, else `nm -u`) and
matches them against the Linux-only names below. Passes when the portable binary links none of
them and the control links at least one. Prints what it found in both."""
import argparse
import fnmatch
import subprocess
import sys

# Calls that exist on Linux (glibc) but not on macOS and the BSDs, or not in the same form.
# Standard POSIX calls are not here, nor glibc's ABI names for them (__errno_location,
# __isoc99_sscanf): those are how glibc spells standard calls, which other libcs spell their way.
LINUX_ONLY = [
    "pipe2", "getrandom", "syscall", "pidfd_*", "eventfd", "eventfd_*", "epoll_*", "signalfd",
    "timerfd_*", "inotify_*", "*_np", "memfd_create", "close_range", "accept4", "dup3", "prctl",
    "prlimit", "prlimit64", "splice", "vmsplice", "tee", "sendfile", "sendfile64", "fallocate",
    "fallocate64", "statx", "getauxval", "gettid", "clone", "clone3", "unshare", "setns", "mount",
    "umount", "umount2", "pivot_root", "capget", "capset", "sched_getaffinity", "sched_setaffinity",
    "personality", "sysinfo", "get_nprocs", "secure_getenv", "process_vm_readv", "process_vm_writev",
]


def undefined_symbols(binary):
    """The names (without @VERSION) of what `binary` needs from shared libraries."""
    for cmd in (["nm", "-D", "--undefined-only", binary], ["nm", "-u", binary]):
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.returncode == 0 and proc.stdout.strip():
            names = set()
            for line in proc.stdout.splitlines():
                fields = line.split()
                if fields:
                    names.add(fields[-1].split("@")[0])
            return names
    raise SystemExit(f"check_symbols: cannot list the symbols of {binary} (is binutils' nm installed?)")


def linux_only(names):
    return sorted(n for n in names if any(fnmatch.fnmatchcase(n, p) for p in LINUX_ONLY))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--portable", required=True, help="built with SHANNOT_PORTABLE_POSIX=1")
    parser.add_argument("--control", required=True, help="the same program built without it")
    args = parser.parse_args()

    portable = linux_only(undefined_symbols(args.portable))
    control = linux_only(undefined_symbols(args.control))
    print(f"control ({args.control}) links {len(control)} Linux-only symbols: {' '.join(control) or 'none'}")
    print(f"portable ({args.portable}) links {len(portable)}: {' '.join(portable) or 'none'}")
    if not control:
        print("FAIL: the control links no Linux-only symbol, so this check cannot tell a portable build from a Linux one")
        return 1
    if portable:
        print("FAIL: the SHANNOT_PORTABLE_POSIX=1 build links Linux-only symbols: " + " ".join(portable))
        return 1
    print("ok: the portable build links no Linux-only symbol")
    return 0


if __name__ == "__main__":
    sys.exit(main())
