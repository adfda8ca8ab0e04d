# SPDX-License-Identifier: MIT
# The ssh dispatcher: the POSIX-sh program one long-lived ssh session runs on the remote host.
# shellcheck shell=sh
# shellcheck disable=SC2317 # the functions the requests call look unreachable: requests are eval'd
#
# Run once per ssh session as `sh -c DISPATCHER shannot HELLO [PATH...]`; it then starts one
# sandbox per request, so that a command costs a bwrap start, not an ssh session and a login shell
# (sshd runs the user's login shell, and its rc files, for every session). The protocol (requests,
# frames, exit statuses) is docs/protocol.md; this file says how it is carried out. It needs sh,
# bwrap, head, tee, wc, sleep, mkdir, mv, rm and rmdir on the remote, and /proc; and ls to report
# on PATHS (list_files), without which bwrap binds those files instead of copying them.
#
# tools/embed_scripts.py embeds this file into detail/scripts/dispatcher_script.hpp (without its
# full-line comments and indentation, which ssh then does not carry); regenerate that header after
# editing, and run the lint tests (`meson test -C build --suite scripts`).
#
# Three processes:
#  - the reader (serve_requests) owns the session's stdin: it reads every request, handles K, Z
#    and S itself and hands each P, B and R line to the runner through a pipe (and X, which
#    ends a limited runner);
#  - the runner (run_requests) runs each R's bwrap; for runs with limits, a limited runner it
#    forks (serve_limited) runs them, one per set of rlimits (see "Limited runners");
#  - the backstop (run_backstop), one for the dispatcher's life, kills a run that outlives its
#    TIMEOUT, in case the local side can no longer send K.
# The reader and the runner are one foreground pipeline, not background jobs, so the bwrap the
# runner starts gets SIGINT and SIGQUIT at their defaults (POSIX sh starts a background job with
# both ignored, and no builtin can reset that), and the reader can still take a K while a command
# runs.
#
# No names a sandbox can open. A profile may bind the folder the dispatcher keeps its files in (a
# read-only bind of /, of /tmp, or of wherever the remote's $TMPDIR is), and a read-only bind stops
# writes to files, not to fifos or sockets. So the dispatcher keeps nothing there that a command
# could write to and the dispatcher would then act on: no fifo (the runner reads its requests and
# bwrap's status from a pipe only the dispatcher's processes hold), only regular files, which such
# a bind keeps read-only. The staged input of a run is emptied when the run ends. A writable bind
# of that folder is another matter: it lets a command rewrite the pid and signal files (see
# SECURITY.md).
#
# Its folder, $dir (${TMPDIR:-/tmp}/shannot.HELLO, 0700), holds:
#   m      "PID START ." naming this dispatcher, so that the next dispatcher of the same user can
#          remove the folder if this one dies without its EXIT trap (remove_stale_folders)
#   pid    the runner's pid while a run is on, else empty (signal_run finds bwrap as its child)
#   sig    a signal a K brought before the run's bwrap started: the run then never starts it
#   k      the signal signal_run sent to the running bwrap, which the runner reports
#   t      "SEQ TIMEOUT ." for the backstop (arm_backstop)
#   in     the input of the run, staged; emptied when the run ends
#   s      "PID START" of the reader that runs an S request's bwrap (read by another
#          dispatcher's Z)
#   x      the exit status of an S request's bwrap, which the dispatcher exits with
#   f      `ls -lnLd PATH...` and the symlinks among PATHS (list_files), which the runner reports
#          once (send_files); fs is there once it has
#   l      the pid of the last limited runner (serve_limited), which the reader waits for on X
#
# Limits (docs/limits.md). A run's rlimits are set by a subshell (a POSIX shell cannot set a
# limit for one command otherwise): a limited runner that serves every run with the same ones
# (see "Limited runners"), or one per run that then execs bwrap; and only memory, CPU time, file
# size, descriptors and core files: RLIMIT_NPROC set before bwrap would count every process of
# the user (it becomes the ceiling of the user namespace bwrap makes), and does not bind root.
# The process count is a pids cgroup's, where the dispatcher may make one (find_pids_cgroup: the
# same rule as detail/local/limits.hpp): the runner moves itself once into a cgroup of its own,
# so the bwrap of every run is born there (moving a process waits for an RCU grace period and
# holds off forks host-wide), and sets its pids.max for each run (the run's limit and what it
# holds); an S request's subshell moves itself into the session's cgroup before it execs bwrap.
# Both are named shannot-ssh-PID-START-r and -s after the dispatcher, and removed by its EXIT trap
# or, when it died without it, by the next dispatcher's backstop (remove_stale_cgroups).
# sig is replaced by rename, so that a concurrent reader never sees it empty mid-write. The files
# every run writes (pid, t, in) are emptied and later appended to, never truncated and rewritten:
# ext4 (and xfs) start writing a file back to disk when it is closed after it was truncated and
# written again (auto_da_alloc), which neither step alone does; a read of t in between sees no "."
# and is ignored, as a torn read is.
#
# Descriptors: 5 and 6 are the session's stdout and stderr (commands write to them directly); in
# the reader 7 is the pipe to the runner and stdout is 5; the runner's stderr is /dev/null (sh
# would report a killed command there), and 9 is the write end of its own stdin while a run is on;
# 8 is the pipe that holds the syscall filter for one run or session (open_filter_pipe), which
# bwrap gets at 6: the runner fills the next run's between runs (prepare_filter); 3 is the
# runner's for a moment after a run (await_sandbox_exit).
# The reader's stderr is the session's, which the next command's stderr follows: a read whose file
# may fail to open has its stderr redirected first (`2>/dev/null <FILE`: redirections apply left
# to right, and sh reports a file it cannot open on the stderr it has then).

# ---- Helpers every process uses

