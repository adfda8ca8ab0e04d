// SPDX-License-Identifier: MIT
// The remote half of the library in one program, for the symbol check (tools/check_symbols.py):
// built with SHANNOT_PORTABLE_POSIX=1 it must link no Linux-only symbol; built without, it does.
// Run with HOST PORT USER IDENTITY KNOWN_HOSTS, it also works: a fresh run, a session, operations.
#include <shannot/shannot.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
    if (argc < 6) {
        std::fprintf(stderr, "usage: %s HOST PORT USER IDENTITY_FILE KNOWN_HOSTS_FILE\n", argv[0]);
        return 2;
    }
    shannot::SshConnection connection;
    connection.host = argv[1];
    connection.port = static_cast<std::uint16_t>(std::atoi(argv[2]));
    connection.user = argv[3];
    connection.identity_file = argv[4];
    connection.known_hosts_file = argv[5];
    connection.host_key_policy = shannot::HostKeyPolicy::yes;

    auto profile = shannot::builtin_profile<shannot::OpenSshProcessTransport>("minimal");
    if (!profile) return std::fprintf(stderr, "%s\n", profile.error().describe().c_str()), 2;
    profile->allowed_commands.emplace_back("sleep");
    shannot::SshSandbox sandbox(*profile, shannot::OpenSshProcessTransport(connection));

    // A fresh run, then one stopped by its deadline and one cancelled: every primitive of the seam.
    auto listed = shannot::list_files(sandbox, "/");
    if (!listed) return std::fprintf(stderr, "list_files: %s\n", listed.error().describe().c_str()), 3;
    auto timed = sandbox.run({"sleep", "30"}, {.timeout = std::chrono::milliseconds(300)});
    if (!timed || !timed->timed_out) return std::fprintf(stderr, "the timeout did not stop sleep 30\n"), 3;
    shannot::CancelToken token;
    token.cancel();
    auto cancelled = sandbox.run({"sleep", "30"}, {.cancel = token});
    if (!cancelled || !cancelled->cancelled) return std::fprintf(stderr, "the cancel did not stop sleep 30\n"), 3;

    auto session = sandbox.open_session();
    if (!session) return std::fprintf(stderr, "open_session: %s\n", session.error().describe().c_str()), 3;
    auto in_session = shannot::read_file(*session, "/etc/hostname");
    auto stopped = session->run({"sleep", "30"}, {.timeout = std::chrono::milliseconds(300)});
    if (!stopped || !stopped->timed_out)
        return std::fprintf(stderr, "the session's timeout did not stop sleep 30\n"), 3;
    std::printf("ok: %zu entries in /, %s\n", listed->size(),
                in_session ? "read a file in a session" : "no /etc/hostname");
    return 0;
}
