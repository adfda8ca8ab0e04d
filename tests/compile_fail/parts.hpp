// SPDX-License-Identifier: MIT
// Well-formed policy parts the compile-fail TUs start from, each then breaking exactly one thing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <shannot/sandbox_manager.hpp>

namespace cf {

/// A process handle with every member ProcessHandle asks for.
struct GoodProcess {
    int stdin_fd() const { return -1; }
    int stdout_fd() const { return -1; }
    int stderr_fd() const { return -1; }
    int exit_fd() const { return -1; }
    void close_stdin() {}
    void terminate() {}
    void kill() {}
    shannot::ExitInfo wait() { return {}; }
    const std::vector<std::string>& argv() const { return argv_; }
    std::vector<std::string> argv_;
};

/// The same handle without wait().
struct ProcessWithoutWait {
    int stdin_fd() const { return -1; }
    int stdout_fd() const { return -1; }
    int stderr_fd() const { return -1; }
    int exit_fd() const { return -1; }
    void close_stdin() {}
    void terminate() {}
    void kill() {}
    const std::vector<std::string>& argv() const { return argv_; }
    std::vector<std::string> argv_;
};

/// A transport with exactly the members the Transport concept requires.
template <class Process>
struct TransportOf {
    using process_type = Process;
    static constexpr std::string_view name = "compile-fail";
    static constexpr bool checks_local_paths = false;
    shannot::Result<process_type> launch(const shannot::LaunchSpec&) {
        return shannot::fail(shannot::errc::spawn_failed, "never launched");
    }
};

using GoodTransport = TransportOf<GoodProcess>;

/// An output policy with every member OutputPolicy asks for.
struct GoodOutput {
    explicit GoodOutput(std::size_t) {}
    void append(std::string_view) {}
    std::string take() { return {}; }
    std::uint64_t dropped() const { return 0; }
};

}  // namespace cf

/// Instantiates the host class (its static_asserts run with the class definition).
#define CF_INSTANTIATE(...) static_assert(sizeof(shannot::SandboxManager<__VA_ARGS__>) > 0)
