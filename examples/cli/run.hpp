// SPDX-License-Identifier: MIT
// The shannot tool: `shannot [run] [OPTIONS] COMMAND...`: one command in the sandbox.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <shannot/shannot.hpp>

#include "args.hpp"
#include "common.hpp"
#include "encoding.hpp"
#include "fleet_output.hpp"
#include "profiles.hpp"
#include "subcommand.hpp"
#include "target.hpp"

namespace shannot_cli {

/// Options of `run` itself. To add one: an entry here (its help next to it), then read it in
/// parse_run with parsed->get / has / all (all: for a repeatable one).
inline constexpr OptionSpec run_own_option_specs[] = {
    {.long_name = "--profile",
     .metavar = "P",
     .help = "a built-in (minimal, readonly, diagnostics, systemd), NAME for NAME.json in a profile folder "
             "(`shannot profiles`), or a path to a JSON file. Default: the remote's profile, else minimal"},
    {.long_name = "--timeout",
     .metavar = "SECONDS",
     .help = "stop the command after this long (SIGTERM, then SIGKILL; exit 124); 0 means no limit. Default 30"},
    {.long_name = "--cwd", .metavar = "DIR", .help = "working directory inside the sandbox (absolute)"},
    {.long_name = "--env",
     .metavar = "NAME=VALUE",
     .help = "set a variable inside the sandbox (repeatable). Nothing else from this environment reaches the command, "
             "only the profile's variables",
     .repeatable = true},
    {.long_name = "--max-output",
     .metavar = "BYTES",
     .help = "keep at most BYTES of each stream: its head and tail; the middle is dropped and counted (a note on "
             "stderr says how much). Output is then written when the command ends. Without it output is written "
             "through as it arrives (with --json, 4 MiB per stream are kept)"},
    {.long_name = "--input",
     .metavar = "FILE",
     .help = "the command's stdin is FILE; `-` passes this process's stdin. Without it the command's stdin is empty: "
             "this process's stdin is never read"},
    {.long_name = "--limit",
     .metavar = "NAME=VALUE",
     .help = "replace one of the profile's resource limits for this run (repeatable): memory_bytes (address space per "
             "process; default 4G), processes (256), cpu_seconds (per process; 300), file_size_bytes (1G), open_files "
             "(1024), tmpfs_bytes (each tmpfs; 256M). Byte values take K, M, G (powers of 1024). A run a limit ended "
             "says so on stderr",
     .repeatable = true},
    {.long_name = "--json", .help = "print the result as one JSON object (below) instead of the output"},
    {.long_name = "--dry-run",
     .help = "check the command against the profile and print the bwrap argv as a JSON array; runs nothing (refused: "
             "exit 126 and the reason on stderr); the limits in force and how they are enforced go to stderr"},
    {.long_name = "--inventory",
     .metavar = "FILE",
     .help = "an Ansible inventory (INI, or the JSON `ansible-inventory --list` prints); its hosts' ansible_host, "
             "ansible_port, ansible_user and ansible_ssh_private_key_file are used. With --hosts"},
    {.long_name = "--hosts",
     .metavar = "PATTERN",
     .help = "the inventory's hosts to run on, in Ansible's host-pattern syntax: groups, host names, globs (web*), "
             "':' or ',' for a union, ':&' an intersection, ':!' an exclusion (e.g. web:&prod:!web3)"},
    {.long_name = "--fanout",
     .metavar = "N",
     .help = "work on at most N hosts at once (default: 16 per core, at most 256)"},
    {.long_name = "--gather",
     .help = "with several hosts: print each distinct output once, under the list of hosts that printed it (as clush "
             "-b); stderr lines are printed prefixed with their host"},
    {.long_name = "--persist",
     .metavar = "SECONDS",
     .help =
         "keep each ssh connection, and a warm sandbox starter on it, this long unused after the command (default "
         "60; 0: close it on exit), so the next call to the same host with the same settings costs a sandbox start, "
         "not a login. `shannot disconnect` closes them"},
};

/// Options of `run`, the target options included.
inline constexpr auto run_option_specs = join_options(run_own_option_specs, target_option_specs);

inline constexpr HelpText run_help{
    .usage = "shannot [run] [OPTIONS] [--] COMMAND [ARG...]",
    .about = R"(Runs COMMAND in the sandbox a profile describes and exits with its status. Options come
before COMMAND; COMMAND and everything after it reach the command unchanged. A command named
like a subcommand needs `run`: `shannot run -- lint`.
)",
    .notes = R"(--json prints: schema_version, command, argv (what ran here: bwrap or ssh), exit_code (-1
when killed), signal, timed_out, cancelled, stdout and stderr (text when valid UTF-8, else
base64, as stdout_encoding/stderr_encoding say: "utf-8" or "base64"), stdout_truncated,
stderr_truncated, stdout_dropped, stderr_dropped, duration_ms, profile, transport, status
(what shannot exits with), warnings, limits (the limits in force, by name), limits_mechanism
(how: "rlimits", "rlimits+cgroup-v1", "rlimits+cgroup-v2", or "rlimits-without-processes"
where nothing bounds the process count), limit_exceeded (the limit that ended the run,
e.g. "cpu_seconds", else null), and over ssh host (the host as given). An error prints
{"schema_version", "error": {code, message, hint, status}} (with "host" for a host that did
not run). docs/cli.md describes each field.
A bind whose source is missing on this host is skipped, and said: a warning on stderr (and in
"warnings"), unless the profile marks it "optional" (skipped silently) or "required" (an
error). A bind that masks part of another mount is never skipped. Over ssh the remote's
bwrap skips a missing source without a warning.

