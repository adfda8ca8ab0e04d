// SPDX-License-Identifier: MIT
// The shannot tool: --help for every subcommand, and the exit statuses they share.
#pragma once

#include <string>
#include <string_view>

#include <shannot/shannot.hpp>

#include "common.hpp"

namespace shannot_cli {

inline constexpr std::string_view exit_status_help = R"(exit status:
  0-255  the command's own status; 128+N when signal N killed it
  1      verify: a check failed; lint: a danger finding; remote test: `ls /` failed
  120    the sandbox could not start (bwrap missing or failing, no namespaces)
  121    bad profile: invalid, or no profile by that name
  122    config file malformed or unwritable, or no remote by that name
  123    ssh failed: connection, authentication or host key
  124    the command timed out (--timeout)
  125    usage error: unknown option, missing or bad argument
  126    the profile refused the command (not in its allowed_commands)
  128+N  interrupted by signal N (SIGINT, SIGTERM, SIGHUP stop the command first)
  70     internal error (a bug: please report it)
A command can exit with 120-126 itself: --json tells them apart ("exit_code" is the command's).
)";

inline constexpr std::string_view target_help = R"(  --target NAME       run on a remote from the config file (`shannot remote add`)
  --ssh [USER@]HOST[:PORT]
                      run on HOST over the system ssh (BatchMode; an unknown host key
                      is accepted and remembered, a changed one refused)
  -i, --identity KEY  ssh private key (with --ssh or --target)
  --known-hosts FILE  ssh known_hosts file (with --ssh or --target)
)";

inline constexpr std::string_view main_help = R"(usage: shannot [run] [OPTIONS] [--] COMMAND [ARG...]
       shannot verify|export|lint|profiles|remote [OPTIONS]

Runs COMMAND in a read-only bubblewrap sandbox, on this host or on a remote host over ssh.

subcommands:
  run        run a command in the sandbox; the default: `shannot ls /` is `shannot run ls /`
  verify     prove the sandbox holds here or on a remote: runs, read-only, no network, no env
  export     print a profile as JSON, every field
  lint       list the risks a profile takes
  profiles   list the built-in profiles and the profile files found
  remote     add, list, remove and test named remote hosts
  help       `shannot help SUBCOMMAND` is `shannot SUBCOMMAND --help`

`shannot run --help` lists the options of a run; --version prints the version.
)";

inline constexpr std::string_view run_help = R"(usage: shannot [run] [OPTIONS] [--] COMMAND [ARG...]

Runs COMMAND in the sandbox a profile describes and exits with its status. Options come
before COMMAND; COMMAND and everything after it reach the command unchanged. A command named
like a subcommand needs `run`: `shannot run -- lint`.

options:
  --profile P         a built-in (minimal, readonly, diagnostics, systemd), NAME for
                      NAME.json in a profile folder (`shannot profiles`), or a path to a JSON
                      file. Default: the remote's profile, else minimal
)" R"(  --timeout SECONDS   stop the command after this long (SIGTERM, then SIGKILL; exit 124);
                      0 means no limit. Default 30
  --cwd DIR           working directory inside the sandbox (absolute)
  --env NAME=VALUE    set a variable inside the sandbox (repeatable). Nothing else from this
                      environment reaches the command, only the profile's variables
  --max-output BYTES  keep at most BYTES of each stream: its head and tail; the middle is
                      dropped and counted (a note on stderr says how much). Output is then
                      written when the command ends. Without it output is written through as
                      it arrives (with --json, 4 MiB per stream are kept)
  --input FILE        the command's stdin is FILE; `-` passes this process's stdin. Without
                      it the command's stdin is empty: this process's stdin is never read
  --json              print the result as one JSON object (below) instead of the output
  --dry-run           check the command against the profile and print the bwrap argv as a
                      JSON array; runs nothing (refused: exit 126 and the reason on stderr)
  -h, --help          this text

--json prints: command, argv (what ran here: bwrap or ssh), exit_code (-1 when killed),
signal, timed_out, cancelled, stdout and stderr (text when valid UTF-8, else base64, as
stdout_encoding/stderr_encoding say: "utf-8" or "base64"), stdout_truncated,
stderr_truncated, stdout_dropped, stderr_dropped, duration_ms, profile, transport, status
(what shannot exits with). An error prints {"error": {code, message, hint, status}}.
)";