# read_start_time PID: sets start_time to the start time of process PID (field 22 of
# /proc/PID/stat), which with the pid names one process for good; returns 1 when it is gone.
read_start_time() {
  start_time=
  read -r start_stat 2>/dev/null <"/proc/$1/stat" || return 1
  # The fields after the command name, which is in parentheses and may hold anything.
  start_stat=${start_stat##*) }
  # shellcheck disable=SC2086 # split into its fields on purpose
  set -- $start_stat
  start_time=${20}
}

# read_listed_children PID: sets children to the pids of the children of process PID, blank-
# separated ('' when none), from /proc/PID/task/PID/children; returns 1 (children '') when the
# kernel lists none (no CONFIG_PROC_CHILDREN) or PID is gone.
read_listed_children() {
  children=
  [ -r "/proc/$1/task/$1/children" ] || return 1
  read -r children 2>/dev/null <"/proc/$1/task/$1/children"
  return 0
}

# list_children PID: sets children as read_listed_children does, or else from a scan of /proc.
list_children() {
  read_listed_children "$1" && return 0
  children_of=$1
  for child_stat in /proc/[0-9]*/stat; do
    read -r child_fields 2>/dev/null <"$child_stat" || continue
    # shellcheck disable=SC2086 # split into its fields (state, parent, ...) on purpose
    set -- ${child_fields##*) }
    [ "$2" = "$children_of" ] || continue
    child_stat=${child_stat#/proc/}
    children="$children ${child_stat%/stat}"
  done
}

# send_refusal REASON: ends request $nonce without running it: its frames, with REASON (nobwrap,
# noseccomp, noargs, nostage, nolimits, nofilter) on stderr instead of an exit report.
send_refusal() {
  printf '\n%s eof\n' "$nonce"
  printf '\n%s %s\n' "$nonce" "$1" >&6
}

# list_root_symlinks: prints " /bin=/usr/bin /lib=/usr/lib ...": the top-level symlinks to
# folders, resolved (`cd -P`), for the builder's --symlink. Only those whose paths are plain
# ([A-Za-z0-9._/-]), so the ready frame splits on blanks. Run in a subshell (it changes directory).
list_root_symlinks() {
  for link in /*; do
    # shellcheck disable=SC2015 # continue unless both hold
    [ -L "$link" ] && [ -d "$link" ] || continue
    case $link in *[!A-Za-z0-9._/-]*) continue ;; esac
    cd -P "$link" 2>/dev/null || continue
    case $PWD in *[!A-Za-z0-9._/-]*) ;; *) printf ' %s=%s' "$link" "$PWD" ;; esac
  done
}

# open_filter_pipe FILTER: makes fd 8 a pipe that holds the syscall filter FILTER (printf's
# escapes: the C++ side's printf_escape) and nothing else, its writers closed, so that bwrap reads
# exactly the filter from it and then EOF. No file holds the filter: nothing a sandbox could open
# (even one that binds this folder), and nothing that needs room in $TMPDIR. The pipe is a
# here-document's (a pipe in dash and bash 5.1+; a deleted file in older bash, which the reopened
# writer truncates and bwrap reads from its start just the same), reopened for writing through
# /proc/self/fd/8 once its one line is read. Uses fd 9 for a moment; returns 1 when it fails.
open_filter_pipe() {
  command exec 8<<END_OF_FILTER_PIPE || return 1
-
END_OF_FILTER_PIPE
  read -r _ <&8 || return 1
  command exec 9>/proc/self/fd/8 || return 1
  # shellcheck disable=SC2059 # the filter is a printf format on purpose (printf_escape)
  printf "$1" >&9
  exec 9>&-
}

# ---- Limits

# find_pids_cgroup: sets pids_cgroup to the folder this dispatcher may create pids cgroups in,
# and pids_cgroup_version (1 or 2); both empty when there is none. cgroup v2: the nearest of its
# own cgroup and its ancestors whose cgroup.subtree_control lists pids and that it may write to
# (a delegated subtree, or root); else cgroup v1: its own cgroup in the pids hierarchy, when
# writable. Nothing else is ever written: not the parent's files, not another cgroup's.
find_pids_cgroup() {
  pids_cgroup='' pids_cgroup_version='' own_v2='' own_v1='' v1_dir=''
  while IFS=: read -r cgroup_id cgroup_controllers cgroup_path; do
    if [ "$cgroup_id" = 0 ] && [ -z "$cgroup_controllers" ]; then own_v2=$cgroup_path; fi
    case ",$cgroup_controllers," in *,pids,*) own_v1=$cgroup_path ;; esac
  done 2>/dev/null </proc/self/cgroup
  # mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [TAGS...] - FSTYPE SOURCE SUPEROPTIONS
  while read -r _ _ _ mount_root mount_point mount_rest; do
    case $mount_point in *\\*) continue ;; esac
    mount_type=${mount_rest#* - }
    mount_options=${mount_type##* }
    mount_type=${mount_type%% *}
    case $mount_type in
      cgroup2) cgroup_path=$own_v2 ;;
      cgroup) case ",$mount_options," in *,pids,*) cgroup_path=$own_v1 ;; *) continue ;; esac ;;
      *) continue ;;
    esac
    case $cgroup_path in /*) ;; *) continue ;; esac
    # The cgroup as seen at this mount, whose root may be a subtree of the hierarchy.
    if [ "$mount_root" = / ]; then
      cgroup_dir=$mount_point${cgroup_path%/}
    elif [ "$cgroup_path" = "$mount_root" ]; then
      cgroup_dir=$mount_point
    else
      case $cgroup_path in "$mount_root"/*) cgroup_dir=$mount_point${cgroup_path#"$mount_root"} ;; *) continue ;; esac
    fi
    if [ "$mount_type" = cgroup ]; then
      if [ -w "$cgroup_dir" ]; then v1_dir=$cgroup_dir; fi
      continue
    fi
    while :; do
      cgroup_control=
      read -r cgroup_control 2>/dev/null <"$cgroup_dir/cgroup.subtree_control"
      case " $cgroup_control " in
        *" pids "*)
          if [ -w "$cgroup_dir" ] && [ -w "$cgroup_dir/cgroup.procs" ]; then
            pids_cgroup=$cgroup_dir pids_cgroup_version=2
            return 0
          fi ;;
      esac
      if [ "$cgroup_dir" = "$mount_point" ] || [ -z "$cgroup_dir" ]; then break; fi
      cgroup_dir=${cgroup_dir%/*}
    done
  done 2>/dev/null </proc/self/mountinfo
  if [ -n "$v1_dir" ]; then pids_cgroup=$v1_dir pids_cgroup_version=1; fi
}

# limit_self MEMORY_KIB CPU_SECONDS FILE_BLOCKS OPEN_FILES: sets the rlimits of this shell (a
# subshell that then execs bwrap, which the sandbox inherits them from). ulimit counts -v in KiB
# and -f in 512-byte blocks; the CPU limit's hard one is a second past the soft one, so that a
# command gets SIGXCPU first. A limit above the user's own hard one stays the user's (only root
# may raise one); errors go nowhere (stderr is the command's).
# shellcheck disable=SC3045 # POSIX specifies only -f; dash, bash, ksh, zsh, yash and busybox have all of these
limit_self() {
  ulimit -c 0 2>/dev/null
  ulimit -v "$1" 2>/dev/null
  ulimit -S -t "$2" 2>/dev/null
  ulimit -H -t "$(($2 + 1))" 2>/dev/null
  ulimit -f "$3" 2>/dev/null
  ulimit -n "$4" 2>/dev/null
  return 0
}

# read_pids_events CGROUP: sets pids_events to how many forks CGROUP's pids.max has refused.
read_pids_events() {
  pids_events=0
  while read -r event_name event_count; do
    if [ "$event_name" = max ]; then pids_events=$event_count; fi
  done 2>/dev/null <"$1/pids.events"
}

# join_cgroup CGROUP: moves this shell's own process into CGROUP. "0" names the writer. Under
# cgroup v1 it goes through `tasks` (one thread: a shell has one), the one move the kernel makes
# without cgroup_threadgroup_rwsem and the RCU grace period it waits for (7-19 ms a move here;
# docs/limits.md); under v2 through cgroup.procs, which takes it either way.
join_cgroup() {
  if [ "$pids_cgroup_version" = 1 ]; then
    printf '0\n' 2>/dev/null >"$1/tasks"
  else
    printf '0\n' 2>/dev/null >"$1/cgroup.procs"
  fi
}

# remove_stale_cgroups: removes the pids cgroups of dispatchers that died without their EXIT
# trap (shannot-ssh-PID-START-*, whose PID and start time no longer name a process). rmdir never
# removes a cgroup that holds a process.
remove_stale_cgroups() {
  [ -n "$pids_cgroup" ] || return 0
  for stale_cgroup in "$pids_cgroup"/shannot-ssh-*; do
    [ -d "$stale_cgroup" ] || continue
    stale_name=${stale_cgroup##*/shannot-ssh-}
    stale_pid=${stale_name%%-*}
    stale_start=${stale_name#*-}
    stale_start=${stale_start%%-*}
    if read_start_time "$stale_pid" && [ "$start_time" = "$stale_start" ]; then continue; fi
    rmdir "$stale_cgroup" 2>/dev/null
  done
}

# ---- K: signal the running bwrap (the reader, and the backstop)

# signal_run SIGNAL [backstop]: signals the running bwrap with SIGNAL (TERM or KILL); its death
# takes the sandbox with it (--die-with-parent). A signal that comes before bwrap has started is
# kept in $dir/sig, and the runner then never starts it; with a second word (the backstop), a
# signal that finds no run is dropped instead.
#
# The handshake with the runner: the runner writes its own pid to the pid file, then checks for a
# kept signal, and only then starts bwrap, as a simple command (vfork, no fork of the shell). So
# this reads either an empty pid file (and keeps the signal, then reads again, in case the runner
# wrote it meanwhile) or the runner's pid; it then waits for the runner's child to be bwrap (or for
# the pid file to change: the run is over), and signals that child.
signal_run() {
  runner='' signal_name=$1
  # stderr is the session's: redirected before a read whose file may fail to open (see the top).
  read -r runner 2>/dev/null <"$dir/pid"
  if [ -z "$runner" ]; then
    [ -z "$2" ] || return 0
    printf '%s\n' "$signal_name" >"$dir/sig.t" && mv -f "$dir/sig.t" "$dir/sig"
    read -r runner 2>/dev/null <"$dir/pid"
    [ -n "$runner" ] || return 0
  fi
  # A run is on and $runner is the runner: bwrap is its one child. Wait for it while the run
  # lasts (3 s at most). Until it has exec'd bwrap, the child is the runner's vfork child and
  # bears the runner's name: wait then too. sh -c catches SIGINT, and the child would run the
  # shell's handler (the signal then lost, and the runner's state touched) rather than die of it.
  signal_waits=0 runner_comm=
  read -r runner_comm 2>/dev/null <"/proc/$runner/comm"
  while :; do
    list_children "$runner"
    # shellcheck disable=SC2086 # one word per pid
    set -- $children
    if [ -n "$1" ]; then
      child_comm=
      read -r child_comm 2>/dev/null <"/proc/$1/comm"
      [ "$child_comm" = "$runner_comm" ] || break
    fi
    read -r runner_now 2>/dev/null <"$dir/pid"
    [ "$runner_now" = "$runner" ] && [ "$signal_waits" -lt 300 ] || return 0
    sleep 0.01 2>/dev/null || sleep 1
    signal_waits=$((signal_waits+1))
  done
  interrupt_bwrap "$1" "$signal_name"
}

# interrupt_bwrap PID SIGNAL: ends bwrap PID for signal_run. bwrap is stopped first and its
# children (a sandbox still being set up, which may not die with its parent yet) are killed; then
# it is signalled with INT and continued. INT, not SIGNAL: sh reports a foreground command killed
# by TERM or KILL on its stderr (here the command's), but not one killed by INT; the runner
# reports SIGNAL, which it reads from $dir/k, as the signal.
interrupt_bwrap() {
  printf '%s\n' "$2" >"$dir/k"
  kill -s STOP "$1" 2>/dev/null || return 0
  signal_waits=0
  while [ "$signal_waits" -lt 100 ] && read -r bwrap_stat 2>/dev/null <"/proc/$1/stat"; do
    case ${bwrap_stat##*) } in [TtZ]*) break ;; esac
    sleep 0.01 2>/dev/null || sleep 1
    signal_waits=$((signal_waits+1))
  done
  list_children "$1"
  for child in $children; do kill -s KILL "$child" 2>/dev/null; done
  kill -s INT "$1" 2>/dev/null
  kill -s CONT "$1" 2>/dev/null
  return 0
}

# ---- The backstop

# remove_stale_folders: removes the folders of this user's dispatchers that died without their
# EXIT trap (killed outright, their sshd gone): each names its dispatcher in m (pid, start time,
# "."); a folder whose dispatcher is gone is removed. Only this user's folders, not links, and
# never on a torn read (no ".").
remove_stale_folders() {
  for stale_marker in "${TMPDIR:-/tmp}"/shannot.*/m; do
    stale_dir=${stale_marker%/m}
    # shellcheck disable=SC2015 # continue unless all hold
    [ "$stale_dir" != "$dir" ] && [ -f "$stale_marker" ] && [ -O "$stale_dir" ] && ! [ -L "$stale_dir" ] || continue
    stale_pid='' stale_start='' stale_end=''
    read -r stale_pid stale_start stale_end <"$stale_marker" || continue
    [ "$stale_end" = . ] || continue
    read_start_time "$stale_pid" && [ "$start_time" = "$stale_start" ] && continue
    rm -rf "$stale_dir"
  done
}

# run_backstop: the backstop behind the local deadline: one process for the dispatcher's life,
# counting seconds, not a timer process per command. The runner writes "SEQ TIMEOUT ." to $dir/t
# as a timed run starts and "SEQ 0 ." as it ends, SEQ new each time; TIMEOUT s after this saw a new
# SEQ (up to 1 s after the write) it kills the run's bwrap. A torn read (no ".") changes nothing.
# It ends within a second of the dispatcher, when the folder is gone or the dispatcher's pid is.
run_backstop() {
  backstop_seq_seen='' backstop_left=0
  while sleep 1 && [ -d "$dir" ] && kill -0 $$; do
    deadline_seq='' deadline_timeout='' deadline_end=''
    read -r deadline_seq deadline_timeout deadline_end <"$dir/t" || continue
    [ "$deadline_end" = . ] || continue
    if [ "$deadline_seq" != "$backstop_seq_seen" ]; then
      backstop_seq_seen=$deadline_seq backstop_left=$deadline_timeout
    elif [ "$backstop_left" -gt 0 ]; then
      backstop_left=$((backstop_left-1))
      [ "$backstop_left" -gt 0 ] || signal_run KILL backstop
    fi
  done
}

# ---- The reader: reads every request on the session's stdin

# hand_to_runner: passes the request line being evaluated on to the runner, through the pipe.
hand_to_runner() {
  printf '%s\n' "$request" >&7
}

# keep_line VERB [SLOT]: P and B, as the reader sees them: hands the line to the runner, and keeps
# it (the last per slot, the last B) for end_limited_runner, which sends those a limited runner
# took to the runner again.
keep_line() {
  case $1$2 in
    P[0-9]) eval "kept_line_$2=\$request" ;;
    B) kept_line_b=$request ;;
  esac
  [ -z "$serving" ] || lines_to_resend=1
  hand_to_runner
}

# route_run LIMITS: before an R is handed to the runner: when a limited runner is serving other
# rlimits than this R needs (limited_rlimits; none: the runner's own), ends it
# (end_limited_runner). serving is what the reader knows a limited runner to serve: one forked
# for an R with rlimits it fits under serves it and the next with the same.
route_run() {
  limited_rlimits "$1"
  if [ -n "$serving" ] && [ "$served" != "$serving" ]; then end_limited_runner; fi
  serving=$served
}

# end_limited_runner: writes X, which ends the limited runner (and is nothing to the runner, if it
# has ended already: retired), waits until it has ended (its pid in $dir/l gone: the runner reaps
# it at once), ~3 s at most, then sends the runner the P and B lines it took meanwhile.
end_limited_runner() {
  limited_pid=''
  read -r limited_pid 2>/dev/null <"$dir/l"
  printf 'X\n' >&7
  limited_checks=0
  while [ -n "$limited_pid" ] && [ -e "/proc/$limited_pid" ] && [ "$limited_checks" -lt 1300 ]; do
    [ "$limited_checks" -lt 1000 ] || sleep 0.01 || sleep 1
    limited_checks=$((limited_checks+1))
  done
  [ -n "$lines_to_resend" ] || return 0
  lines_to_resend=''
  for kept_slot in 0 1 2 3 4 5 6 7 8 9; do
    eval "kept_line=\${kept_line_$kept_slot-}"
    [ -z "$kept_line" ] || printf '%s\n' "$kept_line" >&7
  done
  [ -z "${kept_line_b-}" ] || printf '%s\n' "$kept_line_b" >&7
}

# stage_run NONCE TIMEOUT SECCOMP INLEN ...: R, as the reader sees it. Stages the INLEN input
# bytes that follow the line in $dir/in, then hands the line to the runner. Input that cannot be
# stored ($TMPDIR full) is still read in full, so the session stays usable, and the request ends
# with a nostage frame; only input cut short (stdin EOF) ends the dispatcher.
stage_run() {
  nonce=$1 stage_length=$4
  if [ "$stage_length" -gt 0 ]; then
    # Appended to (the runner empties it after each run, a failed staging removes it): see the
    # note on ext4 at the top.
    staged=$(head -c "$stage_length" | tee -a "$dir/in" 2>/dev/null | wc -c)
    [ "$staged" -eq "$stage_length" ] || exit 0
    if ! [ "$(wc -c 2>/dev/null <"$dir/in" || echo x)" -eq "$stage_length" ] 2>/dev/null; then
      rm -f "$dir/in"
      send_refusal nostage
      return 0
    fi
  fi
  # Before the next request is read, so that a K after this R is kept for this command.
  : >"$dir/pid"
  [ ! -e "$dir/sig" ] || rm -f "$dir/sig"
  route_run "$7"
  hand_to_runner
}

# end_dispatcher STATUS: ends the reader, and so the dispatcher, with STATUS (the pipeline's
# status would be the runner's: the dispatcher reads it from $dir/x).
end_dispatcher() {
  echo "$1" >"$dir/x"
  exit "$1"
}

# start_session SECCOMP SHELL BWRAP LIMITS FILTER COPIES ARGS...: S. Hands this ssh session to one
# long-lived sandbox: runs BWRAP ARGS in the foreground with the session's stdin, stdout and
# stderr, SECCOMP (or '') at fd 3, SHELL at fd 5 (bwrap copies it into the sandbox for the session
# agent), FILTER (as for B, or '' for none) through a pipe at fd 6, and the files bwrap copies
# as COPIES opens them (redirections, as a P's); when it ends, so does the
# dispatcher, with its status. LIMITS ('' or "MEMORY_KIB CPU_SECONDS FILE_BLOCKS OPEN_FILES
# PROCESSES") are set on the sandbox (limit_self), and where a pids cgroup can be made, bwrap
# starts in one of the session's with pids.max PROCESSES. Refusals: 96 (BWRAP not found), 95
# (SECCOMP unreadable), 94 (SHELL unreadable), 93 (LIMITS malformed, or the pids cgroup cannot be
# made), 92 (no pipe for FILTER). Records the reader's pid and start time in $dir/s for a Z.
start_session() {
  session_seccomp=$1 session_shell=$2 session_bwrap=$3 session_limits=$4 session_filter=$5 session_copies=$6
  shift 6
  command -v "$session_bwrap" >/dev/null 2>&1 || end_dispatcher 96
  if [ -n "$session_seccomp" ] && ! [ -r "$session_seccomp" ]; then end_dispatcher 95; fi
  [ -r "$session_shell" ] || end_dispatcher 94
  case $session_limits in *[!0-9\ ]*) end_dispatcher 93 ;; esac
  # shellcheck disable=SC2016 # expanded by the evals below
  session_redirects='5<"$session_shell" 4>/dev/null 6>&- 7>&-'
  # shellcheck disable=SC2016
  [ -z "$session_seccomp" ] || session_redirects="3<\"\$session_seccomp\" $session_redirects"
  if [ -n "$session_filter" ]; then
    open_filter_pipe "$session_filter" || end_dispatcher 92
    session_redirects="$session_redirects 6</proc/self/fd/8 8<&-"
  fi
  # The copies last: they may open fds closed before (7, 8, 9).
  session_redirects="$session_redirects $session_copies"
  session_cgroup=
  if [ -n "$session_limits" ] && [ -n "$pids_cgroup" ]; then
    session_cgroup=$pids_cgroup/$cgroup_name-s
    # shellcheck disable=SC2086 # one word per number
    set -- $session_limits "$@"
    mkdir "$session_cgroup" 2>/dev/null || end_dispatcher 93
    printf '%s\n' "$5" 2>/dev/null >"$session_cgroup/pids.max" || end_dispatcher 93
    shift 5
  fi
  # This process's own pid ($$ is the dispatcher's).
  for reader_pid in /proc/self/task/*; do reader_pid=${reader_pid##*/}; done
  read_start_time "$reader_pid"
  printf '%s %s\n' "$reader_pid" "$start_time" >"$dir/s"
  trap - PIPE
  if [ -z "$session_limits" ]; then
    eval "\"\$session_bwrap\" \"\$@\" $session_redirects"
    end_dispatcher $?
  fi
  # A subshell sets the limits and becomes bwrap; it moves itself into the session's cgroup
  # first. A failed move ends it with 93.
  (
    # shellcheck disable=SC2086 # one word per number
    limit_self $session_limits
    if [ -n "$session_cgroup" ]; then
      join_cgroup "$session_cgroup" || exit 93
    fi
    eval "exec \"\$session_bwrap\" \"\$@\" $session_redirects"
  )
  end_dispatcher $?
}

