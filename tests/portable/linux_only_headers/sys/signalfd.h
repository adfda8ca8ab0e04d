// SPDX-License-Identifier: MIT
// Stands in for <sys/signalfd.h> in the header check of the portable build (tests/portable/meson.build).
#error "shannot: a SHANNOT_PORTABLE_POSIX=1 build included <sys/signalfd.h>, where Linux declares signalfd"
