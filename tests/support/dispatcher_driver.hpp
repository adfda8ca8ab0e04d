// SPDX-License-Identifier: MIT
// The ssh dispatcher (detail/scripts/dispatcher.sh) driven by hand: what the transport does, minus the
// transport, so that a test can withhold the K a local deadline would send and see every byte, and
// a benchmark can time the dispatcher alone. No doctest macros (see script_driver.hpp).
#pragma once

#include <shannot/shannot.hpp>

#include <string>
#include <vector>

#include "script_driver.hpp"

namespace shannot_test {

class DispatcherDriver : public ScriptDriver {
public:
    using ScriptDriver::ScriptDriver;

    /// The dispatcher run by `sh` here, over pipes.
    static std::vector<std::string> local(const std::string& hello) {
        return {"sh", "-c", std::string(shannot::detail::ssh_dispatcher_script), "shannot", hello};
    }
    /// The same, keeping its folder under `tmpdir` ($TMPDIR).
    static std::vector<std::string> local(const std::string& hello, const std::string& tmpdir) {
        auto argv = local(hello);
        argv.insert(argv.begin(), {"env", "TMPDIR=" + tmpdir});
        return argv;
    }
    /// The dispatcher run by `sh` on the far side of an ssh session to `c`, as the pool starts it.
    static std::vector<std::string> over_ssh(const shannot::SshConnection& c, const std::string& hello) {
        std::vector<std::string> argv{"ssh"};
        const auto options = shannot::ssh_base_options(c);
        argv.insert(argv.end(), options.begin(), options.end());
        auto remote = local(hello);
        remote.insert(remote.begin(), "exec");
        argv.insert(argv.end(), {"--", shannot::ssh_destination(c), shannot::detail::shell_join(remote)});
        return argv;
    }
};

}  // namespace shannot_test
