// SPDX-License-Identifier: MIT
// A remote run: the same read-only sandbox on another host, through the system ssh.
#include <shannot/shannot.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

int main(int argc, char** argv) {
    if (argc < 6) {
        std::fprintf(stderr,
                     "usage: %s HOST PORT USER IDENTITY_FILE KNOWN_HOSTS_FILE [--dry-run] [COMMAND...]\n"
                     "  USER, IDENTITY_FILE and KNOWN_HOSTS_FILE may be '' for ssh's defaults.\n"
                     "  --dry-run prints the bwrap arguments the remote would run, without connecting.\n",
                     argv[0]);
        return 2;
    }
    shannot::SshConnection connection;
    connection.host = argv[1];
    char* end = nullptr;
    const long port = std::strtol(argv[2], &end, 10);
    if (*argv[2] == '\0' || *end != '\0' || port < 1 || port > 65535)
        return std::fprintf(stderr, "port '%s' is not a number from 1 to 65535\n", argv[2]), 2;
    connection.port = static_cast<std::uint16_t>(port);
    connection.user = argv[3];
    connection.identity_file = argv[4];
    connection.known_hosts_file = argv[5];
    // With a known-hosts file of our own, trust only what is in it; otherwise trust on first use.
    if (!connection.known_hosts_file.empty()) connection.host_key_policy = shannot::HostKeyPolicy::yes;

    int first = 6;
    const bool dry = argc > first && std::string_view(argv[first]) == "--dry-run";
    first += dry;
    std::vector<std::string> command(argv + first, argv + argc);
    if (command.empty()) command = {"ls", "/"};

    // A profile names paths on the remote host; nothing is checked against this machine's files.
    auto profile = shannot::builtin_profile<shannot::OpenSshProcessTransport>(shannot::default_profile_name);
    if (!profile) return std::fprintf(stderr, "%s\n", profile.error().describe().c_str()), 2;
    shannot::SshSandbox sandbox(*profile, shannot::OpenSshProcessTransport(connection));

    if (dry) {
        auto args = sandbox.dry_run(command);
        if (!args) return std::fprintf(stderr, "shannot: %s\n", args.error().describe().c_str()), 3;
        std::printf("would run on %s:%u: bwrap", connection.host.c_str(), static_cast<unsigned>(connection.port));
        for (const auto& a : *args) std::printf(" %s", a.c_str());
        std::printf("\n");
        return 0;
    }

    auto result = sandbox.run(command, {.timeout = std::chrono::seconds(30)});
    if (!result) return std::fprintf(stderr, "shannot: %s\n", result.error().describe().c_str()), 3;
    std::fwrite(result->stdout_data.data(), 1, result->stdout_data.size(), stdout);
    std::fwrite(result->stderr_data.data(), 1, result->stderr_data.size(), stderr);
    std::printf(
        "[remote exit %d after %lld ms]\n", result->exit_code,
        static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(result->duration).count()));
    return result->exit_code >= 0 ? result->exit_code : 128 + result->signal;
}