# kill_session HELLO: Z. Kills the dispatcher of another session (HELLO: its marker) that runs a
# session's sandbox (S), after checking the pid and start time of its reader, bwrap's parent: bwrap
# dies with its parent (--die-with-parent), and the sandbox with bwrap. Removes its folder.
kill_session() {
  session_pid='' session_start=''
  read -r session_pid session_start 2>/dev/null <"${TMPDIR:-/tmp}/shannot.$1/s" || return 0
  read_start_time "$session_pid" && [ "$start_time" = "$session_start" ] && kill -s KILL "$session_pid" 2>/dev/null
  rm -rf "${TMPDIR:-/tmp}/shannot.$1"
  return 0
}

# serve_requests: the reader. stdin is the session's, stdout too (fd 7 is the pipe to the runner).
# Each request is one line of sh-quoted words (a newline inside a word is written '"$nl"'), which
# it evaluates: the first word is the verb. On EOF (the local side is gone) it kills the running
# command; the runner then reads EOF too, and the dispatcher ends and removes its folder.
serve_requests() {
  exec 7>&1 1>&5
  serving='' lines_to_resend=''
  # The verbs, as the reader sees them.
  P() { keep_line P "$1"; }
  B() { keep_line B; }
  R() { stage_run "$@"; }
  K() { signal_run "$@"; }
  S() { start_session "$@"; }
  Z() { kill_session "$@"; }
  while IFS= read -r request; do eval "$request"; done
  signal_run KILL
}

