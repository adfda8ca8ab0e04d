// SPDX-License-Identifier: MIT
// System calls by name, with their numbers on each architecture a syscall filter knows.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace shannot {

/// One system call: its name and its number on each architecture, -1 where it does not exist
/// (a rule on it is then left out of that architecture's part of a filter). The numbers come
/// from the kernel's tables (x86_64: arch/x86/entry/syscalls/syscall_64.tbl; aarch64: the generic
/// table, include/uapi/asm-generic/unistd.h) and are checked against the installed kernel headers
/// by tests/seccomp_test.cpp. A call missing below can be named in place:
/// `constexpr shannot::Syscall my_call{"name", X86_64_NUMBER, AARCH64_NUMBER};`.
struct Syscall {
    std::string_view name{};
    int x86_64 = -1;
    int aarch64 = -1;

    friend constexpr bool operator==(const Syscall&, const Syscall&) = default;
};

/// An architecture a filter covers: the value the kernel puts in `seccomp_data.arch` for its
/// native calls (AUDIT_ARCH_*), and its column of the syscall table. Every other value there
/// (i386 or arm code run by a 64-bit process, any other arch) is refused by the filter.
struct SeccompArch {
    std::string_view name{};
    std::uint32_t audit_arch = 0;
    int Syscall::*number = nullptr;
    /// x86_64 only: a number with this bit set is a call of the x32 ABI, which the filter refuses.
    std::uint32_t x32_bit = 0;
};

/// AUDIT_ARCH_X86_64 (EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE) and AUDIT_ARCH_AARCH64.
inline constexpr SeccompArch seccomp_arch_x86_64{"x86_64", 0xc000003eu, &Syscall::x86_64, 0x40000000u};
inline constexpr SeccompArch seccomp_arch_aarch64{"aarch64", 0xc00000b7u, &Syscall::aarch64, 0};
/// Both are little-endian, so an argument's low 32 bits sit at `16 + 8 * i` in seccomp_data.
inline constexpr std::array<SeccompArch, 2> seccomp_arches{seccomp_arch_x86_64, seccomp_arch_aarch64};

