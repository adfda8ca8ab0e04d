// SPDX-License-Identifier: MIT
// The shannot tool: `shannot mcp`: the sandbox as an MCP server on stdio, and `mcp config`.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <shannot/shannot.hpp>

#include "args.hpp"
#include "common.hpp"
#include "mcp/audit.hpp"
#include "mcp/client_config.hpp"
#include "mcp/places.hpp"
#include "mcp/server.hpp"
#include "mcp/tools.hpp"
#include "subcommand.hpp"
#include "target.hpp"

namespace shannot_cli {

namespace detail {

inline constexpr OptionSpec mcp_option_specs[] = {
    {.long_name = "--profile",
     .metavar = "P",
     .help = "serve this profile (repeatable): a built-in, NAME for NAME.json in a profile folder, or a path. Default: "
             "the built-ins and every profile file `shannot profiles` finds",
     .repeatable = true},
    {.long_name = "--target",
     .metavar = "NAME",
     .help = "also serve each profile on this remote from the config file (repeatable; no ssh connection is made "
             "until a tool runs there)",
     .repeatable = true},
    {.long_name = "--ssh",
     .metavar = "[USER@]HOST[:PORT]",
     .help = "also serve each profile on HOST over the system ssh (repeatable; tools are named after HOST)",
     .repeatable = true},
    {.long_name = "--identity", .short_name = "-i", .metavar = "KEY", .help = "ssh private key for the remotes"},
    {.long_name = "--known-hosts", .metavar = "FILE", .help = "ssh known_hosts file for the remotes"},
    {.long_name = "--no-local", .help = "serve the remotes only (e.g. where this host has no bwrap)"},
    {.long_name = "--warm",
     .help = "one warm sandbox per profile and place, kept for every call: files in its tmpfs and its working "
             "directory persist between calls. Default: a fresh sandbox per call"},
    {.long_name = "--timeout",
     .metavar = "SECONDS",
     .help = "a call's timeout when it gives none (default 30; a call may ask for up to 600)"},
    {.long_name = "--max-output",
     .metavar = "BYTES",
     .help = "output kept per stream and call: its head and tail (default 262144, at most 4194304)"},
    {.long_name = "--audit",
     .metavar = "FILE",
     .help = "append one JSON line per tool call to FILE (time, client, tool, profile, host, argv, exit, duration, "
             "bytes, limit_exceeded, error)"},
    {.long_name = "--client",
     .metavar = "NAME",
     .help = "with `mcp config`: the client to print the configuration of (claude-desktop, claude-code, codex, "
             "cursor)"},
};

inline int mcp_wake_fd = -1;

inline void on_mcp_signal(int) {
    const char byte = 1;
    [[maybe_unused]] auto n = ::write(mcp_wake_fd, &byte, 1);
}

/// The server's settings from its options.
[[nodiscard]] inline Expected<mcp::Settings> mcp_settings(const ParsedArgs& parsed) {
    mcp::Settings settings;
    settings.warm = parsed.has("--warm");
    if (auto m = parsed.get("--max-output")) {
        const auto n = parse_unsigned(*m);
        if (!n || *n < 1 || *n > (4u << 20))
            return usage_error("--max-output: '" + *m + "' is not a byte count from 1 to 4194304",
                               "e.g. --max-output 65536");
        settings.max_output = static_cast<std::size_t>(*n);
    }
    if (auto t = parsed.get("--timeout")) {
        auto timeout = parse_timeout(*t);
        if (!timeout) return tl::make_unexpected(std::move(timeout.error()));
        if (!*timeout || **timeout > settings.max_timeout)
            return usage_error("--timeout: '" + *t + "': a call's timeout must be above 0 and at most 600 s",
                               "e.g. --timeout 60");
        settings.default_timeout = **timeout;
    }
    return settings;
}

/// The server's arguments for `mcp config`, with every path made absolute.
[[nodiscard]] inline std::vector<std::string> server_args(const ParsedArgs& parsed) {
    std::vector<std::string> args = {"mcp"};
    const auto absolute = [](const std::string& p) {
        std::error_code ec;
        const auto a = std::filesystem::absolute(p, ec);
        return ec ? p : a.lexically_normal().string();
    };
    for (const auto& o : parsed.options) {
        if (o.name == "--client") continue;
        args.push_back(o.name);
        if (o.name == "--no-local" || o.name == "--warm") continue;  // flags
        const bool path = o.name == "--audit" || o.name == "--identity" || o.name == "--known-hosts" ||
                          (o.name == "--profile" && looks_like_path(o.value));
        args.push_back(path ? absolute(o.value) : o.value);
    }
    return args;
}

/// From here on fd 1 is stderr and fd 0 is /dev/null: the protocol streams live on descriptors
/// of their own (close-on-exec), so nothing this process or its children print or read by
/// mistake can corrupt them.
[[nodiscard]] inline Expected<std::pair<int, int>> take_protocol_streams() {
    const int in = ::fcntl(0, F_DUPFD_CLOEXEC, 3);
    const int out = ::fcntl(1, F_DUPFD_CLOEXEC, 3);
    if (in < 0 || out < 0)
        return failure(status::internal, std::string("mcp: stdin and stdout must be open: ") + std::strerror(errno));
    const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0 || ::dup2(2, 1) < 0 || ::dup2(null, 0) < 0)
        return failure(status::internal,
                       std::string("mcp: cannot set up the standard streams: ") + std::strerror(errno));
    ::close(null);
    return std::pair{in, out};
}

}  // namespace detail

