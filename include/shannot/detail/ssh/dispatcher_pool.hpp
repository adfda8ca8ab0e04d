// SPDX-License-Identifier: MIT
// DispatcherPool: ControlMaster connections to one host, and the long-lived dispatchers on them.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <shannot/detail/first_frames.hpp>
#include <shannot/detail/frame_filter.hpp>
#include <shannot/detail/paths.hpp>
#include <shannot/detail/posix/child.hpp>
#include <shannot/detail/posix/pipe.hpp>
#include <shannot/detail/posix/process.hpp>
#include <shannot/detail/posix/random.hpp>
#include <shannot/detail/scripts/dispatcher_script.hpp>
#include <shannot/detail/scripts/protocol.hpp>
#include <shannot/detail/shell_quote.hpp>
#include <shannot/detail/ssh/persisted.hpp>
#include <shannot/error.hpp>
#include <shannot/limits.hpp>
#include <shannot/ssh_connection.hpp>

namespace shannot::detail {

/// Maps ssh's own diagnostics (not the command's output) to an error code.
[[nodiscard]] inline errc classify_ssh_failure(std::string_view text) {
    auto has = [&](std::string_view s) { return text.find(s) != std::string_view::npos; };
    if (has("Host key verification failed") || has("REMOTE HOST IDENTIFICATION HAS CHANGED") || has("host key for"))
        return errc::host_key_mismatch;
    if (has("Permission denied") || has("Too many authentication failures")) return errc::authentication_failed;
    if (has("Connection refused") || has("Connection timed out") || has("No route to host") ||
        has("Could not resolve hostname") || has("Network is unreachable") || has("Connection closed by") ||
        has("Connection reset") || has("kex_exchange_identification") || has("Broken pipe"))
        return errc::connection_failed;
    return errc::transport_error;
}

[[nodiscard]] inline std::string last_line(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    const auto nl = text.rfind('\n');
    return nl == std::string::npos ? text : text.substr(nl + 1);
}

/// The last 64 KiB of a small local file (ssh's log); empty when unreadable.
[[nodiscard]] inline std::string read_small_file(const std::string& path) {
    std::string text;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return text;
    char buffer[8192];
    while (true) {
        const ssize_t n = ::read(fd, buffer, sizeof buffer);
        if (n > 0) {
            text.append(buffer, static_cast<std::size_t>(n));
            if (text.size() > 65536) text.erase(0, text.size() - 65536);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    ::close(fd);
    return text;
}

/// A regular file on the remote, as a dispatcher reported it (protocol::dispatcher::files_report).
struct RemoteFile {
    unsigned mode = 0;  ///< permission bits
    std::uint64_t size = 0;
};

/// The permission bits `ls -l` prints as "-rw-r--r--" (with s, S, t, T for setuid, setgid and
/// sticky); nullopt unless it names a regular file ('-').
[[nodiscard]] inline std::optional<unsigned> regular_file_mode(std::string_view ls_mode) {
    if (ls_mode.size() < 10 || ls_mode[0] != '-') return std::nullopt;
    unsigned mode = 0;
    for (int who = 0; who < 3; ++who) {
        const auto triple = ls_mode.substr(1 + static_cast<std::size_t>(who) * 3, 3);
        const unsigned shift = static_cast<unsigned>(2 - who) * 3;
        if (triple[0] == 'r')
            mode |= 4u << shift;
        else if (triple[0] != '-')
            return std::nullopt;
        if (triple[1] == 'w')
            mode |= 2u << shift;
        else if (triple[1] != '-')
            return std::nullopt;
        const char x = triple[2];
        const char special = who == 2 ? 't' : 's';
        if (x == 'x' || x == special) mode |= 1u << shift;
        if (x == special || x == special - 32) mode |= 04000u >> who;  // 's'/'S', 't'/'T'
        if (x != '-' && x != 'x' && x != special && x != special - 32) return std::nullopt;
    }
    return mode;
}

/// One ssh channel running the dispatcher: the local `ssh -S` client and its pipes.
/// The ssh classes are templates over an unused parameter only so that their code is compiled
/// where the ssh transport is used, not in every file that includes shannot (docs/architecture.md,
/// "Compile time"); the types they name depend on it for the same reason.
template <class Deferred>
struct Dispatcher {
    Child child;
    std::size_t master = 0;           ///< index of the ControlMaster it rides on
    std::vector<std::string> argv{};  ///< the ssh command, up to the destination
    std::string hello{};              ///< the dispatcher's marker (names its remote folder)
    std::uint64_t commands = 0;       ///< commands run on it so far
    /// bwrap argument lists (the part before "--") its dispatcher holds, by number (P requests).
    std::vector<std::vector<std::string>> kept_args{};
    std::size_t next_slot = 0;  ///< the slot a new list replaces once all are taken
    /// The built-in syscall filter its dispatcher holds (the last B request), empty for none.
    std::string kept_filter{};
    bool primary = false;    ///< it is its own connection, and master `master` (ConnectStyle::session_first)
    bool persisted = false;  ///< the kept connection's warm dispatcher (SshConnection::persist)
};

/// Connections to one host: up to max_connections ControlMasters (sockets in a private 0700
/// folder), each carrying up to sessions_per_connection dispatchers (one ssh session each). Dispatchers are reused
/// across commands; a dead one is noticed and replaced. Thread-safe.
template <class Deferred>
class DispatcherPool {
    using Dispatcher = detail::Dispatcher<Deferred>;

public:
    explicit DispatcherPool(SshConnection connection) : conn_(std::move(connection)) {}
    DispatcherPool(const DispatcherPool&) = delete;
    DispatcherPool& operator=(const DispatcherPool&) = delete;
    ~DispatcherPool() { close(); }

    [[nodiscard]] const SshConnection& connection() const noexcept { return conn_; }
    /// The remote's symlinks, each with the absolute path it resolves to: the top-level ones to
    /// folders ("/bin" -> "/usr/bin" where /usr is merged), as the last dispatcher to start
    /// reported them in its ready frame (empty before the first), and those among the paths
    /// want_files() named (/etc/localtime), as a "files" frame did.
    [[nodiscard]] std::map<std::string, std::string> remote_symlinks() const {
        std::lock_guard lock(links_mutex_);
        auto links = links_;
        links.insert(file_links_.begin(), file_links_.end());
        return links;
    }
    /// How runs' limits are enforced on the remote (shannot::limits_mechanism), as the last
    /// dispatcher to start reported it; "unknown" before the first.
    [[nodiscard]] std::string limits_mechanism() const {
        std::lock_guard lock(links_mutex_);
        return limits_mechanism_;
    }

    /// The regular files among the paths want_files() named, as a dispatcher started after
    /// that reported them (its "files" frame, sent with one of its runs); empty before.
    [[nodiscard]] std::map<std::string, RemoteFile> remote_files() const {
        std::lock_guard lock(links_mutex_);
        return files_;
    }
    /// Asks the dispatchers started from now on to report on `paths`, the regular files and the
    /// symlinks among them (a dispatcher runs `ls` once for them, in the background). Only
    /// absolute paths of [A-Za-z0-9._/-] are asked for, 64 at most.
    void want_files(const std::vector<std::string>& paths) {
        constexpr std::size_t most = 64;
        std::lock_guard lock(links_mutex_);
        for (const auto& path : paths) {
            if (wanted_files_.size() >= most) break;
            if (is_absolute(path) && path.find_first_not_of(plain_path_chars) == std::string::npos)
                wanted_files_.insert(path);
        }
    }
    /// Keeps what a dispatcher's "files" frame says (a later frame replaces an earlier one).
    void keep_files(std::string_view payload) {
        std::map<std::string, RemoteFile> files;
        std::map<std::string, std::string> links;
        // Strips `prefix` (a word's kind) from `word`; false when it is another kind.
        const auto consume = [](std::string_view& word, std::string_view prefix) {
            if (word.substr(0, prefix.size()) != prefix) return false;
            word.remove_prefix(prefix.size());
            return true;
        };
        if (auto words = shell_split(payload)) {
            for (std::string_view word : *words) {
                if (consume(word, protocol::dispatcher::link_word)) {
                    const auto colon = word.find(':');
                    if (colon == std::string_view::npos) continue;
                    const auto path = word.substr(0, colon), resolved = word.substr(colon + 1);
                    if (is_absolute(path) && is_absolute(resolved)) links.emplace(path, resolved);
                    continue;
                }
                if (!consume(word, protocol::dispatcher::file_word)) continue;
                const auto colon = word.find(':'), second = word.find(':', colon + 1);
                if (colon == std::string_view::npos || second == std::string_view::npos) continue;
                const auto mode = regular_file_mode(word.substr(0, colon));
                const auto size_text = word.substr(colon + 1, second - colon - 1);
                std::uint64_t size = 0;
                const auto [end, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), size);
                const auto path = word.substr(second + 1);
                if (!mode || ec != std::errc{} || end != size_text.data() + size_text.size() || !is_absolute(path))
                    continue;
                files[std::string(path)] = RemoteFile{*mode, size};
            }
        }
        std::lock_guard lock(links_mutex_);
        files_ = std::move(files);
        file_links_ = std::move(links);
        files_report_ = std::string(payload);
    }

    /// A ready dispatcher for one command: an idle live one, else a new one (starting a master when
    /// needed). Waits while max_connections * sessions_per_connection dispatchers are busy.
    /// With a `deadline`, gives up waiting for a free slot then (errc::connection_failed); a
    /// readable `cancel_fd` ends a wait for a connection (errc::cancelled).
    [[nodiscard]] Result<std::unique_ptr<Dispatcher>> acquire(
        std::optional<std::chrono::steady_clock::time_point> deadline = std::nullopt, int cancel_fd = -1) {
        std::unique_lock lock(mutex_);
        while (true) {
            if (closed_) return fail(errc::session_closed, "the ssh transport was closed");
            while (!idle_.empty()) {
                auto dispatcher = std::move(idle_.back());
                idle_.pop_back();
                if (!dispatcher->child.process.exited()) return dispatcher;
                discard_locked(*dispatcher);
            }
            if (conn_.persist.count() > 0 && !kept_tried_ &&
                busy_ < conn_.max_connections * conn_.sessions_per_connection) {
                kept_tried_ = true;
                ++busy_;
                lock.unlock();
                std::optional<Kept> found;
                auto kept = acquire_kept(cancel_fd, found);
                lock.lock();
                if (found) kept_ = std::move(found);  // (under the lock: close() reads it)
                if (kept && *kept) {
                    if (closed_) {
                        discard_locked(**kept);
                        return fail(errc::session_closed, "the ssh transport was closed");
                    }
                    (*kept)->master = add_primary_master((*kept)->child.process, kept_->paths.socket, true);
                    return std::move(*kept);
                }
                --busy_;
                cv_.notify_all();
                if (!kept) return propagate(kept);
                continue;  // kept by another process right now: a connection of our own
            }
            if (busy_ < conn_.max_connections * conn_.sessions_per_connection) {
                if (auto index = master_with_room(); index < masters_.size()) {
                    ++masters_[index].channels;
                    ++busy_;
                    const auto socket = masters_[index].socket;
                    lock.unlock();
                    auto dispatcher = start_dispatcher(index, socket, cancel_fd);
                    lock.lock();
                    if (dispatcher) return dispatcher;
                    --masters_[index].channels;
                    --busy_;
                    cv_.notify_all();
                    return propagate(dispatcher);
                }
                if (masters_alive() < conn_.max_connections) {
                    if (conn_.connect_style == ConnectStyle::session_first) return start_primary(lock, cancel_fd);
                    if (auto started = start_master(lock, cancel_fd); !started) return propagate(started);
                    continue;
                }
            }
            if (!deadline)
                cv_.wait(lock);
            else if (cv_.wait_until(lock, *deadline) == std::cv_status::timeout)
                return fail(errc::connection_failed, "every ssh session to " + ssh_destination(conn_) + " is busy");
        }
    }

    /// Gives a dispatcher back: kept for the next command when `reusable`, else ended.
    void release(std::unique_ptr<Dispatcher> dispatcher, bool reusable) {
        if (!dispatcher) return;
        std::lock_guard lock(mutex_);
        if (reusable && !closed_ && !dispatcher->child.process.exited()) {
            ++dispatcher->commands;
            idle_.push_back(std::move(dispatcher));
        } else {
            discard_locked(*dispatcher);
        }
        cv_.notify_all();
    }

    /// Ends every dispatcher and master and removes every socket, log and the folder.
    void close() {
        std::lock_guard lock(mutex_);
        closed_ = true;
        for (auto& s : idle_) {
            if (s->persisted && park_locked(*s)) continue;
            discard_locked(*s);
        }
        idle_.clear();
        if (kept_ && !kept_->parked) stop_persisted(kept_->paths, kept_->state);  // not handed back: ended
        kept_.reset();                                                            // unlocks it
        for (auto& m : masters_) stop_master(m);
        if (!dir_.empty()) ::rmdir(dir_.c_str());
        dir_.clear();
        cv_.notify_all();
    }

    /// Master connections alive now (for tests and monitoring).
    [[nodiscard]] std::size_t connections() {
        std::lock_guard lock(mutex_);
        return masters_alive();
    }
    /// Idle dispatchers kept for reuse.
    [[nodiscard]] std::size_t idle_dispatchers() {
        std::lock_guard lock(mutex_);
        return idle_.size();
    }

private:
    struct Master {
        Child child;
        std::string socket, log;
        std::size_t channels = 0;  ///< ssh sessions open on it (busy or idle)
        bool ready = false;        ///< listening on its socket
        bool starting = false;
        bool primary = false;  ///< a dispatcher's own connection: `child` only watches it (an observer), never reaps
        bool parked = false;   ///< a kept connection handed back: left running, its socket left in place
    };

    /// The kept connection this pool holds (SshConnection::persist): its files, their lock, its state.
    struct Kept {
        PersistPaths paths;
        UniqueFd lock;
        PersistedState state;
        bool parked = false;
    };

    /// Masters running or being started.
    std::size_t masters_alive() const {
        std::size_t n = 0;
        for (const auto& m : masters_) n += (m.child.process || m.starting) ? 1 : 0;
        return n;
    }

    std::size_t master_with_room() {
        std::size_t best = masters_.size();
        for (std::size_t i = 0; i < masters_.size(); ++i) {
            auto& m = masters_[i];
            if (!m.ready || !m.child.process) continue;
            if (m.child.process.exited()) {
                if (m.channels == 0)
                    stop_master(m);
                else
                    m.ready = false;  // its dispatchers fail and are discarded; then it is stopped
                continue;
            }
            if (m.channels < conn_.sessions_per_connection &&
                (best == masters_.size() || m.channels < masters_[best].channels))
                best = i;
        }
        return best;
    }

    /// Kills and reaps a dispatcher's ssh client and frees its channel. Caller holds the lock.
    void discard_locked(Dispatcher& s) {
        if (s.persisted && kept_ && !kept_->parked) stop_persisted(kept_->paths, kept_->state);
        if (s.child.process.pid() > 0) {
            s.child.process.signal(SIGKILL);
            s.child.process.reap();  // an adopted kept connection is not our child: nothing to reap
            s.child = Child{};
        }
        --busy_;
        if (s.master < masters_.size()) {
            auto& m = masters_[s.master];
            if (m.channels > 0) --m.channels;
            if (m.channels == 0 && m.child.process && m.child.process.exited()) stop_master(m);
        }
    }

    void stop_master(Master& m) {
        if (m.parked) {
            // Left running for the kept connection; if this process started it, it is our child:
            // reaped once it ends (reap_parked), never left a zombie. (An observer there is only forgotten.)
            if (m.child.process.pid() > 0) reap_parked(std::move(m.child.process));
            m = Master{};
            return;
        }
        if (m.child.process) {
            m.child.process.signal(SIGTERM);
            m.child.process.reap();  // a primary master only watches: its dispatcher reaps
            m.child = Child{};
        }
        m.ready = false;
        m.primary = false;
        if (!m.socket.empty()) ::unlink(m.socket.c_str());
        if (!m.log.empty()) ::unlink(m.log.c_str());
    }

    /// Records a dispatcher that is its own connection as a master others can ride on: it watches
    /// the dispatcher's process through an observer; the dispatcher owns it. Caller holds the lock.
    std::size_t add_primary_master(const ChildProcess& process, const std::string& socket, bool counted) {
        std::size_t slot = masters_.size();
        for (std::size_t i = 0; i < masters_.size(); ++i)
            if (!masters_[i].child.process && !masters_[i].starting && masters_[i].channels == 0) slot = i;
        if (slot == masters_.size()) masters_.emplace_back();
        auto& m = masters_[slot];
        m = Master{};
        m.child.process = process.observer();
        m.socket = socket;
        m.channels = counted ? 1 : 0;
        m.ready = true;
        m.primary = true;
        return slot;
    }

    /// ConnectStyle::session_first: a new connection whose own session runs the dispatcher, and
    /// which is the ControlMaster for the host's later dispatchers. Called with a slot free.
    Result<std::unique_ptr<Dispatcher>> start_primary(std::unique_lock<std::mutex>& lock, int cancel_fd) {
        if (auto made = make_private_dir(); !made) return propagate(made);
        std::size_t slot = masters_.size();
        for (std::size_t i = 0; i < masters_.size(); ++i)
            if (!masters_[i].child.process && !masters_[i].starting && masters_[i].channels == 0) slot = i;
        if (slot == masters_.size()) masters_.emplace_back();
        stop_master(masters_[slot]);
        masters_[slot].starting = true;
        const std::string socket = dir_ + "/m" + std::to_string(slot);
        ++busy_;
        lock.unlock();
        ChildSpec spec;
        spec.pipe_stdin = true;
        spec.argv = {conn_.ssh_binary, "-M", "-S", socket, "-o", "ControlPersist=no"};
        auto dispatcher = launch_dispatcher(spec, cancel_fd);
        lock.lock();
        masters_[slot].starting = false;
        if (!dispatcher || closed_) {
            --busy_;
            ::unlink(socket.c_str());
            cv_.notify_all();
            if (!dispatcher) return propagate(dispatcher);
            discard_unowned(**dispatcher);
            return fail(errc::session_closed, "the ssh transport was closed");
        }
        masters_[slot].starting = false;
        const auto index = add_primary_master((*dispatcher)->child.process, socket, true);
        (*dispatcher)->master = index;
        (*dispatcher)->primary = true;
        return dispatcher;
    }

    /// SshConnection::persist: the warm dispatcher of the kept connection for these settings,
    /// adopted when one is alive and idle, else a new kept connection (a dead or abandoned one is
    /// ended and replaced), its folder and lock then in `found`. nullptr when another process is
    /// using it right now. Called unlocked; the caller stores `found` under the lock.
    Result<std::unique_ptr<Dispatcher>> acquire_kept(int cancel_fd, std::optional<Kept>& found) {
        reap_parked();
        // A kept connection's processes are told from ones that got their pid later by their
        // start time in /proc: without it one could be neither adopted nor safely ended.
        if (process_start_time(::getpid()).empty())
            return fail(errc::invalid_argument,
                        "SshConnection::persist (kept connections) needs /proc on this machine, "
                        "which it has not: connect without persist");
        std::string folder = conn_.persist_folder;
        if (folder.empty()) {
            auto found = default_persist_folder();
            if (!found) return propagate(found);
            folder = *found;
        }
        if (folder.size() > max_persist_folder_length)
            return fail(errc::invalid_argument, "the folder for kept ssh connections '" + folder + "' is longer than " +
                                                    std::to_string(max_persist_folder_length) +
                                                    " bytes: its sockets would not fit a unix socket address");
        if (auto ok = ensure_private_folder(folder); !ok) return propagate(ok);
        const auto identity = persist_identity(conn_);
        Kept kept{PersistPaths(folder + "/" + persist_key(identity)), {}, {}, false};
        if (auto ok = ensure_private_folder(kept.paths.dir); !ok) return propagate(ok);
        kept.lock = lock_persisted(kept.paths, std::chrono::milliseconds(100));
        if (!kept.lock) return std::unique_ptr<Dispatcher>();
        auto state = read_persisted_state(kept.paths.state);
        if (state && state->identity == identity && !state->busy && same_process(state->ssh_pid, state->ssh_start)) {
            if (auto adopted = adopt_kept(kept, *state)) {
                found = std::move(kept);
                return adopted;
            }
        }
        stop_persisted(kept.paths, state);  // dead, abandoned mid-command, or not what it claims
        auto started = start_kept(kept, identity, cancel_fd);
        if (!started) {
            stop_persisted(kept.paths, std::nullopt);
            ::unlink(kept.paths.lock.c_str());
            ::rmdir(kept.paths.dir.c_str());
            return propagate(started);
        }
        found = std::move(kept);
        return started;
    }

    /// Takes over the kept connection's idle dispatcher: opens its fifos, ends the holder.
    std::unique_ptr<Dispatcher> adopt_kept(Kept& kept, const PersistedState& state) {
        UniqueFd in(
            ::open(kept.paths.in.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));  // ENXIO: nobody reads it any more
        if (!in) return nullptr;
        // Our writer is open: from now on the dispatcher cannot see EOF. If the holder had ended
        // before, it may have: only a holder still alive proves it did not.
        if (!same_process(state.holder_pid, state.holder_start)) return nullptr;
        ::kill(state.holder_pid, SIGTERM);
        auto d = std::make_unique<Dispatcher>();
        auto ssh = ChildProcess::adopt(state.ssh_pid);  // not our child: watched, never reaped
        if (!ssh || !same_process(state.ssh_pid, state.ssh_start)) return nullptr;
        d->child.process = std::move(*ssh);
        d->child.in = std::move(in);
        d->child.out = UniqueFd(::open(kept.paths.out.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
        d->child.err = UniqueFd(::open(kept.paths.err.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
        if (!d->child.out || !d->child.err) return nullptr;
        d->argv = state.argv;
        d->hello = state.hello;
        d->commands = state.commands;
        d->kept_args = state.kept_args;
        d->next_slot = state.next_slot;
        d->primary = true;
        d->persisted = true;
        kept.state = state;
        kept.state.busy = true;
        kept.state.holder_pid = -1;
        kept.state.holder_start.clear();
        if (!write_persisted_state(kept.paths.state, kept.state)) return nullptr;
        {
            std::lock_guard lock(links_mutex_);
            links_ = state.links;
        }
        if (!state.files.empty()) keep_files(state.files);
        return d;
    }

    /// A new kept connection: ssh, in a session of its own, is the connection, its ControlMaster
    /// (a socket in the folder) and the dispatcher, whose stdin, stdout and stderr are fifos there.
    Result<std::unique_ptr<Dispatcher>> start_kept(Kept& kept, const std::vector<std::string>& identity,
                                                   int cancel_fd) {
        const auto& p = kept.paths;
        for (const auto* fifo : {&p.in, &p.out, &p.err})
            if (::mkfifo(fifo->c_str(), 0600) != 0)
                return fail(errc::io_error, "cannot create the fifo " + *fifo + ": " + std::strerror(errno));
        // Our ends first, so that the child's opens find a reader and a writer and do not block.
        UniqueFd in_rw(::open(p.in.c_str(), O_RDWR | O_CLOEXEC));
        Child child;
        child.out = UniqueFd(::open(p.out.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
        child.err = UniqueFd(::open(p.err.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
        if (!in_rw || !child.out || !child.err)
            return fail(errc::io_error, "cannot open the fifos in " + p.dir + ": " + std::strerror(errno));
        ChildSpec spec;
        spec.argv = {conn_.ssh_binary, "-M", "-S", p.socket, "-o", "ControlPersist=no"};
        spec.stdin_path = p.in;
        spec.stdout_path = p.out;
        spec.stderr_path = p.err;
        spec.new_session = true;
        ChildSpec launch = spec;  // the argv launch_dispatcher completes; spawned here with it
        const auto hello = random_marker();
        for (auto& a : ssh_base_options(conn_)) spec.argv.push_back(std::move(a));
        spec.argv.insert(spec.argv.end(), {"--", ssh_destination(conn_)});
        spec.argv.push_back(dispatcher_command(hello));
        auto spawned = spawn_child(spec);
        if (!spawned) return propagate(spawned);
        child.process = std::move(spawned->process);
        child.in =
            UniqueFd(::open(p.in.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));  // a writer only, now that ssh reads it
        in_rw.reset();
        const pid_t pid = child.process.pid();
        auto dispatcher = launch_dispatcher(launch, cancel_fd, &child, hello);
        if (!dispatcher) return propagate(dispatcher);
        (*dispatcher)->primary = true;
        (*dispatcher)->persisted = true;
        auto& st = kept.state;
        st = PersistedState{};
        st.identity = identity;
        st.host = conn_.host;
        st.user = conn_.user;
        st.port = conn_.port;
        st.ssh_pid = pid;
        st.ssh_start = process_start_time(pid);
        st.busy = true;
        st.hello = hello;
        st.argv = (*dispatcher)->argv;
        st.idle = conn_.persist.count();
        st.used = unix_now();
        if (!write_persisted_state(p.state, st)) {
            discard_unowned(**dispatcher);
            return fail(errc::io_error, "cannot write " + p.state + ": " + std::strerror(errno));
        }
        return dispatcher;
    }

    /// Hands the kept connection's idle dispatcher back for the next process: a holder keeps its
    /// stdin open for conn_.persist, the state says idle, and our ends are closed without ending
    /// it. False when that fails (the caller then ends it). Caller holds the lock.
    bool park_locked(Dispatcher& d) {
        if (!kept_ || kept_->parked || d.child.process.exited()) return false;
        auto holder = spawn_holder(kept_->paths, conn_.persist.count());
        if (!holder) return false;
        auto& st = kept_->state;
        st.holder_pid = holder->process.pid();
        st.holder_start = process_start_time(holder->process.pid());
        st.busy = false;
        st.kept_args = d.kept_args;
        st.next_slot = d.next_slot;
        st.commands = d.commands;
        st.used = unix_now();
        st.idle = conn_.persist.count();
        {
            std::lock_guard lock(links_mutex_);
            st.links = links_;
            st.files = files_report_;
        }
        if (!write_persisted_state(kept_->paths.state, st)) {
            holder->process.signal(SIGKILL);
            holder->process.reap();
            return false;
        }
        reap_parked(std::move(holder->process));
        // Our ssh child (if this process started it) is left running: reaped later (an adopted one
        // is only forgotten there, see ChildProcess::adopt).
        if (d.child.process.pid() > 0) reap_parked(std::move(d.child.process));
        d.child = Child{};
        kept_->parked = true;
        --busy_;
        if (d.master < masters_.size()) masters_[d.master].parked = true;
        return true;
    }

    /// Ends a dispatcher that holds no channel count yet.
    static void discard_unowned(Dispatcher& d) {
        d.child.process.signal(SIGKILL);
        d.child.process.reap();
        d.child = Child{};
    }

    Result<void> make_private_dir() {
        std::lock_guard lock(dir_mutex_);
        if (!dir_.empty()) return {};
        char templ[] = "/tmp/shannot-ssh-XXXXXX";  // mkdtemp makes it 0700
        if (!::mkdtemp(templ))
            return fail(errc::io_error, std::string("cannot create a private ssh folder: ") + std::strerror(errno));
        dir_ = templ;
        return {};
    }

    /// Starts one ControlMaster and waits, unlocked, until it listens or gives up.
    Result<void> start_master(std::unique_lock<std::mutex>& lock, int cancel_fd) {
        if (auto made = make_private_dir(); !made) return propagate(made);
        std::size_t slot = masters_.size();
        for (std::size_t i = 0; i < masters_.size(); ++i)
            if (!masters_[i].child.process && !masters_[i].starting && masters_[i].channels == 0) slot = i;
        if (slot == masters_.size()) masters_.emplace_back();
        auto& m = masters_[slot];
        stop_master(m);
        m.socket = dir_ + "/m" + std::to_string(slot);
        m.log = m.socket + ".log";
        ChildSpec spec;
        spec.argv = {conn_.ssh_binary, "-M", "-S", m.socket, "-N", "-o", "ControlPersist=no"};
        for (auto& a : ssh_base_options(conn_)) spec.argv.push_back(std::move(a));
        spec.argv.insert(spec.argv.end(), {"--", ssh_destination(conn_)});
        spec.log_file = m.log;
        auto child = spawn_child(spec);
        if (!child) return propagate(child);
        m.child = std::move(*child);
        m.starting = true;
        const auto socket = m.socket;
        const int exit_fd = m.child.process.exit_fd();
        const auto deadline = std::chrono::steady_clock::now() + conn_.connect_timeout + std::chrono::seconds(5);
        lock.unlock();
        bool ready = false, died = false, cancelled = false;
        while (std::chrono::steady_clock::now() < deadline) {
            struct stat st {};
            if (::stat(socket.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) {
                ready = true;
                break;
            }
            pollfd p[2] = {{exit_fd, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
            if (::poll(p, cancel_fd >= 0 ? 2 : 1, 5) > 0) {
                (p[0].revents ? died : cancelled) = true;
                break;
            }
        }
        lock.lock();
        auto& again = masters_[slot];
        again.starting = false;
        cv_.notify_all();
        if (ready && !closed_) {
            again.ready = true;
            return {};
        }
        const std::string diagnostics = read_small_file(again.log);
        stop_master(again);
        if (closed_) return fail(errc::session_closed, "the ssh transport was closed");
        const std::string where = ssh_destination(conn_) + ":" + std::to_string(conn_.port);
        if (cancelled) return fail(errc::cancelled, "cancelled while connecting to " + where);
        if (!died)
            return fail(errc::connection_failed, "ssh to " + where + " did not connect within " +
                                                     std::to_string(conn_.connect_timeout.count()) + " s");
        return fail(classify_ssh_failure(diagnostics), "ssh to " + where + " failed: " + last_line(diagnostics));
    }

    /// Opens a channel on master `index` running the dispatcher, and waits for its ready frames
    /// on both streams (discarding whatever a login banner or rc file printed before them).
    Result<std::unique_ptr<Dispatcher>> start_dispatcher(std::size_t index, const std::string& socket, int cancel_fd) {
        ChildSpec spec;
        spec.pipe_stdin = true;
        spec.argv = {conn_.ssh_binary, "-S", socket, "-o", "ControlMaster=no"};
        auto dispatcher = launch_dispatcher(spec, cancel_fd);
        if (dispatcher) (*dispatcher)->master = index;
        return dispatcher;
    }

    /// Starts `spec` (the ssh binary and its mux options; this adds ours, the destination and the
    /// dispatcher, and reads the pipes or, when `child` is given, takes the one already started)
    /// and waits for its ready frames.
    Result<std::unique_ptr<Dispatcher>> launch_dispatcher(ChildSpec& spec, int cancel_fd,
                                                          Child* started_child = nullptr,
                                                          std::string hello = random_marker()) {
        auto dispatcher = std::make_unique<Dispatcher>();
        dispatcher->hello = hello;
        for (auto& a : ssh_base_options(conn_)) spec.argv.push_back(std::move(a));
        spec.argv.insert(spec.argv.end(), {"--", ssh_destination(conn_)});
        dispatcher->argv = spec.argv;
        spec.argv.push_back(dispatcher_command(hello));
        if (started_child) {
            dispatcher->child = std::move(*started_child);
        } else {
            auto child = spawn_child(spec);
            if (!child) return propagate(child);
            dispatcher->child = std::move(*child);
        }

        FrameFilter out_frames(hello), err_frames(hello);
        std::string diagnostics;
        const auto deadline = Clock::now() + conn_.connect_timeout + conn_.login_timeout;
        const auto started = await_first_frames(dispatcher->child.out.get(), dispatcher->child.err.get(),
                                                dispatcher->child.process.exit_fd(), out_frames, err_frames, deadline,
                                                diagnostics, cancel_fd);
        if (started == FirstFrames::ready) {
            keep_symlinks(out_frames.payloads().front());
            return dispatcher;
        }
        const bool exited = started == FirstFrames::ended;

        // Not ready: collect what ssh said, end it, and say why.
        if (!exited) dispatcher->child.process.signal(SIGKILL);
        drain_into(dispatcher->child.err.get(), diagnostics, std::chrono::seconds(1));
        const int status = dispatcher->child.process.reap().value_or(0);
        const std::string where = ssh_destination(conn_) + ":" + std::to_string(conn_.port);
        if (started == FirstFrames::cancelled) return fail(errc::cancelled, "cancelled while connecting to " + where);
        if (!exited)
            return fail(errc::connection_failed,
                        "the remote dispatcher on " + where + " did not start within " +
                            std::to_string((conn_.connect_timeout + conn_.login_timeout).count()) + " s");
        if (WIFEXITED(status) && WEXITSTATUS(status) == protocol::dispatcher::exit_no_folder)
            return fail(errc::transport_error, "cannot create a private folder under $TMPDIR or /tmp on " + where);
        const auto line = last_line(diagnostics);
        return fail(classify_ssh_failure(diagnostics),
                    "ssh session to " + where + " failed (exit status " +
                        std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")" +
                        (line.empty() ? std::string() : ": " + line));
    }

    /// The characters of a path the dispatcher reports on (its frames split on blanks).
    static constexpr std::string_view plain_path_chars =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._/-";

    /// What ssh runs on the remote: the dispatcher, given its marker and the paths to report on
    /// (want_files).
    [[nodiscard]] std::string dispatcher_command(const std::string& hello) const {
        std::vector<std::string> words{"exec", "sh", "-c", std::string(ssh_dispatcher_script), "shannot", hello};
        {
            std::lock_guard lock(links_mutex_);
            words.insert(words.end(), wanted_files_.begin(), wanted_files_.end());
        }
        return shell_join(words);
    }

    /// Reads "ready /bin=/usr/bin /lib=/usr/lib ... limits=MECHANISM" (the dispatcher prints only
    /// absolute paths of [A-Za-z0-9._/-]).
    void keep_symlinks(std::string_view ready) {
        std::map<std::string, std::string> links;
        std::string mechanism(shannot::limits_mechanism::unknown);
        if (auto words = shell_split(ready)) {
            for (std::string_view word : *words) {
                if (word.substr(0, protocol::dispatcher::limits_word.size()) == protocol::dispatcher::limits_word) {
                    mechanism = std::string(word.substr(protocol::dispatcher::limits_word.size()));
                    continue;
                }
                const auto eq = word.find('=');
                if (eq != std::string_view::npos && is_absolute(word.substr(0, eq)) && is_absolute(word.substr(eq + 1)))
                    links.emplace(std::string(word.substr(0, eq)), std::string(word.substr(eq + 1)));
            }
        }
        std::lock_guard lock(links_mutex_);
        links_ = std::move(links);
        limits_mechanism_ = std::move(mechanism);
    }

    SshConnection conn_;
    std::optional<Kept> kept_;
    bool kept_tried_ = false;  ///< the kept connection is looked for once per pool
    std::mutex dir_mutex_;
    mutable std::mutex links_mutex_;
    std::map<std::string, std::string> links_;
    std::string limits_mechanism_{shannot::limits_mechanism::unknown};
    std::set<std::string> wanted_files_;             ///< want_files()
    std::map<std::string, RemoteFile> files_;        ///< keep_files()
    std::map<std::string, std::string> file_links_;  ///< keep_files(): the symlinks among them
    std::string files_report_;                       ///< the frame files_ came from, for the kept connection
    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<Master> masters_;
    std::vector<std::unique_ptr<Dispatcher>> idle_;
    std::size_t busy_ = 0;  ///< dispatchers holding a channel: busy, idle or starting
    std::string dir_;
    bool closed_ = false;
};

}  // namespace shannot::detail
