// SPDX-License-Identifier: MIT
// The header check of the portable build: the remote half of the library (ssh_client_probe.cpp),
// compiled with linux_only_headers/ ahead of the system's (each of its headers is an #error) and
// with the Linux-only names that no symbol check can see (flags, macros) poisoned. Built with
// SHANNOT_PORTABLE_POSIX=1 it must compile; without it (the control), it must not.
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

// Declared by the headers above (included first, so their declarations do not trip the poison):
// any later use is an error. The macros are undefined first (clang warns when poisoning one).
#undef F_SETPIPE_SZ
#undef F_GETPIPE_SZ
#undef O_PATH
#undef SOCK_CLOEXEC
#undef SOCK_NONBLOCK
#pragma GCC poison pipe2 dup3 accept4 close_range F_SETPIPE_SZ F_GETPIPE_SZ O_PATH SOCK_CLOEXEC SOCK_NONBLOCK

#include "ssh_client_probe.cpp"
