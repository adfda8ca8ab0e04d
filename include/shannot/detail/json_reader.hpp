// SPDX-License-Identifier: MIT
// Strict JSON text → nlohmann::json without exceptions: refuses duplicate keys and deep nesting.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <shannot/error.hpp>

namespace shannot::detail {

inline constexpr std::size_t max_json_depth = 64;

/// A SAX handler that builds the DOM itself so it can refuse what nlohmann accepts silently
/// (a duplicate key keeps the last value there) and report errors without throwing.
///
/// A template only so that its bodies are compiled where a profile is parsed, not in every file
/// that includes shannot (docs/architecture.md, "Compile time").
template <class Json = nlohmann::json>
class StrictJsonBuilder {
public:
    using json = Json;
    using number_integer_t = typename json::number_integer_t;
    using number_unsigned_t = typename json::number_unsigned_t;
    using number_float_t = typename json::number_float_t;
    using string_t = typename json::string_t;
    using binary_t = typename json::binary_t;

    json root;
    std::string error;

    bool null() { return put(json(nullptr)); }
    bool boolean(bool v) { return put(json(v)); }
    bool number_integer(number_integer_t v) { return put(json(v)); }
    bool number_unsigned(number_unsigned_t v) { return put(json(v)); }
    bool number_float(number_float_t v, const string_t&) { return put(json(v)); }
    bool string(string_t& v) { return put(json(std::move(v))); }
    bool binary(binary_t&) { return refuse("binary values are not JSON"); }
    bool start_object(std::size_t) { return open(json::object()); }
    bool end_object() { return close(); }
    bool start_array(std::size_t) { return open(json::array()); }
    bool end_array() { return close(); }
    bool key(string_t& k) {
        json& object = *stack_.back();
        if (object.contains(k)) return refuse(join(path(), k) + ": duplicate key");
        key_ = std::move(k);
        return true;
    }
    bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& ex) {
        if (error.empty())
            error = "not valid JSON at byte " + std::to_string(position) + ": " + strip_prefix(ex.what());
        return false;
    }

private:
    std::vector<json*> stack_;
    std::vector<std::string> segments_;  // the JSON path of each open container
    std::string key_;

    static std::string join(const std::string& base, const std::string& key) {
        return base.empty() ? key : base + "." + key;
    }

    static std::string strip_prefix(std::string text) {
        // "[json.exception.parse_error.101] parse error at line 1, column 2: ..." → keep the reason.
        if (auto colon = text.find(": "); colon != std::string::npos && text.rfind("[json.exception", 0) == 0)
            text.erase(0, colon + 2);
        return text;
    }
    std::string path() const { return segments_.empty() ? std::string() : segments_.back(); }
    bool refuse(std::string why) {
        if (error.empty()) error = std::move(why);
        return false;
    }
    json* place(json value) {
        if (stack_.empty()) {
            root = std::move(value);
            return &root;
        }
        json& parent = *stack_.back();
        if (parent.is_array()) {
            parent.push_back(std::move(value));
            return &parent.back();
        }
        return &(parent[key_] = std::move(value));
    }
    bool put(json value) {
        place(std::move(value));
        return true;
    }
    bool open(json value) {
        if (stack_.size() >= max_json_depth)
            return refuse("nesting deeper than " + std::to_string(max_json_depth) + " levels");
        std::string segment;
        if (!stack_.empty())
            segment = stack_.back()->is_array() ? path() + "[" + std::to_string(stack_.back()->size()) + "]"
                                                : join(path(), key_);
        stack_.push_back(place(std::move(value)));
        segments_.push_back(std::move(segment));
        return true;
    }
    bool close() {
        stack_.pop_back();
        segments_.pop_back();
        return true;
    }
};

/// Parses `text` strictly. Never throws; errors say what and where. A template only so that
/// nlohmann's parser is instantiated where a profile is loaded, not in every file that includes
/// shannot (it is most of what the header costs to compile otherwise).
/// `Json` is a parameter for the same reason: with it, the body is checked only when instantiated.
template <class Text = std::string_view, class Json = nlohmann::json>
[[nodiscard]] Result<Json> parse_json_strict(const Text& text) {
    if (text.find_first_not_of(" \t\r\n") == std::string_view::npos)
        return fail(errc::invalid_profile, "empty document: expected a JSON object");
    StrictJsonBuilder<Json> builder;
    const bool ok = Json::sax_parse(text.begin(), text.end(), &builder, Json::input_format_t::json, /*strict=*/true);
    if (!ok) return fail(errc::invalid_profile, builder.error.empty() ? "not valid JSON" : builder.error);
    return std::move(builder.root);
}

}  // namespace shannot::detail
