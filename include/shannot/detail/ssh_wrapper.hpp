// SPDX-License-Identifier: MIT
// The POSIX-sh wrapper that runs bwrap on the remote host and reports back in framed lines.
#pragma once

#include <string_view>

namespace shannot::detail {

/// Run as `sh -c WRAPPER shannot MARKER TIMEOUT BWRAP SECCOMP ARGS...` on the remote. Needs only
/// a POSIX sh and bwrap there. It reports on stderr in lines "\n<MARKER> <what>\n", which the
/// local side strips; MARKER is random per run and never enters the sandbox, so the command
/// cannot forge a report:
///   nobwrap              BWRAP is not on the remote PATH
///   noseccomp            the seccomp file cannot be opened
///   hb                   heartbeat, once a second: when the ssh channel is gone the write
///                        fails and the sandbox is killed (without a pty, sshd would not stop it)
///   exit RC SETUP        bwrap's status; SETUP is 1 when bwrap reported "exit-code", i.e. the
///                        sandbox was set up and RC is the command's
/// TIMEOUT (seconds, 0 = none) is a backstop: the remote kills the sandbox itself when the
/// local side could not. bwrap's --json-status-fd 4 is captured by the command substitution,
/// its stdout goes to fd 5 (the channel), and stdin is passed explicitly because an
/// asynchronous list's stdin would otherwise be /dev/null. The watcher's `sleep` must not hold
/// the channel's stderr, or ssh would wait up to a second for its EOF after every command.
inline constexpr std::string_view ssh_wrapper_script = R"(m=$1 t=$2 b=$3 f=$4
shift 4
trap '' PIPE
command -v "$b" >/dev/null 2>&1 || { printf '\n%s nobwrap\n' "$m" >&2; exit 0; }
if [ -n "$f" ]; then exec 3<"$f" || { printf '\n%s noseccomp\n' "$m" >&2; exit 0; }; fi
exec 5>&1 6<&0
st=$("$b" "$@" 0<&6 4>&1 1>&5 5>&- 6<&- &
p=$!
( i=0
  while printf '\n%s hb\n' "$m" >&2; do
    if [ "$t" -gt 0 ] && [ "$i" -ge "$t" ]; then break; fi
    sleep 1 2>/dev/null
    i=$((i+1))
  done
  kill -TERM "$p" 2>/dev/null
  sleep 1 2>/dev/null
  kill -KILL "$p" 2>/dev/null ) </dev/null >/dev/null 3<&- 4>&- 5>&- 6<&- &
w=$!
wait "$p"
r=$?
kill "$w" 2>/dev/null
exit "$r")
r=$?
case $st in *exit-code*) s=1 ;; *) s=0 ;; esac
printf '\n%s exit %s %s\n' "$m" "$r" "$s" >&2
)";

}  // namespace shannot::detail
