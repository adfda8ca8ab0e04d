// SPDX-License-Identifier: MIT
// The session agent (detail/scripts/session_agent.sh) driven by hand over pipes, as PID 1 of a
// bwrap sandbox that mounts what a session mounts (session_mount_args), so that a test can send
// any request line and see every byte. No doctest macros (see script_driver.hpp).
#pragma once

#include <shannot/shannot.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "script_driver.hpp"

namespace shannot_test {

struct AgentOptions {
    std::string working_directory = "/tmp";             ///< the session's directory
    std::string path = "/usr/local/bin:/usr/bin:/bin";  ///< PATH in the sandbox
    std::string tmpfs_size{};       ///< bytes, for the agent's own tmpfs (default: the default tmpfs_bytes)
    std::string shell = "/bin/sh";  ///< copied in as the agent's shell
};

class AgentDriver : public ScriptDriver {
public:
    explicit AgentDriver(const std::string& hello, const AgentOptions& options = {})
        : ScriptDriver(argv(hello, options)) {}

    /// bwrap over a read-only view of this host, with a session's own mounts and the agent as
    /// PID 1; the shell is opened at fd 5 by a shell that then execs bwrap.
    static std::vector<std::string> argv(const std::string& hello, const AgentOptions& options) {
        std::vector<std::string> args = {"sh",
                                         "-c",
                                         "exec \"$@\" 5<\"$0\"",
                                         options.shell,
                                         "bwrap",
                                         "--ro-bind",
                                         "/",
                                         "/",
                                         "--dev",
                                         "/dev",
                                         "--proc",
                                         "/proc",
                                         "--tmpfs",
                                         "/tmp",
                                         "--unshare-user",
                                         "--unshare-pid",
                                         "--unshare-ipc",
                                         "--unshare-net",
                                         "--die-with-parent",
                                         "--new-session",
                                         "--cap-drop",
                                         "ALL",
                                         "--clearenv",
                                         "--setenv",
                                         "PATH",
                                         options.path,
                                         "--chdir",
                                         options.working_directory};
        // The agent's tmpfs is sized as a session sizes it: tmpfs_size, else the default tmpfs_bytes.
        const auto mounts = options.tmpfs_size.empty()
                                ? shannot::detail::session_mount_args()
                                : shannot::detail::session_mount_args(std::stoull(options.tmpfs_size));
        args.insert(args.end(), mounts.begin(), mounts.end());
        args.insert(args.end(), {"--", std::string(shannot::detail::session_agent_shell), "-c",
                                 std::string(shannot::detail::session_agent_script), "shannot", hello});
        return args;
    }
};

}  // namespace shannot_test
