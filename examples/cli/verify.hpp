// SPDX-License-Identifier: MIT
// The shannot tool: `verify`, which proves on this host (or a remote) that the sandbox holds.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <shannot/shannot.hpp>

#include "args.hpp"
#include "common.hpp"
#include "probes.hpp"
#include "profiles.hpp"
#include "subcommand.hpp"
#include "target.hpp"

namespace shannot_cli {

/// Runs every check with `transport` and prints them; returns 0 when all pass.
template <class T>
int run_verify(shannot::SandboxProfile<T> profile, T transport, bool local, const std::string& where) {
    using detail::Check;
    const std::string secret_name = "SHANNOT_VERIFY_" + detail::random_hex(8);
    ::setenv(secret_name.c_str(), detail::random_hex(8).c_str(), 1);  // must stay invisible inside

    shannot::SandboxManager<T> base(profile, transport);
    // The probes need tools the profile may not allow: a copy of it that does.
    std::vector<std::string> added;
    auto probe_profile = profile;
    const std::vector<std::string> tools = local ? std::vector<std::string>{"sh", "cat", "bash"} : std::vector<std::string>{"sh", "cat"};
    if (!profile.allowed_commands.empty())  // an empty allowlist admits everything already
        for (const auto& tool : tools)
            if (auto r = base.dry_run({tool}); !r && r.error().code == shannot::errc::command_refused) {
                probe_profile.allowed_commands.push_back(tool);
                added.push_back(tool);
            }
    shannot::SandboxManager<T> probe(std::move(probe_profile), transport);
    shannot::RunOptions options;
    options.timeout = std::chrono::seconds(20);
    options.max_output = 1u << 16;

    std::string out = "verify: profile '" + profile.name + "' on " + where + "\n";
    if (!added.empty()) {
        std::string list;
        for (const auto& a : added) list += (list.empty() ? "" : ", ") + a;
        out += "note: the checks after the first also run " + list + " with a copy of profile '" + profile.name +
               "' whose allowlist adds them\n";
    }
    write_all(1, out);

    std::vector<Check> checks;
    auto emit = [&](Check c) {
        write_all(1, std::string(c.ok ? "  ok    " : "  FAIL  ") + c.title + ": " + one_line(c.detail) + "\n");
        checks.push_back(std::move(c));
    };
    std::optional<std::string> broken;  // set when the sandbox cannot run at all
    auto run = [&](const std::vector<std::string>& command, Check& c) -> std::optional<shannot::ProcessResult> {
        if (broken) {
            c.detail = "not run: " + *broken;
            return std::nullopt;
        }
        auto r = probe.run(command, options);
        if (!r) {
            c.detail = detail::quoted(command) + ": " + r.error().describe();
            return std::nullopt;
        }
        return std::move(*r);
    };

    {  // 1. an allowed command runs, with the profile as it is
        Check c{false, "an allowed command runs", {}};
        bool tried = false;
        for (const std::vector<std::string>& command : {std::vector<std::string>{"ls", "/"}, {"true"}, {"cat", "/dev/null"}}) {
            auto admitted = base.dry_run(command);
            if (!admitted && admitted.error().code == shannot::errc::command_refused) continue;
            tried = true;
            auto r = admitted ? base.run(command, options) : shannot::Result<shannot::ProcessResult>(tl::make_unexpected(admitted.error()));
            if (!r) {
                c.detail = detail::quoted(command) + ": " + r.error().describe();
                broken = "the sandbox did not run (see the first check)";
            } else {
                c.ok = r->exit_code == 0;
                c.detail = detail::quoted(command) + " exited " + std::to_string(r->exit_code) +
                           (r->signal ? " (signal " + std::to_string(r->signal) + ")" : "") + " in " +
                           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(r->duration).count()) + " ms";
            }
            break;
        }
        if (!tried) c.detail = "the profile admits none of `ls /`, `true`, `cat /dev/null`";
        emit(std::move(c));
    }
    {  // 2. a write into a read-only bind fails
        const shannot::SandboxBind* target = nullptr;
        for (const auto& b : profile.binds) {
            if (!b.read_only) continue;
            std::error_code ec;
            const bool usable = local ? std::filesystem::is_directory(b.source, ec) : !b.optional;
            if (usable) {
                target = &b;
                break;
            }
        }
        Check c{false, "a write to a read-only path fails", {}};
        if (!target) {
            c.detail = "the profile has no read-only bind of a directory to try";
        } else {
            const auto tag = detail::random_hex(6);
            const std::string script =
                "f=\"$1/.shannot-verify-$2\"; if ( : > \"$f\" ) 2>/dev/null; then rm -f \"$f\"; echo WRITABLE; "
                "elif [ -d \"$1\" ]; then echo READONLY; else echo MISSING; fi";
            if (auto r = run({"sh", "-c", script, "verify", target->target, tag}, c)) {
                std::error_code ec;
                const bool host_file = local && std::filesystem::exists(target->source + "/.shannot-verify-" + tag, ec);
                c.ok = r->stdout_data == "READONLY\n" && !host_file;
                c.detail = r->stdout_data == "READONLY\n" ? "creating a file in " + target->target + " was refused"
                           : r->stdout_data == "WRITABLE\n" ? "a file could be created in " + target->target
                           : r->stdout_data == "MISSING\n"  ? target->target + " is not a directory inside the sandbox"
                                                            : "the probe printed '" + r->stdout_data + r->stderr_data + "'";
            }
        }
        emit(std::move(c));
    }
    if (local) {  // 3. a listener on this host's loopback cannot be reached from inside
        Check c{false, "the network is unreachable", {}};
        detail::Listener listener;
        if (listener.port() == 0 || !listener.reachable_here()) {
            c.detail = "could not open a TCP listener on 127.0.0.1 to test against";
        } else {
            const auto port = std::to_string(listener.port());
            const std::string script =
                "if : 2>/dev/null 3<>\"/dev/tcp/127.0.0.1/$1\"; then echo CONNECTED; else echo BLOCKED; fi";
            if (auto r = run({"bash", "-c", script, "verify", port}, c)) {
                const int arrived = listener.drain();
                c.ok = r->stdout_data == "BLOCKED\n" && arrived == 0;
                c.detail = c.ok ? "connecting to 127.0.0.1:" + port + " (listening on this host) failed inside"
                           : r->stdout_data == "CONNECTED\n" || arrived > 0
                               ? "the sandbox connected to 127.0.0.1:" + port + " on this host"
                               : "the probe (bash) did not run: exit " + std::to_string(r->exit_code) + ": " + r->stderr_data;
            }
        }
        emit(std::move(c));
    }
    {  // 4. only the loopback interface exists inside
        Check c{false, "only the loopback interface exists", {}};
        if (auto r = run({"cat", "/proc/net/dev"}, c)) {
            std::vector<std::string> names;
            std::size_t start = 0, line_no = 0;
            const auto& text = r->stdout_data;
            while (start < text.size()) {
                const auto end = std::min(text.find('\n', start), text.size());
                const auto line = text.substr(start, end - start);
                start = end + 1;
                if (++line_no <= 2) continue;  // two header lines
                const auto colon = line.find(':');
                if (colon == std::string::npos) continue;
                const auto first = line.find_first_not_of(' ');
                names.push_back(line.substr(first, colon - first));
            }
            std::string list;
            for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
            c.ok = r->exit_code == 0 && names == std::vector<std::string>{"lo"};
            c.detail = r->exit_code != 0 ? "`cat /proc/net/dev` exited " + std::to_string(r->exit_code) + ": " + r->stderr_data
                                         : "/proc/net/dev inside lists " + (list.empty() ? std::string("nothing") : list);
        }
        emit(std::move(c));
    }
    {  // 5. the caller's environment is invisible
        Check c{false, "the caller's environment is invisible", {}};
        if (auto r = run({"cat", "/proc/self/environ"}, c)) {
            std::set<std::string> names;
            std::size_t start = 0;
            const auto& text = r->stdout_data;
            while (start < text.size()) {
                const auto end = std::min(text.find('\0', start), text.size());
                const auto entry = text.substr(start, end - start);
                start = end + 1;
                names.insert(entry.substr(0, entry.find('=')));
            }
            std::string foreign;
            for (const auto& n : names)  // bwrap itself sets PWD to the working directory
                if (!profile.environment.count(n) && n != "PWD") foreign += (foreign.empty() ? "" : ", ") + n;
            const bool secret_seen = names.count(secret_name) > 0;
            c.ok = r->exit_code == 0 && !secret_seen && foreign.empty();
            c.detail = r->exit_code != 0 ? "`cat /proc/self/environ` exited " + std::to_string(r->exit_code)
                       : secret_seen     ? secret_name + ", set in verify's environment, is visible inside"
                       : !foreign.empty() ? "variables not in the profile are visible inside: " + foreign
                                          : secret_name + " (set here) is absent inside, which holds only " + detail::join(names) +
                                                " (the profile's, and PWD from bwrap)";
        }
        emit(std::move(c));
    }
    std::size_t passed = 0;
    for (const auto& c : checks) passed += c.ok ? 1 : 0;
    write_all(1, "verify: " + std::to_string(passed) + " of " + std::to_string(checks.size()) + " checks passed" +
                     (passed == checks.size() ? "\n" : "; the sandbox does not hold as expected here\n"));
    return passed == checks.size() ? status::ok : status::check_failed;
}

/// Options of `verify`: the profile and where to run.
inline constexpr OptionSpec verify_own_option_specs[] = {
    {.long_name = "--profile",
     .metavar = "P",
     .help = "as for `shannot run` (default: the remote's profile, else minimal)"},
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
    if (!destination->ssh) {
        auto profile = resolve_profile<shannot::PosixSpawnTransport>(spec);
        if (!profile) return report(profile.error());
        return run_verify(std::move(*profile), shannot::PosixSpawnTransport(), true, "this host");
    }
    auto profile = resolve_profile<shannot::OpenSshProcessTransport>(spec);
    if (!profile) return report(profile.error());
    return run_verify(std::move(*profile), shannot::OpenSshProcessTransport(*destination->ssh), false, destination->label);
}

inline constexpr Subcommand verify_subcommand{
    .name = "verify",
    .summary = "prove the sandbox holds here or on a remote: runs, read-only, no network, no env",
    .run = verify_command,
    .options = verify_option_specs,
    .help =
        {.usage =
             "shannot verify [--profile P] [--target NAME | --ssh [USER@]HOST[:PORT] [-i KEY] [--known-hosts FILE]]",
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
Exit status 0 when every check passes, 1 otherwise.
)"},
};

}  // namespace shannot_cli
