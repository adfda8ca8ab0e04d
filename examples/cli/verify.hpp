// SPDX-License-Identifier: MIT
// The shannot tool: `verify`, which proves on this host (or a remote) that the sandbox holds.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <shannot/shannot.hpp>

#include "args.hpp"
#include "common.hpp"
#include "encoding.hpp"
#include "probes.hpp"
#include "profiles.hpp"
#include "subcommand.hpp"
#include "target.hpp"

namespace shannot_cli {

/// What every check of `verify` works with.
template <class T>
struct VerifyContext {
    const shannot::SandboxProfile<T>& profile;  ///< the profile as given
    shannot::SandboxManager<T>& base;           ///< runs with the profile as given
    shannot::SandboxManager<T>& probe;          ///< runs with a copy that allows the probes' tools
    shannot::RunOptions options;
    bool local = false;                   ///< this host (not ssh)
    std::string secret_name;              ///< set in verify's environment; must be absent inside
    std::optional<std::string> broken{};  ///< why the sandbox cannot run at all, once known
    std::vector<std::string> warnings{};  ///< of the first run: binds skipped for a missing source

    /// Runs `command` with `probe`; nullopt, with the reason in `detail`, when it did not run.
    std::optional<shannot::ProcessResult> run(const std::vector<std::string>& command, std::string& detail) {
        if (broken) {
            detail = "not run: " + *broken;
            return std::nullopt;
        }
        auto r = probe.run(command, options);
        if (!r) {
            detail = detail::quoted(command) + ": " + r.error().describe();
            return std::nullopt;
        }
        return std::move(*r);
    }
};

/// How one check went: passed or not, and a clause saying what was seen.
struct CheckResult {
    bool ok = false;
    std::string detail;
};

/// An allowed command runs, with the profile as it is (the first of `ls /`, `true`, `cat
/// /dev/null` it admits). When it cannot, the checks after it are not run.
template <class T>
[[nodiscard]] CheckResult check_allowed_command_runs(VerifyContext<T>& cx) {
    for (const std::vector<std::string>& command :
         {std::vector<std::string>{"ls", "/"}, {"true"}, {"cat", "/dev/null"}}) {
        auto admitted = cx.base.dry_run(command);
        if (!admitted && admitted.error().code == shannot::errc::command_refused) continue;
        auto r = admitted ? cx.base.run(command, cx.options)
                          : shannot::Result<shannot::ProcessResult>(tl::make_unexpected(admitted.error()));
        if (!r) {
            cx.broken = "the sandbox did not run (see the first check)";
            return {false, detail::quoted(command) + ": " + r.error().describe()};
        }
        cx.warnings = r->warnings;
        return {r->exit_code == 0,
                detail::quoted(command) + " exited " + std::to_string(r->exit_code) +
                    (r->signal ? " (signal " + std::to_string(r->signal) + ")" : "") + " in " +
                    std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(r->duration).count()) + " ms"};
    }
    return {false, "the profile admits none of `ls /`, `true`, `cat /dev/null`"};
}

/// Creating a file in the first read-only bind of a directory fails (and leaves nothing on the host).
template <class T>
[[nodiscard]] CheckResult check_read_only(VerifyContext<T>& cx) {
    // Here: a directory that exists. On a remote, whose files cannot be seen from here: a required
    // bind (its source must exist there), else one that is at least not optional.
    const shannot::SandboxBind* target = nullptr;
    for (const bool required_only : {true, false}) {
        for (const auto& b : cx.profile.binds) {
            std::error_code ec;
            const bool likely = cx.local        ? std::filesystem::is_directory(b.source, ec)
                                : required_only ? b.required
                                                : !b.optional;
            if (b.read_only && likely) {
                target = &b;
                break;
            }
        }
        if (target) break;
    }
    if (!target) return {false, "the profile has no read-only bind of a directory to try"};
    const auto tag = detail::random_hex(6);
    const std::string script =
        "f=\"$1/.shannot-verify-$2\"; if ( : > \"$f\" ) 2>/dev/null; then rm -f \"$f\"; echo WRITABLE; "
        "elif [ -d \"$1\" ]; then echo READONLY; else echo MISSING; fi";
    CheckResult c;
    auto r = cx.run({"sh", "-c", script, "verify", target->target, tag}, c.detail);
    if (!r) return c;
    std::error_code ec;
    const bool host_file = cx.local && std::filesystem::exists(target->source + "/.shannot-verify-" + tag, ec);
    c.ok = r->stdout_data == "READONLY\n" && !host_file;
    c.detail = r->stdout_data == "READONLY\n"   ? "creating a file in " + target->target + " was refused"
               : r->stdout_data == "WRITABLE\n" ? "a file could be created in " + target->target
               : r->stdout_data == "MISSING\n"  ? target->target + " is not a directory inside the sandbox"
                                                : "the probe printed '" + r->stdout_data + r->stderr_data + "'";
    return c;
}

