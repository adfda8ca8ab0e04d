// SPDX-License-Identifier: MIT
// The POSIX-sh dispatcher that one long-lived ssh session runs on the remote host.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <shannot/detail/shell_quote.hpp>

namespace shannot::detail {

/// Run once per ssh session as `sh -c DISPATCHER shannot HELLO`; it then starts one sandbox per
/// request, so a command costs a bwrap start, not an ssh session and a login shell (sshd runs the
/// user's login shell, and its rc files, for every session). Needs sh, bwrap, head, tee, wc,
/// sleep, mkdir, mv and rm on the remote. The pid and pending-signal files are replaced by
/// rename, never rewritten in place, so a concurrent reader never sees them empty mid-write.
///
/// Protocol. The dispatcher prints "\n<HELLO> ready\n" on stdout and on stderr: what came before
/// (a login banner, rc-file noise) is discarded by the local side. Then it reads requests from
/// stdin, one line each (newlines inside words are written as '"$nl"', so a request never spans
/// lines), and evaluates them:
///   R NONCE TIMEOUT SECCOMP INLEN BWRAP ARGS...   start BWRAP ARGS; INLEN bytes of stdin for the
///       command follow the line and are staged in a private 0700 folder first; SECCOMP (a remote
///       path, or '') is opened at fd 3; TIMEOUT (s, 0 = none) is a remote backstop behind the
///       local deadline. Its stdout and stderr go straight to the session's, and when bwrap has
///       exited the dispatcher writes "\n<NONCE> eof\n" on stdout and "\n<NONCE> exit RC SETUP\n"
///       on stderr (SETUP is 1 when bwrap's --json-status-fd reported "exit-code", i.e. RC is the
///       command's). Instead of exit: "nobwrap" (BWRAP not found), "noseccomp", or "nostage"
///       (the input could not be stored: $TMPDIR full); the input is read in full either way,
///       so the session stays usable. Only an input cut short (stdin EOF) ends the dispatcher.
///   S SECCOMP SHELL BWRAP ARGS...   hand this ssh session to one long-lived sandbox (a warm
///       session, shannot/session.hpp): run BWRAP ARGS in the foreground with the session's
///       stdin, stdout and stderr, SECCOMP (or '') at fd 3 and SHELL at fd 5 (bwrap copies it
///       into the sandbox for the session agent); when it ends, so does the dispatcher. Exit
///       status 96: BWRAP not found, 95: SECCOMP unreadable, 94: SHELL unreadable.
///   Z HELLO   kill the dispatcher of another session (HELLO: its marker) that runs a session's
///       sandbox, after checking its pid and start time (which S recorded in its folder): bwrap
///       dies with its parent (--die-with-parent), and the sandbox with bwrap. The local side
///       sends it when a session's own channel cannot stop the sandbox any more.
///   K SIGNAL   signal the running bwrap (TERM, KILL; one that comes before bwrap has started
///       is kept and applied as it starts): its death takes the sandbox with it
///       (--die-with-parent); the frames still follow, so the session stays usable. bwrap is
///       stopped first and its children (a sandbox still being set up, which may not yet die with
///       its parent) are killed, then it is signalled and continued. The frames follow only once
///       the sandbox's PID 1 (bwrap's "child-pid") is gone too (killed if it outlived bwrap,
///       bounded at ~3 s), so when a killed run returns, nothing of it is left on the remote.
/// Commands start with SIGPIPE at its default (the dispatcher itself ignores it). A fresh run's
/// bwrap is a background job, which POSIX sh starts with SIGINT and SIGQUIT ignored; where
/// `env --default-signal` exists (coreutils 8.31+) bwrap starts through it, so commands get
/// them at their defaults; elsewhere they start ignored.
/// NONCE is random per command and never enters the sandbox (not in bwrap's argv, not in a file
/// it can see), so a command cannot forge the end of its output or its exit status.
/// On EOF of stdin (the local side is gone) the running command is killed and the folder removed.
inline constexpr std::string_view ssh_dispatcher_script = R"sh(h=$1
nl='
'
umask 077
d=${TMPDIR:-/tmp}/shannot.$h
mkdir "$d" || exit 97
trap 'rm -rf "$d"' EXIT
trap '' PIPE
exec 5>&1 6>&2
E=
env --default-signal=INT,QUIT true </dev/null >/dev/null 2>&1 && E='env --default-signal=INT,QUIT'

K() {
  p= g=$1  # stderr is the session's: redirect it before a read that may fail to open
  read -r p 2>/dev/null <"$d/pid"
  if [ -z "$p" ]; then
    printf '%s\n' "$g" >"$d/sig.t" && mv -f "$d/sig.t" "$d/sig"
    read -r p 2>/dev/null <"$d/pid"
    [ -n "$p" ] || return 0
  fi
  kill -s STOP "$p" 2>/dev/null || return 0
  j=0
  while [ "$j" -lt 100 ] && read -r z 2>/dev/null <"/proc/$p/stat"; do
    case ${z##*) } in [TtZ]*) break ;; esac
    sleep 0.01 2>/dev/null || sleep 1
    j=$((j+1))
  done
  for e in /proc/[0-9]*/stat; do
    read -r z 2>/dev/null <"$e" || continue
    set -- ${z##*) }
    [ "$2" = "$p" ] || continue
    e=${e#/proc/}
    kill -s KILL "${e%/stat}" 2>/dev/null
  done
  kill -s "$g" "$p" 2>/dev/null
  kill -s CONT "$p" 2>/dev/null
  return 0
}
T() {
  st=
  read -r y <"/proc/$1/stat" 2>/dev/null || return 1
  y=${y##*) }
  set -- $y
  st=${20}
}
Z() {
  p= s=
  read -r p s <"${TMPDIR:-/tmp}/shannot.$1/s" 2>/dev/null || return 0
  T "$p" && [ "$st" = "$s" ] && kill -s KILL "$p" 2>/dev/null
  rm -rf "${TMPDIR:-/tmp}/shannot.$1"
  return 0
}
S() {
  f=$1 z=$2 b=$3
  shift 3
  command -v "$b" >/dev/null 2>&1 || exit 96
  if [ -n "$f" ] && ! [ -r "$f" ]; then exit 95; fi
  [ -r "$z" ] || exit 94
  T $$
  printf '%s %s\n' $$ "$st" >"$d/s"
  trap - PIPE
  if [ -n "$f" ]; then
    "$b" "$@" 3<"$f" 5<"$z" 4>/dev/null 6>&-
  else
    "$b" "$@" 5<"$z" 4>/dev/null 6>&-
  fi
  exit
}
R() {
  n=$1 t=$2 f=$3 l=$4 b=$5
  shift 5
  i=/dev/null
  if [ "$l" -gt 0 ]; then
    i=$d/in
    g=$(head -c "$l" | tee "$i" 2>/dev/null | wc -c)
    [ "$g" -eq "$l" ] || exit 0
    if ! [ "$(wc -c <"$i" 2>/dev/null || echo x)" -eq "$l" ] 2>/dev/null; then
      rm -f "$i"
      printf '\n%s eof\n' "$n"
      printf '\n%s nostage\n' "$n" >&2
      return 0
    fi
  fi
  if ! command -v "$b" >/dev/null 2>&1; then
    printf '\n%s eof\n' "$n"
    printf '\n%s nobwrap\n' "$n" >&2
    return 0
  fi
  if [ -n "$f" ] && ! [ -r "$f" ]; then
    printf '\n%s eof\n' "$n"
    printf '\n%s noseccomp\n' "$n" >&2
    return 0
  fi
  : >"$d/pid"
  [ ! -e "$d/sig" ] || rm -f "$d/sig"
  {
    trap - PIPE
    if [ -n "$f" ]; then
      $E "$b" "$@" <"$i" 3<"$f" 4>&1 1>&5 2>&6 5>&- 6>&- &
    else
      $E "$b" "$@" <"$i" 4>&1 1>&5 2>&6 5>&- 6>&- &
    fi
    c=$!
    # In place, no mv: a K that reads it empty records the signal in sig first and then reads
    # it again, and sig is read only after this write, so one of the two sees the other.
    printf '%s\n' "$c" >"$d/pid"
    echo "pid $c"
    if [ -s "$d/sig" ]; then
      read -r g <"$d/sig"
      K "$g"
    fi
    w=
    if [ "$t" -gt 0 ]; then
      ( trap 'kill "$s" 2>/dev/null; exit 0' TERM
        sleep "$t" & s=$!
        wait "$s"
        kill -KILL "$c" 2>/dev/null ) </dev/null >/dev/null 2>&1 5>&- 6>&- &
      w=$!
    fi
    wait "$c"
    echo "rc $?"
    [ -z "$w" ] || kill "$w" 2>/dev/null
  } </dev/null 2>/dev/null | {
    s=0 r=-1 q=
    while IFS= read -r x; do
      case $x in
        "pid "*) ;;
        "rc "*) r=${x#rc } ;;
        *exit-code*) s=1 ;;
        *child-pid*) q=${x#*:} q=${q#"${q%%[0-9]*}"} q=${q%%[!0-9]*} ;;
      esac
    done
    : >"$d/pid"
    k=0
    while [ -n "$q" ] && [ "$k" -lt 300 ] && read -r y <"/proc/$q/stat" 2>/dev/null; do
      case $y in *") Z "*) break ;; esac
      [ "$k" -eq 0 ] && read -r o <"/proc/$q/comm" 2>/dev/null && [ "$o" = bwrap ] && kill -s KILL "$q" 2>/dev/null
      sleep 0.01 2>/dev/null || sleep 1
      k=$((k+1))
    done
    printf '\n%s eof\n' "$n" >&5
    printf '\n%s exit %s %s\n' "$n" "$r" "$s" >&6
  } 2>/dev/null &
}
printf '\n%s ready\n' "$h"
printf '\n%s ready\n' "$h" >&2
while IFS= read -r x; do eval "$x"; done
K KILL
)sh";

}  // namespace shannot::detail
