// SPDX-License-Identifier: MIT
// The filter generator: rule sets → one classic-BPF program, evaluated at compile time.
#pragma once

#include <linux/filter.h>

#include <array>
#include <cstddef>
#include <cstdint>

#include <shannot/concepts/syscall_rule_set.hpp>
#include <shannot/detail/seccomp/bpf.hpp>
#include <shannot/syscalls.hpp>

namespace shannot::detail::seccomp {

/// Where instructions go: into `out` when set, else only counted (the first pass, which sizes the
/// program and the jumps over each architecture's part).
struct Emitter {
    sock_filter* out = nullptr;
    std::size_t size = 0;
    constexpr void put(const sock_filter& instruction) {
        if (out != nullptr) out[size] = instruction;
        ++size;
    }
};

/// One rule, for one architecture. On entry and on exit A holds the call's number; every jump
/// stays inside the rule's own few instructions (classic BPF's conditional jumps reach 255).
///   none:        jeq NR ? next : skip 1;  ret ERRNO
///   any_bit:     jeq NR ? next : skip 4;  ld arg;  jset MASK ? next : skip 1;  ret ERRNO;  ld nr
///   equals:      the same with jeq VALUE
///   not_one_of:  jeq NR ? next : skip k+3;  ld arg;  jeq V1..Vk ? to "ld nr" : next;  ret ERRNO;  ld nr
constexpr void emit_rule(Emitter& e, const SyscallRule& rule, const SeccompArch& arch) {
    const int nr = rule.call.*arch.number;
    if (nr < 0) return;  // no such call on this architecture
    const auto number = static_cast<std::uint32_t>(nr);
    const auto deny = statement(ret, ret_errno | (rule.error & ret_data));
    const auto arg = statement(ld_abs, offset_arg_low(rule.arg));
    const auto reload = statement(ld_abs, offset_nr);
    switch (rule.check) {
    case SyscallArgCheck::none:
        e.put(jump(jeq, number, 0, 1));
        e.put(deny);
        return;
    case SyscallArgCheck::any_bit:
    case SyscallArgCheck::equals:
        e.put(jump(jeq, number, 0, 4));
        e.put(arg);
        e.put(jump(rule.check == SyscallArgCheck::any_bit ? jset : jeq, rule.values[0], 0, 1));
        e.put(deny);
        e.put(reload);
        return;
    case SyscallArgCheck::not_one_of: {
        const auto k = static_cast<std::uint8_t>(rule.count);
        e.put(jump(jeq, number, 0, static_cast<std::uint8_t>(k + 3)));
        e.put(arg);
        for (std::uint8_t i = 0; i < k; ++i) e.put(jump(jeq, rule.values[i], static_cast<std::uint8_t>(k - i), 0));
        e.put(deny);
        e.put(reload);
        return;
    }
    }
}

template <class... Rules>
constexpr void emit_section(Emitter& e, const SeccompArch& arch, std::uint64_t relaxed) {
    e.put(statement(ld_abs, offset_nr));
    if (arch.x32_bit != 0) {
        // Numbers from the x32 bit up are not x86_64 calls: refused, but for -1 (no call at all).
        e.put(jump(jge, arch.x32_bit, 0, 2));
        e.put(jump(jeq, no_syscall, 1, 0));
        e.put(statement(ret, ret_kill_process));
    }
    std::size_t group = 0;
    const auto emit_group = [&](const auto& rules) {
        if (((relaxed >> group) & 1u) == 0)
            for (const auto& rule : rules) emit_rule(e, rule, arch);
        ++group;
    };
    (emit_group(Rules::rules), ...);
    e.put(statement(ret, ret_allow));
}

/// The whole program: a dispatch on `seccomp_data.arch` to one part per architecture, any other
/// arch killed; each part ends in ALLOW. Groups whose bit is set in `relaxed` are left out.
///   0      ld arch
///   1+2i   jeq ARCH_i ? next : skip 1
///   2+2i   ja part_i
///   1+2n   ret KILL_PROCESS
///          part_0 ... part_{n-1}
template <class... Rules>
constexpr void emit_program(Emitter& e, std::uint64_t relaxed) {
    std::array<std::size_t, seccomp_arches.size()> sizes{};
    for (std::size_t i = 0; i < seccomp_arches.size(); ++i) {
        Emitter counter;
        emit_section<Rules...>(counter, seccomp_arches[i], relaxed);
        sizes[i] = counter.size;
    }
    const std::size_t first_part = 2 * seccomp_arches.size() + 2;
    e.put(statement(ld_abs, offset_arch));
    std::size_t start = first_part;
    for (std::size_t i = 0; i < seccomp_arches.size(); ++i) {
        e.put(jump(jeq, seccomp_arches[i].audit_arch, 0, 1));
        const std::size_t here = e.size;  // the ja's own index
        e.put(statement(ja, static_cast<std::uint32_t>(start - here - 1)));
        start += sizes[i];
    }
    e.put(statement(ret, ret_kill_process));
    for (const auto& arch : seccomp_arches) emit_section<Rules...>(e, arch, relaxed);
}

template <class... Rules>
constexpr std::size_t program_size(std::uint64_t relaxed) {
    Emitter counter;
    emit_program<Rules...>(counter, relaxed);
    return counter.size;
}

}  // namespace shannot::detail::seccomp
