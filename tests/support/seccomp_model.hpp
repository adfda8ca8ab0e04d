// SPDX-License-Identifier: MIT
// Test support: a classic-BPF interpreter for seccomp programs, and what the rule sets say a call
// should get (the reference the generated program is compared with, computed from the rules'
// data without going through BPF).
#pragma once

#include <shannot/shannot.hpp>

#include <linux/filter.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace shannot_test {

/// One call as seccomp sees it (struct seccomp_data).
struct SeccompCall {
    std::uint32_t arch = 0;
    std::uint32_t nr = 0;
    std::array<std::uint64_t, 6> args{};
};

/// What running a program on a call gave: the return value, or why the program is malformed.
struct BpfOutcome {
    std::optional<std::uint32_t> value{};
    std::string error{};
};

/// Runs `program` as the kernel's seccomp would, on a little-endian machine. Only the
/// instructions a seccomp filter may use that read `seccomp_data` are known; anything else, a
/// jump out of the program, a load past the data, or running off the end is an error (the kernel
/// refuses such a program: seccomp_check_filter, bpf_check_classic).
inline BpfOutcome run_bpf(std::span<const sock_filter> program, const SeccompCall& call) {
    std::array<unsigned char, 64> data{};
    auto put32 = [&](std::size_t at, std::uint32_t v) {
        for (int b = 0; b < 4; ++b) data[at + b] = static_cast<unsigned char>(v >> (8 * b));
    };
    put32(0, call.nr);
    put32(4, call.arch);
    for (std::size_t i = 0; i < 6; ++i) {
        put32(16 + 8 * i, static_cast<std::uint32_t>(call.args[i]));
        put32(20 + 8 * i, static_cast<std::uint32_t>(call.args[i] >> 32));
    }
    if (program.empty() || program.size() > 4096)
        return {std::nullopt, "program size " + std::to_string(program.size())};
    std::uint32_t a = 0;
    std::size_t pc = 0;
    for (std::size_t steps = 0; steps <= program.size(); ++steps) {
        if (pc >= program.size()) return {std::nullopt, "ran off the end at " + std::to_string(pc)};
        const sock_filter& f = program[pc];
        auto jump_to = [&](std::size_t offset) -> bool {
            if (pc + 1 + offset >= program.size()) return false;
            pc = pc + 1 + offset;
            return true;
        };
        switch (f.code) {
        case BPF_LD | BPF_W | BPF_ABS:
            if (f.k > 60 || f.k % 4 != 0) return {std::nullopt, "load at " + std::to_string(f.k)};
            a = static_cast<std::uint32_t>(data[f.k]) | static_cast<std::uint32_t>(data[f.k + 1]) << 8 |
                static_cast<std::uint32_t>(data[f.k + 2]) << 16 | static_cast<std::uint32_t>(data[f.k + 3]) << 24;
            ++pc;
            break;
        case BPF_JMP | BPF_JA:
            if (!jump_to(f.k)) return {std::nullopt, "ja out of the program at " + std::to_string(pc)};
            break;
        case BPF_JMP | BPF_JEQ | BPF_K:
        case BPF_JMP | BPF_JGE | BPF_K:
        case BPF_JMP | BPF_JGT | BPF_K:
        case BPF_JMP | BPF_JSET | BPF_K: {
            const auto op = f.code & 0xf0;
            const bool taken = op == BPF_JEQ   ? a == f.k
                               : op == BPF_JGE ? a >= f.k
                               : op == BPF_JGT ? a > f.k
                                               : (a & f.k) != 0;
            if (!jump_to(taken ? f.jt : f.jf))
                return {std::nullopt, "jump out of the program at " + std::to_string(pc)};
            break;
        }
        case BPF_RET | BPF_K: return {f.k, {}};
        default: return {std::nullopt, "unknown opcode " + std::to_string(f.code) + " at " + std::to_string(pc)};
        }
    }
    return {std::nullopt, "no return (a loop?)"};
}

/// What the rule sets of `Filter` say `call` should get with the groups of `relaxed` left out:
/// computed from the rules' data directly, as their documentation reads.
template <class Filter>
struct SeccompReference;

template <class... Rules>
struct SeccompReference<shannot::SyscallFilter<Rules...>> {
    static std::uint32_t expect(const SeccompCall& call, std::uint64_t relaxed) {
        namespace sc = shannot::detail::seccomp;
        const shannot::SeccompArch* arch = nullptr;
        for (const auto& a : shannot::seccomp_arches)
            if (a.audit_arch == call.arch) arch = &a;
        if (arch == nullptr) return sc::ret_kill_process;
        if (arch->x32_bit != 0 && call.nr >= arch->x32_bit && call.nr != 0xffffffffu) return sc::ret_kill_process;
        std::optional<std::uint32_t> verdict;
        std::size_t group = 0;
        auto consider = [&](const auto& rules) {
            const bool on = ((relaxed >> group++) & 1u) == 0;
            if (!on || verdict) return;
            for (const shannot::SyscallRule& rule : rules) {
                const int number = rule.call.*(arch->number);
                if (number < 0 || static_cast<std::uint32_t>(number) != call.nr) continue;
                const auto value = static_cast<std::uint32_t>(call.args[rule.arg]);  // the low half
                bool match = false;
                switch (rule.check) {
                case shannot::SyscallArgCheck::none: match = true; break;
                case shannot::SyscallArgCheck::any_bit: match = (value & rule.values[0]) != 0; break;
                case shannot::SyscallArgCheck::equals: match = value == rule.values[0]; break;
                case shannot::SyscallArgCheck::not_one_of:
                    match = true;
                    for (std::size_t i = 0; i < rule.count; ++i)
                        if (value == rule.values[i]) match = false;
                    break;
                }
                if (match) {
                    verdict = sc::ret_errno | rule.error;
                    return;
                }
            }
        };
        (consider(Rules::rules), ...);
        return verdict.value_or(sc::ret_allow);
    }
};

}  // namespace shannot_test
