// SPDX-License-Identifier: MIT
// Calls the system calls the built-in syscall filter denies, each with arguments under which the
// kernel itself would let it succeed, and says how each went: the probe of the syscall filter tests.
//
//   shannot_seccomp_probe NAME...      (no NAME: every call below)
//
// Prints one line per call, "NAME RESULT": RESULT is "ok", the errno's name ("EPERM", "ENOSYS",
// ...), or "killed SIGSYS" (the filter killed the process). Each call runs in a
// child process of its own, so that none changes the probe (unshare, pivot_root) and a call that
// kills its process is seen. Calls that need privilege in a namespace (the mount family, setns,
// AF_PACKET) first enter a nested user namespace when the kernel and the filter let them ("nested"
// reports whether that worked): only then would the kernel itself let them succeed.
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/keyctl.h>
#include <linux/mount.h>
#include <linux/perf_event.h>
#include <linux/sched.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>

extern char** environ;

namespace {

/// 0: the call succeeded; else its errno.
int result(long rc) { return rc >= 0 ? 0 : errno; }

long sys(long nr, long a = 0, long b = 0, long c = 0, long d = 0, long e = 0, long f = 0) {
    return ::syscall(nr, a, b, c, d, e, f);
}

bool write_file(const char* path, const std::string& text) {
    const int fd = ::open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    return ok;
}

/// Enters a new user namespace with `more` namespaces owned by it: there this process has every
/// capability over them. False when the kernel or a filter refuses. Mapping this uid and gid to 0
/// is best effort: a process that is root outside cannot map uid 0 without CAP_SETFCAP (which
/// bwrap's --cap-drop ALL took), and the calls probed here need the capabilities, not a mapping.
bool nest(int more) {
    const auto uid = ::getuid(), gid = ::getgid();
    if (sys(__NR_unshare, CLONE_NEWUSER | more) != 0) return false;
    if (write_file("/proc/self/setgroups", "deny") &&
        write_file("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1"))
        write_file("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1");
    return true;
}

/// A scratch directory (the sandbox's /tmp is a tmpfs).
std::string scratch(const char* name) {
    std::string path = std::string("/tmp/shannot-probe-") + name + "-" + std::to_string(::getpid());
    ::mkdir(path.c_str(), 0700);
    return path;
}

long mount_tmpfs(const std::string& at) {
    return sys(__NR_mount, reinterpret_cast<long>("none"), reinterpret_cast<long>(at.c_str()),
               reinterpret_cast<long>("tmpfs"), 0, 0);
}

int io_uring_ring() {
    io_uring_params params{};
    return static_cast<int>(sys(__NR_io_uring_setup, 1, reinterpret_cast<long>(&params)));
}

/// Runs `body` (returning 0 or an errno) in a child; "ok", the errno's name, or how it died.
template <class F>
std::string in_child(F&& body) {
    int pipefd[2];
    if (::pipe(pipefd) != 0) return "probe-error";
    const pid_t pid = ::fork();
    if (pid < 0) return "probe-error";
    if (pid == 0) {
        ::close(pipefd[0]);
        const int rc = body();
        (void)!::write(pipefd[1], &rc, sizeof rc);
        ::_exit(0);
    }
    ::close(pipefd[1]);
    int rc = -1;
    const bool got = ::read(pipefd[0], &rc, sizeof rc) == static_cast<ssize_t>(sizeof rc);
    ::close(pipefd[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFSIGNALED(status))
        return std::string("killed ") +
               (sigabbrev_np(WTERMSIG(status)) ? "SIG" + std::string(sigabbrev_np(WTERMSIG(status))) : "?");
    if (!got) return "probe-error";
    if (rc == 0) return "ok";
    const char* name = strerrorname_np(rc);
    return name ? name : std::to_string(rc);
}

/// Forks a child with a raw clone/clone3 and waits for it: 0 when it ran.
int reap_clone(long pid) {
    if (pid < 0) return errno;
    if (pid == 0) ::_exit(0);
    int status = 0;
    ::waitpid(static_cast<pid_t>(pid), &status, 0);
    return 0;
}

int call(std::string_view name) {
    if (name == "io_uring_setup") {
        const int ring = io_uring_ring();
        return ring >= 0 ? 0 : errno;
    }
    if (name == "io_uring_enter") {  // on a ring when there is one (without the filter): returns 0
        const int ring = io_uring_ring();
        return result(sys(__NR_io_uring_enter, ring, 0, 0, 0, 0, 0));
    }
    if (name == "io_uring_register") {
        const int ring = io_uring_ring();
        static unsigned char probe[sizeof(io_uring_probe) + 256 * sizeof(io_uring_probe_op)];
        return result(sys(__NR_io_uring_register, ring, IORING_REGISTER_PROBE, reinterpret_cast<long>(probe), 256));
    }
    if (name == "ptrace") {  // PTRACE_TRACEME in a child of ours
        const pid_t child = ::fork();
        if (child == 0) ::_exit(sys(__NR_ptrace, 0 /* PTRACE_TRACEME */) == 0 ? 0 : errno);
        int status = 0;
        ::waitpid(child, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 255;
    }
    if (name == "process_vm_readv" || name == "process_vm_writev") {  // this process's own memory
        char from[8] = "shannot", to[8] = {};
        iovec local{to, sizeof to}, remote{from, sizeof from};
        const long nr = name == "process_vm_readv" ? __NR_process_vm_readv : __NR_process_vm_writev;
        if (nr == __NR_process_vm_writev) std::swap(local.iov_base, remote.iov_base);
        return result(sys(nr, ::getpid(), reinterpret_cast<long>(&local), 1, reinterpret_cast<long>(&remote), 1, 0));
    }
    if (name == "pidfd_getfd") {  // a copy of our own stdout
        const long pidfd = sys(__NR_pidfd_open, ::getpid(), 0);
        if (pidfd < 0) return errno;
        return result(sys(__NR_pidfd_getfd, pidfd, 1, 0));
    }
    if (name == "bpf") {
        // BPF_MAP_LOOKUP_ELEM in map -1: kernels with unprivileged BPF disabled refuse map and
        // program creation with EPERM themselves, so the call that tells is one they answer EBADF.
        union {
            unsigned char raw[128];
            struct {
                std::uint32_t map_fd;
            } lookup;
        } attr{};
        attr.lookup.map_fd = static_cast<std::uint32_t>(-1);
        return result(sys(__NR_bpf, 1 /* BPF_MAP_LOOKUP_ELEM */, reinterpret_cast<long>(&attr), sizeof attr));
    }
    if (name == "perf_event_open") {  // a software clock on this process, user space only
        perf_event_attr attr{};
        attr.size = sizeof attr;
        attr.type = PERF_TYPE_SOFTWARE;
        attr.config = PERF_COUNT_SW_CPU_CLOCK;
        attr.exclude_kernel = 1;
        attr.exclude_hv = 1;
        return result(sys(__NR_perf_event_open, reinterpret_cast<long>(&attr), 0, -1, -1, 0));
    }
    if (name == "userfaultfd") return result(sys(__NR_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY));
    if (name == "keyctl") return result(sys(__NR_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 1));
    if (name == "add_key" || name == "request_key") {  // a key in a keyring of this process only
        const long key = sys(__NR_add_key, reinterpret_cast<long>("user"), reinterpret_cast<long>("shannot-probe"),
                             reinterpret_cast<long>("x"), 1, KEY_SPEC_PROCESS_KEYRING);
        if (name == "add_key") return result(key);
        return result(
            sys(__NR_request_key, reinterpret_cast<long>("user"), reinterpret_cast<long>("shannot-probe"), 0, 0));
    }
    if (name == "socket_unix") return result(::socket(AF_UNIX, SOCK_STREAM, 0));
    if (name == "socket_netlink") return result(::socket(AF_NETLINK, SOCK_RAW, 0 /* NETLINK_ROUTE */));
    if (name == "socket_other") {  // AF_VSOCK, else AF_ALG: both need no privilege where the kernel has them
        if (::socket(AF_VSOCK, SOCK_STREAM, 0) >= 0) return 0;
        const int vsock = errno;
        if (::socket(AF_ALG, SOCK_SEQPACKET, 0) >= 0) return 0;
        return vsock == EAFNOSUPPORT ? errno : vsock;
    }
    if (name == "socket_packet") {  // needs CAP_NET_RAW over the network namespace: a nested one
        nest(CLONE_NEWNET);
        return result(::socket(AF_PACKET, SOCK_RAW, 0));
    }
    if (name == "socket_inet") return result(::socket(AF_INET, SOCK_STREAM, 0));
    if (name == "socket_inet6") return result(::socket(AF_INET6, SOCK_DGRAM, 0));
    if (name == "socketpair") {
        int sv[2];
        return result(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
    }
    if (name == "unshare") return result(sys(__NR_unshare, CLONE_NEWUSER));
    if (name == "unshare_files") return result(sys(__NR_unshare, CLONE_FILES));
    if (name == "clone_newuser") return reap_clone(sys(__NR_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0));
    if (name == "clone3") {
        clone_args args{};
        args.exit_signal = SIGCHLD;
        return reap_clone(sys(__NR_clone3, reinterpret_cast<long>(&args), sizeof args));
    }
    if (name == "setns") {  // back into the nested user namespace's own uts namespace
        if (!nest(CLONE_NEWUTS)) return result(sys(__NR_setns, -1, CLONE_NEWUTS));
        const int fd = ::open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
        return result(sys(__NR_setns, fd, CLONE_NEWUTS));
    }
    if (name == "fork") return reap_clone(::fork());
    if (name == "thread") {
        pthread_t t;
        const int rc = ::pthread_create(
            &t, nullptr, [](void*) -> void* { return nullptr; }, nullptr);
        if (rc != 0) return rc;
        ::pthread_join(t, nullptr);
        return 0;
    }
    if (name == "spawn") {  // glibc's posix_spawn: clone3, falling back to clone(CLONE_VM | CLONE_VFORK)
        pid_t pid = 0;
        char* argv[] = {const_cast<char*>("true"), nullptr};
        const int rc = ::posix_spawnp(&pid, "true", nullptr, nullptr, argv, environ);
        if (rc != 0) return rc;
        int status = 0;
        ::waitpid(pid, &status, 0);
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : ECHILD;
    }
    if (name == "personality") return result(::personality(ADDR_NO_RANDOMIZE));
    if (name == "personality_query") return result(::personality(0xffffffff));
    // The mount family, in a nested user and mount namespace.
    if (name == "mount") {
        nest(CLONE_NEWNS);
        return result(mount_tmpfs(scratch("m")));
    }
    if (name == "umount2") {
        nest(CLONE_NEWNS);
        const auto at = scratch("u");
        mount_tmpfs(at);
        return result(sys(__NR_umount2, reinterpret_cast<long>(at.c_str()), 0));
    }
    if (name == "pivot_root") {  // pivot_root(".", ".") on a fresh tmpfs
        nest(CLONE_NEWNS);
        const auto at = scratch("p");
        mount_tmpfs(at);
        if (::chdir(at.c_str()) != 0) return errno;
        return result(sys(__NR_pivot_root, reinterpret_cast<long>("."), reinterpret_cast<long>(".")));
    }
    if (name == "open_tree") return result(sys(__NR_open_tree, AT_FDCWD, reinterpret_cast<long>("/tmp"), 0));
    if (name == "open_tree_attr")
        return result(sys(467, AT_FDCWD, reinterpret_cast<long>("/tmp"), 0, 0, 0));  // Linux 6.15
    if (name == "move_mount") {  // a clone of a tmpfs moved onto another directory
        nest(CLONE_NEWNS);
        const auto from = scratch("mf"), to = scratch("mt");
        mount_tmpfs(from);
        const long tree = sys(__NR_open_tree, AT_FDCWD, reinterpret_cast<long>(from.c_str()), OPEN_TREE_CLONE);
        return result(sys(__NR_move_mount, tree, reinterpret_cast<long>(""), AT_FDCWD,
                          reinterpret_cast<long>(to.c_str()), MOVE_MOUNT_F_EMPTY_PATH));
    }
    if (name == "fsopen" || name == "fsconfig" || name == "fsmount") {
        nest(CLONE_NEWNS);
        const long fs = sys(__NR_fsopen, reinterpret_cast<long>("tmpfs"), 0);
        if (name == "fsopen") return result(fs);
        const long created = sys(__NR_fsconfig, fs, FSCONFIG_CMD_CREATE, 0, 0, 0);
        if (name == "fsconfig") return result(created);
        return result(sys(__NR_fsmount, fs, 0, 0));
    }
    if (name == "fspick" || name == "mount_setattr") {
        nest(CLONE_NEWNS);
        const auto at = scratch("f");
        mount_tmpfs(at);
        if (name == "fspick") return result(sys(__NR_fspick, AT_FDCWD, reinterpret_cast<long>(at.c_str()), 0));
        mount_attr attr{};
        attr.attr_set = MOUNT_ATTR_RDONLY;
        return result(sys(__NR_mount_setattr, AT_FDCWD, reinterpret_cast<long>(at.c_str()), 0,
                          reinterpret_cast<long>(&attr), sizeof attr));
    }
    // Calls no unprivileged process can make succeed (a capability in the initial user namespace):
    // the kernel refuses them with EPERM too, before it looks at the arguments.
    if (name == "init_module") return result(sys(__NR_init_module, 0, 0, reinterpret_cast<long>("")));
    if (name == "finit_module") return result(sys(__NR_finit_module, -1, reinterpret_cast<long>(""), 0));
    if (name == "delete_module") return result(sys(__NR_delete_module, reinterpret_cast<long>("shannot_none"), 0));
    if (name == "kexec_load") return result(sys(__NR_kexec_load, 0, 0, 0, 0));
    if (name == "kexec_file_load") return result(sys(__NR_kexec_file_load, -1, -1, 0, 0, 0));
    if (name == "nested") return nest(CLONE_NEWNS) ? 0 : errno;
#if defined(__x86_64__)
    if (name == "x32") return result(sys(0x40000000L | __NR_getpid));
    if (name == "i386") {
        long rc = 20;  // getpid on i386
        asm volatile("int $0x80" : "+a"(rc) : : "memory", "r8", "r9", "r10", "r11");
        return rc > 0 ? 0 : static_cast<int>(-rc);
    }
#endif
    return -1;
}

constexpr const char* all_calls[] = {
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "mount",
    "umount2",
    "pivot_root",
    "move_mount",
    "open_tree",
    "open_tree_attr",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "unshare",
    "setns",
    "clone_newuser",
    "clone3",
    "socket_unix",
    "socket_netlink",
    "socket_other",
    "socket_packet",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "personality",
    "socket_inet",
    "socket_inet6",
    "socketpair",
    "unshare_files",
    "fork",
    "thread",
    "spawn",
    "personality_query",
    "nested",
#if defined(__x86_64__)
    "x32",
    "i386",
#endif
};

}  // namespace

int main(int argc, char** argv) {
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    auto probe = [](std::string_view name) {
        const std::string outcome = in_child([name] { return call(name); });
        std::printf("%.*s %s\n", static_cast<int>(name.size()), name.data(), outcome.c_str());
    };
    if (argc == 1) {
        for (const char* name : all_calls) probe(name);
        return 0;
    }
    for (int i = 1; i < argc; ++i) {
        bool known = false;
        for (const char* name : all_calls) known = known || name == std::string_view(argv[i]);
        if (!known) {
            std::fprintf(stderr, "shannot_seccomp_probe: no call named '%s'\n", argv[i]);
            return 2;
        }
        probe(argv[i]);
    }
    return 0;
}
