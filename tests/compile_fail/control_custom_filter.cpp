// SPDX-License-Identifier: MIT
// Positive control: a rule set of one's own composes with the built-in ones, at compile time.
#include <shannot/syscall_filter.hpp>

struct DenyChroot {
    static constexpr std::string_view name = "chroot";
    static constexpr std::string_view summary = "chroot";
    static constexpr std::array rules{shannot::SyscallRule::deny(shannot::syscalls::chroot)};
};
static_assert(shannot::SyscallRuleSet<DenyChroot>);

[[maybe_unused]] constexpr auto program = shannot::SyscallFilter<shannot::DenyBpf, DenyChroot>::program();
static_assert(program.size > 0);
