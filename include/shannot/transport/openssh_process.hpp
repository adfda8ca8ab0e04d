// SPDX-License-Identifier: MIT
// OpenSshProcessTransport: runs bwrap on a remote host through the system ssh, over reused dispatchers.
#pragma once

#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <shannot/builder.hpp>
#include <shannot/concepts/transport.hpp>
#include <shannot/detail/posix/pipe.hpp>
#include <shannot/detail/posix/random.hpp>
#include <shannot/detail/posix/timer.hpp>
#include <shannot/detail/posix/unique_fd.hpp>
#include <shannot/detail/scripts/protocol.hpp>
#include <shannot/detail/session/agent.hpp>
#include <shannot/detail/shell_quote.hpp>
#include <shannot/detail/ssh/dispatcher_pool.hpp>
#include <shannot/detail/ssh/remote_command.hpp>
#include <shannot/detail/ssh/remote_session_sandbox.hpp>
#include <shannot/error.hpp>
#include <shannot/fwd.hpp>
#include <shannot/process_result.hpp>
#include <shannot/ssh_connection.hpp>

namespace shannot {

/// The remote transport: bwrap runs on `SshConnection::host`, started by a small POSIX-sh
/// dispatcher that a long-lived ssh session runs there (docs/protocol.md, detail/scripts/dispatcher.sh). Dispatchers
/// ride on a bounded pool of ControlMaster connections and are reused across commands: a new
/// connection costs a TCP and key exchange and every ssh session a login shell, a command on a
/// warm dispatcher only a bwrap start. Copies share the pool; the last copy's destruction closes it.
/// Users name it OpenSshProcessTransport; the parameter only defers compilation (see Dispatcher).
template <class Deferred>
class BasicOpenSshProcessTransport {
public:
    using process_type = detail::RemoteCommand<Deferred>;
    /// A warm session's sandbox (see session.hpp) on a dedicated ssh session.
    using channel_type = detail::RemoteSessionSandbox<Deferred>;
    static constexpr std::string_view name = "ssh";
    static constexpr bool checks_local_paths = false;
    /// The dispatcher opens the profile's seccomp file (a path on the remote) at fd 3.
    static constexpr int seccomp_fd = 3;
    /// The built-in syscall filter reaches the remote bwrap at fd 6, through a pipe the dispatcher
    /// fills for each run from the copy it holds in memory (sent once per dispatcher): no file.
    static constexpr int syscall_filter_fd = 6;
    /// The dispatcher reads bwrap's status there to tell setup failures from command failures.
    static constexpr int json_status_fd = 4;
    /// Small read-only files of the profile (`/etc/passwd`, `/etc/ld.so.cache`, ...) reach the
    /// remote bwrap as `--file` copies at these fds (instead of a bind mount each), opened by the
    /// dispatcher's redirections: the one-digit fds its sh can name that bwrap does not get
    /// otherwise (3 is the profile's seccomp file when it has one, 5 a session's agent shell).
    /// Known once a dispatcher has reported them.
    static constexpr std::array<int, 5> copied_file_fds{3, 5, 7, 8, 9};

    explicit BasicOpenSshProcessTransport(SshConnection connection)
        : pool_(std::make_shared<detail::DispatcherPool<Deferred>>(std::move(connection))) {}