/// The calls the built-in rule sets name, and others a custom filter is likely to.
namespace syscalls {
// Everyday calls (examples, tests).
inline constexpr Syscall read{"read", 0, 63};
inline constexpr Syscall write{"write", 1, 64};
inline constexpr Syscall close{"close", 3, 57};
inline constexpr Syscall ioctl{"ioctl", 16, 29};
inline constexpr Syscall getpid{"getpid", 39, 172};
inline constexpr Syscall execve{"execve", 59, 221};
inline constexpr Syscall kill{"kill", 62, 129};
inline constexpr Syscall prctl{"prctl", 157, 167};
inline constexpr Syscall exit_group{"exit_group", 231, 94};
inline constexpr Syscall openat{"openat", 257, 56};
inline constexpr Syscall mkdirat{"mkdirat", 258, 34};
inline constexpr Syscall mknodat{"mknodat", 259, 33};
inline constexpr Syscall seccomp{"seccomp", 317, 277};
inline constexpr Syscall memfd_create{"memfd_create", 319, 279};
inline constexpr Syscall execveat{"execveat", 322, 281};
// Sockets.
inline constexpr Syscall socket{"socket", 41, 198};
inline constexpr Syscall connect{"connect", 42, 203};
inline constexpr Syscall bind{"bind", 49, 200};
inline constexpr Syscall listen{"listen", 50, 201};
inline constexpr Syscall socketpair{"socketpair", 53, 199};
// Processes, tracing, namespaces.
inline constexpr Syscall clone{"clone", 56, 220};
inline constexpr Syscall ptrace{"ptrace", 101, 117};
inline constexpr Syscall personality{"personality", 135, 92};
inline constexpr Syscall unshare{"unshare", 272, 97};
inline constexpr Syscall setns{"setns", 308, 268};
inline constexpr Syscall process_vm_readv{"process_vm_readv", 310, 270};
inline constexpr Syscall process_vm_writev{"process_vm_writev", 311, 271};
inline constexpr Syscall kcmp{"kcmp", 312, 272};
inline constexpr Syscall pidfd_send_signal{"pidfd_send_signal", 424, 424};
inline constexpr Syscall pidfd_open{"pidfd_open", 434, 434};
inline constexpr Syscall clone3{"clone3", 435, 435};
inline constexpr Syscall pidfd_getfd{"pidfd_getfd", 438, 438};
// Mounts.
inline constexpr Syscall pivot_root{"pivot_root", 155, 41};
inline constexpr Syscall chroot{"chroot", 161, 51};
inline constexpr Syscall mount{"mount", 165, 40};
inline constexpr Syscall umount2{"umount2", 166, 39};
inline constexpr Syscall open_tree{"open_tree", 428, 428};
inline constexpr Syscall move_mount{"move_mount", 429, 429};
inline constexpr Syscall fsopen{"fsopen", 430, 430};
inline constexpr Syscall fsconfig{"fsconfig", 431, 431};
inline constexpr Syscall fsmount{"fsmount", 432, 432};
inline constexpr Syscall fspick{"fspick", 433, 433};
inline constexpr Syscall mount_setattr{"mount_setattr", 442, 442};
inline constexpr Syscall open_tree_attr{"open_tree_attr", 467, 467};  ///< Linux 6.15
// Kernel interfaces an unprivileged sandbox has no use for.
inline constexpr Syscall io_uring_setup{"io_uring_setup", 425, 425};
inline constexpr Syscall io_uring_enter{"io_uring_enter", 426, 426};
inline constexpr Syscall io_uring_register{"io_uring_register", 427, 427};
inline constexpr Syscall bpf{"bpf", 321, 280};
inline constexpr Syscall perf_event_open{"perf_event_open", 298, 241};
inline constexpr Syscall userfaultfd{"userfaultfd", 323, 282};
inline constexpr Syscall add_key{"add_key", 248, 217};
inline constexpr Syscall request_key{"request_key", 249, 218};
inline constexpr Syscall keyctl{"keyctl", 250, 219};
inline constexpr Syscall init_module{"init_module", 175, 105};
inline constexpr Syscall delete_module{"delete_module", 176, 106};
inline constexpr Syscall finit_module{"finit_module", 313, 273};
inline constexpr Syscall kexec_load{"kexec_load", 246, 104};
inline constexpr Syscall kexec_file_load{"kexec_file_load", 320, 294};
// Privileged calls (a capability in the initial user namespace): refused by the kernel anyway.
inline constexpr Syscall syslog{"syslog", 103, 116};
inline constexpr Syscall uselib{"uselib", 134, -1};
inline constexpr Syscall vhangup{"vhangup", 153, 58};
inline constexpr Syscall acct{"acct", 163, 89};
inline constexpr Syscall settimeofday{"settimeofday", 164, 170};
inline constexpr Syscall swapon{"swapon", 167, 224};
inline constexpr Syscall swapoff{"swapoff", 168, 225};
inline constexpr Syscall reboot{"reboot", 169, 142};
inline constexpr Syscall sethostname{"sethostname", 170, 161};
inline constexpr Syscall setdomainname{"setdomainname", 171, 162};
inline constexpr Syscall iopl{"iopl", 172, -1};
inline constexpr Syscall ioperm{"ioperm", 173, -1};
inline constexpr Syscall quotactl{"quotactl", 179, 60};
inline constexpr Syscall clock_settime{"clock_settime", 227, 112};
inline constexpr Syscall fanotify_init{"fanotify_init", 300, 262};
inline constexpr Syscall name_to_handle_at{"name_to_handle_at", 303, 264};
inline constexpr Syscall open_by_handle_at{"open_by_handle_at", 304, 265};
}  // namespace syscalls

}  // namespace shannot
