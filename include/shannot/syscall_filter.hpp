// SPDX-License-Identifier: MIT
// SyscallFilter<Rules...>: a seccomp filter composed of rule sets at compile time; the default one.
#pragma once

#include <linux/filter.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <shannot/concepts/syscall_rule_set.hpp>
#include <shannot/detail/seccomp/assemble.hpp>
#include <shannot/detail/seccomp/bpf.hpp>
#include <shannot/error.hpp>
#include <shannot/syscall_rules.hpp>
#include <shannot/syscalls.hpp>

namespace shannot {

/// A classic-BPF seccomp program of at most `Capacity` instructions: what bwrap loads from a
/// descriptor (`--seccomp FD`, `--add-seccomp-fd FD`). A literal type, so a whole program can be
/// a compile-time constant.
template <std::size_t Capacity>
struct BpfProgram {
    std::array<sock_filter, Capacity> code{};
    std::size_t size = 0;

    [[nodiscard]] constexpr std::span<const sock_filter> instructions() const { return {code.data(), size}; }

    /// The bytes bwrap reads: each `struct sock_filter` as the kernel lays it out on a
    /// little-endian machine (both supported architectures are), whatever this host is.
    [[nodiscard]] std::string bytes() const {
        std::string out(size * sizeof(sock_filter), '\0');
        for (std::size_t i = 0; i < size; ++i) {
            const auto& f = code[i];
            const unsigned char raw[8] = {static_cast<unsigned char>(f.code & 0xff),
                                          static_cast<unsigned char>(f.code >> 8),
                                          f.jt,
                                          f.jf,
                                          static_cast<unsigned char>(f.k & 0xff),
                                          static_cast<unsigned char>((f.k >> 8) & 0xff),
                                          static_cast<unsigned char>((f.k >> 16) & 0xff),
                                          static_cast<unsigned char>(f.k >> 24)};
            for (std::size_t b = 0; b < 8; ++b) out[i * 8 + b] = static_cast<char>(raw[b]);
        }
        return out;
    }
};

/// A syscall filter composed of rule sets, each a named group of deny rules (see
/// concepts/syscall_rule_set.hpp): a call is refused (with its rule's errno, EPERM unless the rule
/// says otherwise) when a rule of a group left on matches it, and allowed otherwise. The program
/// checks `seccomp_data.arch` first: x86_64 and aarch64 each get their part, with their own
/// syscall numbers; any other arch (i386 or arm code run by a 64-bit process, ...) and x86_64's
/// x32 ABI kill the process, so no call of an ABI the tables do not describe gets through.
///
///     using MyFilter = shannot::SyscallFilter<shannot::DenyIoUring, shannot::DenyPtrace, MyRules>;
///     constexpr auto program = MyFilter::program();          // built by the compiler
///     const std::string bytes = program.bytes();             // what bwrap reads from a descriptor
///
/// Groups can be left out by name at run time (a profile's `syscall_filter_allow`): the same
/// generator, called with a mask, emits them not at all.
template <class... Rules>
class SyscallFilter {
    static_assert(sizeof...(Rules) >= 1, "SyscallFilter<Rules...>: name at least one rule set");
    static_assert((requires {
                      { Rules::name } -> std::convertible_to<std::string_view>;
                  } &&
                   ...),
                  "SyscallFilter<Rules...>: each rule set must declare `static constexpr std::string_view name` "
                  "(see shannot/concepts/syscall_rule_set.hpp, SyscallRuleSetArchetype)");
    static_assert(
        (requires {
            { Rules::summary } -> std::convertible_to<std::string_view>;
        } &&
         ...),
        "SyscallFilter<Rules...>: each rule set must declare `static constexpr std::string_view summary`, what it "
        "denies, for people (see SyscallRuleSetArchetype)");
    static_assert(
        (detail::has_rule_array<Rules> && ...),
        "SyscallFilter<Rules...>: each rule set must declare `static constexpr std::array<shannot::SyscallRule, N> "
        "rules` (see SyscallRuleSetArchetype)");
    static_assert((SyscallRuleSet<Rules> && ...),
                  "SyscallFilter<Rules...>: a rule set does not model shannot::SyscallRuleSet "
                  "(an empty `rules`?)");
    static_assert(sizeof...(Rules) <= 64,
                  "SyscallFilter<Rules...>: at most 64 rule sets (one bit each in a GroupMask)");

public:
    /// Bit i set: the i-th rule set (groups[i]) is left out.
    using GroupMask = std::uint64_t;

    /// The rule sets' names, in order: the groups a profile may relax.
    static constexpr std::array<std::string_view, sizeof...(Rules)> groups{std::string_view(Rules::name)...};
    /// What each group denies, for people (lint, docs), in the same order.
    static constexpr std::array<std::string_view, sizeof...(Rules)> summaries{std::string_view(Rules::summary)...};

