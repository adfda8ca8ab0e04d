// SPDX-License-Identifier: MIT
// A run's limits on this host: rlimits set on bwrap's sandbox process, and a pids cgroup per run.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <memory>
#include <mutex>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <shannot/detail/local/spawner_thread.hpp>
#include <shannot/error.hpp>
#include <shannot/limits.hpp>

namespace shannot::detail {

/// Where this process may create pids cgroups: a cgroup2 directory whose children get the pids
/// controller (`pids` in its cgroup.subtree_control) and that it may write to (a delegated
/// subtree, or root), nearest its own cgroup; else, with cgroup v1, its own cgroup in the pids
/// hierarchy when writable. Nothing else is ever written: not the parent's files, not another
/// cgroup's (the machine's own management uses cgroups too).
struct CgroupParent {
    std::string dir;
    int version = 0;
};

/// The lines of a small file (/proc/self/cgroup, /proc/self/mountinfo, cgroup.subtree_control).
[[nodiscard]] inline std::vector<std::string> read_lines(const std::string& path) {
    std::vector<std::string> lines;
    std::FILE* f = std::fopen(path.c_str(), "re");
    if (!f) return lines;
    char buffer[4096];
    while (std::fgets(buffer, sizeof buffer, f)) {
        std::string line(buffer);
        if (!line.empty() && line.back() == '\n') line.pop_back();
        lines.push_back(std::move(line));
    }
    std::fclose(f);
    return lines;
}

/// The space-separated words of `line`.
[[nodiscard]] inline std::vector<std::string> split_words(std::string_view line, char separator = ' ') {
    std::vector<std::string> words;
    std::size_t start = 0;
    while (start <= line.size()) {
        const auto end = line.find(separator, start);
        const auto word = line.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
        if (!word.empty()) words.emplace_back(word);
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
    return words;
}

[[nodiscard]] inline bool has_word(const std::vector<std::string>& words, std::string_view word) {
    for (const auto& w : words)
        if (w == word) return true;
    return false;
}

/// The first line of a small file, or "".
[[nodiscard]] inline std::string first_line(const std::string& path) {
    auto lines = read_lines(path);
    return lines.empty() ? std::string() : std::move(lines.front());
}

/// Finds the parent for this process's pids cgroups (see CgroupParent), or nothing.
[[nodiscard]] inline std::optional<CgroupParent> find_cgroup_parent() {
    std::string v2_path, v1_path;
    for (const auto& line : read_lines("/proc/self/cgroup")) {
        const auto first = line.find(':'), second = line.find(':', first + 1);
        if (first == std::string::npos || second == std::string::npos) continue;
        const auto controllers = split_words(std::string_view(line).substr(first + 1, second - first - 1), ',');
        const auto path = line.substr(second + 1);
        if (line.compare(0, first, "0") == 0 && controllers.empty())
            v2_path = path;
        else if (has_word(controllers, "pids"))
            v1_path = path;
    }
    // mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS...] - FSTYPE SOURCE SUPEROPTIONS
    std::optional<CgroupParent> v1;
    for (const auto& line : read_lines("/proc/self/mountinfo")) {
        const auto words = split_words(line);
        std::size_t dash = 6;
        while (dash < words.size() && words[dash] != "-") ++dash;
        if (dash + 3 >= words.size()) continue;
        const auto& root = words[3];
        const auto& mount_point = words[4];
        const auto& fstype = words[dash + 1];
        const auto& super_options = words[dash + 3];
        // A path of the hierarchy as seen at this mount, whose root may be a subtree. Mount
        // points with escaped bytes (\040 for a space) are not ours to guess at.
        auto at_mount = [&](const std::string& path) -> std::optional<std::string> {
            if (path.empty() || path.front() != '/' || mount_point.find('\\') != std::string::npos) return std::nullopt;
            if (root == "/") return mount_point + (path == "/" ? std::string() : path);
            if (path == root) return mount_point;
            if (path.compare(0, root.size() + 1, root + "/") == 0) return mount_point + path.substr(root.size());
            return std::nullopt;
        };
        if (fstype == "cgroup2" && !v2_path.empty()) {
            const auto own = at_mount(v2_path);
            if (!own) continue;
            // Nearest first: our own cgroup (only the root may hold processes and give its
            // children controllers at once), then each parent up to the mount.
            for (std::string dir = *own;; dir = dir.substr(0, dir.rfind('/'))) {
                if (has_word(split_words(first_line(dir + "/cgroup.subtree_control")), "pids") &&
                    ::access(dir.c_str(), W_OK) == 0 && ::access((dir + "/cgroup.procs").c_str(), W_OK) == 0)
                    return CgroupParent{dir, 2};
                if (dir.size() <= mount_point.size() || dir.rfind('/') == std::string::npos) break;
            }
        } else if (fstype == "cgroup" && !v1_path.empty() && has_word(split_words(super_options, ','), "pids")) {
            const auto own = at_mount(v1_path);
            if (own && ::access(own->c_str(), W_OK) == 0) v1 = CgroupParent{*own, 1};
        }
    }
    return v1;
}

/// Removes the empty pids cgroups of processes of ours that died before removing them (named
/// shannot-PID-N); one that still holds a process, or whose PID lives, is left alone.
inline void sweep_dead_cgroups(const std::string& parent) {
    DIR* dir = ::opendir(parent.c_str());
    if (!dir) return;
    std::vector<std::string> dead;
    while (const dirent* e = ::readdir(dir)) {
        const std::string_view name = e->d_name;
        if (name.rfind("shannot-", 0) != 0) continue;
        const long pid = std::atol(e->d_name + 8);
        if (pid <= 0 || pid == ::getpid() || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
        dead.emplace_back(name);
    }
    ::closedir(dir);
    for (const auto& name : dead) ::rmdir((parent + "/" + name).c_str());
}

/// The parent found once per process (and the dead cgroups under it swept then).
template <class Deferred>
[[nodiscard]] const std::optional<CgroupParent>& cgroup_parent() {
    static const std::optional<CgroupParent> parent = [] {
        auto found = find_cgroup_parent();
        if (found) sweep_dead_cgroups(found->dir);
        return found;
    }();
    return parent;
}

/// Writes `text` to an existing file (a cgroup's control file). False with errno on failure.
[[nodiscard]] inline bool write_file(const std::string& path, std::string_view text) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const ssize_t n = ::write(fd, text.data(), text.size());
    const int saved = errno;
    ::close(fd);
    errno = saved;
    return n == static_cast<ssize_t>(text.size());
}

/// How many forks a pids cgroup has refused so far ("max N" in its pids.events).
[[nodiscard]] inline std::uint64_t pids_max_events(const std::string& dir) {
    for (const auto& line : read_lines(dir + "/pids.events"))
        if (line.rfind("max ", 0) == 0) return std::strtoull(line.c_str() + 4, nullptr, 10);
    return 0;
}

/// How many tasks a pids cgroup is charged for (pids.current): its live tasks and its exited,
/// not yet reaped ones. 0 when it cannot be read.
[[nodiscard]] inline std::uint64_t pids_current(const std::string& dir) {
    return std::strtoull(first_line(dir + "/pids.current").c_str(), nullptr, 10);
}

/// One run's pids cgroup: made with pids.max set, holds bwrap and the sandbox, removed when the
/// run is over (it is empty by then: wait() returns once the sandbox's PID 1 is gone).
class RunCgroup {
public:
    RunCgroup() = default;
    RunCgroup(RunCgroup&& other) noexcept : dir_(std::exchange(other.dir_, std::string())), version_(other.version_) {}
    RunCgroup& operator=(RunCgroup&& other) noexcept {
        if (this != &other) {
            remove();
            dir_ = std::exchange(other.dir_, std::string());
            version_ = other.version_;
        }
        return *this;
    }
    RunCgroup(const RunCgroup&) = delete;
    RunCgroup& operator=(const RunCgroup&) = delete;
    ~RunCgroup() { remove(); }

    /// A new cgroup under `parent` allowing `processes` at once; empty (no cgroup) on failure.
    [[nodiscard]] static RunCgroup make(const CgroupParent& parent, std::uint64_t processes) {
        static std::atomic<unsigned> sequence{0};
        RunCgroup cg;
        std::string dir = parent.dir + "/shannot-" + std::to_string(::getpid()) + "-" + std::to_string(++sequence);
        if (::mkdir(dir.c_str(), 0755) != 0) return cg;
        cg.dir_ = std::move(dir);
        cg.version_ = parent.version;
        if (!write_file(cg.dir_ + "/pids.max", std::to_string(processes))) cg.remove();
        return cg;
    }

    [[nodiscard]] explicit operator bool() const noexcept { return !dir_.empty(); }
    [[nodiscard]] int version() const noexcept { return version_; }

    /// Moves `pid` (and its threads) into the cgroup; its later children start there.
    [[nodiscard]] bool add(pid_t pid) const { return write_file(dir_ + "/cgroup.procs", std::to_string(pid)); }

    /// How many forks pids.max has refused so far (0 without a cgroup).
    [[nodiscard]] std::uint64_t limit_events() const { return dir_.empty() ? 0 : pids_max_events(dir_); }

    /// Removes the cgroup; a process still leaving it (an exiting sandbox) gets ~200 ms.
    void remove() noexcept {
        if (dir_.empty()) return;
        for (int i = 0; i < 200 && ::rmdir(dir_.c_str()) != 0 && errno == EBUSY; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        dir_.clear();
    }

private:
    std::string dir_{};
    int version_ = 0;
};

/// With cgroup v1, a run's pids cgroup is a spawner thread's: every thread of a process may sit
/// in a v1 cgroup of its own, and a process starts in its parent thread's cgroup. So each slot is
/// a spawner thread that moved itself once into a pids cgroup made for it, and the bwrap it
/// spawns is born there, with everything bwrap starts: no process is moved per run. Moving one
/// (a write to cgroup.procs) takes the kernel's cgroup_threadgroup_rwsem for writing, which
/// waits for an RCU grace period and holds off every fork and exit on the host meanwhile:
/// 0.4 ms on average here, 19 ms at worst, where B11 allows 0.2. The thread moves itself by
/// writing "0", which spares it that lock: 0.2 ms against 7 ms for its own id (make_slot()). A slot serves one run at a
/// time (its pids.max is that run's); there are as many as runs went on at once, and they live
/// as long as the process (an empty cgroup left behind is removed by the next process's sweep).
template <class Deferred>
class CgroupSlots {
public:
    struct Slot {
        SpawnerThread<Deferred> spawner{};
        std::string dir{};
        bool busy = false;
    };

    /// One run's hold on a slot; gives it back when destroyed (after the run's processes are gone).
    class Lease {
    public:
        Lease() = default;
        Lease(Slot* slot, std::uint64_t events) : slot_(slot), events_at_start_(events) {}
        Lease(Lease&& other) noexcept
            : slot_(std::exchange(other.slot_, nullptr)), events_at_start_(other.events_at_start_) {}
        Lease& operator=(Lease&& other) noexcept {
            if (this != &other) {
                release();
                slot_ = std::exchange(other.slot_, nullptr);
                events_at_start_ = other.events_at_start_;
            }
            return *this;
        }
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        ~Lease() { release(); }

        [[nodiscard]] explicit operator bool() const noexcept { return slot_ != nullptr; }
        [[nodiscard]] SpawnerThread<Deferred>& spawner() const noexcept { return slot_->spawner; }
        /// Forks refused for pids.max since the lease began (the run's own, as runs take turns).
        [[nodiscard]] std::uint64_t limit_events() const {
            return slot_ ? pids_max_events(slot_->dir) - events_at_start_ : 0;
        }
        void release() noexcept {
            if (!slot_) return;
            CgroupSlots::instance().give_back(slot_);
            slot_ = nullptr;
        }

    private:
        Slot* slot_ = nullptr;
        std::uint64_t events_at_start_ = 0;
    };

    static CgroupSlots& instance() {
        // Leaked on purpose, like SpawnerThread: its threads live as long as the process.
        static auto* slots = new CgroupSlots;
        return *slots;
    }

    /// A slot under `parent` (a v1 pids cgroup parent) whose pids.max allows `processes` for the
    /// run, bwrap included (its own thread, and the unreaped PID 1 of earlier runs, are more tasks
    /// there); empty when none can be made.
    [[nodiscard]] Lease acquire(const CgroupParent& parent, std::uint64_t processes) {
        std::unique_lock lock(mutex_);
        if (broken_ || closed_) return {};
        Slot* slot = nullptr;
        for (auto& s : slots_)
            if (!s->busy) {
                slot = s.get();
                break;
            }
        if (!slot) {
            lock.unlock();
            auto made = make_slot(parent);
            lock.lock();
            if (!made) {
                broken_ = true;  // the next runs do without, rather than try (and start a thread) each time
                return {};
            }
            if (slots_.empty()) std::atexit(&CgroupSlots::remove_at_exit);
            slots_.push_back(std::move(made));
            slot = slots_.back().get();
        }
        // pids.current is the slot's thread and, until init reaps them, the PID 1 of earlier runs:
        // bwrap's monitor exits as soon as its sandbox reports the command's status, without
        // reaping that PID 1, which goes to init, and a lazy init (some containers' PID 1) leaves
        // it charged here for seconds. Counted in pids.max, they used up a slot after 256 runs
        // (B12 failed with "Can't fork for pid 1"). The run gets `processes` on top of them.
        const std::uint64_t held = std::max<std::uint64_t>(1, pids_current(slot->dir));
        if (!write_file(slot->dir + "/pids.max", std::to_string(processes + held))) return {};
        slot->busy = true;
        return Lease(slot, pids_max_events(slot->dir));
    }

private:
    /// At exit, the idle slots' threads end and their cgroups go; a slot still in use (a run on
    /// another thread) stays, for the next process's sweep. Later runs do without a cgroup.
    static void remove_at_exit() {
        auto& self = instance();
        std::vector<std::string> dirs;
        {
            std::lock_guard lock(self.mutex_);
            self.closed_ = true;
            for (auto& s : self.slots_)
                if (!s->busy) {
                    // The thread moves itself back to the process's cgroup (the slot's parent),
                    // as cheaply as it moved in, so the slot is empty now rather than once the
                    // thread has exited.
                    const std::string back = s->dir.substr(0, s->dir.rfind('/')) + "/tasks";
                    (void)s->spawner.run([&] { return write_file(back, "0") ? 0 : EIO; });
                    s->spawner.quit();
                    dirs.push_back(s->dir);
                }
        }
        for (const auto& dir : dirs)  // if the move back failed, the thread leaves as it exits
            for (int i = 0; i < 100 && ::rmdir(dir.c_str()) != 0 && errno == EBUSY; ++i)
                std::this_thread::sleep_for(std::chrono::microseconds(500));
    }

    void give_back(Slot* slot) {
        std::lock_guard lock(mutex_);
        slot->busy = false;
    }

    /// A cgroup shannot-PID-N under `parent` and a spawner thread that moved itself into it.
    static std::unique_ptr<Slot> make_slot(const CgroupParent& parent) {
        static std::atomic<unsigned> sequence{0};
        auto slot = std::make_unique<Slot>();
        slot->dir = parent.dir + "/shannot-" + std::to_string(::getpid()) + "-s" + std::to_string(++sequence);
        if (::mkdir(slot->dir.c_str(), 0755) != 0) return nullptr;
        // v1 moves one thread through `tasks`. "0" names the writing thread itself, and only then
        // does the kernel skip cgroup_threadgroup_rwsem (6.18 here; older kernels take it either
        // way): the thread's own id takes it for writing and waits for an RCU grace period (7-19
        // ms here, every CLI call).
        const std::string tasks = slot->dir + "/tasks";
        const int moved = slot->spawner.run([&] { return write_file(tasks, "0") ? 0 : (errno ? errno : EIO); });
        if (moved != 0) {
            ::rmdir(slot->dir.c_str());
            (void)slot.release();  // its thread runs on, idle, in the caller's cgroup: it must not be freed
            return nullptr;
        }
        return slot;
    }

    std::mutex mutex_;
    std::vector<std::unique_ptr<Slot>> slots_;
    bool broken_ = false;
    bool closed_ = false;
};

/// prlimit(2) with the resource as an int: glibc declares it with an enum in C++, musl an int.
template <class Resource>
int call_prlimit(int (*f)(pid_t, Resource, const rlimit*, rlimit*), pid_t pid, int resource, const rlimit* want,
                 rlimit* old) {
    return f(pid, static_cast<Resource>(resource), want, old);
}

/// Sets the run's rlimits on `pid` (bwrap's sandbox process, held on --block-fd): everything
/// in the sandbox inherits them. Never above what the caller itself may have: where raising a
/// hard limit is refused (EPERM: no CAP_SYS_RESOURCE, or past fs.nr_open), the caller's is kept.
/// RLIMIT_CPU gets a hard limit one second past the soft one, so a command first receives
/// SIGXCPU (which the result can name) and is killed only if it ignores that. RLIMIT_CORE is 0:
/// a crash inside writes no core file, here or to the host's core handler.
[[nodiscard]] inline Result<void> set_rlimits(pid_t pid, const ResourceLimits& limits, bool in_own_user_namespace) {
    struct One {
        int resource;
        rlim_t soft, hard;
        const char* name;
    };
    // RLIMIT_NPROC counts the processes of the sandbox's user in its own user namespace (Linux
    // 5.14+), which bwrap's outer process is not in: one fewer, so that bwrap and the sandbox
    // together stay within `processes`. Without a user namespace it would count all of the
    // caller's processes, so it is left alone there (only root runs bwrap without one).
    const rlim_t nproc = limits.processes > 1 ? limits.processes - 1 : 1;
    const One all[] = {
        {RLIMIT_AS, limits.memory_bytes, limits.memory_bytes, "memory_bytes"},
        {RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1, "cpu_seconds"},
        {RLIMIT_FSIZE, limits.file_size_bytes, limits.file_size_bytes, "file_size_bytes"},
        {RLIMIT_NOFILE, limits.open_files, limits.open_files, "open_files"},
        {RLIMIT_NPROC, nproc, nproc, "processes"},
        {RLIMIT_CORE, 0, 0, "core"},
    };
    for (const auto& one : all) {
        if (one.resource == RLIMIT_NPROC && !in_own_user_namespace) continue;
        rlimit want{one.soft, one.hard};
        if (call_prlimit(::prlimit, pid, one.resource, &want, nullptr) == 0) continue;
        if (errno == ESRCH) return {};  // it died in setup: bwrap reports that
        rlimit now{};
        if (errno == EPERM && call_prlimit(::prlimit, pid, one.resource, nullptr, &now) == 0) {
            want.rlim_max = std::min(want.rlim_max, now.rlim_max);
            want.rlim_cur = std::min(want.rlim_cur, want.rlim_max);
            if (call_prlimit(::prlimit, pid, one.resource, &want, nullptr) == 0) continue;
            if (errno == ESRCH) return {};
        }
        return fail(errc::spawn_failed,
                    std::string("cannot set the sandbox's ") + one.name + " limit (prlimit): " + std::strerror(errno));
    }
    return {};
}

}  // namespace shannot::detail
