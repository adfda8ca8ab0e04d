// SPDX-License-Identifier: MIT
// Positive control: a rule set of one's own composes with the built-in ones, at compile time
// (the example of docs/seccomp.md, word for word).
#include <shannot/shannot.hpp>

// Deny chroot(2) and acct(2); deny socket(2) of AF_INET6 with EAFNOSUPPORT.
struct DenyMine {
    static constexpr std::string_view name = "mine";
    static constexpr std::string_view summary = "chroot, acct, and IPv6 sockets";
    static constexpr std::array rules{
        shannot::SyscallRule::deny(shannot::syscalls::chroot),
        shannot::SyscallRule::deny(shannot::syscalls::acct),
        shannot::SyscallRule::deny_if_equal(shannot::syscalls::socket, 0, shannot::syscall_values::af_inet6,
                                            EAFNOSUPPORT),
    };
};

// Built-in groups and yours, in any order: groups only deny, so none loosens another.
using MyFilter = shannot::SyscallFilter<shannot::DenyIoUring, shannot::DenyPtrace, shannot::DenyUnixSockets, DenyMine>;

constexpr auto program = MyFilter::program();  // computed by the compiler
static_assert(program.size <= 4096);

static_assert(shannot::SyscallRuleSet<DenyMine>);
static_assert(MyFilter::groups[3] == "mine");
