// SPDX-License-Identifier: MIT
// shannot mcp config --client NAME: the snippet that registers this server with an MCP client.
#pragma once

#include <unistd.h>

#include <array>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "../common.hpp"
#include "../encoding.hpp"
#include "jsonrpc.hpp"

namespace shannot_cli::mcp {

inline constexpr std::array<std::string_view, 4> config_clients{"claude-desktop", "claude-code", "codex", "cursor"};

/// This executable's absolute path: clients start the server from a folder of their own.
[[nodiscard]] inline std::string own_path() {
    char exe[4096];
    if (const auto n = ::readlink("/proc/self/exe", exe, sizeof exe - 1); n > 0)
        return std::string(exe, static_cast<std::size_t>(n));
    return "shannot";
}

/// A word as a POSIX shell reads it back unchanged.
[[nodiscard]] inline std::string shell_word(std::string_view word) {
    const bool plain =
        !word.empty() &&
        word.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./:=@%+,-") ==
            std::string_view::npos;
    if (plain) return std::string(word);
    std::string out = "'";
    for (char c : word) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

/// The environment the server needs from the client: where its config and profile folders are,
/// when this shell points them somewhere a client would not (clients pass few variables).
[[nodiscard]] inline json config_env() {
    json env = json::object();
    if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && xdg[0] == '/') env["XDG_CONFIG_HOME"] = xdg;
    return env;
}

/// The snippet for `client` (one of config_clients) on stdout, and where it goes on stderr.
/// `args` are the server's arguments, from "mcp" on, with paths already absolute.
inline int print_client_config(std::string_view client, const std::vector<std::string>& args) {
    const std::string command = own_path();
    const json env = config_env();
    json server = {{"command", command}, {"args", args}};
    if (!env.empty()) server["env"] = env;
    std::string out, where;
    if (client == "claude-desktop" || client == "cursor") {
        out = dump_json(json{{"mcpServers", {{"shannot", server}}}}, 2) + "\n";
        where = client == "cursor"
                    ? "merge it into ~/.cursor/mcp.json (all projects) or .cursor/mcp.json (one project)"
                    : "merge it into claude_desktop_config.json (Claude Desktop: Settings > Developer > Edit Config), "
                      "then restart Claude Desktop";
    } else if (client == "claude-code") {
        out = "claude mcp add --transport stdio --scope user";
        for (const auto& [name, value] : env.items())
            out += " --env " + shell_word(name + "=" + value.get<std::string>());
        out += " shannot -- " + shell_word(command);
        for (const auto& a : args) out += " " + shell_word(a);
        out += "\n";
        where = "run it in a shell (--scope project writes .mcp.json instead, to share with a project)";
    } else {
        // TOML basic strings take JSON's escapes.
        std::string list;
        for (const auto& a : args) list += (list.empty() ? "" : ", ") + dump_json(a);
        out = "[mcp_servers.shannot]\ncommand = " + dump_json(command) + "\nargs = [" + list + "]\n";
        if (!env.empty()) out += "env = { XDG_CONFIG_HOME = " + dump_json(env["XDG_CONFIG_HOME"]) + " }\n";
        where = "add it to ~/.codex/config.toml";
    }
    write_all(1, out);
    note("mcp config: " + where);
    return status::ok;
}

}  // namespace shannot_cli::mcp