# ---- The runner: runs what the reader hands it

# arm_backstop TIMEOUT: arms the backstop with TIMEOUT s for the run starting (0: disarms it),
# under a new SEQ (this runner's pid, a dash and a count: a limited runner's are its own).
# Emptied, then appended to (see the note on ext4 at the top); a read in between sees no "." and
# changes nothing.
arm_backstop() {
  backstop_seq=$((backstop_seq+1))
  : >"$dir/t"
  printf '%s-%s %s .\n' "$runner_pid" "$backstop_seq" "$1" >>"$dir/t"
}

# keep_args SLOT ARGS: P. Keeps ARGS (bwrap's arguments before "--", one word of sh-quoted text,
# then the redirections that open the files bwrap copies: "5<'/etc/group' 7<...") for the R
# requests that name SLOT (a number): a profile's arguments are ~1.3 KB, and the reader reads its
# requests a system call per byte, so they are sent once per session and list.
keep_args() {
  eval "bwrap_args_$1=\$2"
}

# keep_filter FILTER: B. Keeps FILTER, the built-in syscall filter written for printf
# (printf_escape), in memory for the R requests that ask for it (FILTER 1). Sent once per
# dispatcher and filter: the local side knows which filter each dispatcher holds.
keep_filter() {
  kept_filter=$1
  prepare_filter
}