Several hosts (--ssh repeated, --target with several names or a @group, --inventory with
--hosts): the command runs on all of them at once (--fanout at a time), each in its own
sandbox. Each host's output is printed when it ends, every line prefixed with "HOST: " (as
pssh -i and clush do); --gather groups identical outputs; --json prints one object per host per
line. The exit status is 0 when every host ran the command and it exited 0, else the largest
status among the hosts (123 for a host that could not be reached).
)",
    .exit_statuses = true,
};

/// Everything `run` was asked to do, checked.
struct RunRequest {
    std::vector<std::string> command;
    shannot::RunOptions options;
    bool json = false;
    bool dry_run = false;
    bool live = true;  ///< write output as it arrives (no --json, no --max-output)
    std::optional<std::string> input_spec;
    std::string profile_spec;
    TargetOptions target;
    bool implicit = false;   ///< `shannot CMD`, without the word `run`
    std::size_t fanout = 0;  ///< 0: the library's default
    bool gather = false;
    std::chrono::seconds persist{60};
    bool persist_given = false;
};

namespace detail {

inline shannot::CancelToken* cancel_token = nullptr;
inline volatile std::sig_atomic_t cancel_signal = 0;

inline void on_cancel_signal(int sig) {
    cancel_signal = sig;
    if (cancel_token) cancel_token->cancel();  // an atomic flag and one write(2): signal-safe
}

/// While alive, SIGINT, SIGTERM and SIGHUP stop the sandboxed command (and the tool then exits
/// 128+signal) instead of killing the tool around it.
class CancelOnSignals {
public:
    explicit CancelOnSignals(shannot::CancelToken& token) {
        cancel_token = &token;
        struct sigaction sa {};
        sa.sa_handler = on_cancel_signal;
        sigemptyset(&sa.sa_mask);
        for (std::size_t i = 0; i < 3; ++i) ::sigaction(signals_[i], &sa, &old_[i]);
    }
    CancelOnSignals(const CancelOnSignals&) = delete;
    CancelOnSignals& operator=(const CancelOnSignals&) = delete;
    ~CancelOnSignals() {
        for (std::size_t i = 0; i < 3; ++i) ::sigaction(signals_[i], &old_[i], nullptr);
        cancel_token = nullptr;
    }

private:
    static constexpr int signals_[3] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction old_[3]{};
};

/// The bytes of FILE, or of this process's stdin for "-".
[[nodiscard]] inline Expected<std::string> read_input(const std::string& spec) {
    const bool from_stdin = spec == "-";
    const int fd = from_stdin ? 0 : ::open(spec.c_str(), O_RDONLY | O_CLOEXEC);
    const std::string shown = from_stdin ? "standard input" : "'" + spec + "'";
    if (fd < 0)
        return usage_error("--input: cannot open " + shown + ": " + std::strerror(errno),
                           "pass a readable file, or - for stdin");
    std::string data;
    char buffer[65536];
    for (;;) {
        const auto n = ::read(fd, buffer, sizeof buffer);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int e = errno;
            if (!from_stdin) ::close(fd);
            return usage_error("--input: cannot read " + shown + ": " + std::strerror(e),
                               "pass a readable file, or - for stdin");
        }
        if (n == 0) break;
        data.append(buffer, static_cast<std::size_t>(n));
    }
    if (!from_stdin) ::close(fd);
    return data;
}

/// What `shannot` exits with after the command ran.
[[nodiscard]] inline int exit_status_of(const shannot::ProcessResult& r) {
    if (r.timed_out) return status::timed_out;
    if (r.cancelled) return 128 + (cancel_signal ? static_cast<int>(cancel_signal) : SIGINT);
    if (r.signal) return 128 + r.signal;
    if (r.exit_code < 0) return status::sandbox_failed;
    return r.exit_code & 0xff;
}