/// A TCP listener on this host's 127.0.0.1 cannot be reached from inside (this host only: the
/// listener must run where the sandbox does).
template <class T>
[[nodiscard]] CheckResult check_network_unreachable(VerifyContext<T>& cx) {
    detail::Listener listener;
    if (listener.port() == 0 || !listener.reachable_here())
        return {false, "could not open a TCP listener on 127.0.0.1 to test against"};
    const auto port = std::to_string(listener.port());
    const std::string script =
        "if : 2>/dev/null 3<>\"/dev/tcp/127.0.0.1/$1\"; then echo CONNECTED; else echo BLOCKED; fi";
    CheckResult c;
    auto r = cx.run({"bash", "-c", script, "verify", port}, c.detail);
    if (!r) return c;
    const int arrived = listener.drain();
    c.ok = r->stdout_data == "BLOCKED\n" && arrived == 0;
    c.detail = c.ok ? "connecting to 127.0.0.1:" + port + " (listening on this host) failed inside"
               : r->stdout_data == "CONNECTED\n" || arrived > 0
                   ? "the sandbox connected to 127.0.0.1:" + port + " on this host"
                   : "the probe (bash) did not run: exit " + std::to_string(r->exit_code) + ": " + r->stderr_data;
    return c;
}

/// /proc/net/dev inside lists the loopback interface only.
template <class T>
[[nodiscard]] CheckResult check_loopback_only(VerifyContext<T>& cx) {
    CheckResult c;
    auto r = cx.run({"cat", "/proc/net/dev"}, c.detail);
    if (!r) return c;
    std::vector<std::string> names;
    const auto lines = detail::split(r->stdout_data, '\n');
    for (std::size_t i = 2; i < lines.size(); ++i) {  // after two header lines
        const auto colon = lines[i].find(':');
        if (colon == std::string::npos) continue;
        const auto first = lines[i].find_first_not_of(' ');
        names.push_back(lines[i].substr(first, colon - first));
    }
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    c.ok = r->exit_code == 0 && names == std::vector<std::string>{"lo"};
    c.detail = r->exit_code != 0 ? "`cat /proc/net/dev` exited " + std::to_string(r->exit_code) + ": " + r->stderr_data
                                 : "/proc/net/dev inside lists " + (list.empty() ? std::string("nothing") : list);
    return c;
}

/// The caller's environment is invisible: the secret variable is absent inside, and every variable
/// there is the profile's (or PWD, which bwrap sets to the working directory).
template <class T>
[[nodiscard]] CheckResult check_environment_invisible(VerifyContext<T>& cx) {
    CheckResult c;
    auto r = cx.run({"cat", "/proc/self/environ"}, c.detail);
    if (!r) return c;
    std::set<std::string> names;
    for (const auto& entry : detail::split(r->stdout_data, '\0')) names.insert(entry.substr(0, entry.find('=')));
    std::string foreign;
    for (const auto& n : names)
        if (!cx.profile.environment.count(n) && n != "PWD") foreign += (foreign.empty() ? "" : ", ") + n;
    const bool secret_seen = names.count(cx.secret_name) > 0;
    c.ok = r->exit_code == 0 && !secret_seen && foreign.empty();
    c.detail = r->exit_code != 0  ? "`cat /proc/self/environ` exited " + std::to_string(r->exit_code)
               : secret_seen      ? cx.secret_name + ", set in verify's environment, is visible inside"
               : !foreign.empty() ? "variables not in the profile are visible inside: " + foreign
                                  : cx.secret_name + " (set here) is absent inside, which holds only " +
                                        detail::join(names) + " (the profile's, and PWD from bwrap)";
    return c;
}

