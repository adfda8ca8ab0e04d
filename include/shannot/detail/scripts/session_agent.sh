# SPDX-License-Identifier: MIT
# The session agent: the POSIX-sh program that is PID 1 of a warm session's sandbox and runs its
# commands one by one.
# shellcheck shell=sh
# shellcheck disable=SC2317 # the functions the requests call look unreachable: requests are eval'd
#
# Run as `/dev/.shannot/sh -c AGENT shannot HELLO` by bwrap (--as-pid-1), from an execute-only
# (0111) copy of the shell in a private 0700 tmpfs (detail/session/agent.hpp, session_mount_args):
# executing a file one cannot read makes the process non-dumpable, so no command can open PID 1's
# descriptors (the host's request pipe among them) or /proc/1/mem to learn a nonce. The protocol
# (requests, frames) is docs/protocol.md; this file says how it is carried out. A request is one
# line of shell code that PID 1 evaluates: its verbs R, X and F are the functions below, and it
# names the variables i and nl and the descriptors 4, 6, 7 and 8; renaming any of them changes the
# protocol (session_request).
#
# tools/embed_scripts.py embeds this file into detail/scripts/session_agent_script.hpp (without its
# full-line comments and indentation: the agent travels in bwrap's argv, and to a remote host in an
# S request that the dispatcher reads a system call per byte); regenerate that header after
# editing, and run the lint tests (`meson test -C build --suite scripts`).
#
# Two shell processes, so that a command costs the agent no fork of its own: the command is a
# plain foreground simple command of PID 1, which dash starts with vfork.
#  - PID 1, the *runner*, runs one request line at a time, read from a private pipe (fd 4; dash
#    makes it a here-document, which the /proc/self/fd/4 link reopens for writing). It runs the
#    command in the foreground (so SIGINT and SIGQUIT stay at their defaults), sweeps what the
#    command left behind, and writes the frames. Its stderr is /dev/null (the shell would report
#    "Terminated" for a killed command); the real one is fd 8, handed to each command as fd 2.
#  - Its child, the *reader*, reads the host's lines on the agent's stdin (fd 7): it stages a
#    request's input in the agent's tmpfs and passes the line to the runner, and it answers K TERM
#    and K KILL at once with `kill -1`, which signals every process but PID 1 and the reader. The
#    runner holds /proc/<reader> open (fd 6): /proc/self/fd/6/stat exists while that very process
#    lives, even if its pid is reused, so the sweep can spare the reader without ever sparing a
#    command that took its pid.
#  - The agent counts the sandbox's processes in a procfs of its own, /dev/.shannot/proc: a
#    profile may bind the host's /proc over /proc (the diagnostics profile does, for `ps`), where
#    the sandbox's pids mean nothing.
#
# A command that kills the reader (same uid) leaves its own K requests unanswered. finish_command
# starts another reader when it finds the first gone (after killing everything); a reader that dies
# later (a SIGKILL not yet acted on, a zombie not yet reaped) ends the runner's pipe without an
# `exit`, and the runner starts another then. A reader killed while blocked in `read` may still
# take one byte that arrives before it dies: the host starts every line with a newline, an empty
# line that no reader acts on, so that byte is never a request's.

# ---- The reader

# read_requests: the reader, run in the background with the host's pipe as stdin. Passes "R "
# lines on to the runner (fd 5), after staging their input; answers K TERM and K KILL; on EOF
# (the host or the connection is gone) kills every command and tells the runner to exit, which
# ends the sandbox. Other lines (the empty line before each request, a late K) are ignored.
read_requests() {
  exec 4<&- 6<&-
  while IFS= read -r line; do
    case $line in
      "R "*)
        # R NONCE INLEN ...: INLEN input bytes follow the line. They are staged in the tmpfs,
        # or read and dropped if that fails (the tmpfs is full), and the line becomes a
        # report_noinput.
        length=${line#R * }
        length=${length%% *}
        if [ "$length" -gt 0 ]; then
          [ "$input_mode" = input ] || { printf 'exit\n' >&5; exit 1; }
          head -c "$length" | { cat >"$dir/in" || { cat >/dev/null; exit 1; }; } ||
            { line=${line#R }; line="report_noinput ${line%% *}"; }
        fi
        printf '%s\n' "$line" >&5 ;;
      # K SIGNAL: every process but PID 1 and this one.
      "K TERM") kill -s TERM -- -1 ;;
      "K KILL") kill -s KILL -- -1 ;;
    esac
  done
  kill -s KILL -- -1
  printf 'exit\n' >&5
}

# start_reader: starts a reader, with fd 5 (the write end of the runner's pipe, reopened through
# /proc) for it alone, and keeps its /proc folder open as fd 6.
start_reader() {
  exec 5>"$procfs/self/fd/4"
  read_requests <&7 >/dev/null 8>&- &
  reader=$!
  exec 5>&- 6<"$procfs/$reader"
}

# ---- The runner: the functions a request line calls

