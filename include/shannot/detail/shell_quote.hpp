// SPDX-License-Identifier: MIT
// POSIX-sh quoting of argv words for the remote shell, and a pure re-parser that proves it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <shannot/error.hpp>

namespace shannot::detail {

/// Bytes that need no quoting anywhere in a word. `=` and `~` are left out on purpose: a word
/// starting `a=` is an assignment when first, and `~` starts a tilde expansion.
[[nodiscard]] constexpr bool shell_safe_byte(unsigned char c) noexcept {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
           c == '.' || c == '/' || c == ',' || c == ':' || c == '+' || c == '@' || c == '%';
}

/// One word for a POSIX shell: unchanged when every byte is safe, else inside single quotes,
/// where nothing is special but the quote itself, which becomes `'\''`. Every byte but NUL
/// arrives intact; the empty word becomes `''`.
[[nodiscard]] inline std::string shell_quote(std::string_view word) {
    bool plain = !word.empty();
    for (unsigned char c : word) plain = plain && shell_safe_byte(c);
    if (plain) return std::string(word);
    std::string out;
    out.reserve(word.size() + 2);
    out += '\'';
    for (char c : word) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    out += '\'';
    return out;
}

/// Words joined by single spaces, each quoted: what ssh hands the remote login shell.
[[nodiscard]] inline std::string shell_join(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& w : words) {
        if (!out.empty()) out += ' ';
        out += shell_quote(w);
    }
    return out;
}

/// Appends `word` quoted for sh (shell_quote), a newline inside it written as '"$nl"': the
/// shells reading our request lines define `nl`, and a line then holds no newline but its last.
inline void append_request_word(std::string& line, std::string_view word) {
    for (char c : shell_quote(word)) {
        if (c == '\n')
            line += "'\"$nl\"'";
        else
            line += c;
    }
}

/// One request line for a remote dispatcher or a session agent (both `eval` it): every word quoted for sh, with a newline inside a word
/// written as '"$nl"' so the line holds no newline byte but its last.
[[nodiscard]] inline std::string dispatcher_request(const std::vector<std::string>& words) {
    std::string line;
    for (const auto& w : words) {
        if (!line.empty()) line += ' ';
        append_request_word(line, w);
    }
    line += '\n';
    return line;
}

/// `bytes` as a printf format that prints exactly them, on one line and without a quote: letters,
/// digits and most punctuation as they are, every other byte (NUL, newline, `\\`, `%`, `'`, ...)
/// as a three-digit octal escape. How the dispatcher's B and S requests carry the syscall filter
/// (docs/protocol.md).
[[nodiscard]] inline std::string printf_escape(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 4);
    for (const char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        if (c >= 0x20 && c < 0x7f && c != '\\' && c != '%' && c != '\'') {
            out += static_cast<char>(c);
        } else {
            out += '\\';
            out += static_cast<char>('0' + (c >> 6));
            out += static_cast<char>('0' + ((c >> 3) & 7));
            out += static_cast<char>('0' + (c & 7));
        }
    }
    return out;
}

/// Splits a command line back into words the way a POSIX shell would, for the subset a quoted
/// line may use: blanks and newlines between words, single quotes, double quotes (where `\`
/// escapes only `$`, `` ` ``, `"`, `\` and newline) and backslash escapes. Any byte that would
/// make the shell expand, redirect or start another command while unquoted is an error, so a
/// successful parse proves the line runs exactly one simple command with exactly these words.
[[nodiscard]] inline Result<std::vector<std::string>> shell_split(std::string_view line) {
    std::vector<std::string> words;
    std::string word;
    bool in_word = false;
    auto position = [&](std::size_t i) { return " at byte " + std::to_string(i); };
    for (std::size_t i = 0; i < line.size(); ++i) {
        const char c = line[i];
        if (c == ' ' || c == '\t' || c == '\n') {
            if (in_word) words.push_back(std::move(word));
            word.clear();
            in_word = false;
            continue;
        }
        in_word = true;
        if (c == '\'') {
            const auto close = line.find('\'', i + 1);
            if (close == std::string_view::npos)
                return fail(errc::invalid_argument, "unterminated single quote" + position(i));
            word.append(line.substr(i + 1, close - i - 1));
            i = close;
        } else if (c == '"') {
            std::size_t j = i + 1;
            for (; j < line.size() && line[j] != '"'; ++j) {
                const char d = line[j];
                if (d == '$' || d == '`')
                    return fail(errc::invalid_argument, "expansion inside double quotes" + position(j));
                if (d == '\\' && j + 1 < line.size()) {
                    const char e = line[j + 1];
                    if (e == '$' || e == '`' || e == '"' || e == '\\') {
                        word += e;
                        ++j;
                        continue;
                    }
                    if (e == '\n') {
                        ++j;
                        continue;
                    }
                }
                word += d;
            }
            if (j >= line.size()) return fail(errc::invalid_argument, "unterminated double quote" + position(i));
            i = j;
        } else if (c == '\\') {
            if (i + 1 >= line.size()) return fail(errc::invalid_argument, "trailing backslash" + position(i));
            if (line[i + 1] != '\n') word += line[i + 1];  // backslash-newline joins lines
            ++i;
        } else if (shell_safe_byte(static_cast<unsigned char>(c)) || c == '=' || (c == '~' && !word.empty())) {
            word += c;
        } else {
            return fail(errc::invalid_argument, std::string("unquoted special byte 0x") +
                                                    "0123456789abcdef"[(c >> 4) & 15] + "0123456789abcdef"[c & 15] +
                                                    position(i));
        }
    }
    if (in_word) words.push_back(std::move(word));
    return words;
}

}  // namespace shannot::detail
