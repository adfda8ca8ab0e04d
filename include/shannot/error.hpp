// SPDX-License-Identifier: MIT
// Error values: an errc enum backed by a std::error_category, and a message naming the culprit.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <tl/expected.hpp>

#include <shannot/fwd.hpp>

namespace shannot {

/// What went wrong, coarse enough to branch on; the message says exactly what and where.
enum class errc {
    ok = 0,
    invalid_profile,        ///< profile JSON or data is malformed (message names the field path)
    invalid_argument,       ///< a bad run option: env name, cwd, empty command, bad ssh setting
    command_refused,        ///< the allowlist or admission policy refused the command
    bwrap_not_found,        ///< no usable bwrap executable
    sandbox_unavailable,    ///< the kernel refuses namespaces (user namespaces disabled)
    sandbox_setup_failed,   ///< bwrap started but failed before running the command
    spawn_failed,           ///< the OS refused to start a process (fork/exec/pipe)
    io_error,               ///< reading or writing a file or pipe failed
    command_failed,         ///< `check` was set and the command did not succeed
    cancelled,              ///< the caller cancelled the run
    transport_error,        ///< the transport failed (ssh exit 255 and similar)
    connection_failed,      ///< could not reach the remote host
    authentication_failed,  ///< the remote host refused our credentials
    host_key_mismatch,      ///< the remote host key is unknown or changed under a strict policy
    remote_bwrap_missing,   ///< the remote host has no bwrap
    unsafe_ssh_option,      ///< an extra ssh option is not on the allowlist
    session_closed,         ///< the session or transport was closed by its owner
    session_lost,           ///< a warm session's sandbox or connection died; reopen() it
};

namespace detail {
class ErrorCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "shannot"; }
    std::string message(int value) const override {
        switch (static_cast<errc>(value)) {
        case errc::ok: return "success";
        case errc::invalid_profile: return "invalid sandbox profile";
        case errc::invalid_argument: return "invalid argument";
        case errc::command_refused: return "command refused by the sandbox profile";
        case errc::bwrap_not_found: return "bubblewrap (bwrap) not found";
        case errc::sandbox_unavailable: return "namespaces unavailable for the sandbox";
        case errc::sandbox_setup_failed: return "sandbox setup failed";
        case errc::spawn_failed: return "could not start a process";
        case errc::io_error: return "input/output error";
        case errc::command_failed: return "command failed";
        case errc::cancelled: return "cancelled";
        case errc::transport_error: return "transport error";
        case errc::connection_failed: return "connection failed";
        case errc::authentication_failed: return "authentication failed";
        case errc::host_key_mismatch: return "host key verification failed";
        case errc::remote_bwrap_missing: return "bwrap missing on the remote host";
        case errc::unsafe_ssh_option: return "ssh option refused";
        case errc::session_closed: return "session closed";
        case errc::session_lost: return "session lost";
        }
        return "unknown shannot error";
    }
};
}  // namespace detail

/// The category behind shannot::errc, so errors compose with std::error_code.
inline const std::error_category& error_category() noexcept {
    static const detail::ErrorCategory category;
    return category;
}

inline std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

/// The enumerator's name ("command_refused"): a stable key for logs and JSON output, where the
/// category's message is prose that may change. Every enumerator is named here (-Wswitch checks
/// that); "unknown" is for values outside the enum.
[[nodiscard]] constexpr std::string_view to_string(errc code) noexcept {
    switch (code) {
    case errc::ok: return "ok";
    case errc::invalid_profile: return "invalid_profile";
    case errc::invalid_argument: return "invalid_argument";
    case errc::command_refused: return "command_refused";
    case errc::bwrap_not_found: return "bwrap_not_found";
    case errc::sandbox_unavailable: return "sandbox_unavailable";
    case errc::sandbox_setup_failed: return "sandbox_setup_failed";
    case errc::spawn_failed: return "spawn_failed";
    case errc::io_error: return "io_error";
    case errc::command_failed: return "command_failed";
    case errc::cancelled: return "cancelled";
    case errc::transport_error: return "transport_error";
    case errc::connection_failed: return "connection_failed";
    case errc::authentication_failed: return "authentication_failed";
    case errc::host_key_mismatch: return "host_key_mismatch";
    case errc::remote_bwrap_missing: return "remote_bwrap_missing";
    case errc::unsafe_ssh_option: return "unsafe_ssh_option";
    case errc::session_closed: return "session_closed";
    case errc::session_lost: return "session_lost";
    }
    return "unknown";
}

/// A failure the environment or the caller can cause. `message` names the field, option or path.
struct Error {
    errc code = errc::ok;
    std::string message;
    /// Set when a command ran (e.g. `check` failures, setup failures): what it printed and how it ended.
    std::shared_ptr<const ProcessResult> result;

    [[nodiscard]] std::error_code error_code() const noexcept { return make_error_code(code); }
    /// "category text: message", the line a CLI prints.
    [[nodiscard]] std::string describe() const {
        return error_category().message(static_cast<int>(code)) + ": " + message;
    }
};

/// Every fallible call returns this.
template <class T>
using Result = tl::expected<T, Error>;

/// Shorthand for `tl::make_unexpected(Error{code, message})`.
[[nodiscard]] inline tl::unexpected<Error> fail(errc code, std::string message) {
    return tl::make_unexpected(Error{code, std::move(message), nullptr});
}

/// Passes a failed result's error on, whatever value type the caller returns:
/// `if (!r) return propagate(r);`. A function, not a TRY macro, so every early return stays
/// visible where it happens (see docs/architecture.md, "Errors are values").
template <class T>
[[nodiscard]] tl::unexpected<Error> propagate(Result<T>& failed) {
    return tl::make_unexpected(std::move(failed.error()));
}

}  // namespace shannot

template <>
struct std::is_error_code_enum<shannot::errc> : std::true_type {};
