// SPDX-License-Identifier: MIT
// The generic syscall numbers (include/uapi/asm-generic/unistd.h), which aarch64 uses, for
// tests/seccomp_test.cpp to check shannot's aarch64 column against on any host. A TU of its own,
// built without unity and without shannot: the generic header's __NR_ macros clash with the host
// architecture's (<sys/syscall.h>) on x86_64.

// What arm64's own <asm/unistd.h> (arch/arm64/include/uapi/asm/unistd.h) defines before it
// includes the generic table: the optional calls arm64 has.
#define __ARCH_WANT_RENAMEAT
#define __ARCH_WANT_NEW_STAT
#define __ARCH_WANT_SET_GET_RLIMIT
#define __ARCH_WANT_TIME32_SYSCALLS
#define __ARCH_WANT_SYS_CLONE3
#define __ARCH_WANT_MEMFD_SECRET
#include <asm-generic/unistd.h>

#include <string_view>
#include <utility>
#include <vector>

namespace shannot_test {

/// (name, __NR_name) for each call of shannot's table the installed generic header defines.
std::vector<std::pair<std::string_view, long>> generic_syscall_numbers() {
#define NR(name) \
    { #name, __NR_##name }
    return {
#include "support/syscall_names.inc"
    };
#undef NR
}

}  // namespace shannot_test