# prepare_filter: while the runner waits for the next request, fills the pipe (fd 8) the next run
# that asks for the filter reads it from (filter_ready 1), so that the run does not wait for it:
# printf decodes ~4.5 KB of escapes into it, ~85 us of dash. A pipe filled by a runner whose
# limited runner then ran (the pipe is shared, its bytes read once) is filled again when that
# ends (serve_limited).
prepare_filter() {
  exec 8<&-
  filter_ready=''
  if [ -n "$kept_filter" ] && open_filter_pipe "$kept_filter"; then filter_ready=1; fi
}

# resolve_bwrap NAME: sets run_bwrap to the executable NAME names: NAME itself when it holds a
# slash, else the first regular executable NAME on PATH; empty when there is none. Looked up
# once per runner and name: given a bare name, dash would search PATH at every exec, an execve
# per entry before the one that works (0.1-0.2 ms a run on a login PATH of ten entries).
resolve_bwrap() {
  if [ "$1" = "$resolved_name" ]; then
    run_bwrap=$resolved_bwrap
    return 0
  fi
  run_bwrap=
  case $1 in
    */*) [ -f "$1" ] && [ -x "$1" ] && run_bwrap=$1 ;;
    *)
      old_ifs=$IFS
      IFS=:
      set -f
      # shellcheck disable=SC2086 # split at the colons, unglobbed
      for path_dir in $PATH; do
        if [ -f "${path_dir:-.}/$1" ] && [ -x "${path_dir:-.}/$1" ]; then
          run_bwrap=${path_dir:-.}/$1
          break
        fi
      done
      set +f
      IFS=$old_ifs ;;
  esac
  # Only a found one is kept: a bwrap installed later is looked for again.
  if [ -n "$run_bwrap" ]; then resolved_name=$1 resolved_bwrap=$run_bwrap; fi
}

# refuse_run REASON: ends the run without starting it (send_refusal), its staged input emptied.
refuse_run() {
  [ "$run_input" = /dev/null ] || : >"$run_input"
  send_refusal "$1"
}

# start_bwrap COMMAND...: starts the run's bwrap with the arguments kept in its slot, then
# COMMAND ("--" and the command), its input on stdin, SECCOMP at fd 3 when given, the syscall
# filter's pipe (fd 8) at fd 6 when the run asked for it, bwrap's --json-status-fd (4) into fd 9,
# and the files it copies at the fds the slot's redirections open (3 when there is no SECCOMP,
# 5, 7, 8, 9: after those closes); its stdout and stderr are the session's (dash reports a copy
# it cannot open there). Without limits, or in a limited runner (serve_limited: the limits are
# this shell's already), one simple command, which dash starts with vfork (no copy of the shell);
# else a subshell that sets them (limit_self) and execs bwrap. Either way with SIGINT, SIGQUIT and
# (this shell reset it) SIGPIPE at their defaults. Returns bwrap's exit status.
start_bwrap() {
  seccomp_redirect=
  # shellcheck disable=SC2016 # expanded by the eval below
  [ -z "$run_seccomp" ] || seccomp_redirect='3<"$run_seccomp"'
  if [ -n "$run_limits" ] && [ -z "$served_limits" ]; then
    eval "( limit_self $run_limits; exec \"\$run_bwrap\" $run_args \"\$@\" ) <\"\$run_input\" $seccomp_redirect 4>&9 2>&6 5>&- 6>&- 9>&- $filter_redirect"
  else
    # The kept arguments last: the copies' redirections in them open fds closed before.
    eval "\"\$run_bwrap\" <\"\$run_input\" $seccomp_redirect 4>&9 2>&6 5>&- 6>&- 9>&- $filter_redirect $run_args \"\$@\""
  fi
}

# enter_run_cgroup PROCESSES: before a run, where a pids cgroup can be made: the runner moves
# itself into a cgroup of its own before its first run with limits (its bwraps are then born
# there), and sets its pids.max to PROCESSES plus what the cgroup holds already (pids.current:
# itself, and the PID 1 of earlier runs until init reaps them: bwrap's monitor exits without
# reaping it, and a lazy init leaves it charged here), or to "max" for a run without limits
# (PROCESSES ''); run_cgroup names it. pids.max is written only when it changes, and run_events
# (the forks the cgroup refused so far) read only when a run without limits may have changed it:
# a run with limits reads it once, after, and that count is the next one's before. Returns 1
# (run_cgroup empty) when there is none.
enter_run_cgroup() {
  [ -n "$pids_cgroup" ] || return 1
  if [ -z "$run_cgroup" ]; then
    [ -n "$1" ] || return 1
    make_run_cgroup || return 1
  fi
  if [ -z "$1" ]; then
    run_max=max run_events=''
  else
    read -r cgroup_held <"$run_cgroup/pids.current" || cgroup_held=1
    case $cgroup_held in '' | *[!0-9]* | 0) cgroup_held=1 ;; esac
    run_max=$(($1 + cgroup_held))
  fi
  if [ "$run_max" != "$written_max" ]; then
    printf '%s\n' "$run_max" >"$run_cgroup/pids.max" || return 1
    written_max=$run_max
  fi
  [ -z "$1" ] && return 0
  if [ -z "$run_events" ]; then
    read_pids_events "$run_cgroup"
    run_events=$pids_events
  fi
}

# make_run_cgroup: makes the runner's pids cgroup and moves this shell into it; run_cgroup names it.
make_run_cgroup() {
  mkdir "$pids_cgroup/$cgroup_name-r" || return 1
  join_cgroup "$pids_cgroup/$cgroup_name-r" || return 1
  run_cgroup=$pids_cgroup/$cgroup_name-r
}

# read_bwrap_status: sets bwrap_status to what bwrap wrote to its --json-status-fd. That went into
# this shell's own stdin, between the start and the end of an assignment to bwrap_status that
# run_request wrote around it: sourcing the pipe runs it (dash reads it in blocks; "return" ends
# it), other shells read it a line at a time (a system call per byte).
read_bwrap_status() {
  bwrap_status=
  if [ -n "$sources_in_blocks" ]; then
    # shellcheck disable=SC1091 # the pipe from the reader
    . /proc/self/fd/0
  else
    while IFS= read -r status_line && [ "$status_line" != "'; return" ]; do
      bwrap_status="$bwrap_status$status_line$nl"
    done
  fi
}

# await_sandbox_exit PID: waits until nothing of the sandbox runs: its PID 1 (bwrap's "child-pid")
# is a zombie (it kills what is left in the sandbox as it exits), or it is exiting with no child
# left; and kills it if it outlived bwrap with children, ~3 s at most. So when a killed run
# returns, nothing of it runs on the remote.
# PID 1 without children, its first look: every process of the sandbox descends from it (orphans
# are given to it), so the command and all it started are gone, and PID 1 only tears down its
# namespaces (or is a zombie already); that teardown waits for a grace period of the kernel's RCU
# (synchronize_rcu_expedited in namespace_unlock), which looks from this shell made longer: they
# keep a CPU busy that the grace period has to interrupt (2026-12-07: PID 1's exit p90 3.1 ms
# under the looks, 1.2 ms unwatched, 0.5 ms under a local run's pidfd wait). Read only where the
# kernel lists children (CONFIG_PROC_CHILDREN). A pid is reused only once its process has been
# reaped, which PID 1 is not before it is a zombie: an empty list is never another process's.
# Otherwise PID 1 is still exiting (killing what was left, in state D or R): a shell cannot wait for
# a process that is not its child, so it is read again at once, up to 400 times (~10 ms of CPU),
# before each further look costs a sleep (an exec, and 10 ms). Looks needed here, 205 runs of ls
# (before the children were read): median 0, p90 78, max 269; with 50 before the sleeps (until
# 2026-12-07) 16% of runs slept, 10 ms or more. It reads /proc/PID/status up to its State line
# (its second or third), not /proc/PID/stat: `read` takes a system call per byte, and the kernel
# formats the whole file again for each (~90 us for stat's one line, ~25 for those).
await_sandbox_exit() {
  [ -n "$1" ] || return 0
  # Not list_children: its scan of /proc is no look to make on every run.
  if read_listed_children "$1" && [ -z "$children" ]; then return 0; fi
  exit_checks=0
  while [ "$exit_checks" -lt 700 ]; do
    # `command`: a file that cannot be opened (the process is gone) must not end this shell, as
    # a failed redirection of exec (a special builtin) or of a compound command may.
    command exec 3<"/proc/$1/status" || break
    sandbox_name='' sandbox_state=''
    while read -r status_key status_value <&3; do
      case $status_key in
        Name:) sandbox_name=$status_value ;;
        State:) sandbox_state=$status_value; break ;;
      esac
    done
    exec 3<&-
    case $sandbox_state in '' | Z*) break ;; esac
    if [ "$exit_checks" -eq 0 ] && [ "$sandbox_name" = bwrap ]; then
      kill -s KILL "$1"
    fi
    [ "$exit_checks" -lt 400 ] || sleep 0.01 || sleep 1
    exit_checks=$((exit_checks+1))
  done
}

# run_request NONCE TIMEOUT SECCOMP INLEN BWRAP SLOT LIMITS FILTER COMMAND...: R, as the runner sees it.
# Starts BWRAP with the arguments kept in SLOT followed by COMMAND, and when it has exited writes
# the frames: "\nNONCE eof\n" on stdout and "\nNONCE exit RC SETUP CGROUP HIT\n" on stderr (SETUP
# is 1 when bwrap's status reported "exit-code": RC is the command's; CGROUP is 1 when the run was
# in a pids cgroup, HIT when that refused a fork). LIMITS ('' or "MEMORY_KIB CPU_SECONDS
# FILE_BLOCKS OPEN_FILES PROCESSES") are set on the sandbox; with FILTER 1, bwrap gets the filter
# of the last B at fd 6 (open_filter_pipe). Instead of exit: nobwrap, noseccomp, noargs (no P for
# SLOT: a bug), nolimits (LIMITS malformed, or in a limited runner other than its own: a bug),
# nofilter (no B before, or no pipe). TIMEOUT (s, 0 = none) arms the backstop.
run_request() {
  nonce=$1 run_timeout=$2 run_seccomp=$3 run_input_length=$4 run_bwrap=$5 run_limits=$7 run_filter=$8
  eval "run_args=\${bwrap_args_$6-}"
  shift 8
  run_input=/dev/null
  [ "$run_input_length" -eq 0 ] || run_input=$dir/in
  resolve_bwrap "$run_bwrap"
  if [ -z "$run_bwrap" ]; then
    refuse_run nobwrap
    return 0
  fi
  if [ -n "$run_seccomp" ] && ! [ -r "$run_seccomp" ]; then
    refuse_run noseccomp
    return 0
  fi
  if [ -z "$run_args" ]; then
    refuse_run noargs
    return 0
  fi
  case $run_limits in *[!0-9\ ]*)
    refuse_run nolimits
    return 0 ;;
  esac
  # shellcheck disable=SC2031 # served_limits is a limited runner's own
  if [ -n "$served_limits" ] && [ "${run_limits% *}" != "$served_limits" ]; then
    # A limited runner runs no R with other limits under its own (the reader ends it before one).
    refuse_run nolimits
    return 0
  fi
  # A run without the filter does not get the pipe prepared for the next one (it stays filled).
  filter_redirect='8<&-'
  if [ "$run_filter" = 1 ]; then
    [ -n "$filter_ready" ] || prepare_filter
    if [ -z "$filter_ready" ]; then
      refuse_run nofilter
      return 0
    fi
    filter_ready='' filter_redirect='6</proc/self/fd/8 8<&-'
  fi
  run_in_cgroup=0 run_hit=0
  if [ -n "$run_limits" ]; then
    # shellcheck disable=SC2086 # one word per number
    set -- $run_limits "$@"
    if enter_run_cgroup "$5"; then run_in_cgroup=1; fi
    shift 5
  elif [ -n "$run_cgroup" ]; then
    # The runner is in its cgroup since a run with limits: lift the process limit of that run.
    enter_run_cgroup ''
  fi
  [ "$run_timeout" -le 0 ] || arm_backstop "$run_timeout"
  # The pid file names this runner while the run is on (signal_run finds bwrap as its child); a
  # signal kept before that is found here, and the command never starts.
  : >"$dir/k"
  printf '%s\n' "$runner_pid" >>"$dir/pid"  # emptied by the reader and after each run: see the top
  # bwrap's --json-status-fd writes into this shell's own stdin (fd 9: a write end of that pipe),
  # between the start and the end of an assignment to bwrap_status, which read_bwrap_status reads
  # back. The reader writes nothing to the pipe while a run is on (the next request comes only
  # after this one's frames), and bwrap never writes a "'".
  exec 9>/proc/self/fd/0
  printf "bwrap_status='" >&9
  if [ -s "$dir/sig" ]; then
    read -r run_signal <"$dir/sig"
  else
    start_bwrap "$@"
    run_status=$?
    run_signal=
    read -r run_signal <"$dir/k"
  fi
  case $run_signal in TERM) run_status=143 ;; KILL) run_status=137 ;; esac
  printf "\n'; return\n" >&9
  exec 9>&-
  read_bwrap_status
  run_setup=0 sandbox_pid=
  case $bwrap_status in *'"exit-code"'*) run_setup=1 ;; esac
  case $bwrap_status in
    *'"child-pid"'*)
      sandbox_pid=${bwrap_status#*'"child-pid"'}
      sandbox_pid=${sandbox_pid#"${sandbox_pid%%[0-9]*}"}
      sandbox_pid=${sandbox_pid%%[!0-9]*} ;;
  esac
  [ -z "$run_signal" ] || run_setup=0
  [ "$run_input" = /dev/null ] || : >"$run_input"
  : >"$dir/pid"
  await_sandbox_exit "$sandbox_pid"
  if [ "$run_in_cgroup" = 1 ]; then
    read_pids_events "$run_cgroup"
    if [ "$pids_events" != "$run_events" ]; then run_hit=1; fi
    run_events=$pids_events
  fi
  if [ -z "$files_sent" ] && [ -f "$dir/f" ]; then send_files; fi
  printf '\n%s eof\n' "$nonce"
  printf '\n%s exit %s %s %s %s\n' "$nonce" "$run_status" "$run_setup" "$run_in_cgroup" "$run_hit" >&6
  # After the frames, as the filter's pipe: the backstop drops a signal that finds no run on (the
  # pid file is empty since before await_sandbox_exit), and this runner reads no request before.
  [ "$run_timeout" -le 0 ] || arm_backstop 0
  [ -n "$filter_ready" ] || prepare_filter
}

# send_files: the files frame, once per dispatcher, when list_files has written $dir/f: "files
# file=MODE:SIZE:PATH ... link=PATH:RESOLVED ..." for each regular file it lists (MODE as ls
# prints it) and each symlink; on stderr, before the exit report of the run that sends it.
send_files() {
  files_sent=1 file_words=''
  : >"$dir/fs"
  command exec 3<"$dir/f" || return 0
  while read -r file_mode _ _ _ file_size _ _ _ file_path <&3 && [ "$file_mode" != links ]; do
    case $file_mode in -*) ;; *) continue ;; esac
    case $file_size in '' | *[!0-9]*) continue ;; esac
    case $file_path in /*) ;; *) continue ;; esac
    case $file_path in *[!A-Za-z0-9._/-]*) continue ;; esac
    file_words="$file_words file=$file_mode:$file_size:$file_path"
  done
  while read -r file_path file_resolved <&3; do
    case $file_path in /*) ;; *) continue ;; esac
    case $file_resolved in /*) ;; *) continue ;; esac
    case $file_path$file_resolved in *[!A-Za-z0-9._/-]*) continue ;; esac
    file_words="$file_words link=$file_path:$file_resolved"
  done
  exec 3<&-
  printf '\n%s files%s\n' "$nonce" "$file_words" >&6
}

# ---- Limited runners
#
# A run's rlimits cost a fork of the runner when it sets them itself (start_bwrap: a POSIX shell
# sets a limit for one command only in a subshell; ~0.4 ms here, a third of what the dispatcher
# adds to a run). So the runner forks once per set of limits instead: a limited runner, a
# subshell that sets them on itself (hard and soft, for good) and then serves the requests that
# follow, starting each bwrap as a simple command (vfork), which inherits them.
# - The reader routes: it knows each R's limits before the runner does. Before an R with other
#   rlimits (or none) it writes X, which ends the limited runner, and waits until it has ended
#   (end_limited_runner), so that the runner itself reads the R (dash reads a sourced pipe in
#   blocks: a limited runner still reading would take lines meant for the runner). P and B lines
#   that reached a limited runner are sent again then, for the runner (which did not see them).
#   A limited runner refuses an R with other rlimits (nolimits): never run with the wrong ones.
# - Its own CPU time counts against the CPU limit: SIGXCPU, at the soft one, only marks it
#   retiring (the hard one is a second later), and it ends after that run; the runner forks a
#   fresh one for the next.
# - Only limits it has room under (limited_runner_fits): below them, a shell that may hit one
#   (memory, file size, descriptors: dash saves descriptors at 10 and above) would die with the
#   session's run, so such runs keep the fork per run. The sandbox's limits are the same.
# - What the runner kept that a limited runner changed is found again: pids.max is rewritten and
#   its events read afresh (written_max, run_events), a sent files frame is marked in $dir/fs, and
#   the backstop's SEQ carries the writer's pid.

# limited_runner_fits MEMORY_KIB CPU_SECONDS FILE_BLOCKS OPEN_FILES PROCESSES: whether a limited
# runner may run under these limits: at least 256 MiB of memory, 1 MiB files and 64 descriptors.
limited_runner_fits() {
  [ "$#" -eq 5 ] && [ "$1" -ge 262144 ] 2>/dev/null && [ "$3" -ge 2048 ] 2>/dev/null &&
    [ "$4" -ge 64 ] 2>/dev/null
}

# limited_rlimits LIMITS: sets served to the rlimits (the first four numbers) a limited runner
# runs an R with these LIMITS under; empty when the runner runs it itself.
limited_rlimits() {
  served=''
  case $1 in '' | *[!0-9\ ]*) return 0 ;; esac
  # shellcheck disable=SC2086 # one word per number
  if limited_runner_fits $1; then served=${1% *}; fi
}

# serve_limited NONCE TIMEOUT SECCOMP INLEN BWRAP SLOT LIMITS ...: R in the runner, with limits a
# limited runner fits under: forks one for them (in the runner's pids cgroup, made first, so that
# its bwraps are born there), which runs this request and the next ones, until X or EOF.
serve_limited() {
  [ -z "$pids_cgroup" ] || [ -n "$run_cgroup" ] || make_run_cgroup
  (
    trap - EXIT
    # shellcheck disable=SC2086 # one word per number
    limit_self ${7% *}
    # shellcheck disable=SC2030 # this subshell's own, on purpose
    served_limits=${7% *} retiring=''
    trap 'retiring=1' XCPU
    for runner_pid in /proc/self/task/*; do runner_pid=${runner_pid##*/}; done
    printf '%s\n' "$runner_pid" >"$dir/l"
    X() { exit 0; }
    take_run "$@"
    source_requests
  )
  written_max='' run_events=''
  [ ! -e "$dir/fs" ] || files_sent=1
  prepare_filter
}