[[nodiscard]] inline std::string format_seconds(std::chrono::milliseconds ms) {
    char text[32];
    std::snprintf(text, sizeof text, "%g s", static_cast<double>(ms.count()) / 1000.0);
    return text;
}

}  // namespace detail

/// Parses `run`'s arguments against `specs` (run_option_specs). `implicit`: the user wrote `shannot CMD`.
[[nodiscard]] inline Expected<std::optional<RunRequest>> parse_run(std::span<const std::string> args,
                                                                   std::span<const OptionSpec> specs, bool implicit) {
    auto parsed = parse_args(args, specs, implicit ? "shannot" : "shannot run", Positionals::stop_at_first);
    if (!parsed) return tl::make_unexpected(std::move(parsed.error()));
    if (parsed->help) return std::optional<RunRequest>{};
    RunRequest req;
    req.implicit = implicit;
    req.command = std::move(parsed->positionals);
    if (req.command.empty())
        return usage_error("no command given", "e.g. `shannot ls /`; `shannot --help` lists the options");
    req.json = parsed->has("--json");
    req.dry_run = parsed->has("--dry-run");
    req.profile_spec = parsed->get("--profile").value_or("");
    req.target = TargetOptions::from(*parsed);
    for (const auto& kv : parsed->all("--env")) {
        const auto eq = kv.find('=');
        if (eq == std::string::npos) return usage_error("--env: '" + kv + "' has no '='", "write --env NAME=VALUE");
        const auto name = kv.substr(0, eq);
        if (!shannot::detail::is_env_name(name))
            return usage_error("--env: '" + name + "' is not a valid variable name",
                               "names match [A-Za-z_][A-Za-z0-9_]*");
        if (req.options.environment.count(name))
            return usage_error("--env: '" + name + "' given twice", "give each name once");
        req.options.environment[name] = kv.substr(eq + 1);
    }
    if (auto cwd = parsed->get("--cwd")) {
        if (cwd->empty() || cwd->front() != '/')
            return usage_error("--cwd: '" + *cwd + "' is not an absolute path", "e.g. --cwd /tmp");
        req.options.working_directory = *cwd;
    }
    if (auto t = parsed->get("--timeout")) {
        auto timeout = parse_timeout(*t);
        if (!timeout) return tl::make_unexpected(std::move(timeout.error()));
        req.options.timeout = *timeout;
    }
    if (auto m = parsed->get("--max-output")) {
        const auto n = parse_unsigned(*m);
        if (!n || *n > (std::uint64_t(1) << 40))
            return usage_error("--max-output: '" + *m + "' is not a byte count", "e.g. --max-output 65536");
        req.options.max_output = static_cast<std::size_t>(*n);
        req.live = false;
    }
    if (req.json) req.live = false;
    for (const auto& limit : parsed->all("--limit"))
        if (auto ok = parse_limit(limit, req.options.limits); !ok) return tl::make_unexpected(std::move(ok.error()));
    req.input_spec = parsed->get("--input");
    req.gather = parsed->has("--gather");
    if (auto f = parsed->get("--fanout")) {
        const auto n = parse_unsigned(*f);
        if (!n || *n < 1 || *n > 4096)
            return usage_error("--fanout: '" + *f + "' is not a number of hosts from 1 to 4096", "e.g. --fanout 32");
        req.fanout = static_cast<std::size_t>(*n);
    }
    if (auto p = parsed->get("--persist")) {
        const auto n = parse_unsigned(*p);
        if (!n || *n > 366ull * 86400)
            return usage_error("--persist: '" + *p + "' is not a number of seconds",
                               "e.g. --persist 300, or 0 to close at exit");
        req.persist = std::chrono::seconds(static_cast<long long>(*n));
        req.persist_given = true;
    }
    return std::optional<RunRequest>{std::move(req)};
}

/// Kept connections beyond this many (the least recently used idle ones) are closed after a run.
inline constexpr std::size_t max_kept_connections = 1024;

