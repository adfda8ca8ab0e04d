// SPDX-License-Identifier: MIT
// The shannot tool: UTF-8 validation, base64, and a run's result as one JSON object.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <shannot/shannot.hpp>

namespace shannot_cli {

/// Well-formed UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates, nothing past
/// U+10FFFF. (nlohmann::json throws when dumping anything else.)
[[nodiscard]] inline bool is_valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) {
            ++i;
            continue;
        }
        std::size_t len;
        std::uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF)
            len = 2, cp = c & 0x1Fu;
        else if (c >= 0xE0 && c <= 0xEF)
            len = 3, cp = c & 0x0Fu;
        else if (c >= 0xF0 && c <= 0xF4)
            len = 4, cp = c & 0x07u;
        else
            return false;  // continuation byte first, 0xC0/0xC1 (overlong), or > 0xF4
        if (s.size() - i < len) return false;
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0u) != 0x80u) return false;
            cp = (cp << 6) | (cc & 0x3Fu);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000)) return false;  // overlong
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

/// Standard base64 (RFC 4648 §4) with '=' padding.
[[nodiscard]] inline std::string base64_encode(std::string_view in) {
    static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        const std::uint32_t v = (std::uint32_t(static_cast<unsigned char>(in[i])) << 16) |
                                (std::uint32_t(static_cast<unsigned char>(in[i + 1])) << 8) |
                                std::uint32_t(static_cast<unsigned char>(in[i + 2]));
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += alphabet[(v >> 6) & 63];
        out += alphabet[v & 63];
    }
    if (const auto rest = in.size() - i; rest > 0) {
        std::uint32_t v = std::uint32_t(static_cast<unsigned char>(in[i])) << 16;
        if (rest == 2) v |= std::uint32_t(static_cast<unsigned char>(in[i + 1])) << 8;
        out += alphabet[(v >> 18) & 63];
        out += alphabet[(v >> 12) & 63];
        out += rest == 2 ? alphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

/// Serialises for output. Strings that are not UTF-8 (a command's argv may hold any bytes)
/// get U+FFFD instead of a throw; the bytes that matter, stdout and stderr, are base64 already.
[[nodiscard]] inline std::string dump_json(const nlohmann::json& j, int indent = -1) {
    return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

/// The version of every JSON object the tool prints (`run --json`, `profiles --json`, `lint
/// --json`, `verify --json`, `remote list --json`: their "schema_version"). Adding a field keeps
/// it; removing or changing the meaning of one raises it. docs/cli.md lists the fields.
inline constexpr int json_schema_version = 1;

/// The whole result. Streams are text when they are valid UTF-8, else base64, and say which.
/// The limits in force, as a profile's "limits" writes them.
[[nodiscard]] inline nlohmann::json limits_to_json(const shannot::ResourceLimits& limits) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& spec : shannot::limit_specs) j[std::string(spec.name)] = limits.*spec.value;
    return j;
}

/// "memory_bytes=4294967296 processes=256 ...", for notes.
[[nodiscard]] inline std::string limits_text(const shannot::ResourceLimits& limits) {
    std::string text;
    for (const auto& spec : shannot::limit_specs)
        text += (text.empty() ? "" : " ") + std::string(spec.name) + "=" + std::to_string(limits.*spec.value);
    return text;
}

[[nodiscard]] inline nlohmann::json result_to_json(const shannot::ProcessResult& r, std::string_view profile,
                                                   std::string_view transport, int exit_status) {
    nlohmann::json j;
    j["schema_version"] = json_schema_version;
    j["command"] = r.command;
    j["argv"] = r.argv;
    j["exit_code"] = r.exit_code;
    j["signal"] = r.signal;
    j["timed_out"] = r.timed_out;
    j["cancelled"] = r.cancelled;
    const auto stream = [&j](const char* name, const std::string& data) {
        const bool text = is_valid_utf8(data);
        j[name] = text ? data : base64_encode(data);
        j[std::string(name) + "_encoding"] = text ? "utf-8" : "base64";
    };
    stream("stdout", r.stdout_data);
    stream("stderr", r.stderr_data);
    j["stdout_truncated"] = r.stdout_truncated;
    j["stderr_truncated"] = r.stderr_truncated;
    j["stdout_dropped"] = r.stdout_dropped;
    j["stderr_dropped"] = r.stderr_dropped;
    j["duration_ms"] = std::chrono::duration<double, std::milli>(r.duration).count();
    j["profile"] = std::string(profile);
    j["transport"] = std::string(transport);
    j["status"] = exit_status;  // what `shannot` exits with
    j["warnings"] = r.warnings;
    j["limits"] = limits_to_json(r.limits);
    j["limits_mechanism"] = r.limits_mechanism;
    j["limit_exceeded"] = r.limit_exceeded ? nlohmann::json(*r.limit_exceeded) : nlohmann::json(nullptr);
    return j;
}

/// An error as JSON, for --json callers that read stdout only.
[[nodiscard]] inline nlohmann::json error_to_json(std::string_view code, std::string_view message,
                                                  std::string_view hint, int exit_status) {
    return {{"schema_version", json_schema_version},
            {"error",
             {{"code", std::string(code)},
              {"message", std::string(message)},
              {"hint", std::string(hint)},
              {"status", exit_status}}}};
}

}  // namespace shannot_cli