# take_run NONCE TIMEOUT SECCOMP INLEN BWRAP SLOT LIMITS ...: R, as the runner and a limited
# runner see it: runs it, in a limited runner when it has limits one fits under (run_request
# refuses one with other limits in a limited runner).
# shellcheck disable=SC2031 # served_limits and retiring are a limited runner's own
take_run() {
  if [ -n "$served_limits" ]; then
    run_request "$@"
    [ -z "$retiring" ] || exit 0
    return 0
  fi
  limited_rlimits "$7"
  if [ -n "$served" ]; then serve_limited "$@"; else run_request "$@"; fi
}

# ---- The runner

# source_requests: runs the requests on stdin (the pipe from the reader) until its EOF. dash
# reads a sourced file in blocks and runs each line as it arrives, where `read` takes a system
# call per byte; a shell that may read a sourced file to its end first (bash, ksh, zsh, yash: any
# that sets its version variable or RANDOM) reads the pipe a line at a time.
source_requests() {
  if [ -n "$sources_in_blocks" ]; then
    # shellcheck disable=SC1091 # the pipe from the reader
    . /proc/self/fd/0
  else
    while IFS= read -r request; do eval "$request"; done
  fi
}

# run_requests: the runner. Runs the requests the reader writes to its stdin, a pipe that nothing
# else can open (no fifo: see "No names a sandbox can open" at the top).
run_requests() {
  exec 2>/dev/null
  # SIGPIPE at its default for bwrap (which sh cannot reset for one command without a fork). This
  # shell then dies of a write to a session that is gone, where the reader's EOF ends it anyway.
  trap - PIPE
  # This process's own pid ($$ is the dispatcher's).
  for runner_pid in /proc/self/task/*; do runner_pid=${runner_pid##*/}; done
  backstop_seq=0 run_cgroup='' written_max='' run_events='' kept_filter='' resolved_name='' resolved_bwrap=''
  files_sent='' served_limits='' filter_ready=''
  # The verbs, as the runner sees them (X ends a limited runner; nothing here).
  P() { keep_args "$@"; }
  B() { keep_filter "$@"; }
  R() { take_run "$@"; }
  X() { :; }
  # shellcheck disable=SC3028 # RANDOM is what tells those shells apart (source_requests)
  if [ -z "${BASH_VERSION-}${KSH_VERSION-}${ZSH_VERSION-}${YASH_VERSION-}${RANDOM-}" ]; then
    sources_in_blocks=1
  else
    sources_in_blocks=
  fi
  source_requests
}