/// `shannot mcp ...` and `shannot mcp config ...`.
inline int mcp_command(const Subcommand& self, std::span<const std::string> args) {
    auto parsed = parse_args(args, self.options, "shannot mcp", Positionals::interleaved);
    if (!parsed) return report(parsed.error());
    if (parsed->help) return print_help(self);
    const bool config = !parsed->positionals.empty() && parsed->positionals.front() == "config";
    if (parsed->positionals.size() > (config ? 1u : 0u))
        return report(Failure{status::usage, "mcp: unexpected argument '" + parsed->positionals.back() + "'",
                              "see `shannot mcp --help`"});
    auto settings = detail::mcp_settings(*parsed);
    if (!settings) return report(settings.error());
    if (config) {
        const auto client = parsed->get("--client");
        std::string names;
        for (auto c : mcp::config_clients) names += (names.empty() ? "" : ", ") + std::string(c);
        if (!client) return report(Failure{status::usage, "mcp config: --client is required", "one of " + names});
        if (std::find(mcp::config_clients.begin(), mcp::config_clients.end(), *client) == mcp::config_clients.end())
            return report(Failure{status::usage, "mcp config: unknown client '" + *client + "'", "one of " + names});
        // The options must make a server that starts: check them as the server will.
        auto profiles = mcp::load_profiles(parsed->all("--profile"));
        if (!profiles) return report(profiles.error());
        auto places = mcp::resolve_places(*parsed, parsed->has("--no-local"));
        if (!places) return report(places.error());
        return mcp::print_client_config(*client, detail::server_args(*parsed));
    }
    if (parsed->has("--client"))
        return report(
            Failure{status::usage, "mcp: --client belongs to `shannot mcp config`", "see `shannot mcp --help`"});

    auto streams = detail::take_protocol_streams();
    if (!streams) return report(streams.error());
    auto profiles = mcp::load_profiles(parsed->all("--profile"));
    if (!profiles) return report(profiles.error());
    if (profiles->empty()) return report(Failure{status::bad_profile, "mcp: no profile to serve", "pass --profile P"});
    auto places = mcp::resolve_places(*parsed, parsed->has("--no-local"));
    if (!places) return report(places.error());
    mcp::AuditLog audit;
    if (auto file = parsed->get("--audit"))
        if (auto ok = audit.open(*file); !ok) return report(ok.error());

    int wake[2];
    if (::pipe2(wake, O_CLOEXEC | O_NONBLOCK) != 0) return report(Failure{status::internal, "mcp: pipe2 failed", ""});
    detail::mcp_wake_fd = wake[1];
    struct sigaction sa {};
    sa.sa_handler = detail::on_mcp_signal;
    sigemptyset(&sa.sa_mask);
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);  // a client gone mid-write is an error from write(), not a death
    if (::isatty(streams->first))
        note("mcp: an MCP server reads JSON-RPC from stdin; register it with a client (`shannot mcp config --help`)");

    mcp::Catalog catalog(std::move(*profiles), std::move(*places), *settings);
    {
        mcp::Server server(catalog, audit, streams->first, streams->second, wake[0]);
        server.serve();
    }
    return status::ok;
}

inline constexpr Subcommand mcp_subcommand{
    .name = "mcp",
    .summary = "serve the sandbox to AI agents: an MCP server on stdio (`mcp config`: register it)",
    .run = mcp_command,
    .options = detail::mcp_option_specs,
    .help = {.usage = "shannot mcp [--profile P]... [--target NAME]... [--ssh [USER@]HOST[:PORT]]... [OPTIONS]\n"
                      "       shannot mcp config --client claude-desktop|claude-code|codex|cursor [SERVER OPTIONS]",
             .about = R"(Serves the sandbox to AI agents over the Model Context Protocol: newline-delimited JSON-RPC 2.0
on stdin and stdout (stdout carries nothing else; notes go to stderr). Speaks the `initialize`
revisions 2025-11-25 and 2025-06-18 and the stateless 2026-07-28 (server/discover). Exits when
stdin closes, stopping every command it started. docs/mcp.md describes the tools.

Tools, in this order: sandbox_<profile> for each profile on this host, sandbox_<target>_<profile>
on each remote; then read_file, list_directory, search_files, grep_content, check_disk_usage and
check_memory, each with a `profile` argument. Resources: sandbox://profiles/<name>. Prompts:
the diagnostic ones some profile allows the commands of.
)",
             .notes = R"(`mcp config --client NAME` prints what registers this server with that client (a JSON snippet,
a `claude mcp add` command, or TOML for Codex); it writes nothing. The other options given with
it are passed on to the server, paths made absolute.
)"},
};

}  // namespace shannot_cli
