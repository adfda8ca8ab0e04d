// SPDX-License-Identifier: MIT
// The syscall rule set contract: a named group of deny rules that a SyscallFilter composes.
#pragma once

#include <array>
#include <cerrno>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <string_view>
#include <type_traits>

#include <shannot/syscalls.hpp>

namespace shannot {

/// What a rule looks at besides the call's number. Arguments are compared by their low 32 bits:
/// the calls the built-in rules check take an int or unsigned int there (socket's family,
/// personality's persona), or ignore the high half (clone's flags) or refuse it (unshare: EINVAL).
enum class SyscallArgCheck : std::uint8_t {
    none,        ///< every call of it
    any_bit,     ///< the argument has a bit of `values[0]` set
    equals,      ///< the argument equals `values[0]`
    not_one_of,  ///< the argument is none of `values[0..count)`
};

namespace detail {
/// Not constexpr on purpose: a rule built at compile time with too many values fails to compile
/// here, naming the problem.
inline void more_than_max_values_allowed() { std::abort(); }
}  // namespace detail

/// One deny rule: calls of `call` that pass `check` fail with `error` (an errno) instead of
/// reaching the kernel. Build them with the named constructors.
struct SyscallRule {
    static constexpr std::size_t max_values = 8;

    Syscall call{};
    SyscallArgCheck check = SyscallArgCheck::none;
    std::uint8_t arg = 0;  ///< which argument (0-5) the check reads
    std::array<std::uint32_t, max_values> values{};
    std::uint8_t count = 0;
    std::uint16_t error = EPERM;

    /// Every call of `call` fails with `error`.
    [[nodiscard]] static constexpr SyscallRule deny(Syscall call, std::uint16_t error = EPERM) {
        return {call, SyscallArgCheck::none, 0, {}, 0, error};
    }
    /// Calls whose argument `arg` has any bit of `mask` set fail (clone with namespace flags).
    [[nodiscard]] static constexpr SyscallRule deny_if_any_bit(Syscall call, std::uint8_t arg, std::uint32_t mask,
                                                               std::uint16_t error = EPERM) {
        return {call, SyscallArgCheck::any_bit, arg, {mask}, 1, error};
    }
    /// Calls whose argument `arg` equals `value` fail (socket of one family).
    [[nodiscard]] static constexpr SyscallRule deny_if_equal(Syscall call, std::uint8_t arg, std::uint32_t value,
                                                             std::uint16_t error = EPERM) {
        return {call, SyscallArgCheck::equals, arg, {value}, 1, error};
    }
    /// Calls whose argument `arg` is none of `allowed` (at most max_values) fail.
    [[nodiscard]] static constexpr SyscallRule deny_unless_one_of(Syscall call, std::uint8_t arg,
                                                                  std::initializer_list<std::uint32_t> allowed,
                                                                  std::uint16_t error = EPERM) {
        SyscallRule rule{call, SyscallArgCheck::not_one_of, arg, {}, 0, error};
        for (auto value : allowed) {
            if (rule.count == max_values) detail::more_than_max_values_allowed();
            rule.values[rule.count++] = value;
        }
        return rule;
    }

    friend constexpr bool operator==(const SyscallRule&, const SyscallRule&) = default;
};

namespace detail {
template <class T>
struct is_rule_array : std::false_type {};
template <std::size_t N>
struct is_rule_array<std::array<SyscallRule, N>> : std::true_type {};
template <class R>
concept has_rule_array = requires {
    requires is_rule_array<std::remove_cv_t<decltype(R::rules)>>::value;
};
}  // namespace detail

/// A rule set: a named group of deny rules, the unit a SyscallFilter composes and a profile may
/// relax by name (`"syscall_filter_allow": ["unix_sockets"]`). Everything is static and constant:
/// the filter is assembled from it at compile time.
template <class R>
concept SyscallRuleSet = requires {
    { R::name } -> std::convertible_to<std::string_view>;
    { R::summary } -> std::convertible_to<std::string_view>;
    requires detail::has_rule_array<R>;
    requires R::rules.size() > 0;
};

/// The archetype: the smallest rule set, with each member's contract.
///  - `name`: the group's name, unique within a filter, [a-z0-9_]; profiles relax it by this name
///    and errors and lints show it.
///  - `summary`: what the group denies and what relaxing it gives back, for people (lint, docs).
///  - `rules`: a `static constexpr std::array<SyscallRule, N>` (N >= 1). A call is refused when
///    any rule of any group left on matches it; the first match (in filter order) picks the errno.
/// Rules only deny: a group cannot allow what another group denies, so groups compose in any
/// order and relaxing one never weakens another.
struct SyscallRuleSetArchetype {
    static constexpr std::string_view name = "archetype";
    static constexpr std::string_view summary = "acct(2): process accounting";
    static constexpr std::array<SyscallRule, 1> rules{SyscallRule::deny(syscalls::acct)};
};
static_assert(SyscallRuleSet<SyscallRuleSetArchetype>);

}  // namespace shannot
