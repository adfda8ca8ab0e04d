// SPDX-License-Identifier: MIT
// Must not compile: a rule set without its rules.
#include <shannot/syscall_filter.hpp>

struct NoRules {
    static constexpr std::string_view name = "no_rules";
    static constexpr std::string_view summary = "nothing";
};

[[maybe_unused]] constexpr auto program = shannot::SyscallFilter<shannot::DenyBpf, NoRules>::program();