    [[nodiscard]] const SshConnection& connection() const noexcept { return pool_->connection(); }
    [[nodiscard]] std::optional<std::string> default_working_directory() const {
        return connection().working_directory;
    }
    /// How runs' limits are enforced on the remote (shannot::limits_mechanism), as its dispatchers
    /// tell once one has started; "unknown" before.
    [[nodiscard]] std::string limits_mechanism() const { return pool_->limits_mechanism(); }
    /// Which of `paths` are symlinks on the remote, as far as its dispatchers tell: the top-level
    /// ones (/bin -> /usr/bin where /usr is merged), known once a first dispatcher has started,
    /// and any other (/etc/localtime), known once a dispatcher started after this asked has
    /// reported on it (as host_small_files()).
    [[nodiscard]] std::map<std::string, std::string> host_symlinks(const std::vector<std::string>& paths) const {
        pool_->want_files(paths);
        const auto known = pool_->remote_symlinks();
        std::map<std::string, std::string> links;
        for (const auto& path : paths)
            if (auto it = known.find(path); it != known.end()) links.insert(*it);
        return links;
    }
    /// Which of `paths` are regular files of at most `max_bytes` on the remote, with their
    /// permission bits, as far as its dispatchers tell: each started after this asked reports on
    /// them once (with a run: the first run after a dispatcher starts still binds them).
    [[nodiscard]] std::map<std::string, unsigned> host_small_files(const std::vector<std::string>& paths,
                                                                   std::uint64_t max_bytes) const {
        pool_->want_files(paths);
        const auto known = pool_->remote_files();
        std::map<std::string, unsigned> files;
        for (const auto& path : paths)
            if (auto it = known.find(path); it != known.end() && it->second.size <= max_bytes)
                files.emplace(path, it->second.mode);
        return files;
    }
    /// Master connections alive now.
    [[nodiscard]] std::size_t connections() const { return pool_->connections(); }
    /// Dispatchers waiting for the next command.
    [[nodiscard]] std::size_t idle_dispatchers() const { return pool_->idle_dispatchers(); }
    /// Ends every ssh process and removes every socket; later runs fail with errc::session_closed.
    void close() { pool_->close(); }

    /// Sends the request (and the input, staged on the remote before the command starts) over a
    /// warm dispatcher. A dispatcher found dead on the way is replaced once.
    [[nodiscard]] Result<process_type> launch(const LaunchSpec& spec) {
        if (auto ok = validate(connection()); !ok) return propagate(ok);
        long long timeout_s = 0;
        if (spec.timeout) timeout_s = (spec.timeout->count() + 999) / 1000 + 2;  // a backstop behind the local deadline
        const auto input = spec.pipe_stdin ? spec.input : std::string_view{};
        const auto deadline =
            detail::Clock::now() + (spec.timeout ? *spec.timeout : std::chrono::milliseconds(3'600'000));
        const auto files = filter_files(spec);
        for (int attempt = 0;; ++attempt) {
            auto dispatcher = pool_->acquire(std::nullopt, spec.cancel_fd);
            if (!dispatcher) return propagate(dispatcher);
            const auto nonce = detail::random_marker();
            const auto split = std::find(spec.bwrap_args.begin(), spec.bwrap_args.end(), "--");
            std::string lines;
            const auto slot = detail::keep_args(**dispatcher, {spec.bwrap_args.begin(), split}, lines, files.copies);
            if (files.filter != nullptr && (*dispatcher)->kept_filter != *files.filter) {
                lines += detail::dispatcher_request({std::string(detail::protocol::dispatcher::keep_filter_verb),
                                                     detail::printf_escape(*files.filter)});
                (*dispatcher)->kept_filter = *files.filter;
            }
            std::vector<std::string> request = {std::string(detail::protocol::dispatcher::run_verb),
                                                nonce,
                                                std::to_string(timeout_s),
                                                files.seccomp,
                                                std::to_string(input.size()),
                                                connection().remote_bwrap,
                                                std::to_string(slot),
                                                detail::remote_limits(spec.limits),
                                                files.filter != nullptr ? "1" : "0"};
            request.insert(request.end(), split, spec.bwrap_args.end());
            lines += detail::dispatcher_request(request);
            const int fd = (*dispatcher)->child.in.get();
            if (!detail::write_all(fd, lines, deadline) || !detail::write_all(fd, input, deadline)) {
                pool_->release(std::move(*dispatcher), false);
                if (attempt == 0 && detail::Clock::now() < deadline) continue;
                return fail(errc::connection_failed,
                            "cannot send the command to the ssh session on " + ssh_destination(connection()));
            }
            auto timer = detail::OneShotTimer::create();
            if (!timer) {
                pool_->release(std::move(*dispatcher), false);
                return propagate(timer);
            }
            std::vector<std::string> argv = (*dispatcher)->argv;
            argv.push_back(connection().remote_bwrap);
            argv.insert(argv.end(), spec.bwrap_args.begin(), spec.bwrap_args.end());
            return process_type(pool_, std::move(*dispatcher), nonce, std::move(argv), std::move(*timer),
                                spec.limits ? pool_->limits_mechanism() : std::string());
        }
    }

