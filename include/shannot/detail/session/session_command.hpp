// SPDX-License-Identifier: MIT
// SessionCommand: one command on a warm session's agent, as the run loop sees it.
#pragma once

#include <signal.h>

#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <shannot/concepts/transport.hpp>
#include <shannot/detail/command_frames.hpp>
#include <shannot/detail/posix/timer.hpp>
#include <shannot/detail/scripts/protocol.hpp>
#include <shannot/error.hpp>
#include <shannot/process_result.hpp>

namespace shannot::detail {

/// One command on a session, as the run loop sees it. The descriptors are the session
/// channel's (not owned), the exit timer included (see CommandFrames), and so is `argv`, how
/// the session's sandbox was started.
class SessionCommand {
public:
    SessionCommand(int in, int out, int err, TimerRef timer, const std::string& nonce, std::string working_directory,
                   const std::vector<std::string>& argv)
        : in_(in),
          out_(out),
          err_(err),
          timer_(timer.fd()),
          frames_(nonce, timer, &is_end_report),
          working_directory_(std::move(working_directory)),
          argv_(&argv) {
        timer.disarm();  // clear the last command's expiry
    }

    [[nodiscard]] int stdin_fd() const { return -1; }  // the input went ahead of the command
    [[nodiscard]] int stdout_fd() const { return out_; }
    [[nodiscard]] int stderr_fd() const { return err_; }
    [[nodiscard]] int exit_fd() const { return timer_; }
    [[nodiscard]] const std::vector<std::string>& argv() const { return *argv_; }
    void close_stdin() {}

    /// The agent's reader sends SIGTERM (SIGKILL) to every process in the sandbox but the agent's two.
    void terminate() { frames_.request_stop(in_, protocol::agent::terminate_request, StopLevel::terminate); }
    void kill() { frames_.request_stop(in_, protocol::agent::kill_request, StopLevel::kill); }

    void filter_output(StreamKind kind, std::string_view in, std::string& out) { frames_.feed(kind, in, out); }
    void finish_output(StreamKind kind, std::string& out) { frames_.finish(kind, out); }
    [[nodiscard]] bool output_finished(StreamKind kind) const { return frames_.finished(kind); }

    /// How the command ended, from the agent's frames.
    ExitInfo wait() {
        ExitInfo info;
        if (!frames_.complete()) {
            // We stopped it and the agent did not answer: the sandbox is ended.
            if (frames_.stopped() != StopLevel::none) {
                lost_reason_ = "a stopped command did not end";
                info.kind = ExitInfo::Kind::signaled;
                info.signal = frames_.stop_signal();
                return info;
            }
            info.kind = ExitInfo::Kind::transport_failed;
            info.error = errc::session_lost;
            info.detail = lost_reason_ = "the session's sandbox ended while the command ran";
            return info;
        }
        namespace words = protocol::agent;
        for (const auto& payload : frames_.err_payloads()) {
            if (payload == words::no_cwd || payload == words::no_exec || payload == words::no_input) {
                info.kind = ExitInfo::Kind::setup_failed;
                info.error = payload == words::no_input ? errc::io_error : errc::sandbox_setup_failed;
                if (payload == words::no_cwd)
                    info.detail = "cannot change to the working directory '" + working_directory_ + "' in the sandbox";
                else if (payload == words::no_exec)
                    info.detail = "the command is not an executable file in the sandbox";
                else
                    info.detail = "cannot stage the input in the sandbox (its /dev tmpfs is full?)";
                return info;
            }
            int code = -1;  // "exit RC"
            if (!protocol::is_exit_report(payload)) continue;
            if (std::sscanf(payload.c_str() + protocol::exit_report.size(), "%d", &code) != 1) continue;
            if (frames_.stopped() != StopLevel::none && code > 128) {
                info.kind = ExitInfo::Kind::signaled;
                info.signal = code - 128;
            } else {
                info.exit_code = code;
            }
            return info;
        }
        info.kind = ExitInfo::Kind::transport_failed;
        info.error = errc::session_lost;
        info.detail = lost_reason_ = "the session agent sent no exit report";
        return info;
    }

    /// Why the session cannot carry another command (it died, or ignored a kill); empty while it can.
    [[nodiscard]] const std::string& lost_reason() const noexcept { return lost_reason_; }

private:
    /// The agent's last frame on stderr: "exit RC" (nocwd, noexec and noinput come before it).
    static bool is_end_report(std::string_view payload) { return protocol::is_exit_report(payload); }

    int in_, out_, err_, timer_;
    CommandFrames frames_;
    std::string working_directory_;
    const std::vector<std::string>* argv_;
    std::string lost_reason_{};
};

}  // namespace shannot::detail
