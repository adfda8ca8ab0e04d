// SPDX-License-Identifier: MIT
// CommandFrames: the end of one command on a channel many commands share (a remote
// dispatcher's ssh session, a warm session's agent), as its process handle tracks it.
#pragma once

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <shannot/detail/frame_filter.hpp>
#include <shannot/detail/posix/pipe.hpp>
#include <shannot/detail/posix/timer.hpp>
#include <shannot/detail/scripts/protocol.hpp>
#include <shannot/process_result.hpp>

namespace shannot::detail {

/// How far we went to stop a command, in order: a later request never lowers it.
enum class StopLevel { none, terminate, kill };

/// The command's frames on stdout and stderr (marked with its nonce), and its exit timer: a
/// OneShotTimer the run loop polls as the handle's exit_fd(), armed to fire once both end frames
/// arrived, a stream hit EOF (the channel died), or a kill went unanswered for kill_fallback.
/// The end frames are "eof" on stdout and, on stderr, whatever `is_err_end` accepts.
class CommandFrames {
public:
    static constexpr std::chrono::seconds kill_fallback{3};

    /// `timer` is not owned.
    CommandFrames(const std::string& nonce, TimerRef timer, bool (*is_err_end)(std::string_view))
        : out_frames_(nonce), err_frames_(nonce), timer_(std::move(timer)), is_err_end_(is_err_end) {}

    /// Passes `in` through the stream's frame filter (frames out, output to `out`).
    void feed(StreamKind kind, std::string_view in, std::string& out) {
        frames(kind).feed(in, out);
        if (!out_done_)
            for (const auto& p : out_frames_.payloads()) out_done_ = out_done_ || p == protocol::eof;
        if (!err_done_)
            for (const auto& p : err_frames_.payloads()) err_done_ = err_done_ || is_err_end_(p);
        if (complete()) fire(0);
    }
    /// EOF on a channel stream: the channel is gone, so the command ends now.
    void finish(StreamKind kind, std::string& out) {
        frames(kind).finish(out);
        fire(0);
    }

    /// The stream carried the command's end frame: nothing more of it will come.
    [[nodiscard]] bool finished(StreamKind kind) const { return kind == StreamKind::out ? out_done_ : err_done_; }
    [[nodiscard]] bool complete() const { return out_done_ && err_done_; }
    [[nodiscard]] const std::vector<std::string>& err_payloads() const { return err_frames_.payloads(); }
    [[nodiscard]] StopLevel stopped() const { return stopped_; }
    /// The signal we asked for (SIGTERM or SIGKILL), 0 when we asked for none.
    [[nodiscard]] int stop_signal() const {
        return stopped_ == StopLevel::kill ? SIGKILL : stopped_ == StopLevel::terminate ? SIGTERM : 0;
    }

    /// Sends a stop request (`line`) to whoever runs the command through `fd`. When it cannot be
    /// sent, the command ends now; a kill that is not answered within kill_fallback ends it then.
    void request_stop(int fd, std::string_view line, StopLevel level) {
        if (complete()) return;
        stopped_ = std::max(stopped_, level);
        if (!write_all(fd, line, Clock::now() + std::chrono::seconds(1))) {
            fire(0);
            return;
        }
        if (level == StopLevel::kill) fire(std::chrono::duration_cast<std::chrono::nanoseconds>(kill_fallback).count());
    }

    /// Arms the exit timer: now (0), or after `ns` unless it already fired.
    void fire(long long ns) {
        if (fired_now_) return;
        if (ns == 0) fired_now_ = true;
        timer_.arm(ns);
    }

private:
    FrameFilter& frames(StreamKind kind) { return kind == StreamKind::out ? out_frames_ : err_frames_; }

    FrameFilter out_frames_, err_frames_;
    TimerRef timer_;
    bool (*is_err_end_)(std::string_view);
    bool out_done_ = false, err_done_ = false, fired_now_ = false;
    StopLevel stopped_ = StopLevel::none;
};

}  // namespace shannot::detail
