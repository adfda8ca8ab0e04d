// SPDX-License-Identifier: MIT
// A connection kept after its transport is gone: one folder per destination, its lock and state.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <shannot/detail/json_reader.hpp>
#include <shannot/detail/posix/child.hpp>
#include <shannot/detail/posix/process.hpp>
#include <shannot/detail/posix/unique_fd.hpp>
#include <shannot/error.hpp>
#include <shannot/ssh_connection.hpp>

namespace shannot::detail {

/// What makes two connections the same: the ssh binary, every option ssh gets, the destination.
/// Connections differing in any of them (key, known_hosts, port, host key policy, extra options)
/// never share a kept connection.
[[nodiscard]] inline std::vector<std::string> persist_identity(const SshConnection& c) {
    std::vector<std::string> words{c.ssh_binary};
    for (auto& o : ssh_base_options(c)) words.push_back(std::move(o));
    words.push_back(ssh_destination(c));
    return words;
}

/// The name of a kept connection's folder: 16 hex digits of FNV-1a over the identity (the
/// identity itself is stored in the folder and compared, so a collision is never used).
[[nodiscard]] inline std::string persist_key(const std::vector<std::string>& identity) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const auto& word : identity) {
        for (unsigned char c : word) h = (h ^ c) * 0x100000001b3ULL;
        h = (h ^ 0xffu) * 0x100000001b3ULL;  // a separator no byte of a word can fake
    }
    char text[17];
    std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(h));
    return text;
}

