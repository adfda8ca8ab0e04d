// SPDX-License-Identifier: MIT
// SyscallFilter and the built-in rule sets: numbers against the kernel headers, a golden program,
// the generated BPF run through an interpreter against what the rules say, and the kernel's verdict.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/seccomp_model.hpp"

namespace shannot_test {
std::vector<std::pair<std::string_view, long>> generic_syscall_numbers();  // seccomp_generic_numbers.cpp
}

namespace {

namespace sc = shannot::detail::seccomp;
using shannot::DefaultSyscallFilter;
using shannot_test::SeccompCall;

constexpr std::uint32_t arch_x86_64 = 0xc000003eu;
constexpr std::uint32_t arch_aarch64 = 0xc00000b7u;
constexpr std::uint32_t arch_i386 = 0x40000003u;  // AUDIT_ARCH_I386: int 0x80 from a 64-bit process
constexpr std::uint32_t arch_arm = 0x40000028u;   // AUDIT_ARCH_ARM: aarch32 code on aarch64
constexpr std::uint32_t eperm = sc::ret_errno | EPERM;
constexpr std::uint32_t enosys = sc::ret_errno | ENOSYS;

/// (name, __NR_name) for each call of shannot's table <sys/syscall.h> defines on this host.
std::vector<std::pair<std::string_view, long>> host_syscall_numbers() {
#define NR(name) \
    { #name, __NR_##name }
    return {
#include "support/syscall_names.inc"
    };
#undef NR
}

/// shannot's table, by name (every `inline constexpr Syscall` of syscalls.hpp).
std::map<std::string_view, shannot::Syscall> table() {
    namespace s = shannot::syscalls;
    std::map<std::string_view, shannot::Syscall> out;
    for (const auto& call : {s::read,
                             s::write,
                             s::close,
                             s::ioctl,
                             s::getpid,
                             s::execve,
                             s::kill,
                             s::prctl,
                             s::exit_group,
                             s::openat,
                             s::mkdirat,
                             s::mknodat,
                             s::seccomp,
                             s::memfd_create,
                             s::execveat,
                             s::socket,
                             s::connect,
                             s::bind,
                             s::listen,
                             s::socketpair,
                             s::clone,
                             s::ptrace,
                             s::personality,
                             s::unshare,
                             s::setns,
                             s::process_vm_readv,
                             s::process_vm_writev,
                             s::kcmp,
                             s::pidfd_send_signal,
                             s::pidfd_open,
                             s::clone3,
                             s::pidfd_getfd,
                             s::pivot_root,
                             s::chroot,
                             s::mount,
                             s::umount2,
                             s::open_tree,
                             s::move_mount,
                             s::fsopen,
                             s::fsconfig,
                             s::fsmount,
                             s::fspick,
                             s::mount_setattr,
                             s::open_tree_attr,
                             s::io_uring_setup,
                             s::io_uring_enter,
                             s::io_uring_register,
                             s::bpf,
                             s::perf_event_open,
                             s::userfaultfd,
                             s::add_key,
                             s::request_key,
                             s::keyctl,
                             s::init_module,
                             s::delete_module,
                             s::finit_module,
                             s::kexec_load,
                             s::kexec_file_load,
                             s::syslog,
                             s::uselib,
                             s::vhangup,
                             s::acct,
                             s::settimeofday,
                             s::swapon,
                             s::swapoff,
                             s::reboot,
                             s::sethostname,
                             s::setdomainname,
                             s::iopl,
                             s::ioperm,
                             s::quotactl,
                             s::clock_settime,
                             s::fanotify_init,
                             s::name_to_handle_at,
                             s::open_by_handle_at})
        out.emplace(call.name, call);
    return out;
}

/// Every call a rule of filter F names.
template <class... Rules>
std::set<std::string_view> named_by(const shannot::SyscallFilter<Rules...>*) {
    std::set<std::string_view> out;
    (([&] {
         for (const auto& rule : Rules::rules) out.insert(rule.call.name);
     }()),
     ...);
    return out;
}

std::uint32_t run(std::span<const sock_filter> program, const SeccompCall& call) {
    const auto outcome = shannot_test::run_bpf(program, call);
    REQUIRE_MESSAGE(outcome.value, outcome.error);
    return *outcome.value;
}

std::uint32_t run_default(SeccompCall call, std::uint64_t relaxed = 0) {
    const auto program = DefaultSyscallFilter::program(relaxed);
    return run(program.instructions(), call);
}

}  // namespace

TEST_CASE("seccomp constants are the kernel's") {
    CHECK(sc::ret_allow == SECCOMP_RET_ALLOW);
    CHECK(sc::ret_errno == SECCOMP_RET_ERRNO);
    CHECK(sc::ret_kill_process == SECCOMP_RET_KILL_PROCESS);
    CHECK(sc::ret_data == SECCOMP_RET_DATA);
    CHECK(sc::ret_action_full == SECCOMP_RET_ACTION_FULL);
    CHECK(sc::offset_nr == offsetof(seccomp_data, nr));
    CHECK(sc::offset_arch == offsetof(seccomp_data, arch));
    CHECK(sc::offset_args == offsetof(seccomp_data, args));
    CHECK(sc::max_instructions == BPF_MAXINSNS);
    CHECK(shannot::seccomp_arch_x86_64.audit_arch == AUDIT_ARCH_X86_64);
    CHECK(shannot::seccomp_arch_aarch64.audit_arch == AUDIT_ARCH_AARCH64);
    CHECK(arch_i386 == AUDIT_ARCH_I386);
    CHECK(arch_arm == AUDIT_ARCH_ARM);
#if defined(__x86_64__)
    CHECK(shannot::seccomp_arch_x86_64.x32_bit == __X32_SYSCALL_BIT);
#endif
    namespace v = shannot::syscall_values;
    CHECK(v::af_unix == AF_UNIX);
    CHECK(v::af_inet == AF_INET);
    CHECK(v::af_inet6 == AF_INET6);
    CHECK(v::af_netlink == AF_NETLINK);
    CHECK(v::clone_namespace_flags ==
          static_cast<std::uint32_t>(CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER |
                                     CLONE_NEWPID | CLONE_NEWNET));
    CHECK(v::unshare_namespace_flags == (v::clone_namespace_flags | CLONE_NEWTIME));
    CHECK(v::per_linux == PER_LINUX);
}

TEST_CASE("syscall numbers are the kernel headers'") {
    const auto ours = table();
    SUBCASE("this host's column against <sys/syscall.h>") {
#if defined(__x86_64__)
        constexpr auto column = &shannot::Syscall::x86_64;
#elif defined(__aarch64__)
        constexpr auto column = &shannot::Syscall::aarch64;
#else
        MESSAGE("skipped: this host is neither x86_64 nor aarch64");
        return;
#endif
        const auto host = host_syscall_numbers();
        std::set<std::string_view> seen;
        for (const auto& entry : host) {
            const auto& name = entry.first;
            const auto& number = entry.second;
            seen.insert(name);
            REQUIRE_MESSAGE(ours.count(name) == 1, name);
            CHECK_MESSAGE(ours.at(name).*column == number, name, ": shannot says ", ours.at(name).*column,
                          ", the headers ", number);
        }
        for (const auto& entry : ours) {
            const auto& name = entry.first;
            const auto& call = entry.second;
            if (seen.count(name) != 0) continue;
            // Not in this host's headers: absent on this arch, or newer than the headers.
            if (call.*column < 0) continue;
            MESSAGE(name,
                    " is not in this host's kernel headers (older than the call): its number is not checked here");
            CHECK(name == "open_tree_attr");
        }
    }
    SUBCASE("the aarch64 column against the generic table (asm-generic/unistd.h, as arm64 includes it)") {
        std::set<std::string_view> seen;
        for (const auto& entry : shannot_test::generic_syscall_numbers()) {
            const auto& name = entry.first;
            const auto& number = entry.second;
            seen.insert(name);
            REQUIRE_MESSAGE(ours.count(name) == 1, name);
            CHECK_MESSAGE(ours.at(name).aarch64 == number, name, ": shannot says ", ours.at(name).aarch64,
                          ", the header ", number);
        }
        for (const auto& entry : ours) {
            const auto& name = entry.first;
            const auto& call = entry.second;
            if (seen.count(name) != 0) continue;
            if (call.aarch64 < 0) continue;  // x86-only calls: the generic table does not have them either
            MESSAGE(name, " is not in the installed generic table (older than the call)");
            CHECK(name == "open_tree_attr");
        }
    }
    SUBCASE("calls from 424 on have one number on every architecture") {
        for (const auto& entry : ours) {
            const auto& call = entry.second;
            if (call.x86_64 >= 424 || call.aarch64 >= 424) CHECK_MESSAGE(call.x86_64 == call.aarch64, entry.first);
        }
    }
    SUBCASE("every call a built-in rule names is in the checked table") {
        for (auto name : named_by(static_cast<DefaultSyscallFilter*>(nullptr)))
            CHECK_MESSAGE(ours.count(name) == 1, name);
    }
}

TEST_CASE("SyscallFilter golden program of a small composition") {
    using Small = shannot::SyscallFilter<shannot::DenyBpf, shannot::DenyUnixSockets>;
    constexpr auto program = Small::program();
    static_assert(program.size == 27 && Small::capacity == 27);
    const std::uint16_t ld = BPF_LD | BPF_W | BPF_ABS, jeq = BPF_JMP | BPF_JEQ | BPF_K, jge = BPF_JMP | BPF_JGE | BPF_K,
                        ja = BPF_JMP | BPF_JA, ret = BPF_RET | BPF_K;
    const std::vector<sock_filter> expected = {
        {ld, 0, 0, 4},                           //  0 A = arch
        {jeq, 0, 1, AUDIT_ARCH_X86_64},          //  1
        {ja, 0, 0, 3},                           //  2 → 6
        {jeq, 0, 1, AUDIT_ARCH_AARCH64},         //  3
        {ja, 0, 0, 13},                          //  4 → 18
        {ret, 0, 0, SECCOMP_RET_KILL_PROCESS},   //  5 any other arch
        {ld, 0, 0, 0},                           //  6 x86_64: A = nr
        {jge, 0, 2, 0x40000000},                 //  7 x32 ...
        {jeq, 1, 0, 0xffffffff},                 //  8 ... but for -1
        {ret, 0, 0, SECCOMP_RET_KILL_PROCESS},   //  9
        {jeq, 0, 1, 321},                        // 10 bpf
        {ret, 0, 0, SECCOMP_RET_ERRNO | EPERM},  // 11
        {jeq, 0, 4, 41},                         // 12 socket
        {ld, 0, 0, 16},                          // 13 A = family (low half of args[0])
        {jeq, 0, 1, AF_UNIX},                    // 14
        {ret, 0, 0, SECCOMP_RET_ERRNO | EPERM},  // 15
        {ld, 0, 0, 0},                           // 16 A = nr again
        {ret, 0, 0, SECCOMP_RET_ALLOW},          // 17
        {ld, 0, 0, 0},                           // 18 aarch64: A = nr
        {jeq, 0, 1, 280},                        // 19 bpf
        {ret, 0, 0, SECCOMP_RET_ERRNO | EPERM},  // 20
        {jeq, 0, 4, 198},                        // 21 socket
        {ld, 0, 0, 16},                          // 22
        {jeq, 0, 1, AF_UNIX},                    // 23
        {ret, 0, 0, SECCOMP_RET_ERRNO | EPERM},  // 24
        {ld, 0, 0, 0},                           // 25
        {ret, 0, 0, SECCOMP_RET_ALLOW},          // 26
    };
    REQUIRE(program.size == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        const auto& got = program.code[i];
        const auto& want = expected[i];
        CHECK_MESSAGE((got.code == want.code && got.jt == want.jt && got.jf == want.jf && got.k == want.k),
                      "instruction ", i, ": got {", got.code, ", ", int(got.jt), ", ", int(got.jf), ", ", got.k, "}");
    }
    SUBCASE("the bytes bwrap reads are the kernel's struct sock_filter, in order") {
        const auto bytes = program.bytes();
        REQUIRE(bytes.size() == 27 * sizeof(sock_filter));
        for (std::size_t i = 0; i < program.size; ++i) {
            sock_filter f{};
            std::memcpy(&f, bytes.data() + i * sizeof f, sizeof f);  // this host is little-endian (x86_64, aarch64)
            CHECK((f.code == expected[i].code && f.jt == expected[i].jt && f.jf == expected[i].jf &&
                   f.k == expected[i].k));
        }
    }
    SUBCASE("leaving a group out drops exactly its instructions, jumps adjusted") {
        constexpr auto no_unix = Small::program(0b10);
        static_assert(no_unix.size == 27 - 10);
        CHECK(no_unix.code[4].k == 13 - 5);
        CHECK(no_unix.code[10].k == 321);
        CHECK(no_unix.code[12].k == SECCOMP_RET_ALLOW);
        CHECK(run(no_unix.instructions(), {arch_x86_64, 41, {AF_UNIX}}) == SECCOMP_RET_ALLOW);
        CHECK(run(program.instructions(), {arch_x86_64, 41, {AF_UNIX}}) == eperm);
    }
}

TEST_CASE("SyscallFilter: the default filter does what its groups say") {
    SUBCASE("calls written out by hand (not from the rules' data)") {
        struct Case {
            const char* what;
            SeccompCall call;
            std::uint32_t expect;
        };
        const std::uint64_t sigchld = SIGCHLD;
        const std::vector<Case> cases = {
            {"x86_64 getpid", {arch_x86_64, 39, {}}, SECCOMP_RET_ALLOW},
            {"x86_64 openat", {arch_x86_64, 257, {}}, SECCOMP_RET_ALLOW},
            {"x86_64 io_uring_setup", {arch_x86_64, 425, {1}}, eperm},
            {"x86_64 io_uring_enter", {arch_x86_64, 426, {}}, eperm},
            {"x86_64 io_uring_register", {arch_x86_64, 427, {}}, eperm},
            {"x86_64 ptrace", {arch_x86_64, 101, {}}, eperm},
            {"x86_64 process_vm_readv", {arch_x86_64, 310, {}}, eperm},
            {"x86_64 process_vm_writev", {arch_x86_64, 311, {}}, eperm},
            {"x86_64 pidfd_getfd", {arch_x86_64, 438, {}}, eperm},
            {"x86_64 bpf", {arch_x86_64, 321, {}}, eperm},
            {"x86_64 perf_event_open", {arch_x86_64, 298, {}}, eperm},
            {"x86_64 userfaultfd", {arch_x86_64, 323, {}}, eperm},
            {"x86_64 keyctl", {arch_x86_64, 250, {}}, eperm},
            {"x86_64 add_key", {arch_x86_64, 248, {}}, eperm},
            {"x86_64 request_key", {arch_x86_64, 249, {}}, eperm},
            {"x86_64 mount", {arch_x86_64, 165, {}}, eperm},
            {"x86_64 umount2", {arch_x86_64, 166, {}}, eperm},
            {"x86_64 pivot_root", {arch_x86_64, 155, {}}, eperm},
            {"x86_64 open_tree", {arch_x86_64, 428, {}}, eperm},
            {"x86_64 move_mount", {arch_x86_64, 429, {}}, eperm},
            {"x86_64 fsopen", {arch_x86_64, 430, {}}, eperm},
            {"x86_64 fsconfig", {arch_x86_64, 431, {}}, eperm},
            {"x86_64 fsmount", {arch_x86_64, 432, {}}, eperm},
            {"x86_64 fspick", {arch_x86_64, 433, {}}, eperm},
            {"x86_64 mount_setattr", {arch_x86_64, 442, {}}, eperm},
            {"x86_64 open_tree_attr", {arch_x86_64, 467, {}}, eperm},
            {"x86_64 setns", {arch_x86_64, 308, {}}, eperm},
            {"x86_64 unshare(CLONE_NEWUSER)", {arch_x86_64, 272, {CLONE_NEWUSER}}, eperm},
            {"x86_64 unshare(CLONE_NEWNS)", {arch_x86_64, 272, {CLONE_NEWNS}}, eperm},
            {"x86_64 unshare(CLONE_NEWTIME)", {arch_x86_64, 272, {CLONE_NEWTIME}}, eperm},
            {"x86_64 unshare(CLONE_FILES)", {arch_x86_64, 272, {CLONE_FILES}}, SECCOMP_RET_ALLOW},
            {"x86_64 clone(SIGCHLD): fork", {arch_x86_64, 56, {sigchld}}, SECCOMP_RET_ALLOW},
            {"x86_64 clone of a thread",
             {arch_x86_64,
              56,
              {CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS |
               CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID}},
             SECCOMP_RET_ALLOW},
            {"x86_64 clone(CLONE_VM|CLONE_VFORK): posix_spawn",
             {arch_x86_64, 56, {CLONE_VM | CLONE_VFORK | sigchld}},
             SECCOMP_RET_ALLOW},
            {"x86_64 clone with exit signal 0x80 (not CLONE_NEWTIME there)",
             {arch_x86_64, 56, {0x80}},
             SECCOMP_RET_ALLOW},
            {"x86_64 clone(CLONE_NEWUSER)", {arch_x86_64, 56, {CLONE_NEWUSER | sigchld}}, eperm},
            {"x86_64 clone(CLONE_NEWPID)", {arch_x86_64, 56, {CLONE_NEWPID | sigchld}}, eperm},
            {"x86_64 clone(CLONE_NEWNET)", {arch_x86_64, 56, {CLONE_NEWNET}}, eperm},
            {"x86_64 clone3: ENOSYS, so libc falls back to clone", {arch_x86_64, 435, {}}, enosys},
            {"x86_64 socket(AF_UNIX)", {arch_x86_64, 41, {AF_UNIX, SOCK_STREAM}}, eperm},
            {"x86_64 socket(AF_UNIX) with junk in the high half",
             {arch_x86_64, 41, {0xdead000000000000ull | AF_UNIX}},
             eperm},
            {"x86_64 socket(AF_NETLINK)", {arch_x86_64, 41, {AF_NETLINK, SOCK_RAW}}, eperm},
            {"x86_64 socket(AF_PACKET)", {arch_x86_64, 41, {AF_PACKET}}, eperm},
            {"x86_64 socket(AF_VSOCK)", {arch_x86_64, 41, {AF_VSOCK}}, eperm},
            {"x86_64 socket(AF_ALG)", {arch_x86_64, 41, {AF_ALG}}, eperm},
            {"x86_64 socket(AF_INET)", {arch_x86_64, 41, {AF_INET, SOCK_STREAM}}, SECCOMP_RET_ALLOW},
            {"x86_64 socket(AF_INET6)", {arch_x86_64, 41, {AF_INET6, SOCK_DGRAM}}, SECCOMP_RET_ALLOW},
            {"x86_64 socketpair(AF_UNIX)", {arch_x86_64, 53, {AF_UNIX, SOCK_STREAM}}, SECCOMP_RET_ALLOW},
            {"x86_64 connect", {arch_x86_64, 42, {}}, SECCOMP_RET_ALLOW},
            {"x86_64 init_module", {arch_x86_64, 175, {}}, eperm},
            {"x86_64 finit_module", {arch_x86_64, 313, {}}, eperm},
            {"x86_64 delete_module", {arch_x86_64, 176, {}}, eperm},
            {"x86_64 kexec_load", {arch_x86_64, 246, {}}, eperm},
            {"x86_64 kexec_file_load", {arch_x86_64, 320, {}}, eperm},
            {"x86_64 personality(PER_LINUX)", {arch_x86_64, 135, {0}}, SECCOMP_RET_ALLOW},
            {"x86_64 personality(0xffffffff): the query", {arch_x86_64, 135, {0xffffffff}}, SECCOMP_RET_ALLOW},
            {"x86_64 personality(ADDR_NO_RANDOMIZE)", {arch_x86_64, 135, {ADDR_NO_RANDOMIZE}}, eperm},
            {"x86_64 personality(PER_LINUX32)", {arch_x86_64, 135, {PER_LINUX32}}, eperm},
            {"x86_64 personality(READ_IMPLIES_EXEC)", {arch_x86_64, 135, {READ_IMPLIES_EXEC}}, eperm},
            {"x32 getpid", {arch_x86_64, 0x40000000u | 39, {}}, SECCOMP_RET_KILL_PROCESS},
            {"x32 write", {arch_x86_64, 0x40000000u | 1, {}}, SECCOMP_RET_KILL_PROCESS},
            {"x86_64 nr 0x7fffffff", {arch_x86_64, 0x7fffffffu, {}}, SECCOMP_RET_KILL_PROCESS},
            {"x86_64 nr -1 (a tracer's skip): the kernel answers ENOSYS",
             {arch_x86_64, 0xffffffffu, {}},
             SECCOMP_RET_ALLOW},
            {"i386 getpid (int 0x80)", {arch_i386, 20, {}}, SECCOMP_RET_KILL_PROCESS},
            {"i386 socketcall", {arch_i386, 102, {}}, SECCOMP_RET_KILL_PROCESS},
            {"arm getpid", {arch_arm, 20, {}}, SECCOMP_RET_KILL_PROCESS},
            {"an unknown arch", {0x12345678u, 39, {}}, SECCOMP_RET_KILL_PROCESS},
            {"arch 0", {0, 39, {}}, SECCOMP_RET_KILL_PROCESS},
            {"aarch64 getpid", {arch_aarch64, 172, {}}, SECCOMP_RET_ALLOW},
            {"aarch64 41 is pivot_root (x86_64's socket)", {arch_aarch64, 41, {AF_INET}}, eperm},
            {"aarch64 39 is umount2 (x86_64's getpid)", {arch_aarch64, 39, {}}, eperm},
            {"aarch64 socket(AF_UNIX)", {arch_aarch64, 198, {AF_UNIX}}, eperm},
            {"aarch64 socket(AF_INET)", {arch_aarch64, 198, {AF_INET}}, SECCOMP_RET_ALLOW},
            {"aarch64 socketpair(AF_UNIX)", {arch_aarch64, 199, {AF_UNIX}}, SECCOMP_RET_ALLOW},
            {"aarch64 clone(CLONE_NEWUSER)", {arch_aarch64, 220, {CLONE_NEWUSER}}, eperm},
            {"aarch64 clone(SIGCHLD)", {arch_aarch64, 220, {sigchld}}, SECCOMP_RET_ALLOW},
            {"aarch64 clone3", {arch_aarch64, 435, {}}, enosys},
            {"aarch64 io_uring_setup", {arch_aarch64, 425, {}}, eperm},
            {"aarch64 ptrace", {arch_aarch64, 117, {}}, eperm},
            {"aarch64 bpf", {arch_aarch64, 280, {}}, eperm},
            {"aarch64 mount", {arch_aarch64, 40, {}}, eperm},
            {"aarch64 personality(ADDR_NO_RANDOMIZE)", {arch_aarch64, 92, {ADDR_NO_RANDOMIZE}}, eperm},
            {"aarch64 personality(PER_LINUX)", {arch_aarch64, 92, {0}}, SECCOMP_RET_ALLOW},
            {"aarch64 has no x32: bit 30 is an unknown call the kernel refuses",
             {arch_aarch64, 0x40000000u | 172, {}},
             SECCOMP_RET_ALLOW},
            {"aarch64 kexec_file_load", {arch_aarch64, 294, {}}, eperm},
            {"aarch64 read", {arch_aarch64, 63, {}}, SECCOMP_RET_ALLOW},
        };
        for (const auto& c : cases) CHECK_MESSAGE(run_default(c.call) == c.expect, c.what);
    }

    SUBCASE("relaxing a group allows exactly its calls") {
        const auto unix_only = *DefaultSyscallFilter::mask_of(std::vector<std::string>{"unix_sockets"});
        CHECK(run_default({arch_x86_64, 41, {AF_UNIX}}, unix_only) == SECCOMP_RET_ALLOW);
        CHECK(run_default({arch_x86_64, 41, {AF_NETLINK}}, unix_only) == eperm);
        CHECK(run_default({arch_x86_64, 41, {AF_PACKET}}, unix_only) == eperm);
        CHECK(run_default({arch_x86_64, 425, {}}, unix_only) == eperm);
        const auto others = *DefaultSyscallFilter::mask_of(std::vector<std::string>{"other_sockets"});
        CHECK(run_default({arch_x86_64, 41, {AF_PACKET}}, others) == SECCOMP_RET_ALLOW);
        CHECK(run_default({arch_x86_64, 41, {AF_UNIX}}, others) == eperm);
        const auto ns = *DefaultSyscallFilter::mask_of(std::vector<std::string>{"namespaces"});
        CHECK(run_default({arch_x86_64, 435, {}}, ns) == SECCOMP_RET_ALLOW);
        CHECK(run_default({arch_x86_64, 56, {CLONE_NEWUSER}}, ns) == SECCOMP_RET_ALLOW);
        CHECK(run_default({arch_x86_64, 165, {}}, ns) == eperm);
        const auto all = ~std::uint64_t{0} >> (64 - DefaultSyscallFilter::groups.size());
        const auto open = DefaultSyscallFilter::program(all);
        CHECK(open.size == 6 + (1 + 3 + 1) + (1 + 1));  // the arch dispatch; per arch: load nr, (x32,) ALLOW
        CHECK(run(open.instructions(), {arch_x86_64, 425, {}}) == SECCOMP_RET_ALLOW);
        CHECK(run(open.instructions(), {arch_x86_64, 0x40000027u, {}}) == SECCOMP_RET_KILL_PROCESS);
        CHECK(run(open.instructions(), {arch_i386, 20, {}}) == SECCOMP_RET_KILL_PROCESS);
    }

    SUBCASE("300,000 random calls, arches and relaxations: the interpreted program agrees with the rules") {
        std::mt19937_64 rng(20);  // deterministic: a failure reproduces
        std::vector<std::uint32_t> numbers;
        std::vector<std::uint64_t> values = {
            0, 1, 0xffffffff, 0xffffffffffffffffull, 0x100000001ull, 0x80000000ull, 0x7fffffff};
        for (const auto& entry : table()) {
            const auto& call = entry.second;
            for (int n : {call.x86_64, call.aarch64})
                if (n >= 0) numbers.push_back(static_cast<std::uint32_t>(n));
        }
        for (auto v : {1u, 2u, 10u, 16u, 17u, 38u, 40u, 0x20000u, 0x10000000u, 0x80u, 0x40000u, 8u})
            values.push_back(v);
        const std::vector<std::uint32_t> arches = {arch_x86_64, arch_aarch64, arch_i386, arch_arm, 0xc0000028u, 0};
        std::map<std::uint64_t, decltype(DefaultSyscallFilter::program())> programs;
        std::size_t denied = 0, allowed = 0, killed = 0;
        for (int i = 0; i < 300000; ++i) {
            SeccompCall call;
            const auto pick = rng() % 16;
            call.arch = pick < 7    ? arch_x86_64
                        : pick < 13 ? arch_aarch64
                        : pick < 15 ? arches[rng() % arches.size()]
                                    : static_cast<std::uint32_t>(rng());
            const auto how = rng() % 8;
            call.nr = how < 5    ? numbers[rng() % numbers.size()]
                      : how == 5 ? static_cast<std::uint32_t>(rng() % 512)
                      : how == 6 ? (0x40000000u | static_cast<std::uint32_t>(rng() % 512))
                                 : static_cast<std::uint32_t>(rng());
            for (auto& a : call.args)
                a = rng() % 3 == 0 ? rng() : values[rng() % values.size()] | (rng() % 4 == 0 ? rng() << 32 : 0);
            const std::uint64_t relaxed =
                rng() % 3 == 0 ? rng() & ((1ull << DefaultSyscallFilter::groups.size()) - 1) : 0;
            auto found = programs.find(relaxed);
            if (found == programs.end())
                found = programs.emplace(relaxed, DefaultSyscallFilter::program(relaxed)).first;
            const auto outcome = shannot_test::run_bpf(found->second.instructions(), call);
            const auto expected = shannot_test::SeccompReference<DefaultSyscallFilter>::expect(call, relaxed);
            REQUIRE_MESSAGE(outcome.value, outcome.error);
            if (*outcome.value != expected) {
                FAIL_CHECK("arch ", call.arch, " nr ", call.nr, " arg0 ", call.args[0], " relaxed ", relaxed,
                           ": program ", *outcome.value, ", rules ", expected);
                break;
            }
            (expected == SECCOMP_RET_ALLOW ? allowed : expected == SECCOMP_RET_KILL_PROCESS ? killed : denied) += 1;
        }
        // The draw reached every kind of verdict often enough to mean something.
        CHECK(denied > 20000);
        CHECK(allowed > 20000);
        CHECK(killed > 20000);
    }

    SUBCASE("every relaxation gives a well-formed program the kernel would take") {
        for (std::uint64_t relaxed = 0; relaxed < (1ull << DefaultSyscallFilter::groups.size()); relaxed += 97) {
            const auto p = DefaultSyscallFilter::program(relaxed);
            REQUIRE(p.size <= BPF_MAXINSNS);
            REQUIRE(p.code[p.size - 1].code == (BPF_RET | BPF_K));
            for (std::size_t i = 0; i < p.size; ++i) {
                const auto& f = p.code[i];
                if ((f.code & 0x07) != BPF_JMP) continue;
                const std::size_t reach = f.code == (BPF_JMP | BPF_JA) ? f.k : std::max(f.jt, f.jf);
                CHECK(i + 1 + reach < p.size);
            }
        }
    }
}

TEST_CASE("SyscallFilter group names") {
    CHECK(DefaultSyscallFilter::groups ==
          std::array<std::string_view, 13>{"io_uring", "ptrace", "bpf", "perf_events", "userfaultfd", "keyring",
                                           "mount", "namespaces", "unix_sockets", "netlink_sockets", "other_sockets",
                                           "kernel_modules", "personality"});
    const auto none = DefaultSyscallFilter::mask_of(std::vector<std::string>{});
    REQUIRE(none);
    CHECK(*none == 0);
    const auto bad = DefaultSyscallFilter::mask_of(std::vector<std::string>{"ptrace", "unix-sockets"});
    REQUIRE_FALSE(bad);
    CHECK(bad.error().code == shannot::errc::invalid_profile);
    CHECK(bad.error().message.find("syscall_filter_allow[1]: no syscall filter group named 'unix-sockets'") == 0);
    CHECK(bad.error().message.find("unix_sockets") != std::string::npos);  // the names there are
    CHECK(DefaultSyscallFilter::group_index("personality") == 12);
    CHECK_FALSE(DefaultSyscallFilter::group_index("Ptrace"));
}

namespace {

/// Runs `body` in a child process with `program` installed (or none), and returns how it ended
/// (the exit status, or 1000 + the signal).
template <class F>
int in_child(const std::string* program, F&& body) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        if (program != nullptr) {
            sock_fprog prog{static_cast<unsigned short>(program->size() / sizeof(sock_filter)),
                            reinterpret_cast<sock_filter*>(const_cast<char*>(program->data()))};
            if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
                ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0)
                ::_exit(99);
        }
        ::_exit(body());
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1000 + WTERMSIG(status);
}

