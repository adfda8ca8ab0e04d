// SPDX-License-Identifier: MIT
// shannot mcp: JSON-RPC 2.0 over stdio. Bounded line splitting, message checks, one writer.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <nlohmann/json.hpp>

#include <shannot/shannot.hpp>

#include "../common.hpp"
#include "../encoding.hpp"

namespace shannot_cli::mcp {

using json = nlohmann::json;

/// JSON-RPC and MCP error codes.
namespace rpc_error {
inline constexpr int parse_error = -32700;
inline constexpr int invalid_request = -32600;
inline constexpr int method_not_found = -32601;
inline constexpr int invalid_params = -32602;
inline constexpr int internal_error = -32603;
inline constexpr int resource_not_found = -32002;   ///< legacy era; 2026-07-28 uses invalid_params
inline constexpr int unsupported_version = -32022;  ///< 2026-07-28: data {supported, requested}
}  // namespace rpc_error

/// A JSON-RPC error before it is sent.
struct RpcError {
    int code = rpc_error::internal_error;
    std::string message;
    json data = nullptr;
};

/// One line of the stream, or what stands in for a line longer than the cap: its first and last
/// bytes (to find the request's id in) and its length.
struct Line {
    bool too_long = false;
    std::string_view text;  ///< the line without '\n' (and '\r'), when not too long
    std::string_view head, tail;
    std::uint64_t size = 0;
};

/// Splits a byte stream into lines of at most `max_line` bytes. A longer line is not kept: its
/// first 4 KiB and last 256 bytes are, and the rest is dropped as it arrives, so memory stays
/// at the cap whatever a client sends.
class LineSplitter {
public:
    static constexpr std::size_t head_keep = 4096;
    static constexpr std::size_t tail_keep = 256;

    explicit LineSplitter(std::size_t max_line) : max_(max_line) {}

    /// Calls `on_line(const Line&)` for each line that `bytes` completes.
    template <class F>
    void feed(std::string_view bytes, F&& on_line) {
        while (!bytes.empty()) {
            const auto newline = bytes.find('\n');
            const auto piece = bytes.substr(0, newline);
            if (over_) {
                keep_tail(piece);
                over_size_ += piece.size();
            } else if (line_.size() + piece.size() > max_) {
                over_ = true;
                over_size_ = line_.size() + piece.size();
                head_ = line_.substr(0, head_keep);
                if (head_.size() < head_keep) head_.append(piece.substr(0, head_keep - head_.size()));
                tail_.clear();
                keep_tail(line_);
                keep_tail(piece);
                line_.clear();
                line_.shrink_to_fit();
            } else {
                line_.append(piece);
            }
            if (newline == std::string_view::npos) return;
            bytes.remove_prefix(newline + 1);
            emit(on_line);
        }
    }

    /// At end of stream: the last line if it had no '\n'.
    template <class F>
    void finish(F&& on_line) {
        if (over_ || !line_.empty()) emit(on_line);
    }

private:
    template <class F>
    void emit(F& on_line) {
        Line line;
        if (over_) {
            line.too_long = true;
            line.head = head_;
            line.tail = tail_;
            line.size = over_size_;
            on_line(static_cast<const Line&>(line));
            over_ = false;
            head_.clear();
            tail_.clear();
        } else {
            std::string_view text = line_;
            if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
            line.text = text;
            line.size = text.size();
            on_line(static_cast<const Line&>(line));
            line_.clear();
            if (line_.capacity() > (1u << 20)) line_.shrink_to_fit();  // one big request does not pin its buffer
        }
    }

    void keep_tail(std::string_view bytes) {
        if (bytes.size() >= tail_keep) {
            tail_.assign(bytes.substr(bytes.size() - tail_keep));
            return;
        }
        tail_.append(bytes);
        if (tail_.size() > tail_keep) tail_.erase(0, tail_.size() - tail_keep);
    }

