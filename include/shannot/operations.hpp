// SPDX-License-Identifier: MIT
// Agent operations (read, list, write, remove, execute code, diagnostics) as sandboxed commands.
#pragma once

#include <algorithm>
#include <array>
#include <concepts>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <shannot/cancel.hpp>
#include <shannot/concepts/command_runner.hpp>
#include <shannot/detail/paths.hpp>
#include <shannot/detail/run.hpp>
#include <shannot/error.hpp>
#include <shannot/process_result.hpp>
#include <shannot/profile.hpp>
#include <shannot/sandbox_manager.hpp>
#include <shannot/session.hpp>

// The tools an agent framework expects of a sandbox (Strands' SshSandbox, Shannot's MCP tools),
// built on run() of a SandboxManager or a SandboxSession and nothing else: every operation is an ordinary command, so
// the admission policy sees it, the transport carries it (here or over ssh) and the profile's
// mounts decide what it can touch. Each needs its command allowed by the profile:
//
//   read_file        cat -- PATH
//   list_files       find -H PATH -maxdepth 1 -printf '%y%P\0'
//   write_file       dd of=PATH bs=65536 status=none     (content on stdin)
//   remove_file      rm -- PATH
//   execute_code     python3 - | sh -s | bash -s | perl -  (code on stdin)
//   check_disk_usage df -h            check_memory  free -h
//   list_directory   ls [-l] [-a] -- PATH
//   search_files     find -H DIR -name PATTERN
//   grep_content     grep [-r] -e PATTERN -- PATH
//
// Data of any size travels on stdin, never in argv (one argv word is capped at 128 KiB on
// Linux, and over ssh every word is also re-quoted for the remote shell). File paths must be
// absolute: a relative one would resolve against whatever directory bwrap happened to start in,
// and an absolute one can never be read as an option (`--` is there as a second guard).

