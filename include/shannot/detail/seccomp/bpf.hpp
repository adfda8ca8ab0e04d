// SPDX-License-Identifier: MIT
// Classic BPF as seccomp reads it: the opcodes, offsets and return values a filter is made of.
#pragma once

#include <linux/filter.h>

#include <cstddef>
#include <cstdint>

namespace shannot::detail::seccomp {

// The opcodes a syscall filter uses (linux/bpf_common.h); a filter reads only `seccomp_data`.
inline constexpr std::uint16_t ld_abs = BPF_LD | BPF_W | BPF_ABS;  ///< A = 32 bits at offset k
inline constexpr std::uint16_t jeq = BPF_JMP | BPF_JEQ | BPF_K;    ///< A == k ? jt : jf
inline constexpr std::uint16_t jge = BPF_JMP | BPF_JGE | BPF_K;    ///< A >= k (unsigned) ? jt : jf
inline constexpr std::uint16_t jset = BPF_JMP | BPF_JSET | BPF_K;  ///< (A & k) != 0 ? jt : jf
inline constexpr std::uint16_t ja = BPF_JMP | BPF_JA;              ///< skip k instructions (32-bit k)
inline constexpr std::uint16_t ret = BPF_RET | BPF_K;              ///< return k

// struct seccomp_data (linux/seccomp.h): nr, arch, instruction_pointer, args[6] (u64 each).
inline constexpr std::uint32_t offset_nr = 0;
inline constexpr std::uint32_t offset_arch = 4;
inline constexpr std::uint32_t offset_args = 16;
/// The low 32 bits of argument `i` on a little-endian architecture.
constexpr std::uint32_t offset_arg_low(unsigned i) { return offset_args + 8u * i; }

// Return values (linux/seccomp.h); the action with the highest precedence of all stacked
// filters wins, so a filter never loosens another.
inline constexpr std::uint32_t ret_kill_process = 0x80000000u;  ///< SECCOMP_RET_KILL_PROCESS (Linux 4.14)
inline constexpr std::uint32_t ret_errno = 0x00050000u;         ///< SECCOMP_RET_ERRNO | errno (16 bits)
inline constexpr std::uint32_t ret_allow = 0x7fff0000u;         ///< SECCOMP_RET_ALLOW
inline constexpr std::uint32_t ret_action_full = 0xffff0000u;   ///< SECCOMP_RET_ACTION_FULL
inline constexpr std::uint32_t ret_data = 0x0000ffffu;          ///< SECCOMP_RET_DATA

/// The kernel's limit on one program (BPF_MAXINSNS).
inline constexpr std::size_t max_instructions = 4096;
/// A number nr == -1 means "skip this call" (a tracer's doing); the kernel answers ENOSYS.
inline constexpr std::uint32_t no_syscall = 0xffffffffu;

constexpr sock_filter statement(std::uint16_t code, std::uint32_t k) { return sock_filter{code, 0, 0, k}; }
constexpr sock_filter jump(std::uint16_t code, std::uint32_t k, std::uint8_t jt, std::uint8_t jf) {
    return sock_filter{code, jt, jf, k};
}

}  // namespace shannot::detail::seccomp
