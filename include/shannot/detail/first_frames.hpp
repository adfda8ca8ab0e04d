// SPDX-License-Identifier: MIT
// Waiting for the "ready" frames a remote dispatcher or a session agent prints when it starts.
#pragma once

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <string>

#include <shannot/detail/frame_filter.hpp>
#include <shannot/detail/posix/pipe.hpp>

namespace shannot::detail {

/// How waiting for a helper's first frames ended.
enum class FirstFrames { ready, ended, timed_out, cancelled };

/// Reads `out_fd` and `err_fd` through their frame filters until each has carried a frame (the
/// "ready" a dispatcher or a session agent prints at start), a stream hits EOF or `exit_fd`
/// (a child's, see ChildProcess) fires, or `deadline` passes. What arrives on stderr outside
/// frames (a login banner, bwrap's or ssh's complaints) is kept in `diagnostics`, its last 8 KiB.
/// A readable `cancel_fd` (a CancelToken's) ends the wait too.
inline FirstFrames await_first_frames(int out_fd, int err_fd, int exit_fd, FrameFilter& out_frames,
                                      FrameFilter& err_frames, Clock::time_point deadline, std::string& diagnostics,
                                      int cancel_fd = -1) {
    std::string junk;
    char buffer[8192];
    while (out_frames.payloads().empty() || err_frames.payloads().empty()) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return FirstFrames::timed_out;
        pollfd fds[4] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}, {exit_fd, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
        if (::poll(fds, cancel_fd >= 0 ? 4 : 3, static_cast<int>(std::min<long long>(left, 60'000))) < 0) {
            if (errno == EINTR) continue;
            return FirstFrames::ended;
        }
        if (cancel_fd >= 0 && fds[3].revents) return FirstFrames::cancelled;
        bool ended = fds[2].revents != 0;
        for (int k = 0; k < 2; ++k) {
            if (!fds[k].revents) continue;
            const ssize_t n = ::read(fds[k].fd, buffer, sizeof buffer);
            if (n > 0) {
                junk.clear();
                (k == 0 ? out_frames : err_frames).feed(std::string_view(buffer, static_cast<std::size_t>(n)), junk);
                if (k == 1) diagnostics += junk;
                if (diagnostics.size() > 8192) diagnostics.erase(0, diagnostics.size() - 8192);
            } else if (n == 0) {
                ended = true;
            }
        }
        if (ended && (out_frames.payloads().empty() || err_frames.payloads().empty())) return FirstFrames::ended;
    }
    return FirstFrames::ready;
}

}  // namespace shannot::detail