# begin_command NONCE INLEN CWD ARGV0: R. Picks the command's input (i: /dev/null, or the input
# the reader staged), changes to CWD (when not empty; else a nocwd frame), unsets the OLDPWD that
# cd sets, and tests that ARGV0 can be executed (else a noexec frame); ARGV0 is empty when the
# command has a PATH of its own, and the request line then tests it with that PATH. Returns 1 on
# failure, and the line then skips the command.
begin_command() {
  nonce=$1 cwd=$3 restarts=0
  i=/dev/null
  [ "$2" -gt 0 ] && i=$dir/in
  if [ -n "$cwd" ]; then
    cd "$cwd" || { printf '\n%s nocwd\n' "$nonce" >&8; return 1; }
  fi
  unset OLDPWD
  case $4 in
    '') ;;
    */*) [ -f "$4" ] && [ -x "$4" ] ;;
    *) command -v "$4" >/dev/null ;;
  esac || report_noexec
}

# report_noexec: X. The command cannot be executed: a noexec frame; returns 1.
report_noexec() {
  printf '\n%s noexec\n' "$nonce" >&8
  return 1
}

# sweep_sandbox: kills and reaps every process but PID 1 and the reader (~5 s at most), and
# starts a new reader when the old one is gone.
sweep_sandbox() {
  [ -e "$procfs/self/fd/6/stat" ] || { kill -s KILL -- -1; reader=; }
  rounds=0
  while [ "$rounds" -lt 500 ]; do
    set -- "$procfs"/[0-9]*
    strays=
    for entry; do
      case $entry in "$procfs/1"|"$procfs/$reader") ;; *) strays="$strays ${entry#"$procfs"/}" ;; esac
    done
    [ -z "$strays" ] && break
    # shellcheck disable=SC2086 # one word per pid
    kill -s KILL $strays
    sleep 0.01 || :
    rounds=$((rounds + 1))
  done
  [ -n "$reader" ] || start_reader
}

# finish_command STATUS: F. Goes back to the session's directory, sweeps what the command left
# behind (when anything but PID 1 and the reader is left, or the reader is gone), empties the
# staged input and writes the frames: "\nNONCE eof\n" on stdout and "\nNONCE exit STATUS\n" on
# stderr (STATUS as the shell reports it: 128+N for a signal).
finish_command() {
  status=$1
  if [ -n "$cwd" ]; then
    # shellcheck disable=SC2164 # a session directory that is gone changes nothing here
    cd "$session_cwd"
    unset OLDPWD
  fi
  set -- "$procfs"/[0-9]*
  if [ "$#" -ne 2 ] || [ "$2" != "$procfs/$reader" ] || ! [ -e "$procfs/self/fd/6/stat" ]; then
    sweep_sandbox
  fi
  [ "$i" = /dev/null ] || : >"$i"
  printf '\n%s eof\n' "$nonce"
  printf '\n%s exit %s\n' "$nonce" "$status" >&8
}

# report_noinput NONCE: the reader could not stage the input of request NONCE (written by the
# reader in place of the request line): a noinput frame, then the end frames with status 1.
report_noinput() {
  printf '\n%s noinput\n' "$1" >&8
  printf '\n%s eof\n' "$1"
  printf '\n%s exit 1\n' "$1" >&8
}

# The verbs of a request line (built by session_request).
R() { begin_command "$@"; }
X() { report_noexec; }
F() { finish_command "$@"; }

# ---- Main

hello=$1
# A newline: request lines write a newline inside a word as '"$nl"'.
# shellcheck disable=SC2034 # used by the request lines
nl='
'
# 7: the host's requests; 8: the real stderr (each command's fd 2); the agent's own stderr is
# /dev/null. Nothing else of bwrap's is left open.
exec 7<&0 8>&2 2>/dev/null 0</dev/null 3<&- 4<&- 5<&- 6<&-
dir=/dev/.shannot
procfs=$dir/proc
session_cwd=$PWD
input_mode=noinput
command -v head >/dev/null && command -v cat >/dev/null && input_mode=input
# The runner's private pipe: a here-document, a pipe in dash and bash 5.1+, whose one line is
# read at once (the pipe then empty, its write end closed), and which start_reader reopens for
# writing through /proc/self/fd/4. Where here-documents are temporary files, a fifo in the agent's
# tmpfs, removed once both ends are open.
exec 4<<E
-
E
# shellcheck disable=SC2034,SC2094 # the line is read to empty the pipe; the fifo is opened both ways on purpose
if [ -p "$procfs/self/fd/4" ] && read -r heredoc_line <&4; then :
elif exec 4<&- && mkfifo -m 600 "$dir/p" && exec 3<>"$dir/p" 4<"$dir/p" 3<&- && rm -f "$dir/p"; then
  :
else
  printf 'shannot session agent: the shell makes no here-document pipe, and mkfifo or rm is missing\n' >&8
  exit 1
fi
start_reader
printf '\n%s ready %s\n' "$hello" "$input_mode"
printf '\n%s ready %s\n' "$hello" "$input_mode" >&8
# Request lines, until the reader writes `exit`. A pipe that ends without it (the reader died)
# gets a new reader, three times in a row at most (begin_command resets the count).
restarts=0
while [ "$restarts" -lt 3 ]; do
  # dash sources the pipe: it reads it in blocks and runs each line as it arrives; a shell that
  # may read a sourced file to its end first (bash, ksh, zsh, yash: any that sets its version
  # variable or RANDOM) reads it a line at a time, a system call per byte.
  # shellcheck disable=SC3028 # RANDOM is what tells those shells apart
  if [ -z "${BASH_VERSION-}${KSH_VERSION-}${ZSH_VERSION-}${YASH_VERSION-}${RANDOM-}" ]; then
    # shellcheck disable=SC1091 # the private pipe
    . "$procfs/self/fd/4"
  else
    while IFS= read -r line <&4; do
      eval "$line"
    done
  fi
  restarts=$((restarts + 1))
  start_reader
done