/// Applies --persist to every destination: kept connections in the default folder, and
/// session_first (one login and one local process for a host that gets one command). Returns
/// the folder (empty: nothing kept). A folder that cannot be used is noted, and nothing kept.
[[nodiscard]] inline std::string persist_settings(const RunRequest& req, std::vector<Destination>& destinations) {
    std::string folder;
    if (req.persist.count() > 0) {
        auto found = shannot::default_persist_folder();
        if (!found) {
            note("--persist: " + found.error().message + "; the connections close on exit");
        } else if (auto ok = shannot::detail::ensure_private_folder(*found); !ok) {
            note("--persist: " + ok.error().message + "; the connections close on exit");
        } else {
            folder = *found;
        }
    }
    for (auto& d : destinations) {
        d.ssh->connect_style = shannot::ConnectStyle::session_first;
        // Many logins at once queue on the remotes (and on rc files that take locks, pyenv's):
        // a slow login is not a failed one.
        if (destinations.size() > 1) d.ssh->login_timeout = std::chrono::seconds(60);
        d.ssh->persist = folder.empty() ? std::chrono::seconds(0) : req.persist;
        d.ssh->persist_folder = folder;
    }
    return folder;
}

/// Runs the request on every destination at once (see "Several hosts" in `shannot run --help`).
inline int execute_fleet(shannot::SandboxProfile<shannot::OpenSshProcessTransport> profile,
                         const std::vector<Destination>& destinations, RunRequest& req) {
    std::vector<shannot::FleetHost> hosts;
    for (const auto& d : destinations) hosts.push_back({d.name, *d.ssh});
    const std::string profile_name = profile.name;
    shannot::Fleet fleet(std::move(profile), std::move(hosts));
    // Admission and the argv are the same for every host: refused or dry-run, it is said once.
    auto argv = fleet.sandbox(0).dry_run(req.command, req.options);
    if (!argv) {
        Failure f = from_error(argv.error());
        if (argv.error().code == shannot::errc::command_refused)
            f.hint = "pick a profile that allows it with --profile (`shannot profiles` lists them), or write one";
        if (req.json)
            write_all(1, dump_json(error_to_json(shannot::to_string(argv.error().code), one_line(f.message), f.hint,
                                                 f.status)) +
                             "\n");
        return report(f);
    }
    if (req.dry_run) {
        nlohmann::json j = nlohmann::json::array({destinations.front().ssh->remote_bwrap});
        for (auto& a : *argv) j.push_back(std::move(a));
        write_all(1, dump_json(j) + "\n");
        return status::ok;
    }
    if (req.input_spec) {
        auto input = detail::read_input(*req.input_spec);
        if (!input) return report(input.error());
        req.options.input = std::move(*input);
    }
    shannot::CancelToken token;
    shannot::FleetOptions options{.fanout = req.fanout, .cancel = token};
    FleetPrinter printer(req.json, req.gather, profile_name, req.options.timeout);
    {
        detail::CancelOnSignals guard(token);
        auto results = fleet.run(req.command, req.options, options, [&](const shannot::HostResult& r) {
            printer.host_done(r, r.result ? detail::exit_status_of(*r.result) : from_error(r.result.error()).status);
        });
        printer.finish(results);
    }
    fleet.close();
    return printer.worst();
}

/// Runs (or dry-runs) the request on `sandbox` and returns the tool's exit status.
template <class T>
int execute_run(shannot::SandboxManager<T>& sandbox, RunRequest& req, std::string_view transport,
                const std::string& bwrap, const std::string& host = {}) {
    const auto& profile = sandbox.profile();
    const auto fail = [&](const shannot::Error& e) {
        Failure f = from_error(e);
        if (e.code == shannot::errc::command_refused) {
            f.hint = "pick a profile that allows it with --profile (`shannot profiles` lists them), or write one";
            if (req.implicit && find_subcommand(req.command.front()))
                f.hint = "to use the subcommand, put it first: `shannot " + req.command.front() + " ...`";
        }
        if (req.json) {
            auto j = error_to_json(shannot::to_string(e.code), one_line(f.message), f.hint, f.status);
            if (!host.empty()) j["host"] = host;
            write_all(1, dump_json(j) + "\n");
        }
        return report(f);
    };
    if (req.dry_run) {
        auto args = sandbox.dry_run(req.command, req.options);
        if (!args) return fail(args.error());
        if (auto limits = sandbox.limits_in_force(req.options))
            note("limits: " + limits_text(limits->limits) + " (" + limits->mechanism + ")");
        nlohmann::json argv = nlohmann::json::array({bwrap});
        for (auto& a : *args) argv.push_back(std::move(a));
        write_all(1, dump_json(argv) + "\n");
        return status::ok;
    }
    if (req.input_spec) {
        auto input = detail::read_input(*req.input_spec);
        if (!input) return report(input.error());
        req.options.input = std::move(*input);
    }
    if (req.live) req.options.max_output = 0;  // written through as it arrives; nothing to keep
    shannot::CancelToken token;
    req.options.cancel = token;
    shannot::Result<shannot::ProcessResult> result;
    {
        detail::CancelOnSignals guard(token);
        if (req.live) {
            result = sandbox.stream(req.command, req.options, [](const shannot::OutputChunk& chunk) {
                write_all(chunk.stream == shannot::StreamKind::out ? 1 : 2, chunk.data);
            });
        } else {
            result = sandbox.run(req.command, req.options);
        }
    }
    if (!result) return fail(result.error());
    const int exit_status = detail::exit_status_of(*result);
    for (const auto& w : result->warnings) note("warning: " + w);
    if (req.json) {
        auto j = result_to_json(*result, profile.name, transport, exit_status);
        if (!host.empty()) j["host"] = host;
        write_all(1, dump_json(j) + "\n");
        return exit_status;
    }
    if (!req.live) {
        write_all(1, result->stdout_data);
        write_all(2, result->stderr_data);
        if (result->stdout_truncated)
            note("stdout: kept its first and last bytes, dropped " + std::to_string(result->stdout_dropped) +
                 " in between (--max-output)");
        if (result->stderr_truncated)
            note("stderr: kept its first and last bytes, dropped " + std::to_string(result->stderr_dropped) +
                 " in between (--max-output)");
    }
    if (result->limit_exceeded)
        note("the command exceeded its " + *result->limit_exceeded + " limit (" +
             std::to_string(result->limits.*shannot::find_limit(*result->limit_exceeded)->value) +
             "); raise it with --limit " + *result->limit_exceeded + "=VALUE");
    if (result->timed_out && req.options.timeout)
        note("the command timed out after " + detail::format_seconds(*req.options.timeout) +
             " and was stopped; raise --timeout, or pass --timeout 0 for no limit");
    return exit_status;
}

