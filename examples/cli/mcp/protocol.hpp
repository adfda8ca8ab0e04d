// SPDX-License-Identifier: MIT
// shannot mcp: the protocol revisions served, which one a request speaks, and result envelopes.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include <tl/expected.hpp>

#include "jsonrpc.hpp"

namespace shannot_cli::mcp {

/// The stateless revision: no `initialize`, every request says its version in `_meta`.
inline constexpr std::string_view modern_version = "2026-07-28";
/// The `initialize` era: the newest first (answered when a client asks for one we do not know).
inline constexpr std::array<std::string_view, 2> legacy_versions{"2025-11-25", "2025-06-18"};

inline constexpr std::string_view meta_protocol_version = "io.modelcontextprotocol/protocolVersion";
inline constexpr std::string_view meta_client_capabilities = "io.modelcontextprotocol/clientCapabilities";
inline constexpr std::string_view meta_client_info = "io.modelcontextprotocol/clientInfo";
inline constexpr std::string_view meta_server_info = "io.modelcontextprotocol/serverInfo";

/// How long a 2026-07-28 client may cache lists and profile reads: they are fixed for the life
/// of the process, and "private" because they come from this user's profiles and config.
inline constexpr int list_ttl_ms = 300000;

/// Which revision a request speaks, and who sent it (for the audit log).
struct Envelope {
    bool modern = false;
    std::string client_name;  ///< 2026-07-28: from _meta; legacy: filled in from `initialize`
};

[[nodiscard]] inline json supported_versions() {
    json all = json::array({std::string(modern_version)});
    for (auto v : legacy_versions) all.push_back(std::string(v));
    return all;
}

/// Reads `params._meta`: a request carrying `io.modelcontextprotocol/protocolVersion` is served
/// as 2026-07-28, and must then name a version we speak and carry the client's capabilities.
[[nodiscard]] inline tl::expected<Envelope, RpcError> read_envelope(const json& params) {
    Envelope e;
    const auto meta = params.find("_meta");
    if (meta == params.end()) return e;
    if (!meta->is_object())
        return tl::make_unexpected(RpcError{rpc_error::invalid_params, "params._meta must be an object"});
    const auto version = meta->find(meta_protocol_version);
    if (version == meta->end()) return e;
    if (!version->is_string())
        return tl::make_unexpected(
            RpcError{rpc_error::invalid_params, "_meta." + std::string(meta_protocol_version) + " must be a string"});
    if (*version != modern_version) {
        // A legacy version here is a client mixing eras; tell it what this server speaks.
        return tl::make_unexpected(
            RpcError{rpc_error::unsupported_version,
                     "unsupported protocol version '" + version->get<std::string>() + "' in _meta",
                     {{"supported", supported_versions()}, {"requested", *version}}});
    }
    const auto caps = meta->find(meta_client_capabilities);
    if (caps == meta->end() || !caps->is_object())
        return tl::make_unexpected(
            RpcError{rpc_error::invalid_params, "_meta." + std::string(meta_client_capabilities) +
                                                    " is required (an object) with protocol version " +
                                                    std::string(modern_version)});
    e.modern = true;
    if (const auto info = meta->find(meta_client_info); info != meta->end() && info->is_object()) {
        if (const auto name = info->find("name"); name != info->end() && name->is_string())
            e.client_name = name->get<std::string>();
    }
    return e;
}

/// The version an `initialize` is answered with: the client's when we speak it, else our newest.
[[nodiscard]] inline std::string negotiate_legacy(std::string_view requested) {
    for (auto v : legacy_versions)
        if (v == requested) return std::string(v);
    return std::string(legacy_versions.front());
}

[[nodiscard]] inline json server_info() {
    return {{"name", "shannot"}, {"title", "Shannot sandbox"}, {"version", shannot::version_string}};
}

[[nodiscard]] inline json server_capabilities() {
    return {{"tools", {{"listChanged", false}}}, {"resources", json::object()}, {"prompts", json::object()}};
}

/// A text content block.
[[nodiscard]] inline json text_block(std::string text) { return {{"type", "text"}, {"text", std::move(text)}}; }

/// Adds what 2026-07-28 requires of every result (`resultType`), and of list and read results
/// (`ttlMs`, `cacheScope`). Legacy results go out as they are.
[[nodiscard]] inline json finish_result(json result, const Envelope& envelope, bool cacheable) {
    if (!envelope.modern) return result;
    result["resultType"] = "complete";
    if (cacheable) {
        result["ttlMs"] = list_ttl_ms;
        result["cacheScope"] = "private";
    }
    return result;
}

}  // namespace shannot_cli::mcp
