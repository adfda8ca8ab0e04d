// SPDX-License-Identifier: MIT
// The built-in syscall rule sets: what the default filter denies, one named group each.
#pragma once

#include <array>
#include <cerrno>
#include <cstdint>
#include <string_view>

#include <shannot/concepts/syscall_rule_set.hpp>
#include <shannot/syscalls.hpp>

namespace shannot {

/// Values the rules compare arguments with (the kernel's ABI; tests/seccomp_test.cpp checks them
/// against <sys/socket.h>, <sched.h> and <sys/personality.h>).
namespace syscall_values {
inline constexpr std::uint32_t af_unix = 1;
inline constexpr std::uint32_t af_inet = 2;
inline constexpr std::uint32_t af_inet6 = 10;
inline constexpr std::uint32_t af_netlink = 16;
/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
/// CLONE_NEWNET: every flag of clone(2) that makes a namespace.
inline constexpr std::uint32_t clone_namespace_flags =
    0x00020000u | 0x02000000u | 0x04000000u | 0x08000000u | 0x10000000u | 0x20000000u | 0x40000000u;
/// unshare(2) also takes CLONE_NEWTIME (0x80), which in clone(2)'s flags is part of the exit signal.
inline constexpr std::uint32_t unshare_namespace_flags = clone_namespace_flags | 0x00000080u;
inline constexpr std::uint32_t per_linux = 0;                    ///< personality(PER_LINUX): the default
inline constexpr std::uint32_t personality_query = 0xffffffffu;  ///< personality(0xffffffff) only reads it
}  // namespace syscall_values

/// io_uring_setup, io_uring_enter, io_uring_register: a second system call interface beside the
/// usual one, with a long record of kernel bugs; nothing in a read-only sandbox needs it.
struct DenyIoUring {
    static constexpr std::string_view name = "io_uring";
    static constexpr std::string_view summary =
        "io_uring_setup, io_uring_enter and io_uring_register (the io_uring interface)";
    static constexpr std::array rules{SyscallRule::deny(syscalls::io_uring_setup),
                                      SyscallRule::deny(syscalls::io_uring_enter),
                                      SyscallRule::deny(syscalls::io_uring_register)};
};

/// ptrace, process_vm_readv/writev and pidfd_getfd: reading, writing or taking over another
/// process of the sandbox (in a session: the agent's, or the next command's).
struct DenyPtrace {
    static constexpr std::string_view name = "ptrace";
    static constexpr std::string_view summary =
        "ptrace, process_vm_readv, process_vm_writev and pidfd_getfd (another process's memory and descriptors)";
    static constexpr std::array rules{
        SyscallRule::deny(syscalls::ptrace), SyscallRule::deny(syscalls::process_vm_readv),
        SyscallRule::deny(syscalls::process_vm_writev), SyscallRule::deny(syscalls::pidfd_getfd)};
};

/// bpf: eBPF programs and maps, kernel code paths that unprivileged users rarely need.
struct DenyBpf {
    static constexpr std::string_view name = "bpf";
    static constexpr std::string_view summary = "bpf (eBPF programs and maps)";
    static constexpr std::array rules{SyscallRule::deny(syscalls::bpf)};
};

/// perf_event_open: performance counters and tracepoints, a side channel and a bug source.
struct DenyPerfEvents {
    static constexpr std::string_view name = "perf_events";
    static constexpr std::string_view summary = "perf_event_open (performance counters, tracepoints)";
    static constexpr std::array rules{SyscallRule::deny(syscalls::perf_event_open)};
};

/// userfaultfd: lets a process stall the kernel on its own page faults, the usual way to win a
/// kernel race in an exploit.
struct DenyUserfaultfd {
    static constexpr std::string_view name = "userfaultfd";
    static constexpr std::string_view summary = "userfaultfd (page faults handled by user space)";
    static constexpr std::array rules{SyscallRule::deny(syscalls::userfaultfd)};
};

/// keyctl, add_key, request_key: the kernel keyrings are not namespaced; a sandbox could read or
/// fill the keys of its user (and request_key can start a helper on the host).
struct DenyKeyring {
    static constexpr std::string_view name = "keyring";
    static constexpr std::string_view summary = "keyctl, add_key and request_key (the kernel keyrings, not namespaced)";
    static constexpr std::array rules{SyscallRule::deny(syscalls::keyctl), SyscallRule::deny(syscalls::add_key),
                                      SyscallRule::deny(syscalls::request_key)};
};

/// The mount family, old and new API: the sandbox's mount tree is bwrap's, made before the
/// command runs, and a command must not change it (in a nested user namespace it could).
struct DenyMount {
    static constexpr std::string_view name = "mount";
    static constexpr std::string_view summary =
        "mount, umount2, pivot_root, move_mount, open_tree, open_tree_attr, fsopen, fsconfig, "
        "fsmount, fspick and mount_setattr (changing the mount tree)";
    static constexpr std::array rules{
        SyscallRule::deny(syscalls::mount),        SyscallRule::deny(syscalls::umount2),
        SyscallRule::deny(syscalls::pivot_root),   SyscallRule::deny(syscalls::move_mount),
        SyscallRule::deny(syscalls::open_tree),    SyscallRule::deny(syscalls::open_tree_attr),
        SyscallRule::deny(syscalls::fsopen),       SyscallRule::deny(syscalls::fsconfig),
        SyscallRule::deny(syscalls::fsmount),      SyscallRule::deny(syscalls::fspick),
        SyscallRule::deny(syscalls::mount_setattr)};
};

/// unshare and clone with a namespace flag, setns, and clone3: a nested user namespace gives its
/// creator every capability over new namespaces and re-opens kernel paths (mounting file
/// systems, netfilter, ...) that unprivileged users should not reach. clone3 passes its flags in
/// memory the filter cannot read, so it fails with ENOSYS: glibc then falls back to clone (for
/// threads, fork and posix_spawn alike), whose flags the filter checks.
struct DenyNamespaces {
    static constexpr std::string_view name = "namespaces";
    static constexpr std::string_view summary =
        "unshare and clone with a namespace flag, setns, and clone3 (ENOSYS: libc falls back to clone)";
    static constexpr std::array rules{
        SyscallRule::deny_if_any_bit(syscalls::unshare, 0, syscall_values::unshare_namespace_flags),
        SyscallRule::deny_if_any_bit(syscalls::clone, 0, syscall_values::clone_namespace_flags),
        SyscallRule::deny(syscalls::setns), SyscallRule::deny(syscalls::clone3, ENOSYS)};
};

/// socket(AF_UNIX): neither --unshare-net nor a read-only bind stops connect() to a socket by
/// path, so a bound docker.sock, ssh agent or D-Bus socket would be reachable. socketpair stays:
/// it makes a connected pair that reaches nothing outside.
struct DenyUnixSockets {
    static constexpr std::string_view name = "unix_sockets";
    static constexpr std::string_view summary =
        "socket(AF_UNIX) (connecting to unix sockets under a bound path: docker.sock, "
        "an ssh agent, D-Bus); socketpair stays allowed";
    static constexpr std::array rules{SyscallRule::deny_if_equal(syscalls::socket, 0, syscall_values::af_unix)};
};

/// socket(AF_NETLINK): kernel interfaces (routing, audit, uevents, sock_diag, netfilter) that a
/// network-less sandbox does not need.
struct DenyNetlinkSockets {
    static constexpr std::string_view name = "netlink_sockets";
    static constexpr std::string_view summary = "socket(AF_NETLINK) (routing, audit, uevents, sock_diag, netfilter)";
    static constexpr std::array rules{SyscallRule::deny_if_equal(syscalls::socket, 0, syscall_values::af_netlink)};
};

/// socket of any family but AF_UNIX, AF_NETLINK (their own groups), AF_INET and AF_INET6.
/// AF_VSOCK reaches the hypervisor's host whatever the network namespace; AF_PACKET, AF_ALG,
/// AF_KEY, AF_XDP, AF_TIPC, AF_RDS, ... are kernel surface a sandbox without a network never
/// uses. AF_INET and AF_INET6 stay: under --unshare-net they reach only the sandbox's own
/// loopback, programs use them for local things (name lookups, interface queries), and a
/// profile with "network_isolation": false asked for the network they carry.
struct DenyOtherSocketFamilies {
    static constexpr std::string_view name = "other_sockets";
    static constexpr std::string_view summary =
        "socket of every family but AF_INET, AF_INET6 (and AF_UNIX, AF_NETLINK, which have "
        "their own groups): AF_VSOCK, AF_PACKET, AF_ALG, AF_KEY, AF_XDP, ...";
    static constexpr std::array rules{SyscallRule::deny_unless_one_of(
        syscalls::socket, 0,
        {syscall_values::af_unix, syscall_values::af_inet, syscall_values::af_inet6, syscall_values::af_netlink})};
};

/// Loading and removing kernel modules, and loading a new kernel (kexec).
struct DenyKernelModules {
    static constexpr std::string_view name = "kernel_modules";
    static constexpr std::string_view summary =
        "init_module, finit_module, delete_module, kexec_load and kexec_file_load";
    static constexpr std::array rules{
        SyscallRule::deny(syscalls::init_module), SyscallRule::deny(syscalls::finit_module),
        SyscallRule::deny(syscalls::delete_module), SyscallRule::deny(syscalls::kexec_load),
        SyscallRule::deny(syscalls::kexec_file_load)};
};

/// personality beyond the default: execution domains and flags (READ_IMPLIES_EXEC,
/// ADDR_NO_RANDOMIZE, ...) weaken the process's own hardening. PER_LINUX and the query
/// (0xffffffff) stay allowed.
struct DenyPersonality {
    static constexpr std::string_view name = "personality";
    static constexpr std::string_view summary =
        "personality other than PER_LINUX or the query 0xffffffff (ADDR_NO_RANDOMIZE, "
        "READ_IMPLIES_EXEC, other execution domains)";
    static constexpr std::array rules{SyscallRule::deny_unless_one_of(
        syscalls::personality, 0, {syscall_values::per_linux, syscall_values::personality_query})};
};

}  // namespace shannot