namespace shannot {

/// Per-operation settings: the subset of RunOptions an operation leaves to the caller (the
/// operation owns the command, its stdin and `check`).
struct OperationOptions {
    /// Wall-clock limit; std::nullopt means none. On expiry: SIGTERM, `kill_grace`, SIGKILL.
    std::optional<std::chrono::milliseconds> timeout = std::chrono::seconds(30);
    std::chrono::milliseconds kill_grace = std::chrono::milliseconds(500);
    /// Set to a token you keep; `token.cancel()` from any thread stops the operation.
    std::optional<CancelToken> cancel{};
    /// Added to the profile's variables (execute_code's code sees them).
    std::map<std::string, std::string> environment{};
    /// Working directory inside the sandbox (absolute); execute_code's relative paths use it.
    std::optional<std::string> working_directory{};
    /// Per-stream cap on kept output. read_file refuses a file larger than this rather than
    /// return part of it; memory grows with what is printed, not with the cap.
    std::size_t max_output = 64u << 20;
};

namespace detail {

[[nodiscard]] inline RunOptions run_options(const OperationOptions& o,
                                            std::optional<std::string> input = std::nullopt) {
    RunOptions r;
    r.environment = o.environment;
    r.working_directory = o.working_directory;
    r.input = std::move(input);
    r.timeout = o.timeout;
    r.kill_grace = o.kill_grace;
    r.max_output = o.max_output;
    r.cancel = o.cancel;
    return r;
}

/// "read_file('/etc/x'): ": which operation on what, so an agent's log line stands alone.
[[nodiscard]] inline std::string op_context(std::string_view op, std::string_view subject) {
    return std::string(op) + "('" + std::string(subject) + "'): ";
}

/// Puts the operation in front of an error from run() (admission, transport, setup).
[[nodiscard]] inline tl::unexpected<Error> op_error(std::string_view op, std::string_view subject, Error e) {
    e.message = op_context(op, subject) + e.message;
    return tl::make_unexpected(std::move(e));
}

/// The command ran and did not succeed: an error carrying the result, worded as a run's own.
[[nodiscard]] inline tl::unexpected<Error> op_failed(std::string_view op, std::string_view subject, ProcessResult r) {
    const errc code = r.cancelled && !r.timed_out ? errc::cancelled : errc::command_failed;
    std::string message = op_context(op, subject) + failure_message(r);
    return tl::make_unexpected(Error{code, std::move(message), std::make_shared<ProcessResult>(std::move(r))});
}

/// Paths handed to commands are absolute and NUL-free: a NUL cannot cross argv, and a relative
/// path (or one starting with '-') has no fixed meaning inside the sandbox.
[[nodiscard]] inline Result<void> check_op_path(std::string_view op, std::string_view path) {
    if (path.empty()) return fail(errc::invalid_argument, std::string(op) + ": the path is empty");
    if (has_nul(path)) return fail(errc::invalid_argument, op_context(op, path) + "the path contains a NUL byte");
    if (!is_absolute(path))
        return fail(errc::invalid_argument,
                    op_context(op, path) + "the path is not absolute (paths inside the sandbox start with '/')");
    return {};
}

/// Runs `command` through the sandbox; a run() error or an unsuccessful command becomes an
/// error naming the operation and its subject.
template <class S>
[[nodiscard]] Result<ProcessResult> run_op(S& sandbox, std::string_view op, std::string_view subject,
                                           std::vector<std::string> command, RunOptions options) {
    auto r = sandbox.run(std::move(command), std::move(options));
    if (!r) return op_error(op, subject, std::move(r.error()));
    if (!r->succeeded()) return op_failed(op, subject, std::move(*r));
    return r;
}

}  // namespace detail

/// The mount that makes `path` writable in `profile`: the deepest tmpfs or read_only=false bind
/// covering it. Checked lexically, before anything runs, so a write that the read-only sandbox
/// would refuse anyway fails early with a message naming the path and the mount in the way.
/// (Mounts added through `additional_args` are not considered; the kernel stays the final judge.)
template <class T>
[[nodiscard]] Result<std::string> writable_mount(const SandboxProfile<T>& profile, std::string_view path) {
    if (!detail::is_absolute(path) || detail::has_nul(path))
        return fail(errc::invalid_argument, "'" + std::string(path) + "' is not an absolute path");
    if (detail::has_dot_component(path) || detail::has_empty_component(path))
        return fail(errc::invalid_argument, "'" + std::string(path) + "' has '.', '..' or empty components");
    std::string_view best;
    bool best_writable = false;
    std::string best_kind = "no mount";
    auto consider = [&](std::string_view target, bool writable, std::string kind) {
        target = detail::strip_trailing_slash(target);
        if (!detail::is_same_or_under(path, target) || (!best.empty() && target.size() <= best.size())) return;
        best = target;
        best_writable = writable;
        best_kind = std::move(kind);
    };
    std::string writable_list;
    for (const auto& b : profile.binds) {
        consider(b.target, !b.read_only, b.read_only ? "read-only bind" : "bind");
        if (!b.read_only) writable_list += (writable_list.empty() ? "" : ", ") + b.target;
    }
    for (const auto& t : profile.tmpfs_paths) {
        consider(t, true, "tmpfs");
        writable_list += (writable_list.empty() ? "" : ", ") + t;
    }
    consider("/proc", false, "sandbox-managed mount");
    consider("/dev", false, "sandbox-managed mount");
    if (best_writable) return std::string(best);
    std::string message = "no writable mount covers '" + std::string(path) + "' in profile '" + profile.name + "' (";
    message += best.empty() ? "nothing is mounted there" : "it lies under the " + best_kind + " " + std::string(best);
    message += writable_list.empty() ? "; the profile has no writable mount)" : "; writable: " + writable_list + ")";
    return fail(errc::command_refused, std::move(message));
}

/// The file's bytes, exactly. A file larger than `options.max_output` is an error, never a
/// silently shortened string.
template <CommandRunner S>
[[nodiscard]] Result<std::string> read_file(S& sandbox, std::string_view path, const OperationOptions& options = {}) {
    if (auto ok = detail::check_op_path("read_file", path); !ok) return propagate(ok);
    auto r = detail::run_op(sandbox, "read_file", path, {"cat", "--", std::string(path)}, detail::run_options(options));
    if (!r) return propagate(r);
    if (r->stdout_truncated)
        return fail(errc::io_error, detail::op_context("read_file", path) + "the file is larger than the " +
                                        std::to_string(options.max_output) +
                                        "-byte limit (raise OperationOptions::max_output to read it)");
    return std::move(r->stdout_data);
}

/// The names in a directory (not `.`/`..`), sorted bytewise. Names travel NUL-separated, so
/// newlines, spaces and leading dashes arrive intact. A path that is not a directory is an error.
template <CommandRunner S>
[[nodiscard]] Result<std::vector<std::string>> list_files(S& sandbox, std::string_view dir,
                                                          const OperationOptions& options = {}) {
    if (auto ok = detail::check_op_path("list_files", dir); !ok) return propagate(ok);
    // -H follows a symlinked DIR; depth 0 reports DIR's own type first ("d" + empty name).
    auto r = detail::run_op(sandbox, "list_files", dir,
                            {"find", "-H", std::string(dir), "-maxdepth", "1", "-printf", "%y%P\\0"},
                            detail::run_options(options));
    if (!r) return propagate(r);
    if (r->stdout_truncated)
        return fail(errc::io_error, detail::op_context("list_files", dir) + "the listing is larger than the " +
                                        std::to_string(options.max_output) + "-byte limit");
    std::string_view out = r->stdout_data;
    std::vector<std::string> names;
    bool first = true;
    while (!out.empty()) {
        const auto nul = out.find('\0');
        if (nul == std::string_view::npos || nul == 0)
            return fail(errc::io_error, detail::op_context("list_files", dir) + "unexpected output from find");
        const auto record = out.substr(0, nul);
        out.remove_prefix(nul + 1);
        if (first) {
            if (record != "d")
                return fail(errc::invalid_argument, detail::op_context("list_files", dir) + "not a directory");
            first = false;
            continue;
        }
        names.emplace_back(record.substr(1));
    }
    if (first) return fail(errc::io_error, detail::op_context("list_files", dir) + "find printed nothing");
    std::sort(names.begin(), names.end());
    return names;
}

/// Creates or truncates `path` and writes `content` (any bytes, any size) to it. Allowed only
/// where a writable mount covers the path; otherwise errc::command_refused before anything runs.
/// In a tmpfs the file lives as long as the sandbox: that one run for a SandboxManager, the
/// session for a SandboxSession; use a writable bind to keep it.
template <CommandRunner S>
[[nodiscard]] Result<void> write_file(S& sandbox, std::string_view path, std::string content,
                                      const OperationOptions& options = {}) {
    if (auto ok = detail::check_op_path("write_file", path); !ok) return propagate(ok);
    if (auto mount = writable_mount(sandbox.profile(), path); !mount)
        return detail::op_error("write_file", path, std::move(mount.error()));
    // dd takes the path as an operand (`of=`), so no name is ever read as an option; it
    // truncates, and refuses a directory instead of writing into it as cp would.
    auto r = detail::run_op(sandbox, "write_file", path, {"dd", "of=" + std::string(path), "bs=65536", "status=none"},
                            detail::run_options(options, std::move(content)));
    if (!r) return propagate(r);
    return {};
}

/// Removes the file at `path` (not a directory). The same writable-mount rule as write_file.
template <CommandRunner S>
[[nodiscard]] Result<void> remove_file(S& sandbox, std::string_view path, const OperationOptions& options = {}) {
    if (auto ok = detail::check_op_path("remove_file", path); !ok) return propagate(ok);
    if (auto mount = writable_mount(sandbox.profile(), path); !mount)
        return detail::op_error("remove_file", path, std::move(mount.error()));
    auto r =
        detail::run_op(sandbox, "remove_file", path, {"rm", "--", std::string(path)}, detail::run_options(options));
    if (!r) return propagate(r);
    return {};
}

/// The languages execute_code knows, each with the interpreter words that read a program from stdin.
inline constexpr std::array<std::pair<std::string_view, std::array<std::string_view, 2>>, 5> code_interpreters{{
    {"python", {"python3", "-"}},
    {"python3", {"python3", "-"}},
    {"sh", {"sh", "-s"}},
    {"bash", {"bash", "-s"}},
    {"perl", {"perl", "-"}},
}};

/// The interpreter command for `language` (ASCII case-insensitive); an unknown one is an error
/// naming it and the known ones.
[[nodiscard]] inline Result<std::vector<std::string>> interpreter_for(std::string_view language) {
    std::string lower(language);
    for (auto& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    std::string known;
    for (const auto& [name, words] : code_interpreters) {
        if (name == lower) return std::vector<std::string>{std::string(words[0]), std::string(words[1])};
        known += (known.empty() ? "" : ", ") + std::string(name);
    }
    return fail(errc::invalid_argument,
                "execute_code: unknown language '" + std::string(language) + "' (known: " + known + ")");
}

/// Runs `code` with the language's interpreter, the code on stdin (so it may be any size; it
/// cannot read stdin itself). The interpreter must be allowed by the profile. The result is
/// returned whatever the exit status: a failing program is an answer, not an error.
template <CommandRunner S>
[[nodiscard]] Result<ProcessResult> execute_code(S& sandbox, std::string_view language, std::string code,
                                                 const OperationOptions& options = {}) {
    auto command = interpreter_for(language);
    if (!command) return propagate(command);
    auto r = sandbox.run(std::move(*command), detail::run_options(options, std::move(code)));
    if (!r) return detail::op_error("execute_code", language, std::move(r.error()));
    return r;
}

// Shannot's diagnostics tools. Each returns the ProcessResult as run() does: exit status,
// stdout and stderr are all an agent's answer (grep exits 1 when nothing matches, find exits 1
// when one directory was unreadable yet still prints the rest). Errors are what run() reports.

/// `df -h`: space on the filesystems the sandbox sees.
template <CommandRunner S>
[[nodiscard]] Result<ProcessResult> check_disk_usage(S& sandbox, const OperationOptions& options = {}) {
    return sandbox.run({"df", "-h"}, detail::run_options(options));
}

/// `free -h`: memory and swap.
template <CommandRunner S>
[[nodiscard]] Result<ProcessResult> check_memory(S& sandbox, const OperationOptions& options = {}) {
    return sandbox.run({"free", "-h"}, detail::run_options(options));
}

/// What list_directory shows besides the names.
struct ListOptions {
    bool long_format = false;  ///< `ls -l`: type, mode, owner, size, time
    bool hidden = false;       ///< `ls -a`: names starting with '.' too
};

/// `ls [-l] [-a] -- PATH`, the human-readable listing (list_files is the exact one).
template <CommandRunner S>
[[nodiscard]] Result<ProcessResult> list_directory(S& sandbox, std::string_view path, const ListOptions& list = {},
                                                   const OperationOptions& options = {}) {
    if (auto ok = detail::check_op_path("list_directory", path); !ok) return propagate(ok);
    std::vector<std::string> command{"ls"};
    if (list.long_format) command.emplace_back("-l");
    if (list.hidden) command.emplace_back("-a");
    command.insert(command.end(), {"--", std::string(path)});
    return sandbox.run(std::move(command), detail::run_options(options));
}

/// `find -H DIR -name PATTERN`: paths whose last component matches the glob, one per line.
template <CommandRunner S>
[[nodiscard]] Result<ProcessResult> search_files(S& sandbox, std::string_view dir, std::string_view name_pattern,
                                                 const OperationOptions& options = {}) {
    if (auto ok = detail::check_op_path("search_files", dir); !ok) return propagate(ok);
    if (detail::has_nul(name_pattern))
        return fail(errc::invalid_argument, "search_files: the pattern contains a NUL byte");
    return sandbox.run({"find", "-H", std::string(dir), "-name", std::string(name_pattern)},
                       detail::run_options(options));
}

/// How grep_content searches.
struct GrepOptions {
    bool recursive = false;  ///< `grep -r`: PATH is a directory, searched with everything under it
};

/// `grep [-r] -e PATTERN -- PATH`: the pattern follows -e, so one starting with '-' is a pattern.
template <CommandRunner S>
[[nodiscard]] Result<ProcessResult> grep_content(S& sandbox, std::string_view pattern, std::string_view path,
                                                 const GrepOptions& grep = {}, const OperationOptions& options = {}) {
    if (auto ok = detail::check_op_path("grep_content", path); !ok) return propagate(ok);
    if (detail::has_nul(pattern)) return fail(errc::invalid_argument, "grep_content: the pattern contains a NUL byte");
    std::vector<std::string> command{"grep"};
    if (grep.recursive) command.emplace_back("-r");
    command.insert(command.end(), {"-e", std::string(pattern), "--", std::string(path)});
    return sandbox.run(std::move(command), detail::run_options(options));
}

}  // namespace shannot
