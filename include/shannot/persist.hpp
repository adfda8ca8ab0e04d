// SPDX-License-Identifier: MIT
// Kept ssh connections (SshConnection::persist): where they live, listing them, closing them.
#pragma once

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <shannot/detail/ssh/persisted.hpp>
#include <shannot/error.hpp>
#include <shannot/ssh_connection.hpp>

namespace shannot {

/// One kept connection, as its folder describes it.
struct PersistedConnection {
    std::string folder;  ///< its own folder (socket, fifos, state)
    std::string host, user;
    int port = 0;
    int ssh_pid = -1;    ///< the ssh process (connection, ControlMaster and warm dispatcher)
    bool alive = false;  ///< that process still runs
    bool busy = false;   ///< a transport is using it now
    std::uint64_t commands = 0;
    std::int64_t idle_left = 0;  ///< seconds until it closes unused (0: due)
};

/// Where kept connections live by default (see SshConnection::persist_folder): the folder is
/// `$XDG_RUNTIME_DIR/shannot`, else `$XDG_CACHE_HOME/shannot/ssh`, else `$HOME/.cache/shannot/ssh`.
[[nodiscard]] inline Result<std::string> default_persist_folder() { return detail::default_persist_folder(); }

/// Every kept connection in `folder` (dead ones too, until closed). A missing folder is empty.
[[nodiscard]] inline Result<std::vector<PersistedConnection>> list_persisted(const std::string& folder) {
    std::vector<PersistedConnection> out;
    DIR* dir = ::opendir(folder.c_str());
    if (!dir) return out;
    const auto now = detail::unix_now();
    while (const dirent* e = ::readdir(dir)) {
        const std::string name = e->d_name;
        if (name.size() != 16 || name.find_first_not_of("0123456789abcdef") != std::string::npos) continue;
        const detail::PersistPaths paths(folder + "/" + name);
        const auto state = detail::read_persisted_state(paths.state);
        if (!state) continue;
        PersistedConnection c{paths.dir,   state->host,     state->user,
                              state->port, state->ssh_pid,  detail::same_process(state->ssh_pid, state->ssh_start),
                              state->busy, state->commands, 0};
        c.idle_left = std::max<std::int64_t>(0, state->used + state->idle - now);
        out.push_back(std::move(c));
    }
    ::closedir(dir);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.folder < b.folder; });
    return out;
}

/// Closes the kept connections in `folder` that `which` selects (all by default): the ssh
/// process ends (the remote dispatcher sees EOF and kills what still runs), and so does the
/// holder; their files are removed. One in use is closed too, after waiting up to 2 s for it.
/// Returns how many live connections were closed.
[[nodiscard]] inline Result<std::size_t> close_persisted(
    const std::string& folder, const std::function<bool(const PersistedConnection&)>& which = {}) {
    auto all = list_persisted(folder);
    if (!all) return propagate(all);
    std::size_t closed = 0;
    std::vector<pid_t> stopped;  ///< what was signalled, reaped before returning when it is ours
    detail::reap_parked();
    for (const auto& c : *all) {
        if (which && !which(c)) continue;
        const detail::PersistPaths paths(c.folder);
        const auto lock = detail::lock_persisted(paths, std::chrono::seconds(2));
        const auto state = detail::read_persisted_state(paths.state);
        closed += c.alive ? 1 : 0;
        detail::stop_persisted(paths, state);
        if (state) stopped.insert(stopped.end(), {state->ssh_pid, state->holder_pid});
        ::unlink(paths.lock.c_str());
        ::rmdir(paths.dir.c_str());
    }
    detail::reap_stopped(stopped, std::chrono::seconds(2));
    return closed;
}

/// Keeps at most `keep` kept connections in `folder`, closing the least recently used idle ones
/// beyond that, and the dead ones. Returns how many were closed.
[[nodiscard]] inline Result<std::size_t> trim_persisted(const std::string& folder, std::size_t keep) {
    auto all = list_persisted(folder);
    if (!all) return propagate(all);
    std::vector<PersistedConnection> idle;
    std::size_t live = 0;
    for (const auto& c : *all) {
        if (!c.alive) {
            auto ignored = close_persisted(folder, [&](const PersistedConnection& x) { return x.folder == c.folder; });
            (void)ignored;
            continue;
        }
        ++live;
        if (!c.busy) idle.push_back(c);
    }
    std::size_t closed = 0;
    std::sort(idle.begin(), idle.end(), [](const auto& a, const auto& b) { return a.idle_left < b.idle_left; });
    for (const auto& c : idle) {
        if (live <= keep) break;
        auto done = close_persisted(folder, [&](const PersistedConnection& x) { return x.folder == c.folder; });
        if (done) closed += *done;
        --live;
    }
    return closed;
}

}  // namespace shannot
