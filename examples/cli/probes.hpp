// SPDX-License-Identifier: MIT
// The shannot tool: what `verify` probes with: a loopback listener, random names, quoting.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <shannot/shannot.hpp>

namespace shannot_cli {

namespace detail {

[[nodiscard]] inline std::string random_hex(std::size_t bytes) {
    std::string out;
    static constexpr char hex[] = "0123456789abcdef";
    while (out.size() < bytes * 2) {
        unsigned char b[16];
        shannot::detail::random_bytes(b, sizeof b);
        for (std::size_t i = 0; i < sizeof b && out.size() < bytes * 2; ++i) {
            out += hex[b[i] >> 4];
            out += hex[b[i] & 15];
        }
    }
    return out;
}

/// A socket that no child inherits (SOCK_CLOEXEC is not in macOS: socket, then fcntl; the tool
/// spawns nothing from another thread meanwhile).
[[nodiscard]] inline int cloexec_socket(int fd) {
    if (fd >= 0 && ::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        ::close(fd);
        return -1;
    }
    return fd;
}

/// A TCP listener on 127.0.0.1 that the sandbox must not reach.
class Listener {
public:
    Listener() {
        fd_ = cloexec_socket(::socket(AF_INET, SOCK_STREAM, 0));
        if (fd_ < 0 || !shannot::detail::set_nonblocking(fd_)) {
            if (fd_ >= 0) ::close(fd_);
            fd_ = -1;
            return;
        }
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 8) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
            ::close(fd_);
            fd_ = -1;
            return;
        }
        port_ = ntohs(addr.sin_port);
    }
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
    ~Listener() {
        if (fd_ >= 0) ::close(fd_);
    }
    [[nodiscard]] int port() const { return fd_ >= 0 ? port_ : 0; }

    /// Connects from this host and accepts it: proves the listener works outside the sandbox.
    [[nodiscard]] bool reachable_here() {
        const int c = cloexec_socket(::socket(AF_INET, SOCK_STREAM, 0));
        if (c < 0) return false;
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<std::uint16_t>(port_));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        const bool ok = ::connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        ::close(c);
        return ok && drain() == 1;
    }
    /// Connections waiting to be accepted (each accepted and closed).
    int drain() {
        int n = 0;
        pollfd p{fd_, POLLIN, 0};
        while (::poll(&p, 1, n == 0 ? 200 : 0) == 1) {
            const int a = cloexec_socket(::accept(fd_, nullptr, nullptr));
            if (a < 0) break;
            ::close(a);
            ++n;
        }
        return n;
    }

private:
    int fd_ = -1;
    int port_ = 0;
};

/// The pieces of `text` between `separator`s ("a\nb\n" is {"a", "b"}: no empty piece after the last).
[[nodiscard]] inline std::vector<std::string> split(const std::string& text, char separator) {
    std::vector<std::string> pieces;
    for (std::size_t start = 0; start < text.size();) {
        const auto end = std::min(text.find(separator, start), text.size());
        pieces.push_back(text.substr(start, end - start));
        start = end + 1;
    }
    return pieces;
}

[[nodiscard]] inline std::string join(const std::set<std::string>& names) {
    std::string out;
    for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
    return out.empty() ? "nothing" : out;
}

[[nodiscard]] inline std::string quoted(const std::vector<std::string>& command) {
    std::string out;
    for (const auto& w : command) out += (out.empty() ? "" : " ") + w;
    return "`" + out + "`";
}

}  // namespace detail

}  // namespace shannot_cli