/// `shannot run ...` and `shannot CMD ...`.
inline int run_main(const Subcommand& self, std::span<const std::string> args, bool implicit) {
    auto req = parse_run(args, self.options, implicit);
    if (!req) return report(req.error());
    if (!*req) return print_help(self);
    auto& request = **req;
    auto destinations = resolve_destinations(request.target);
    if (!destinations) return report(destinations.error());
    if (destinations->empty()) {
        if (request.gather || request.fanout || request.persist_given)
            return report(usage_error("--gather, --fanout and --persist apply to remote hosts",
                                      "add --ssh, --target or --inventory")
                              .value());
#if SHANNOT_PLATFORM_LINUX
        auto profile = resolve_profile<shannot::PosixSpawnTransport>(request.profile_spec);
        if (!profile) return report(profile.error());
        shannot::PosixSpawnTransport transport;
        const std::string bwrap = transport.bwrap().value_or("bwrap");
        shannot::LocalSandbox sandbox(std::move(*profile), std::move(transport));
        return execute_run(sandbox, request, "local", bwrap);
#else
        return report(local_sandbox_unavailable());
#endif
    }
    std::string spec = request.profile_spec;
    if (spec.empty()) {
        spec = destinations->front().profile;
        for (const auto& d : *destinations)
            if (d.profile != spec)
                return report(usage_error("the hosts use different profiles ('" + spec + "' for " +
                                              destinations->front().name + ", '" + d.profile + "' for " + d.name + ")",
                                          "pass --profile to pick one for all of them")
                                  .value());
    }
    auto profile = resolve_profile<shannot::OpenSshProcessTransport>(spec);
    if (!profile) return report(profile.error());
    const auto folder = persist_settings(request, *destinations);
    int status_code = 0;
    if (destinations->size() == 1 && !request.gather) {
        const auto& d = destinations->front();
        const std::string bwrap = d.ssh->remote_bwrap;
        shannot::SshSandbox sandbox(std::move(*profile), shannot::OpenSshProcessTransport(*d.ssh));
        status_code = execute_run(sandbox, request, "ssh", bwrap, d.name);
    } else {
        status_code = execute_fleet(std::move(*profile), *destinations, request);
    }
    if (!folder.empty()) {
        auto trimmed = shannot::trim_persisted(folder, max_kept_connections);
        (void)trimmed;
    }
    return status_code;
}

inline int run_command(const Subcommand& self, std::span<const std::string> args) {
    return run_main(self, args, false);
}

inline constexpr Subcommand run_subcommand{
    .name = "run",
    .summary = "run a command in the sandbox; the default: `shannot ls /` is `shannot run ls /`",
    .run = run_command,
    .options = run_option_specs,
    .help = run_help,
};

/// `shannot CMD ...`, which is `shannot run CMD ...` (any first word that names no subcommand).
inline int run_implicit(std::span<const std::string> args) { return run_main(run_subcommand, args, true); }

}  // namespace shannot_cli