/// Makes `path` (and missing parents) a folder only its owner can use: mode 0700, owned by this
/// user, not a symlink. An existing folder that is anything else is refused, never "fixed": a
/// folder someone else made could hold sockets that are theirs.
[[nodiscard]] inline Result<void> ensure_private_folder(const std::string& path) {
    if (path.empty() || path.front() != '/')
        return fail(errc::invalid_argument, "the folder '" + path + "' is not absolute");
    for (std::size_t at = path.find('/', 1); at != std::string::npos; at = path.find('/', at + 1))
        ::mkdir(path.substr(0, at).c_str(), 0700);  // parents: made private if we make them, else as they are
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
        return fail(errc::io_error, "cannot create the folder " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0)
        return fail(errc::io_error, "cannot examine " + path + ": " + std::strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return fail(errc::invalid_argument, path + " is not a folder (a symlink, or a file): refused");
    if (st.st_uid != ::geteuid()) return fail(errc::invalid_argument, path + " belongs to another user: refused");
    if ((st.st_mode & 077) != 0)
        return fail(errc::invalid_argument, path + " is open to other users (mode " +
                                                std::to_string(st.st_mode & 0777) + ", want 0700): refused");
    return {};
}

/// A process's start time (field 22 of /proc/PID/stat), which with its pid names it for good.
[[nodiscard]] inline std::string process_start_time(pid_t pid) {
    if (pid <= 0) return {};
    char path[64];
    std::snprintf(path, sizeof path, "/proc/%d/stat", static_cast<int>(pid));
    const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    char buffer[1024];
    const auto n = ::read(fd, buffer, sizeof buffer - 1);
    ::close(fd);
    if (n <= 0) return {};
    std::string_view text(buffer, static_cast<std::size_t>(n));
    const auto close = text.rfind(')');
    if (close == std::string_view::npos) return {};
    text.remove_prefix(close + 2);                                                 // from field 3 (state)
    if (!text.empty() && (text.front() == 'Z' || text.front() == 'X')) return {};  // dead, not yet reaped
    for (int field = 3; field < 22; ++field) {
        const auto space = text.find(' ');
        if (space == std::string_view::npos) return {};
        text.remove_prefix(space + 1);
    }
    return std::string(text.substr(0, text.find(' ')));
}

/// Whether `pid` is still the process that started at `start` (not a reused pid), and alive.
[[nodiscard]] inline bool same_process(pid_t pid, const std::string& start) {
    return pid > 0 && !start.empty() && process_start_time(pid) == start;
}

/// Signals `pid` only if it is still the process that started at `start`.
inline void signal_process(pid_t pid, const std::string& start, int signal) {
    if (same_process(pid, start)) ::kill(pid, signal);
}

/// Where kept connections live unless SshConnection::persist_folder says otherwise:
/// `$XDG_RUNTIME_DIR/shannot` (a per-user tmpfs, gone at logout) when that is set, absolute and
/// ours; else `$XDG_CACHE_HOME/shannot/ssh`, else `$HOME/.cache/shannot/ssh`. Never a shared
/// folder such as /tmp, where another user could create the name first.
[[nodiscard]] inline Result<std::string> default_persist_folder() {
    if (const char* run = std::getenv("XDG_RUNTIME_DIR"); run && run[0] == '/') {
        struct stat st {};
        if (::lstat(run, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == ::geteuid())
            return std::string(run) + "/shannot";
    }
    if (const char* cache = std::getenv("XDG_CACHE_HOME"); cache && cache[0] == '/')
        return std::string(cache) + "/shannot/ssh";
    if (const char* home = std::getenv("HOME"); home && home[0] == '/')
        return std::string(home) + "/.cache/shannot/ssh";
    return fail(errc::invalid_argument,
                "no folder for kept ssh connections: set XDG_RUNTIME_DIR or HOME (or persist_folder)");
}

/// The longest folder path whose sockets still fit a unix socket address (108 bytes, with the
/// 16-digit key, "/s" and the NUL).
inline constexpr std::size_t max_persist_folder_length = 107 - 1 - 16 - 2;

/// What a kept connection's folder records (file "state", JSON, written whole and renamed).
struct PersistedState {
    std::vector<std::string> identity{};
    std::string host{}, user{};
    int port = 0;
    pid_t ssh_pid = -1;  ///< the ssh process: the connection, its ControlMaster and the warm dispatcher
    std::string ssh_start{};
    pid_t holder_pid = -1;  ///< `sleep SECONDS`, holding the dispatcher's stdin open while nobody uses it
    std::string holder_start{};
    bool busy = false;                ///< a transport is using it (left set by one that died mid-command)
    std::string hello{};              ///< the dispatcher's marker
    std::vector<std::string> argv{};  ///< the ssh command line, up to the destination (for ProcessResult::argv)
    std::map<std::string, std::string> links{};
    std::string files{};  ///< the dispatcher's "files" frame (DispatcherPool::keep_files), or ''
    std::vector<std::vector<std::string>> kept_args{};
    std::size_t next_slot = 0;
    std::uint64_t commands = 0;
    std::int64_t used = 0;  ///< when last released (Unix time, s)
    std::int64_t idle = 0;  ///< how long it is kept unused (s)
};

/// The files of one kept connection.
struct PersistPaths {
    std::string dir, lock, state, socket, in, out, err;
    explicit PersistPaths(std::string folder)
        : dir(std::move(folder)),
          lock(dir + "/lock"),
          state(dir + "/state"),
          socket(dir + "/s"),
          in(dir + "/in"),
          out(dir + "/out"),
          err(dir + "/err") {}
};

[[nodiscard]] inline std::int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// Reads the state file; nullopt when missing or not ours to trust (any field malformed).
template <class Json = nlohmann::json>
[[nodiscard]] std::optional<PersistedState> read_persisted_state(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return std::nullopt;
    std::string text;
    char buffer[8192];
    for (;;) {
        const auto n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        text.append(buffer, static_cast<std::size_t>(n));
        if (text.size() > (1u << 20)) break;
    }
    ::close(fd);
    auto parsed = parse_json_strict<std::string, Json>(text);
    if (!parsed || !parsed->is_object()) return std::nullopt;
    const Json& j = *parsed;
    PersistedState s;
    const auto str = [&](const char* k, std::string& out) {
        if (j.contains(k) && j[k].is_string()) out = j[k].template get<std::string>();
    };
    const auto num = [&](const char* k, auto& out) {
        if (j.contains(k) && j[k].is_number_integer())
            out = static_cast<std::remove_reference_t<decltype(out)>>(j[k].template get<std::int64_t>());
    };
    const auto strings = [](const Json& v, std::vector<std::string>& out) {
        if (!v.is_array()) return false;
        for (const auto& w : v) {
            if (!w.is_string()) return false;
            out.push_back(w.template get<std::string>());
        }
        return true;
    };
    if (!j.contains("identity") || !strings(j["identity"], s.identity)) return std::nullopt;
    str("host", s.host);
    str("user", s.user);
    num("port", s.port);
    num("ssh_pid", s.ssh_pid);
    str("ssh_start", s.ssh_start);
    num("holder_pid", s.holder_pid);
    str("holder_start", s.holder_start);
    if (j.contains("busy") && j["busy"].is_boolean()) s.busy = j["busy"].template get<bool>();
    str("hello", s.hello);
    if (j.contains("argv")) strings(j["argv"], s.argv);
    if (j.contains("links") && j["links"].is_object())
        for (const auto& [k, v] : j["links"].items())
            if (v.is_string()) s.links.emplace(k, v.template get<std::string>());
    str("files", s.files);
    if (j.contains("kept_args") && j["kept_args"].is_array())
        for (const auto& slot : j["kept_args"]) {
            s.kept_args.emplace_back();
            if (!strings(slot, s.kept_args.back())) return std::nullopt;
        }
    num("next_slot", s.next_slot);
    num("commands", s.commands);
    num("used", s.used);
    num("idle", s.idle);
    return s;
}

/// Writes the state file whole (a temporary file renamed over it).
template <class Json = nlohmann::json>
[[nodiscard]] bool write_persisted_state(const std::string& path, const PersistedState& s) {
    Json j;
    j["identity"] = s.identity;
    j["host"] = s.host;
    j["user"] = s.user;
    j["port"] = s.port;
    j["ssh_pid"] = s.ssh_pid;
    j["ssh_start"] = s.ssh_start;
    j["holder_pid"] = s.holder_pid;
    j["holder_start"] = s.holder_start;
    j["busy"] = s.busy;
    j["hello"] = s.hello;
    j["argv"] = s.argv;
    j["links"] = s.links;
    j["files"] = s.files;
    j["kept_args"] = s.kept_args;
    j["next_slot"] = s.next_slot;
    j["commands"] = s.commands;
    j["used"] = s.used;
    j["idle"] = s.idle;
    const std::string text = j.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
    const std::string temp = path + ".new";
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return false;
    const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    return ok && ::rename(temp.c_str(), path.c_str()) == 0;
}

/// Takes the folder's lock: the one transport that uses a kept connection at a time. Blocks for
/// at most `wait`; an invalid fd when another process holds it that long.
[[nodiscard]] inline UniqueFd lock_persisted(const PersistPaths& p, std::chrono::milliseconds wait) {
    UniqueFd fd(::open(p.lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) return fd;
    const auto until = std::chrono::steady_clock::now() + wait;
    while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) return UniqueFd();
        if (std::chrono::steady_clock::now() >= until) return UniqueFd();
        ::usleep(5000);
    }
    return fd;
}

/// Ends a kept connection (whose lock the caller holds): the holder, then the ssh (which closes
/// the connection: the remote dispatcher sees EOF and kills whatever still runs), and removes
/// its files but the lock. What a pid names is checked against its start time first.
inline void stop_persisted(const PersistPaths& p, const std::optional<PersistedState>& state) {
    if (state) {
        signal_process(state->holder_pid, state->holder_start, SIGTERM);
        signal_process(state->ssh_pid, state->ssh_start, SIGTERM);
    }
    for (const auto* f : {&p.state, &p.socket, &p.in, &p.out, &p.err}) ::unlink(f->c_str());
}

/// Processes this program started for kept connections and left running (the ssh of a parked
/// connection, a holder): reaped here once they end, so that a long-lived program gathers no
/// zombies. Each is waited for through its own ChildProcess, never by a wait that could take
/// another child's status.
struct ParkedChildren {
    std::mutex mutex;
    std::vector<ChildProcess> list;
};
[[nodiscard]] inline ParkedChildren& parked_children() {
    static ParkedChildren parked;
    return parked;
}

/// Adds `add` to the parked processes, and reaps those that have ended.
inline void reap_parked(std::optional<ChildProcess> add = std::nullopt) {
    auto& parked = parked_children();
    std::lock_guard lock(parked.mutex);
    if (add && *add) parked.list.push_back(std::move(*add));
    for (auto it = parked.list.begin(); it != parked.list.end();) {
        if (it->exited()) {
            it->reap();  // at once: it has exited (only forgotten when it is not our child)
            it = parked.list.erase(it);
        } else {
            ++it;
        }
    }
}

/// After stop_persisted signalled `pids`: reaps those among the parked processes as they end,
/// waiting up to `bound` for them (a signalled process takes a moment to go), so that closing a
/// kept connection this program started leaves no zombie behind.
inline void reap_stopped(const std::vector<pid_t>& pids, std::chrono::milliseconds bound) {
    const auto deadline = std::chrono::steady_clock::now() + bound;
    const auto waiting = [&] {
        auto& parked = parked_children();
        std::lock_guard lock(parked.mutex);
        for (const auto& p : parked.list)
            for (const pid_t pid : pids)
                if (pid > 0 && p.pid() == pid) return true;
        return false;
    };
    for (reap_parked(); waiting() && std::chrono::steady_clock::now() < deadline; reap_parked()) ::usleep(5000);
}

/// Starts the holder: `sleep SECONDS` with the dispatcher's stdin fifo open for writing, in a
/// session of its own. When it ends and nobody else holds the fifo, the dispatcher reads EOF and
/// exits, and the connection with it: the idle limit costs no process of ours beyond this one.
[[nodiscard]] inline Result<Child> spawn_holder(const PersistPaths& p, std::int64_t seconds) {
    ChildSpec spec;
    spec.argv = {"sleep", std::to_string(seconds)};
    spec.stdout_path = p.in;
    spec.stdout_flags = O_WRONLY | O_NONBLOCK;
    spec.new_session = true;
    return spawn_child(spec);
}

}  // namespace shannot::detail