/// One line of `verify`'s output. To add a check: a function above, and an entry here.
template <class T>
struct VerifyCheck {
    std::string_view title;
    bool this_host_only;  ///< skipped on a remote
    CheckResult (*check)(VerifyContext<T>&);
};

/// The checks, in the order they run and print (the first must run the sandbox: the others are
/// skipped when it cannot).
template <class T>
inline constexpr VerifyCheck<T> verify_checks[] = {
    {"an allowed command runs", false, check_allowed_command_runs<T>},
    {"a write to a read-only path fails", false, check_read_only<T>},
    {"the network is unreachable", true, check_network_unreachable<T>},
    {"only the loopback interface exists", false, check_loopback_only<T>},
    {"the caller's environment is invisible", false, check_environment_invisible<T>},
};

/// The tools the probes run that `profile` does not allow (sh, cat, and bash on this host).
template <class T>
[[nodiscard]] std::vector<std::string> missing_probe_tools(shannot::SandboxManager<T>& base, bool local) {
    std::vector<std::string> missing;
    if (base.profile().allowed_commands.empty()) return missing;  // an empty allowlist admits everything already
    for (const char* tool : {"sh", "cat", "bash"}) {
        if (!local && std::string_view(tool) == "bash") continue;
        if (auto r = base.dry_run({tool}); !r && r.error().code == shannot::errc::command_refused)
            missing.push_back(tool);
    }
    return missing;
}

/// Runs every check with `transport` and prints them (as they finish, or as one JSON object at
/// the end); returns 0 when all pass.
template <class T>
int run_verify(shannot::SandboxProfile<T> profile, T transport, bool local, const std::string& where, bool json) {
    const std::string secret_name = "SHANNOT_VERIFY_" + detail::random_hex(8);
    ::setenv(secret_name.c_str(), detail::random_hex(8).c_str(), 1);  // must stay invisible inside

    shannot::SandboxManager<T> base(profile, transport);
    // The probes need tools the profile may not allow: a copy of it that does.
    const auto added = missing_probe_tools(base, local);
    auto probe_profile = profile;
    probe_profile.allowed_commands.insert(probe_profile.allowed_commands.end(), added.begin(), added.end());
    shannot::SandboxManager<T> probe(std::move(probe_profile), transport);
    VerifyContext<T> cx{profile, base, probe, {}, local, secret_name};
    cx.options.timeout = std::chrono::seconds(20);
    cx.options.max_output = 1u << 16;

    std::string out = "verify: profile '" + profile.name + "' on " + where + "\n";
    if (!added.empty())
        out += "note: the checks after the first also run " +
               join_names(added, [](const std::string& a) { return a; }) + " with a copy of profile '" + profile.name +
               "' whose allowlist adds them\n";
    if (!json) write_all(1, out);

    std::size_t run = 0, passed = 0;
    nlohmann::json checks = nlohmann::json::array();
    for (const auto& check : verify_checks<T>) {
        if (check.this_host_only && !local) continue;
        const CheckResult c = check.check(cx);
        if (json)
            checks.push_back({{"title", check.title}, {"ok", c.ok}, {"detail", one_line(c.detail)}});
        else
            write_all(1, std::string(c.ok ? "  ok    " : "  FAIL  ") + std::string(check.title) + ": " +
                             one_line(c.detail) + "\n");
        ++run;
        passed += c.ok ? 1 : 0;
    }
    const auto& warnings = cx.warnings;
    if (json) {
        const nlohmann::json j = {{"schema_version", json_schema_version},
                                  {"profile", profile.name},
                                  {"where", where},
                                  {"transport", std::string(T::name)},
                                  {"probe_tools_added", added},
                                  {"checks", std::move(checks)},
                                  {"passed", passed},
                                  {"run", run},
                                  {"ok", passed == run},
                                  {"warnings", warnings}};
        write_all(1, dump_json(j, 2) + "\n");
    } else {
        for (const auto& w : warnings) note("warning: " + w);
        write_all(1, "verify: " + std::to_string(passed) + " of " + std::to_string(run) + " checks passed" +
                         (passed == run ? "\n" : "; the sandbox does not hold as expected here\n"));
    }
    return passed == run ? status::ok : status::check_failed;
}