    /// Instructions of the program with every group on; a relaxed one is shorter.
    static constexpr std::size_t capacity = detail::seccomp::program_size<Rules...>(0);
    static_assert(capacity <= detail::seccomp::max_instructions,
                  "SyscallFilter<Rules...>: the program is longer than the kernel's 4096 instructions (BPF_MAXINSNS)");
    static_assert(
        [] {
            for (std::size_t i = 0; i < groups.size(); ++i)
                for (std::size_t j = i + 1; j < groups.size(); ++j)
                    if (groups[i] == groups[j]) return false;
            return true;
        }(),
        "SyscallFilter<Rules...>: two rule sets have the same name; a profile could not tell them apart");

    /// The index of group `name`, or nothing.
    [[nodiscard]] static constexpr std::optional<std::size_t> group_index(std::string_view name) {
        for (std::size_t i = 0; i < groups.size(); ++i)
            if (groups[i] == name) return i;
        return std::nullopt;
    }

    /// The program, without the groups whose bits are set in `relaxed`. Constant-evaluated when
    /// `relaxed` is a constant (`constexpr auto p = F::program();`).
    [[nodiscard]] static constexpr BpfProgram<capacity> program(GroupMask relaxed = 0) {
        BpfProgram<capacity> out{};
        detail::seccomp::Emitter e{out.code.data(), 0};
        detail::seccomp::emit_program<Rules...>(e, relaxed);
        out.size = e.size;
        return out;
    }

    /// The mask that leaves out the groups `names` (a profile's relaxations); an unknown name is
    /// an error naming it and the groups there are. `field` prefixes the message (a field path).
    template <class Names>
    [[nodiscard]] static Result<GroupMask> mask_of(const Names& names,
                                                   std::string_view field = "syscall_filter_allow") {
        GroupMask mask = 0;
        std::size_t i = 0;
        for (const auto& name : names) {
            const auto index = group_index(name);
            if (!index) {
                std::string known;
                for (auto g : groups) known += (known.empty() ? "" : ", ") + std::string(g);
                return fail(errc::invalid_profile, std::string(field) + "[" + std::to_string(i) +
                                                       "]: no syscall filter group named '" + std::string(name) +
                                                       "' (groups: " + known + ")");
            }
            mask |= GroupMask{1} << *index;
            ++i;
        }
        return mask;
    }
};

/// The filter every profile gets unless it says `"syscall_filter": "none"`: each built-in group,
/// in the order their names are listed (and relaxed) in profiles.
using DefaultSyscallFilter = SyscallFilter<DenyIoUring, DenyPtrace, DenyBpf, DenyPerfEvents, DenyUserfaultfd,
                                           DenyKeyring, DenyMount, DenyNamespaces, DenyUnixSockets, DenyNetlinkSockets,
                                           DenyOtherSocketFamilies, DenyKernelModules, DenyPersonality>;

/// The values of a profile's `"syscall_filter"`: the default filter, or no built-in filter.
inline constexpr std::string_view default_syscall_filter_name = "default";
inline constexpr std::string_view no_syscall_filter_name = "none";

/// Checks a profile's `syscall_filter` and `syscall_filter_allow`; errors name the field and the value.
template <class Names>
[[nodiscard]] Result<void> validate_syscall_filter(std::string_view choice, const Names& allow) {
    if (choice == no_syscall_filter_name) {
        if (!std::empty(allow))
            return fail(errc::invalid_profile,
                        "syscall_filter_allow: relaxes groups of the default filter, which "
                        "\"syscall_filter\": \"none\" turns off; remove one of them");
        return {};
    }
    if (choice != default_syscall_filter_name)
        return fail(errc::invalid_profile, "syscall_filter: unknown value '" + std::string(choice) + "' (expected \"" +
                                               std::string(default_syscall_filter_name) + "\" or \"" +
                                               std::string(no_syscall_filter_name) + "\")");
    auto mask = DefaultSyscallFilter::mask_of(allow);
    if (!mask) return propagate(mask);
    return {};
}

/// The built-in filter's program as bwrap reads it, for a profile's `syscall_filter` and
/// `syscall_filter_allow`; empty for "none".
template <class Names>
[[nodiscard]] Result<std::string> syscall_filter_bytes(std::string_view choice, const Names& allow) {
    if (auto ok = validate_syscall_filter(choice, allow); !ok) return propagate(ok);
    if (choice == no_syscall_filter_name) return std::string();
    if (std::empty(allow)) {
        // Built once per process (a few microseconds); `constexpr auto p = DefaultSyscallFilter::program()`
        // would build it in the compiler, but in every file that includes shannot (B10: compile time).
        static const std::string full = DefaultSyscallFilter::program().bytes();
        return full;
    }
    return DefaultSyscallFilter::program(*DefaultSyscallFilter::mask_of(allow)).bytes();
}

}  // namespace shannot
