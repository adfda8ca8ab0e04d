// SPDX-License-Identifier: MIT
// Stands in for <sys/inotify.h> in the header check of the portable build (tests/portable/meson.build).
#error "shannot: a SHANNOT_PORTABLE_POSIX=1 build included <sys/inotify.h>, where Linux declares inotify_*"