/// Options of `verify`: the profile and where to run.
inline constexpr OptionSpec verify_own_option_specs[] = {
    {.long_name = "--profile",
     .metavar = "P",
     .help = "as for `shannot run` (default: the remote's profile, else minimal)"},
    {.long_name = "--json", .help = "print the checks as one JSON object when they are done (docs/cli.md)"},
};
inline constexpr auto verify_option_specs = join_options(verify_own_option_specs, target_option_specs);

/// `shannot verify [--profile P] [--target NAME | --ssh ...]`.
inline int verify_command(const Subcommand& self, std::span<const std::string> args) {
    auto parsed = parse_args(args, self.options, "shannot verify", Positionals::interleaved);
    if (!parsed) return report(parsed.error());
    if (parsed->help) return print_help(self);
    if (!parsed->positionals.empty())
        return report(Failure{status::usage, "verify: unexpected argument '" + parsed->positionals.front() + "'",
                              "see `shannot verify --help`"});
    auto destination = resolve_destination(TargetOptions::from(*parsed));
    if (!destination) return report(destination.error());
    const std::string spec = parsed->get("--profile").value_or(destination->profile);
    const bool json = parsed->has("--json");
    if (!destination->ssh) {
#if SHANNOT_PLATFORM_LINUX
        auto profile = resolve_profile<shannot::PosixSpawnTransport>(spec);
        if (!profile) return report(profile.error());
        return run_verify(std::move(*profile), shannot::PosixSpawnTransport(), true, "this host", json);
#else
        return report(local_sandbox_unavailable());
#endif
    }
    auto profile = resolve_profile<shannot::OpenSshProcessTransport>(spec);
    if (!profile) return report(profile.error());
    return run_verify(std::move(*profile), shannot::OpenSshProcessTransport(*destination->ssh), false,
                      destination->label, json);
}

inline constexpr Subcommand verify_subcommand{
    .name = "verify",
    .summary = "prove the sandbox holds here or on a remote: runs, read-only, no network, no env",
    .run = verify_command,
    .options = verify_option_specs,
    .help = {.usage = "shannot verify [--profile P] [--json] [--target NAME | --ssh [USER@]HOST[:PORT] [-i KEY] "
                      "[--known-hosts FILE]]",
             .about = R"(Proves the sandbox holds where it would run, one line per check (ok or FAIL):
  - an allowed command runs (the first of `ls /`, `true`, `cat /dev/null` the profile admits)
  - a write into a read-only bind fails
  - the network is unreachable: on this host, connecting to a TCP listener verify opens on
    127.0.0.1 fails from inside (needs bash in the sandbox); everywhere, /proc/net/dev
    inside lists the loopback interface only
  - the caller's environment is invisible: a random variable set in verify's environment is
    absent inside, and inside there are only the profile's variables (and PWD, set by bwrap)
Checks after the first run `sh`, `cat` (and `bash` on this host), which the profile may not
allow: they run with a copy of the profile whose allowlist adds them, and verify says so.
With --json, one object when all checks are done: each check's title, ok and detail, and the
warnings of the sandbox (binds skipped for a missing source). docs/cli.md lists the fields.
Exit status 0 when every check passes, 1 otherwise.
)"},
};

}  // namespace shannot_cli