    /// Starts a warm session's long-lived sandbox on a dedicated ssh session (it does not go
    /// back to the pool): the dispatcher's `S` request runs bwrap with the session's pipes.
    /// It holds one of the pool's max_connections * sessions_per_connection channels until it
    /// ends; `spec.timeout` bounds the wait for a free one.
    [[nodiscard]] Result<channel_type> open_channel(const LaunchSpec& spec) {
        if (auto ok = validate(connection()); !ok) return propagate(ok);
        const auto files = filter_files(spec);
        std::string shell;
        for (const auto& f : spec.files)
            if (f.fd == detail::session_shell_fd) shell = f.path;
        std::vector<std::string> request = {
            std::string(detail::protocol::dispatcher::session_verb),
            files.seccomp,
            shell,
            connection().remote_bwrap,
            detail::remote_limits(spec.limits),
            files.filter != nullptr ? detail::printf_escape(*files.filter) : std::string(),
            files.copies};
        request.insert(request.end(), spec.bwrap_args.begin(), spec.bwrap_args.end());
        const auto line = detail::dispatcher_request(request);
        std::optional<std::chrono::steady_clock::time_point> wait_until;
        if (spec.timeout) wait_until = std::chrono::steady_clock::now() + *spec.timeout;
        for (int attempt = 0;; ++attempt) {
            auto dispatcher = pool_->acquire(wait_until, spec.cancel_fd);
            if (!dispatcher) return propagate(dispatcher);
            if (!detail::write_all((*dispatcher)->child.in.get(), line,
                                   detail::Clock::now() + connection().connect_timeout)) {
                pool_->release(std::move(*dispatcher), false);
                if (attempt == 0) continue;  // a dispatcher found dead on the way is replaced once
                return fail(errc::connection_failed,
                            "cannot send the session request to the ssh session on " + ssh_destination(connection()));
            }
            std::vector<std::string> argv = (*dispatcher)->argv;
            argv.push_back(connection().remote_bwrap);
            argv.insert(argv.end(), spec.bwrap_args.begin(), spec.bwrap_args.end());
            return channel_type(pool_, std::move(*dispatcher), std::move(argv), shell,
                                spec.limits ? pool_->limits_mechanism() : std::string());
        }
    }

private:
    /// The profile's seccomp file (a remote path, or ''), the built-in filter's bytes (or none)
    /// and the copies' redirections for the dispatcher's sh ("5<'/etc/group' 7<...", or '').
    struct FilterFiles {
        std::string seccomp{};
        const std::string* filter = nullptr;
        std::string copies{};
    };
    /// A file is a copy when bwrap's arguments copy from its fd (`--file FD`, detail::file_copies):
    /// fd 3 is otherwise the profile's seccomp file, and a session's agent shell at fd 5 is bwrap's
    /// `--ro-bind-data 5`.
    static FilterFiles filter_files(const LaunchSpec& spec) {
        const auto copies = detail::file_copies(spec.bwrap_args);
        FilterFiles out;
        for (const auto& f : spec.files) {
            const bool copy = !f.path.empty() && std::any_of(copies.begin(), copies.end(),
                                                             [&f](const auto& c) { return c.first == f.fd; });
            if (copy) {
                if (!out.copies.empty()) out.copies += ' ';
                out.copies += std::to_string(f.fd) + "<" + detail::shell_quote(f.path);
            } else if (f.fd == seccomp_fd) {
                out.seccomp = f.path;
            }
            if (f.fd == syscall_filter_fd && f.path.empty()) out.filter = &f.data;
        }
        return out;
    }

    std::shared_ptr<detail::DispatcherPool<Deferred>> pool_;
};

}  // namespace shannot