    std::size_t max_;
    std::string line_;
    bool over_ = false;
    std::string head_, tail_;
    std::uint64_t over_size_ = 0;
};

namespace detail {

[[nodiscard]] inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/// The id of a JSON value `text` if it is one a request may carry (a string or a number).
[[nodiscard]] inline std::optional<json> id_value(std::string_view text) {
    auto value = json::parse(text.begin(), text.end(), nullptr, false);
    if (value.is_discarded() || !(value.is_string() || value.is_number())) return std::nullopt;
    return value;
}

/// `"id": VALUE }` at the very end of the line: the last member of the top-level object (how the
/// TypeScript SDK writes requests: `{...params, "jsonrpc": "2.0", "id": 7}`).
[[nodiscard]] inline std::optional<json> id_at_end(std::string_view tail) {
    while (!tail.empty() && is_space(tail.back())) tail.remove_suffix(1);
    if (tail.empty() || tail.back() != '}') return std::nullopt;
    tail.remove_suffix(1);
    while (!tail.empty() && is_space(tail.back())) tail.remove_suffix(1);
    std::size_t start = tail.size();
    if (!tail.empty() && tail.back() == '"') {
        // The opening quote: the previous '"' not escaped by an odd run of backslashes.
        std::size_t k = tail.size() - 1;
        while (true) {
            if (k == 0) return std::nullopt;
            --k;
            if (tail[k] != '"') continue;
            std::size_t slashes = 0;
            while (k >= slashes + 1 && tail[k - 1 - slashes] == '\\') ++slashes;
            if (slashes % 2 == 0) break;
        }
        start = k;
    } else {
        while (start > 0 && std::string_view("0123456789+-.eE").find(tail[start - 1]) != std::string_view::npos)
            --start;
    }
    auto value = id_value(tail.substr(start));
    if (!value) return std::nullopt;
    auto rest = tail.substr(0, start);
    while (!rest.empty() && is_space(rest.back())) rest.remove_suffix(1);
    if (rest.empty() || rest.back() != ':') return std::nullopt;
    rest.remove_suffix(1);
    while (!rest.empty() && is_space(rest.back())) rest.remove_suffix(1);
    if (rest.size() < 4 || rest.substr(rest.size() - 4) != "\"id\"") return std::nullopt;
    rest.remove_suffix(4);
    while (!rest.empty() && is_space(rest.back())) rest.remove_suffix(1);
    if (rest.empty() || (rest.back() != ',' && rest.back() != '{')) return std::nullopt;
    return value;
}

/// `{"jsonrpc": "2.0", "id": VALUE, ...`: an id among the first members, before any member
/// whose value is an object or an array (scanning those is left to a parser).
[[nodiscard]] inline std::optional<json> id_near_start(std::string_view head) {
    std::size_t i = 0;
    const auto skip = [&] {
        while (i < head.size() && is_space(head[i])) ++i;
    };
    const auto string_end = [&](std::size_t from) -> std::size_t {  // index after the closing quote
        for (std::size_t k = from + 1; k < head.size(); ++k) {
            if (head[k] == '\\')
                ++k;
            else if (head[k] == '"')
                return k + 1;
        }
        return std::string_view::npos;
    };
    skip();
    if (i >= head.size() || head[i] != '{') return std::nullopt;
    ++i;
    while (true) {
        skip();
        if (i >= head.size() || head[i] != '"') return std::nullopt;
        const auto key_end = string_end(i);
        if (key_end == std::string_view::npos) return std::nullopt;
        const auto key = head.substr(i, key_end - i);
        i = key_end;
        skip();
        if (i >= head.size() || head[i] != ':') return std::nullopt;
        ++i;
        skip();
        if (i >= head.size() || head[i] == '{' || head[i] == '[') return std::nullopt;
        std::size_t end = i;
        if (head[i] == '"') {
            end = string_end(i);
            if (end == std::string_view::npos) return std::nullopt;
        } else {
            while (end < head.size() && head[end] != ',' && head[end] != '}' && !is_space(head[end])) ++end;
        }
        if (key == "\"id\"") return id_value(head.substr(i, end - i));
        i = end;
        skip();
        if (i >= head.size() || head[i] != ',') return std::nullopt;
        ++i;
    }
}

}  // namespace detail

/// The id of a request too long to parse, read from the bytes kept of it; null when it cannot be
/// told (the error is then sent with id null, as JSON-RPC says).
[[nodiscard]] inline json recover_id(std::string_view head, std::string_view tail) {
    if (auto id = detail::id_at_end(tail)) return *id;
    if (auto id = detail::id_near_start(head)) return *id;
    return nullptr;
}

/// What a parsed message is.
struct Incoming {
    enum class Kind { request, notification, response, invalid } kind = Kind::invalid;
    json id = nullptr;  ///< request: its id; invalid: its id if readable, else null
    std::string method;
    json params = json::object();
    RpcError error;  ///< invalid: what to answer
};

/// Checks the JSON-RPC envelope of one message. MCP sends one object per line: batches (arrays)
/// are refused; params, when present, must be an object.
[[nodiscard]] inline Incoming classify(json message) {
    Incoming in;
    const auto invalid = [&](int code, std::string why) {
        in.kind = Incoming::Kind::invalid;
        in.error = RpcError{code, std::move(why), nullptr};
        return std::move(in);
    };
    if (message.is_array())
        return invalid(rpc_error::invalid_request, "batches are not supported: send one JSON-RPC message per line");
    if (!message.is_object()) return invalid(rpc_error::invalid_request, "a JSON-RPC message must be a JSON object");
    const auto id = message.find("id");
    const bool has_id = id != message.end();
    if (has_id && (id->is_string() || id->is_number())) in.id = *id;
    const auto version = message.find("jsonrpc");
    if (version == message.end() || *version != "2.0")
        return invalid(rpc_error::invalid_request, "\"jsonrpc\" must be \"2.0\"");
    const auto method = message.find("method");
    if (method == message.end()) {
        if (has_id && (message.contains("result") || message.contains("error"))) {
            in.kind = Incoming::Kind::response;
            return in;
        }
        return invalid(rpc_error::invalid_request, "a request needs \"method\" (a string)");
    }
    if (!method->is_string()) return invalid(rpc_error::invalid_request, "\"method\" must be a string");
    in.method = method->get<std::string>();
    if (has_id && !(id->is_string() || id->is_number()))
        return invalid(rpc_error::invalid_request, "\"id\" must be a string or a number");
    in.kind = has_id ? Incoming::Kind::request : Incoming::Kind::notification;
    if (const auto params = message.find("params"); params != message.end()) {
        if (!params->is_object()) {
            if (!has_id) return invalid(rpc_error::invalid_params, "\"params\" must be an object");
            return invalid(rpc_error::invalid_params, "\"params\" must be an object (MCP passes named parameters)");
        }
        in.params = std::move(*params);
    }
    return in;
}

[[nodiscard]] inline json make_result(const json& id, json result) {
    return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

[[nodiscard]] inline json make_error(const json& id, const RpcError& e) {
    json error = {{"code", e.code}, {"message", e.message}};
    if (!e.data.is_null()) error["data"] = e.data;
    return {{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(error)}};
}

[[nodiscard]] inline json make_notification(std::string method, json params) {
    return {{"jsonrpc", "2.0"}, {"method", std::move(method)}, {"params", std::move(params)}};
}

/// Writes messages to the protocol stream, one line each, whole: threads that answer at once
/// never interleave. Once the reader is gone every later send() returns false.
class Writer {
public:
    explicit Writer(int fd) : fd_(fd) {}

    bool send(const json& message) {
        std::string line = dump_json(message);  // no newline inside: strings escape theirs
        line += '\n';
        std::lock_guard lock(mutex_);
        if (broken_) return false;
        if (!write_all(fd_, line)) broken_ = true;
        return !broken_;
    }

    [[nodiscard]] bool broken() const { return broken_.load(); }

private:
    std::mutex mutex_;
    int fd_;
    std::atomic<bool> broken_{false};
};

}  // namespace shannot_cli::mcp