inline constexpr std::string_view verify_help = R"(usage: shannot verify [--profile P] [--target NAME | --ssh [USER@]HOST[:PORT] [-i KEY] [--known-hosts FILE]]

Proves the sandbox holds where it would run, one line per check (ok or FAIL):
  - an allowed command runs (the first of `ls /`, `true`, `cat /dev/null` the profile admits)
  - a write into a read-only bind fails
  - the network is unreachable: on this host, connecting to a TCP listener verify opens on
    127.0.0.1 fails from inside (needs bash in the sandbox); everywhere, /proc/net/dev
    inside lists the loopback interface only
  - the caller's environment is invisible: a random variable set in verify's environment is
    absent inside, and inside there are only the profile's variables (and PWD, set by bwrap)
Checks after the first run `sh`, `cat` (and `bash` on this host), which the profile may not
allow: they run with a copy of the profile whose allowlist adds them, and verify says so.
Exit status 0 when every check passes, 1 otherwise.

options:
  --profile P         as for `shannot run` (default: the remote's profile, else minimal)
)";

inline constexpr std::string_view export_help = R"(usage: shannot export [--profile P]

Prints the profile as JSON with every field, defaults included; loading the output back gives
the same profile. Only the structure is checked: bind sources may be missing on this host.

options:
  --profile P         as for `shannot run` (default: minimal)
  -h, --help          this text
)";

inline constexpr std::string_view lint_help = R"(usage: shannot lint [--profile P]

Lists the risks the profile takes, one per line: SEVERITY CODE MESSAGE, where SEVERITY is
info, warning or danger (danger: the sandbox can be escaped from the allowlist or reach the
network, e.g. an allowed command that runs other commands, like `find -exec`).
Exit status 1 when there is a danger finding, else 0 (warnings alone do not fail).

options:
  --profile P         as for `shannot run` (default: minimal)
  -h, --help          this text
)";

inline constexpr std::string_view profiles_help = R"(usage: shannot profiles

Lists the built-in profiles and the profile files found, with the --profile value that picks
each. Files are NAME.json in $XDG_CONFIG_HOME/shannot/profiles (else ~/.config/shannot/profiles)
and in the installed share/shannot/profiles. A built-in name always means the built-in.
)";

inline constexpr std::string_view remote_help = R"(usage: shannot remote add NAME HOST [--user U] [--port N] [--key FILE] [--known-hosts FILE] [--profile P]
       shannot remote list [--json]
       shannot remote remove NAME
       shannot remote test NAME

Named remote hosts, kept in $XDG_CONFIG_HOME/shannot/config.json (else
~/.config/shannot/config.json; written atomically, mode 0600). Use one with
`shannot --target NAME COMMAND...`.

  add     store a remote. NAME: letters, digits, '.', '_', '-', not starting with '-'.
          HOST may also be written [USER@]HOST[:PORT]. --key and --known-hosts are stored as
          absolute paths; --profile is the profile used there unless --profile says otherwise
  list    print the remotes (--json: as the config file holds them)
  remove  forget a remote
  test    run `ls /` in the remote's sandbox and report how it went (exit 0 when it ran)
)";

/// Prints the help for `topic` on stdout and returns 0.
inline int print_help(std::string_view topic) {
    std::string text;
    if (topic == "run") text = std::string(run_help) + "\n" + std::string(target_help) + "\n" + std::string(exit_status_help);
    else if (topic == "verify") text = std::string(verify_help) + std::string(target_help) + "  -h, --help          this text\n";
    else if (topic == "export") text = std::string(export_help);
    else if (topic == "lint") text = std::string(lint_help);
    else if (topic == "profiles") text = std::string(profiles_help);
    else if (topic == "remote") text = std::string(remote_help);
    else text = std::string(main_help) + "\n" + std::string(exit_status_help);
    write_all(1, text);
    return status::ok;
}

[[nodiscard]] inline bool is_help_topic(std::string_view topic) {
    for (auto t : {"run", "verify", "export", "lint", "profiles", "remote"})
        if (topic == t) return true;
    return false;
}

}  // namespace shannot_cli