# list_files PATH...: writes $dir/f for send_files: `ls -lnLd` of PATHS (the small files the C++
# side would give bwrap as copies; it names only absolute paths of [A-Za-z0-9._/-]), then a line
# "links" and "PATH RESOLVED" for each of them that is a symlink (list_links), renamed into place
# once whole. Run once, in the background: no run waits for it. Without ls, or without PATHS,
# there is no $dir/f, and bwrap binds those files.
list_files() {
  [ "$#" -gt 0 ] || return 0
  {
    LC_ALL=C ls -lnLd -- "$@" 2>/dev/null
    printf 'links\n'
    list_links "$@"
  } >"$dir/f.t"
  mv -f "$dir/f.t" "$dir/f"
}

# list_links PATH...: prints "PATH RESOLVED" for each PATH that is a symlink resolving to
# something, RESOLVED the absolute path it leads to (as realpath(3) would: every link on the way
# followed, 16 at most), so that the C++ side makes it a `--symlink` (the transport's
# host_symlinks), not a bind or a copy. Each link's text comes from `ls -ld` ("... PATH ->
# TEXT": PATHS are plain, so " -> " splits it), its folder from `cd -P`.
list_links() {
  for link_path do
    [ -L "$link_path" ] || continue
    link_at=$link_path link_hops=0
    while [ -L "$link_at" ] && [ "$link_hops" -lt 16 ]; do
      link_text=$(LC_ALL=C ls -ld -- "$link_at" 2>/dev/null) || break
      link_text=${link_text#*" $link_at -> "}
      case $link_text in /*) ;; *) link_text=${link_at%/*}/$link_text ;; esac
      link_folder=$(cd -P -- "${link_text%/*}/" 2>/dev/null && pwd) || break
      link_at=${link_folder%/}/${link_text##*/}
      link_hops=$((link_hops+1))
    done
    if [ ! -L "$link_at" ] && [ -e "$link_at" ]; then printf '%s %s\n' "$link_path" "$link_at"; fi
  done
}

