// SPDX-License-Identifier: MIT
// What the C++ side knows of the session agent: its place in the sandbox, its mounts, its requests.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <shannot/detail/scripts/session_agent_script.hpp>
#include <shannot/detail/shell_quote.hpp>
#include <shannot/limits.hpp>

namespace shannot::detail {

/// Where the agent lives inside the sandbox: a private tmpfs (0700) holding an execute-only
/// (0111) copy of the shell. Executing a file one cannot read makes the process non-dumpable, so
/// no command can open /proc/1/fd/0 (the request pipe) or /proc/1/mem to learn a nonce.
inline constexpr std::string_view session_agent_dir = "/dev/.shannot";
inline constexpr std::string_view session_agent_shell = "/dev/.shannot/sh";
/// The descriptor bwrap copies the shell from (`--ro-bind-data 5`).
inline constexpr int session_shell_fd = 5;

/// bwrap arguments a session adds before `--`: the agent is PID 1 (it reaps and kills what its
/// commands leave behind), counts processes in a procfs of its own and runs from the
/// execute-only copy of the shell. Its tmpfs (where a command's input is staged) is
/// `tmpfs_bytes` large, like every tmpfs of the sandbox.
[[nodiscard]] inline std::vector<std::string> session_mount_args(
    std::uint64_t tmpfs_bytes = ResourceLimits{}.tmpfs_bytes) {
    return {"--as-pid-1",
            "--perms",
            "0700",
            "--size",
            std::to_string(tmpfs_bytes),
            "--tmpfs",
            std::string(session_agent_dir),
            "--proc",
            std::string(session_agent_dir) + "/proc",
            "--perms",
            "0111",
            "--ro-bind-data",
            std::to_string(session_shell_fd),
            std::string(session_agent_shell)};
}

/// Whether a POSIX shell may run `name` itself, as a builtin, a function of the agent's or a
/// declaration utility, rather than look it up in PATH: dash's, bash's and ksh's builtins and
/// the agent's own function names (session_agent_functions, listed from the script). Such a
/// command runs as `( exec NAME ... )`, which costs the agent a fork but runs the program, as
/// `exec` finds only programs.
[[nodiscard]] inline bool shell_may_run_itself(std::string_view name) {
    static constexpr std::string_view names[] = {
        ".",       ":",      "[",         "alias",   "autoload",  "bg",       "bind",    "break",    "builtin",
        "caller",  "cd",     "chdir",     "command", "compgen",   "complete", "compopt", "continue", "declare",
        "dirs",    "disown", "echo",      "enable",  "eval",      "exec",     "exit",    "export",   "false",
        "fc",      "fg",     "functions", "getopts", "hash",      "help",     "history", "integer",  "jobs",
        "kill",    "let",    "local",     "logout",  "mapfile",   "nameref",  "newgrp",  "popd",     "print",
        "printf",  "pushd",  "pwd",       "read",    "readarray", "readonly", "return",  "set",      "shift",
        "shopt",   "sleep",  "source",    "suspend", "test",      "times",    "trap",    "true",     "type",
        "typeset", "ulimit", "umask",     "unalias", "unset",     "wait",     "whence"};
    for (auto n : names)
        if (n == name) return true;
    for (auto n : session_agent_functions)
        if (n == name) return true;
    return false;
}

/// One request line for the agent (docs/protocol.md): the command `argv` (admitted,
/// not empty) with its own variables `environment` (names already checked by is_env_name),
/// run in `cwd` (absolute, or empty for the session's directory) with `input_size` bytes of
/// input following the line. The line is shell code the agent evaluates: R, X and F are its
/// functions, `i` its variable (the command's input), 4, 6, 7 and 8 its descriptors
/// (detail/scripts/session_agent.sh). `ulimits` (from command_ulimits(), or empty) lowers this
/// command's limits: the command then runs in a subshell that sets them and execs it.
template <class Environment>
[[nodiscard]] std::string session_request(std::string_view nonce, std::string_view cwd, std::size_t input_size,
                                          const Environment& environment, const std::vector<std::string>& argv,
                                          std::string_view ulimits = {}) {
    std::string assignments;
    for (const auto& [name, value] : environment) {
        assignments += name;
        assignments += '=';
        append_request_word(assignments, value);
        assignments += ' ';
    }
    // The command word is always quoted, so it is never a reserved word or an assignment (a word
    // shell_quote leaves plain has only safe bytes, which need nothing inside quotes either).
    std::string command_word;
    append_request_word(command_word, argv.front());
    if (command_word.front() != '\'') command_word = "'" + command_word + "'";

    std::string line = "\nR ";  // the newline first: a reader killed mid-read may take one byte
    line += nonce;
    line += ' ';
    line += std::to_string(input_size);
    line += ' ';
    append_request_word(line, cwd);
    // R checks that the command can be executed, unless its own PATH decides where a bare
    // name is found: then the check runs with the command's variables.
    const bool bare = argv.front().find('/') == std::string::npos;
    const bool own_path = bare && environment.find("PATH") != environment.end();
    line += ' ';
    line += own_path ? std::string("''") : command_word;
    line += " && ";
    if (own_path) line += "{ " + assignments + "command -v " + command_word + " >/dev/null || X; } && ";
    const bool by_exec = (bare && shell_may_run_itself(argv.front())) || !ulimits.empty();
    if (by_exec) {
        line += "( ";
        line += ulimits;
        if (!assignments.empty()) line += "export " + assignments + "&& ";
        line += "exec ";
    } else {
        line += assignments;
    }
    line += command_word;
    for (std::size_t k = 1; k < argv.size(); ++k) {
        line += ' ';
        append_request_word(line, argv[k]);
    }
    if (by_exec) line += " )";
    line += " <\"$i\" 2>&8 4<&- 6<&- 7<&- 8>&-; F \"$?\"\n";
    return line;
}

/// The `ulimit` commands (each followed by "&& ") that lower one command's limits in a session
/// from `session`'s to `command`'s; empty when nothing is lower. POSIX shells count -v in KiB
/// and -f in 512-byte blocks (rounded down here), -t in seconds, -n in descriptors; the CPU
/// limit keeps its hard limit a second past the soft one, as for a fresh run.
[[nodiscard]] inline std::string command_ulimits(const ResourceLimits& session, const ResourceLimits& command) {
    std::string out;
    auto add = [&](const char* flags, std::uint64_t value) {
        out += "ulimit ";
        out += flags;
        out += ' ';
        out += std::to_string(value);
        out += " && ";
    };
    if (command.cpu_seconds < session.cpu_seconds) {
        add("-S -t", command.cpu_seconds);  // the soft limit first: a hard one below it is refused
        add("-H -t", command.cpu_seconds + 1);
    }
    if (command.memory_bytes < session.memory_bytes) add("-v", std::max<std::uint64_t>(command.memory_bytes / 1024, 1));
    if (command.file_size_bytes < session.file_size_bytes)
        add("-f", std::max<std::uint64_t>(command.file_size_bytes / 512, 1));
    if (command.open_files < session.open_files) add("-n", command.open_files);
    return out;
}

}  // namespace shannot::detail
