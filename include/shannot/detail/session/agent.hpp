// SPDX-License-Identifier: MIT
// The POSIX-sh agent that is PID 1 of a warm session's sandbox and runs its commands one by one.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <shannot/detail/shell_quote.hpp>

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
/// execute-only copy of the shell.
[[nodiscard]] inline std::vector<std::string> session_mount_args() {
    return {"--as-pid-1",
            "--perms", "0700", "--tmpfs", std::string(session_agent_dir),
            "--proc", std::string(session_agent_dir) + "/proc",
            "--perms", "0111", "--ro-bind-data", std::to_string(session_shell_fd), std::string(session_agent_shell)};
}

/// Run as `/dev/.shannot/sh -c AGENT shannot HELLO`.
///
/// Two shell processes, so that a command costs the agent no fork of its own: the command is a
/// plain foreground simple command of PID 1, which dash starts with vfork.
///  - PID 1, the *runner*, runs one request line at a time, read from a private pipe (fd 4;
///    dash makes it a here-document, the /proc/self/fd/4 link reopens it for writing). dash
///    sources that pipe with `.`, which reads it in blocks and runs each line as it arrives; a
///    shell that may read a sourced file to its end first (bash, ksh, zsh, yash: any that sets
///    its version variable or RANDOM) reads it a line at a time, a system call per byte. It runs
///    the command in the foreground (so SIGINT and SIGQUIT stay at their defaults), sweeps what
///    the command left behind, and writes the frames. Its stderr is /dev/null (the shell would
///    report "Terminated" for a killed command); the real one is fd 8, handed to each command
///    as fd 2.
///  - Its child, the *reader*, reads the host's lines on the agent's stdin: it stages a
///    request's input in the agent's tmpfs and passes the line to the runner, and it answers
///    `K TERM` / `K KILL` at once with `kill -1`, which signals every process but PID 1 and the
///    reader. The runner holds /proc/<reader> open (fd 6): `/proc/self/fd/6/stat` exists while
///    that very process lives, even if its pid is reused, so the sweep can spare the reader
///    without ever sparing a command that took its pid.
///  - The agent reads the sandbox's processes in a procfs of its own, /dev/.shannot/proc: a
///    profile may bind the host's /proc over /proc (the diagnostics profile does, for `ps`),
///    where the sandbox's pids mean nothing.
///
/// Protocol (stdin: requests from the host; stdout and stderr: the commands' output and frames):
///  - At start it prints "\n<HELLO> ready <I>\n" on stdout and on stderr; I is "input" when
///    `head` and `cat` exist in the sandbox (needed to stage a command's input), else "noinput".
///  - A request is one line of shell code, built by session_request(): `R NONCE INLEN CWD
///    ARGV0 && COMMAND...; F "$?"`, followed by INLEN bytes of input. The reader stages the
///    input in $d/in (or turns the line into `N NONCE` when that fails: a "noinput" frame). R
///    changes to CWD (when not empty; else a "nocwd" frame), unsets OLDPWD, picks the input and
///    tests that ARGV0 can be executed (else X writes a "noexec" frame; when the command has a
///    PATH of its own, ARGV0 is empty and the line tests it with that PATH, `{ PATH=...
///    command -v ARGV0 || X; } &&`). COMMAND is `NAME=VALUE... 'ARGV0' ARGS... <"$i" ...`, whose
///    assignments are the command's own. F goes back to the session's directory, kills and
///    reaps everything the command left behind, and writes "\n<NONCE> eof\n" on stdout and
///    "\n<NONCE> exit <RC>\n" on stderr (RC as the shell reports it: 128+N for a signal).
///  - Only lines starting with "R " or "N " reach the runner: a late `K` line is ignored.
///  - EOF on stdin (the host or the connection is gone): the reader kills every command, tells
///    the runner to `exit` and exits, which ends the sandbox.
///  - A command that kills the reader (same uid) leaves its own K requests unanswered. F starts
///    another reader when it finds the first gone (after killing everything); a reader that dies
///    later (a SIGKILL not yet acted on, a zombie not yet reaped) ends the runner's pipe without
///    an `exit`, and the runner starts another then. A reader killed while blocked in `read`
///    may still take one byte that arrives before it dies: the host starts every line with a
///    newline, an empty line that no reader acts on, so that byte is never a request's.
/// NONCE is random per command and exists only in the memory and pipes of the two agent
/// processes, which commands cannot read (both are non-dumpable, see above): they cannot forge
/// the end of their own output or their status.
inline constexpr std::string_view session_agent_script = R"sh(h=$1
nl='
'
exec 7<&0 8>&2 2>/dev/null 0</dev/null 3<&- 4<&- 5<&- 6<&-
d=/dev/.shannot
P=$d/proc
o=$PWD
I=noinput
command -v head >/dev/null && command -v cat >/dev/null && I=input
exec 4<<E
-
E
if [ -p "$P/self/fd/4" ] && read -r x <&4; then :
elif exec 4<&- && mkfifo -m 600 "$d/p" && exec 3<>"$d/p" 4<"$d/p" 3<&- && rm -f "$d/p"; then :
else
  printf 'shannot session agent: the shell makes no here-document pipe, and mkfifo or rm is missing\n' >&8
  exit 1