# ---- Main

hello=$1
shift
# A newline: request lines write a newline inside a word as '"$nl"'.
nl='
'
umask 077
dir=${TMPDIR:-/tmp}/shannot.$hello
mkdir "$dir" || exit 97
find_pids_cgroup
# The EXIT trap removes the folder, and the pids cgroups the runner and a session made (empty by
# then: the dispatcher's processes are gone, and bwrap with them).
trap 'rm -rf "$dir"; [ -z "$pids_cgroup" ] || rmdir "$pids_cgroup/$cgroup_name-r" "$pids_cgroup/$cgroup_name-s" 2>/dev/null' EXIT
# Commands start with SIGPIPE at its default (see run_requests); the dispatcher ignores it.
trap '' PIPE
exec 5>&1 6>&2
read_start_time $$
printf '%s %s .\n' "$$" "$start_time" >"$dir/m"
cgroup_name=shannot-ssh-$$-$start_time
# How a run's limits are enforced here (shannot::limits_mechanism), for the ready frame.
if [ -n "$pids_cgroup" ]; then
  limits_in_force=rlimits+cgroup-v$pids_cgroup_version
else
  limits_in_force=rlimits-without-processes
fi
root_symlinks=$(list_root_symlinks)
(
  trap - EXIT
  list_files "$@"
  remove_stale_folders
  remove_stale_cgroups
  run_backstop
) </dev/null >/dev/null 2>&1 5>&- 6>&- &
printf '\n%s ready%s limits=%s\n' "$hello" "$root_symlinks" "$limits_in_force"
printf '\n%s ready\n' "$hello" >&2
serve_requests | run_requests
exit_status=0
read -r exit_status 2>/dev/null <"$dir/x"
exit "$exit_status"
