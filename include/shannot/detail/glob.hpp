// SPDX-License-Identifier: MIT
// glob_match: fnmatch(3) with FNM_PATHNAME in the C locale, byte for byte as glibc answers.
#pragma once

#include <cstddef>
#include <string_view>

namespace shannot::detail {

/// Pattern byte at `i`, or -1 past the end (so a NUL byte in a pattern is an ordinary byte).
[[nodiscard]] constexpr int glob_at(std::string_view pattern, std::size_t i) noexcept {
    return i < pattern.size() ? static_cast<unsigned char>(pattern[i]) : -1;
}

/// A POSIX class of the C locale: 1 when `c` is in class `name`, 0 when not, -1 for an unknown name.
[[nodiscard]] constexpr int posix_class(std::string_view name, unsigned char c) noexcept {
    const bool upper = c >= 'A' && c <= 'Z', lower = c >= 'a' && c <= 'z', digit = c >= '0' && c <= '9';
    const bool graph = c >= 33 && c <= 126;
    if (name == "alpha") return upper || lower;
    if (name == "digit") return digit;
    if (name == "alnum") return upper || lower || digit;
    if (name == "upper") return upper;
    if (name == "lower") return lower;
    if (name == "space") return c == ' ' || (c >= '\t' && c <= '\r');
    if (name == "blank") return c == ' ' || c == '\t';
    if (name == "punct") return graph && !(upper || lower || digit);
    if (name == "xdigit") return digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    if (name == "print") return graph || c == ' ';
    if (name == "graph") return graph;
    if (name == "cntrl") return c < 32 || c == 127;
    return -1;
}

/// How one bracket expression met one text byte.
struct BracketMatch {
    enum Kind { matched, not_matched, unterminated, broken } kind;
    std::size_t end = 0;  ///< past the closing ']' when matched
};

/// Matches the bracket expression opening at pattern[open] ('[') against byte `c`, exactly as
/// glibc's fnmatch(3) does in the C locale: `!`/`^` negate, a leading `]` is a member, `\`
/// escapes, ranges compare bytes, `[:class:]`, `[=c=]` and `[.c.]` (one-byte names only).
/// `unterminated`: no closing ']', the '[' is then an ordinary byte; `broken`: glibc gives up on
/// the pattern at this byte (a trailing `\` or `-`, an unknown class, a match in an unterminated
/// bracket), so nothing matches here.
[[nodiscard]] constexpr BracketMatch match_bracket(std::string_view pattern, std::size_t open,
                                                   unsigned char c) noexcept {
    constexpr std::size_t max_class_name = 2048;  // glibc 2.36 gives up on longer class names
    const auto at = [&](std::size_t i) { return glob_at(pattern, i); };
    const int fn = c;
    std::size_t p = open + 1;
    const bool negate = at(p) == '!' || at(p) == '^';
    if (negate) ++p;
    // A one-byte collating symbol "[.x.]" starting at `startp` (the '.'): sets p past it.
    const auto collating = [&](std::size_t startp, int& symbol) {
        std::size_t length = 0;
        for (p = startp;;) {
            const int d = at(++p);
            if (d == '.' && at(p + 1) == ']') {
                p += 2;
                break;
            }
            if (d == -1) return false;
            ++length;
        }
        symbol = at(startp + 1);
        return length == 1;
    };
    bool found = false;
    int ch = at(p++);
    while (!found) {
        bool member = false;  // `ch` is an ordinary member, maybe the start of a range
        int low = 0;
        bool range_start = false;  // `low` is set and a range may follow
        if (ch == '\\') {
            if (at(p) == -1) return {BracketMatch::broken};
            ch = at(p++);
            member = true;
        } else if (ch == '[' && at(p) == ':') {
            const std::size_t startp = p;
            std::size_t length = 0;
            bool name = true;
            for (;;) {
                if (length == max_class_name) return {BracketMatch::broken};
                const int d = at(++p);
                if (d == ':' && at(p + 1) == ']') {
                    p += 2;
                    break;
                }
                if (d < 'a' || d >= 'z') {  // glibc: cannot be a class name; '[' is a member
                    name = false;
                    break;
                }
                ++length;
            }
            if (!name) {
                p = startp;
                ch = '[';
                member = true;
            } else {
                const int in = posix_class(pattern.substr(startp + 1, length), c);
                if (in < 0) return {BracketMatch::broken};
                if (in == 1) {
                    found = true;
                    break;
                }
                ch = at(p++);
            }
        } else if (ch == '[' && at(p) == '=') {
            const std::size_t startp = p;
            const int symbol = at(p + 1);
            if (symbol == -1 || at(p + 2) != '=' || at(p + 3) != ']') {
                p = startp;
                ch = '[';
                member = true;
            } else {
                p += 4;
                if (fn == symbol) {
                    found = true;
                    break;
                }
                ch = at(p++);
            }
        } else if (ch == -1) {
            return {BracketMatch::unterminated};
        } else if (ch == '[' && at(p) == '.') {
            int symbol = 0;
            if (!collating(p, symbol)) return {BracketMatch::broken};
            const bool is_range = at(p) == '-' && at(p + 1) != -1;
            if (!is_range && fn == symbol) {
                found = true;
                break;
            }
            low = symbol;
            ch = at(p++);
            range_start = true;
        } else {
            member = true;
        }
        if (member) {
            const bool is_range = at(p) == '-' && at(p + 1) != -1 && at(p + 1) != ']';
            if (!is_range && ch == fn) {
                found = true;
                break;
            }
            low = ch;
            ch = at(p++);
            range_start = true;
        }
        if (range_start && ch == '-' && at(p) != ']') {
            int high = at(p++);
            if (high == '[' && at(p) == '.') {
                if (!collating(p, high)) return {BracketMatch::broken};
            } else {
                if (high == '\\') high = at(p++);
                if (high == -1) return {BracketMatch::broken};
            }
            if (low <= fn && fn <= high) {
                found = true;
                break;
            }
            ch = at(p++);
        }
        if (ch == ']') break;
    }
    if (!found) return negate ? BracketMatch{BracketMatch::matched, p} : BracketMatch{BracketMatch::not_matched};
    // Matched: skip the rest of the expression the way glibc does.
    for (int d = at(p++); d != ']'; d = at(p++)) {
        if (d == -1) return {BracketMatch::unterminated};
        if (d == '\\') {
            if (at(p) == -1) return {BracketMatch::broken};
            ++p;
        } else if (d == '[' && at(p) == ':') {
            const std::size_t startp = p;
            for (std::size_t length = 1;; ++length) {
                const int e = at(++p);
                if (length == max_class_name) return {BracketMatch::broken};
                if (e == ':' && at(p + 1) == ']') break;
                if (e < 'a' || e >= 'z') {
                    p = startp - 2;
                    break;
                }
            }
            p += 2;
        } else if (d == '[' && at(p) == '=') {
            if (at(p + 1) == -1 || at(p + 2) != '=' || at(p + 3) != ']') return {BracketMatch::broken};
            p += 4;
        } else if (d == '[' && at(p) == '.') {
            for (;;) {
                const int e = at(++p);
                if (e == -1) return {BracketMatch::broken};
                if (e == '.' && at(p + 1) == ']') break;
            }
            p += 2;
        }
    }
    return negate ? BracketMatch{BracketMatch::not_matched} : BracketMatch{BracketMatch::matched, p};
}

/// fnmatch(3) with FNM_PATHNAME in the C locale, byte for byte as glibc answers (a differential
/// test holds it to that): `*`, `?` and `[...]` never match '/'; `\` escapes (`\/` matches '/');
/// POSIX classes (`[[:digit:]]`); case-sensitive. Backtracks only to the last `*`, as glibc does,
/// so hostile patterns run in O(pattern x text), never exponential time.
[[nodiscard]] constexpr bool glob_match(std::string_view pattern, std::string_view text) noexcept {
    const auto at = [&](std::size_t i) { return glob_at(pattern, i); };
    std::size_t pi = 0, ti = 0;
    std::size_t star_p = std::string_view::npos, star_t = 0;
    while (ti < text.size()) {
        const int p = at(pi);
        const int c = static_cast<unsigned char>(text[ti]);
        if (p == '*') {
            // glibc never lets a `*` (or `*?...`) be followed directly by an escaped '/': it tries
            // the rest only before the next '/'. Such a pattern matches nothing from here on.
            std::size_t q = pi;
            while (at(q) == '*' || at(q) == '?') ++q;
            if (at(q) == '\\' && at(q + 1) == '/') return false;
            star_p = ++pi;
            star_t = ti;
            continue;
        }
        std::size_t next = std::string_view::npos;  // where the pattern goes on when this byte matched
        if (p == '?') {
            if (c != '/') next = pi + 1;
        } else if (p == '\\') {
            if (at(pi + 1) == c) next = pi + 2;  // a trailing '\' matches nothing
        } else if (p == '[') {
            if (c != '/') {
                const auto m = match_bracket(pattern, pi, static_cast<unsigned char>(c));
                if (m.kind == BracketMatch::matched)
                    next = m.end;
                else if (m.kind == BracketMatch::unterminated && c == '[')
                    next = pi + 1;
            }
        } else if (p == c) {
            next = pi + 1;
        }
        if (next != std::string_view::npos) {
            pi = next;
            ++ti;
            if (c == '/') star_p = std::string_view::npos;  // no '*' before this '/' may stretch across it
            continue;
        }
        // Mismatch: let the last '*' swallow one more byte, unless that byte is '/'.
        if (star_p == std::string_view::npos || text[star_t] == '/') return false;
        pi = star_p;
        ti = ++star_t;
    }
    while (at(pi) == '*') ++pi;
    return pi == pattern.size();
}

}  // namespace shannot::detail
