// SPDX-License-Identifier: MIT
// The POSIX-sh agent that is PID 1 of a warm session's sandbox and runs its commands one by one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace shannot::detail {

/// Where the agent lives inside the sandbox: a private tmpfs (0700) holding an execute-only
/// (0111) copy of the shell. Executing a file one cannot read makes the process non-dumpable, so
/// no command can open /proc/1/fd/0 (the request pipe) or /proc/1/mem to learn a nonce.
inline constexpr std::string_view session_agent_dir = "/dev/.shannot";
inline constexpr std::string_view session_agent_shell = "/dev/.shannot/sh";
/// The descriptor bwrap copies the shell from (`--ro-bind-data 5`).
inline constexpr int session_shell_fd = 5;

/// bwrap arguments a session adds before `--`: the agent is PID 1 (it reaps and kills what its
/// commands leave behind) and runs from the execute-only copy of the shell.
[[nodiscard]] inline std::vector<std::string> session_mount_args() {
    return {"--as-pid-1",
            "--perms", "0700", "--tmpfs", std::string(session_agent_dir),
            "--perms", "0111", "--ro-bind-data", std::to_string(session_shell_fd), std::string(session_agent_shell)};
}

/// Run as `/dev/.shannot/sh -c AGENT shannot HELLO`.
///
/// Protocol (stdin: requests from the host; stdout and stderr: the commands' output and frames).
/// The agent's own stderr is /dev/null (the shell would report "Terminated" for a killed
/// command); it keeps the real one at fd 8 for frames and hands it to each command as fd 2.
///  - At start it prints "\n<HELLO> ready <I>\n" on stdout and on stderr; I is "input" when
///    `head` and `cat` exist in the sandbox (needed to stage a command's input), else "noinput".
///  - `R NONCE CWD INLEN NENV NAME=VALUE... ARGV...` (one line, words quoted for sh, newlines
///    inside words written as '"$nl"'): INLEN bytes of input follow the line and are staged in
///    the agent's tmpfs; then the command runs in a foreground subshell (so SIGINT and SIGQUIT
///    stay at their defaults): cd CWD (when not empty), unset OLDPWD, export the NENV
///    variables, exec ARGV with the staged input on stdin. Meanwhile a background watcher reads
///    the host's `K TERM` / `K KILL` lines and signals every process but PID 1 (`kill -1`).
///    When the command has ended, everything it left behind is killed and reaped, and the
///    agent writes "\n<NONCE> eof\n" on stdout and "\n<NONCE> exit <RC>\n" on stderr (RC as
///    the shell reports it: 128+N for a signal). Before "exit", "\n<NONCE> nocwd\n",
///    "\n<NONCE> noexec\n" or "\n<NONCE> noinput\n" say the command did not start.
///  - Only lines starting with "R " are evaluated: a late `K` line, or the rest of one the
///    killed watcher had half read, is ignored.
///  - EOF on stdin (the host or the connection is gone): the watcher kills the running command,
///    and the agent exits, which ends the sandbox.
/// NONCE is random per command and exists only in the agent's memory (and its subshells'),
/// which commands cannot read: they cannot forge the end of their own output or their status.
inline constexpr std::string_view session_agent_script = R"sh(h=$1
nl='
'
exec 7<&0 8>&2 2>/dev/null 3<&- 4>&- 5<&- 6>&-
d=/dev/.shannot
I=noinput
command -v head >/dev/null && command -v cat >/dev/null && I=input
R() {
  n=$1 c=$2 l=$3 e=$4
  shift 4
  i=/dev/null
  if [ "$l" -gt 0 ]; then
    [ "$I" = input ] || exit 1
    i=$d/in
    if ! head -c "$l" <&7 | { cat >"$i" || { cat >/dev/null; exit 1; }; }; then
      printf '\n%s noinput\n' "$n" >&8
      printf '\n%s eof\n' "$n"
      printf '\n%s exit 1\n' "$n" >&8
      return
    fi
  fi
  { while IFS= read -r k; do
      case $k in
        "K TERM") kill -s TERM -- -1 ;;
        "K KILL") kill -s KILL -- -1 ;;
      esac
    done
    kill -s KILL -- -1
  } <&7 >/dev/null 8>&- &
  w=$!
  (
    if [ -n "$c" ]; then
      cd "$c" || { printf '\n%s nocwd\n' "$n" >&8; exit 1; }
    fi
    unset OLDPWD
    while [ "$e" -gt 0 ]; do
      export "$1"
      shift
      e=$((e - 1))
    done
    case $1 in
      */*) [ -f "$1" ] && [ -x "$1" ] ;;
      *) command -v "$1" >/dev/null ;;
    esac || { printf '\n%s noexec\n' "$n" >&8; exit 1; }
    exec "$@" <"$i" 2>&8 7<&- 8>&-
  )
  r=$?
  kill -s KILL -- -1
  wait "$w"
  k=0
  while [ "$k" -lt 500 ]; do
    set -- /proc/[0-9]*
    [ "$#" -le 1 ] && break
    sleep 0.01 || :
    k=$((k + 1))
  done
  [ "$i" = /dev/null ] || : >"$i"
  printf '\n%s eof\n' "$n"
  printf '\n%s exit %s\n' "$n" "$r" >&8
}
printf '\n%s ready %s\n' "$h" "$I"
printf '\n%s ready %s\n' "$h" "$I" >&8
while IFS= read -r x <&7; do
  case $x in
    "R "*) eval "$x" ;;
  esac
done
)sh";

}  // namespace shannot::detail