/// 0 when the call succeeded, else its errno (capped to fit an exit status).
int outcome(long rc) { return rc >= 0 ? 0 : std::min(errno, 98); }

}  // namespace

TEST_CASE("the kernel loads the default filter and enforces it (a process of this test, no bwrap)") {
    const std::string program = shannot::DefaultSyscallFilter::program().bytes();
    SUBCASE("denied calls fail with EPERM, clone3 with ENOSYS; the same calls without the filter do not") {
        const auto unix_socket = [] { return outcome(::socket(AF_UNIX, SOCK_STREAM, 0)); };
        CHECK(in_child(&program, unix_socket) == EPERM);
        CHECK(in_child(nullptr, unix_socket) == 0);
        const auto netlink = [] { return outcome(::socket(AF_NETLINK, SOCK_RAW, 0)); };
        CHECK(in_child(&program, netlink) == EPERM);
        CHECK(in_child(nullptr, netlink) == 0);
        const auto uring = [] {
            unsigned char params[120] = {};
            return outcome(::syscall(__NR_io_uring_setup, 1, params));
        };
        CHECK(in_child(&program, uring) == EPERM);
        CHECK(in_child(nullptr, uring) != EPERM);
        const auto clone3 = [] { return outcome(::syscall(__NR_clone3, nullptr, 0)); };
        CHECK(in_child(&program, clone3) == ENOSYS);
        CHECK(in_child(nullptr, clone3) == EINVAL);  // the kernel's own answer to a null argument
        const auto persona = [] { return outcome(::personality(ADDR_NO_RANDOMIZE)); };
        CHECK(in_child(&program, persona) == EPERM);
        CHECK(in_child(nullptr, persona) == 0);
    }
    SUBCASE(
        "what programs need keeps working: sockets of AF_INET, socketpair, fork, threads, posix_spawn, personality "
        "queries") {
        CHECK(in_child(&program, [] { return outcome(::socket(AF_INET, SOCK_DGRAM, 0)); }) == 0);
        CHECK(in_child(&program, [] {
                  int sv[2];
                  return outcome(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
              }) == 0);
        CHECK(in_child(&program, [] { return outcome(::personality(0xffffffff)); }) == 0);
        CHECK(in_child(&program, [] { return outcome(::personality(PER_LINUX)); }) == 0);
        CHECK(in_child(&program, [] {
                  const pid_t child = ::fork();  // glibc's fork is clone(SIGCHLD)
                  if (child == 0) ::_exit(7);
                  int status = 0;
                  ::waitpid(child, &status, 0);
                  return WIFEXITED(status) && WEXITSTATUS(status) == 7 ? 0 : 1;
              }) == 0);
    }
#if defined(__x86_64__)
    SUBCASE("the x32 ABI and i386 calls kill the process; without the filter they do not") {
        const auto x32 = [] { return outcome(::syscall(0x40000000L | __NR_getpid)); };
        CHECK(in_child(&program, x32) == 1000 + SIGSYS);
        CHECK(in_child(nullptr, x32) < 1000);
        const auto i386_getpid = [] {
            long rc = 20;  // __NR_getpid on i386
            asm volatile("int $0x80" : "+a"(rc) : : "memory", "r8", "r9", "r10", "r11");
            return rc > 0 ? 0 : 1;
        };
        CHECK(in_child(&program, i386_getpid) == 1000 + SIGSYS);
        CHECK(in_child(nullptr, i386_getpid) != 1000 + SIGSYS);
    }
#endif
}
