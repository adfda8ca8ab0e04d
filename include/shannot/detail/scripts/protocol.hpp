// SPDX-License-Identifier: MIT
// The words of the dispatcher's and the session agent's protocols (docs/protocol.md), named once.
#pragma once

#include <string_view>

/// What the C++ side sends to and reads from the two POSIX-sh programs (dispatcher.sh,
/// session_agent.sh). A frame is "\n<MARKER> <PAYLOAD>\n" (FrameFilter); the constants here are
/// payloads, or the first word of one, and request verbs. docs/protocol.md describes both
/// protocols; the scripts spell the same words.
namespace shannot::detail::protocol {

/// Both programs: the first frame, on stdout and on stderr (marked with HELLO).
inline constexpr std::string_view ready = "ready";
/// Both programs: a command's last frame on stdout (marked with its nonce).
inline constexpr std::string_view eof = "eof";
/// Both programs: a command's exit report on stderr, "exit RC SETUP CGROUP HIT" (dispatcher) or
/// "exit RC" (agent); it ends the command.
inline constexpr std::string_view exit_report = "exit ";

/// True when `payload` is an exit report ("exit ...").
[[nodiscard]] constexpr bool is_exit_report(std::string_view payload) noexcept {
    return payload.substr(0, exit_report.size()) == exit_report;
}

/// The ssh dispatcher (dispatcher.sh).
namespace dispatcher {

/// Request verbs, the first word of a request line.
inline constexpr std::string_view keep_args_verb = "P";  ///< P SLOT ARGS
/// B FILTER: keep the built-in syscall filter (printf_escape()) for the R requests that ask for it
inline constexpr std::string_view keep_filter_verb = "B";
/// R NONCE TIMEOUT SECCOMP INLEN BWRAP SLOT LIMITS FILTER -- COMMAND...
inline constexpr std::string_view run_verb = "R";
inline constexpr std::string_view signal_verb = "K";  ///< K TERM | K KILL
/// S SECCOMP SHELL BWRAP LIMITS FILTER COPIES ARGS...
inline constexpr std::string_view session_verb = "S";
inline constexpr std::string_view kill_session_verb = "Z";  ///< Z HELLO
/// The signals a K names.
inline constexpr std::string_view term_signal = "TERM";
inline constexpr std::string_view kill_signal = "KILL";

/// An R's last frame on stderr instead of its exit report: the run did not start.
inline constexpr std::string_view no_bwrap = "nobwrap";      ///< BWRAP is not found
inline constexpr std::string_view no_seccomp = "noseccomp";  ///< SECCOMP is not readable
inline constexpr std::string_view no_args = "noargs";        ///< no P for SLOT (a bug)
inline constexpr std::string_view no_stage = "nostage";      ///< the input could not be stored ($TMPDIR full)
inline constexpr std::string_view no_limits = "nolimits";    ///< LIMITS is not five numbers (a bug)
/// FILTER is 1 but no B came before, or no pipe could be made for the filter
inline constexpr std::string_view no_filter = "nofilter";

/// The ready frame's word on stdout that says how runs' limits are enforced there:
/// "limits=MECHANISM", a shannot::limits_mechanism value.
inline constexpr std::string_view limits_word = "limits=";

/// A frame on stderr before one run's exit report, once per dispatcher started with PATHS:
/// "files file=MODE:SIZE:PATH ... link=PATH:RESOLVED ...": one file word per regular file among
/// them (MODE as `ls -l` prints it, "-rw-r--r--"; SIZE in bytes), what the transport gives bwrap
/// as copies; then one link word per symlink among them, with the absolute path it resolves to
/// (as realpath(3)), what the builder may make a `--symlink` instead.
inline constexpr std::string_view files_report = "files";
inline constexpr std::string_view file_word = "file=";
inline constexpr std::string_view link_word = "link=";

/// True when `payload` is a files frame ("files", then its words).
[[nodiscard]] constexpr bool is_files_report(std::string_view payload) noexcept {
    return payload.substr(0, files_report.size()) == files_report &&
           (payload.size() == files_report.size() || payload[files_report.size()] == ' ');
}

/// The dispatcher's exit statuses of its own.
inline constexpr int exit_no_folder = 97;           ///< cannot create its folder under $TMPDIR (or /tmp)
inline constexpr int exit_session_no_bwrap = 96;    ///< S: BWRAP not found
inline constexpr int exit_session_no_seccomp = 95;  ///< S: SECCOMP unreadable
inline constexpr int exit_session_no_shell = 94;    ///< S: SHELL unreadable
inline constexpr int exit_session_no_limits = 93;   ///< S: LIMITS malformed, or its pids cgroup cannot be made
inline constexpr int exit_session_no_filter = 92;   ///< S: no pipe could be made for FILTER

}  // namespace dispatcher

/// The session agent (session_agent.sh).
namespace agent {

/// The ready frame's payload when `head` and `cat` exist in the sandbox (else "ready noinput").
inline constexpr std::string_view ready_input = "ready input";
/// Stop requests: the reader signals every process but the agent's two.
inline constexpr std::string_view terminate_request = "\nK TERM\n";
inline constexpr std::string_view kill_request = "\nK KILL\n";

/// A command's frames on stderr before its exit report: it did not start.
inline constexpr std::string_view no_cwd = "nocwd";      ///< cannot change to its working directory
inline constexpr std::string_view no_exec = "noexec";    ///< the command is not an executable file
inline constexpr std::string_view no_input = "noinput";  ///< the input could not be staged (tmpfs full)

}  // namespace agent

}  // namespace shannot::detail::protocol
