// SPDX-License-Identifier: MIT
// The generic syscall numbers (include/uapi/asm-generic/unistd.h), which aarch64 uses, for
// tests/seccomp_test.cpp to check shannot's aarch64 column against on any host. A TU of its own,
// built without unity and without shannot: the generic header's __NR_ macros clash with the host
// architecture's (<sys/syscall.h>) on x86_64.

// What arm64's own <asm/unistd.h> (arch/arm64/include/uapi/asm/unistd.h) defines before it
// includes the generic table: the optional calls arm64 has.
#define __ARCH_WANT_RENAMEAT
#define __ARCH_WANT_NEW_STAT
#define __ARCH_WANT_SET_GET_RLIMIT
#define __ARCH_WANT_TIME32_SYSCALLS
#define __ARCH_WANT_SYS_CLONE3
#define __ARCH_WANT_MEMFD_SECRET
#include <asm-generic/unistd.h>

#include <string_view>
#include <utility>
#include <vector>

namespace shannot_test {

/// (name, __NR_name) for each call of shannot's table the installed generic header defines.
std::vector<std::pair<std::string_view, long>> generic_syscall_numbers() {
#define NR(name) {#name, __NR_##name}
    return {
        NR(read), NR(write), NR(close), NR(ioctl), NR(getpid), NR(execve), NR(kill), NR(prctl), NR(exit_group),
        NR(openat), NR(mkdirat), NR(mknodat), NR(seccomp), NR(memfd_create), NR(execveat), NR(socket), NR(connect),
        NR(bind), NR(listen), NR(socketpair), NR(clone), NR(ptrace), NR(personality), NR(unshare), NR(setns),
        NR(process_vm_readv), NR(process_vm_writev), NR(kcmp), NR(pidfd_send_signal), NR(pidfd_open), NR(clone3),
        NR(pidfd_getfd), NR(pivot_root), NR(chroot), NR(mount), NR(umount2), NR(open_tree), NR(move_mount),
        NR(fsopen), NR(fsconfig), NR(fsmount), NR(fspick), NR(mount_setattr), NR(io_uring_setup), NR(io_uring_enter),
        NR(io_uring_register), NR(bpf), NR(perf_event_open), NR(userfaultfd), NR(add_key), NR(request_key),
        NR(keyctl), NR(init_module), NR(delete_module), NR(finit_module), NR(kexec_load), NR(kexec_file_load),
        NR(syslog), NR(vhangup), NR(acct), NR(settimeofday), NR(swapon), NR(swapoff), NR(reboot), NR(sethostname),
        NR(setdomainname), NR(quotactl), NR(clock_settime), NR(fanotify_init), NR(name_to_handle_at),
        NR(open_by_handle_at),
#ifdef __NR_open_tree_attr
        NR(open_tree_attr),
#endif
#ifdef __NR_uselib
        NR(uselib),
#endif
#ifdef __NR_iopl
        NR(iopl),
#endif
#ifdef __NR_ioperm
        NR(ioperm),
#endif
    };
#undef NR
}

}  // namespace shannot_test