fi
S() {
  exec 5>"$P/self/fd/4"
  {
    exec 4<&- 6<&-
    while IFS= read -r x; do
      case $x in
        "R "*)
          l=${x#R * }
          l=${l%% *}
          if [ "$l" -gt 0 ]; then
            [ "$I" = input ] || { printf 'exit\n' >&5; exit 1; }
            head -c "$l" | { cat >"$d/in" || { cat >/dev/null; exit 1; }; } || { x=${x#R }; x="N ${x%% *}"; }
          fi
          printf '%s\n' "$x" >&5 ;;
        "K TERM") kill -s TERM -- -1 ;;
        "K KILL") kill -s KILL -- -1 ;;
      esac
    done
    kill -s KILL -- -1
    printf 'exit\n' >&5
  } <&7 >/dev/null 8>&- &
  w=$!
  exec 5>&- 6<"$P/$w"
}
R() {
  n=$1 c=$3 g=0
  i=/dev/null
  [ "$2" -gt 0 ] && i=$d/in
  if [ -n "$c" ]; then
    cd "$c" || { printf '\n%s nocwd\n' "$n" >&8; return 1; }
  fi
  unset OLDPWD
  case $4 in
    '') ;;
    */*) [ -f "$4" ] && [ -x "$4" ] ;;
    *) command -v "$4" >/dev/null ;;
  esac || X
}
X() {
  printf '\n%s noexec\n' "$n" >&8
  return 1
}
F() {
  r=$1
  if [ -n "$c" ]; then
    cd "$o"
    unset OLDPWD
  fi
  set -- "$P"/[0-9]*
  if [ "$#" -ne 2 ] || [ "$2" != "$P/$w" ] || ! [ -e "$P/self/fd/6/stat" ]; then
    [ -e "$P/self/fd/6/stat" ] || { kill -s KILL -- -1; w=; }
    k=0
    while [ "$k" -lt 500 ]; do
      set -- "$P"/[0-9]*
      x=
      for p; do
        case $p in "$P/1"|"$P/$w") ;; *) x="$x ${p#"$P"/}" ;; esac
      done
      [ -z "$x" ] && break
      kill -s KILL $x
      sleep 0.01 || :
      k=$((k + 1))
    done
    [ -n "$w" ] || S
  fi
  [ "$i" = /dev/null ] || : >"$i"
  printf '\n%s eof\n' "$n"
  printf '\n%s exit %s\n' "$n" "$r" >&8
}
N() {
  printf '\n%s noinput\n' "$1" >&8
  printf '\n%s eof\n' "$1"
  printf '\n%s exit 1\n' "$1" >&8
}
S
printf '\n%s ready %s\n' "$h" "$I"
printf '\n%s ready %s\n' "$h" "$I" >&8
g=0
while [ "$g" -lt 3 ]; do
  if [ -z "${BASH_VERSION-}${KSH_VERSION-}${ZSH_VERSION-}${YASH_VERSION-}${RANDOM-}" ]; then
    . "$P/self/fd/4"
  else
    while IFS= read -r x <&4; do
      eval "$x"
    done
  fi
  g=$((g + 1))
  S
done
)sh";

/// Whether a POSIX shell may run `name` itself, as a builtin, a function of the agent's or a
/// declaration utility, rather than look it up in PATH: dash's, bash's and ksh's builtins and
/// the agent's own function names. Such a command runs as `( exec NAME ... )`, which costs the
/// agent a fork but runs the program, as `exec` finds only programs.
[[nodiscard]] inline bool shell_may_run_itself(std::string_view name) {
    static constexpr std::string_view names[] = {
        ".", ":", "[", "alias", "autoload", "bg", "bind", "break", "builtin", "caller", "cd", "chdir", "command",
        "compgen", "complete", "compopt", "continue", "declare", "dirs", "disown", "echo", "enable", "eval", "exec",
        "exit", "export", "false", "fc", "fg", "functions", "getopts", "hash", "help", "history", "integer", "jobs",
        "kill", "let", "local", "logout", "mapfile", "nameref", "newgrp", "popd", "print", "printf", "pushd", "pwd",
        "read", "readarray", "readonly", "return", "set", "shift", "shopt", "sleep", "source", "suspend", "test",
        "times", "trap", "true", "type", "typeset", "ulimit", "umask", "unalias", "unset", "wait", "whence",
        "F", "N", "R", "S", "X"};
    for (auto n : names)
        if (n == name) return true;
    return false;
}

/// One request line for the agent (see session_agent_script): the command `argv` (admitted,
/// not empty) with its own variables `environment` (names already checked by is_env_name),
/// run in `cwd` (absolute, or empty for the session's directory) with `input_size` bytes of
/// input following the line.
template <class Environment>
[[nodiscard]] std::string session_request(std::string_view nonce, std::string_view cwd, std::size_t input_size,
                                          const Environment& environment, const std::vector<std::string>& argv) {
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

    std::string line = "\nR ";  // the newline first: see "A command that kills the reader" above
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
    const bool by_exec = bare && shell_may_run_itself(argv.front());
    if (by_exec) {
        line += "( ";
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

}  // namespace shannot::detail
