// SPDX-License-Identifier: MIT
// The shannot tool built with SHANNOT_PORTABLE_POSIX=1 (examples/cli/shannot-portable): its remote
// commands work over a real sshd, and a local run is refused with one clear line.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <poll.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/sshd_fixture.hpp"

namespace {

/// The portable tool as meson builds it, or empty when SHANNOT_BUILD_ROOT does not lead to it.
std::string portable_cli() {
    const char* root = std::getenv("SHANNOT_BUILD_ROOT");
    if (!root) return {};
    const auto path = std::filesystem::path(root) / "examples" / "cli" / "shannot-portable";
    return ::access(path.c_str(), X_OK) == 0 ? path.string() : std::string();
}

struct Ran {
    int status = -1;
    std::string out, err;
};

/// Runs the tool with HOME and XDG_CONFIG_HOME in `home` (through env(1)); killed after 60 s.
Ran run_tool(const std::string& home, const std::vector<std::string>& args) {
    std::vector<std::string> argv = {"env", "HOME=" + home, "XDG_CONFIG_HOME=" + home, portable_cli()};
    argv.insert(argv.end(), args.begin(), args.end());
    Ran ran;
    auto child = shannot::detail::spawn_child({.argv = argv});
    REQUIRE_MESSAGE(child, child.error().describe());
    bool open[2] = {true, true};
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    char buffer[8192];
    while ((open[0] || open[1]) && std::chrono::steady_clock::now() < deadline) {
        pollfd fds[2] = {{open[0] ? child->out.get() : -1, POLLIN, 0}, {open[1] ? child->err.get() : -1, POLLIN, 0}};
        if (::poll(fds, 2, 100) <= 0) continue;
        for (int i = 0; i < 2; ++i) {
            if (!fds[i].revents) continue;
            const ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
            if (n > 0)
                (i == 0 ? ran.out : ran.err).append(buffer, static_cast<std::size_t>(n));
            else if (n == 0 || errno != EAGAIN)
                open[i] = false;
        }
    }
    if (open[0] || open[1]) child->process.signal(SIGKILL);
    const auto status = child->process.reap();
    if (status && WIFEXITED(*status)) ran.status = WEXITSTATUS(*status);
    return ran;
}

}  // namespace

TEST_CASE("portable cli: remote commands run over ssh; a local run is refused in one line") {
    if (portable_cli().empty()) {
        if (shannot_test::in_ci())
            FAIL("examples/cli/shannot-portable is not built under $SHANNOT_BUILD_ROOT (CI=true)");
        MESSAGE("skipped: examples/cli/shannot-portable is not built");
        return;
    }
    const auto* sshd = shannot_test::shared_sshd();
    if (!sshd) {
        if (shannot_test::in_ci()) FAIL("sshd could not be started (CI=true)");
        MESSAGE("skipped: sshd could not be started");
        return;
    }
    char templ[] = "/tmp/shannot-cli-portable-XXXXXX";
    REQUIRE(::mkdtemp(templ) != nullptr);
    const std::string home = templ;
    const auto key = (sshd->dir() / "client_key").string();
    const auto known_hosts = (sshd->dir() / "known_hosts").string();
    const auto address = shannot_test::SshdFixture::user() + "@127.0.0.1:" + std::to_string(sshd->port());
    const std::vector<std::string> ssh = {"--ssh", address, "-i", key, "--known-hosts", known_hosts};

    auto args = ssh;
    args.insert(args.end(), {"ls", "/"});
    auto r = run_tool(home, args);
    CHECK_MESSAGE(r.status == 0, r.err);
    CHECK(r.out.find("usr\n") != std::string::npos);

    // A deadline and the remote kill behind it: minimal plus `sleep`, from a profile file.
    const char* source_root = std::getenv("SHANNOT_SOURCE_ROOT");
    REQUIRE(source_root != nullptr);
    auto profile = nlohmann::json::parse(std::ifstream(std::string(source_root) + "/examples/profiles/minimal.json"));
    profile["name"] = "sleepy";
    profile["allowed_commands"].push_back("sleep");
    const auto profile_path = home + "/sleepy.json";
    std::ofstream(profile_path) << profile.dump();
    args = ssh;
    args.insert(args.end(), {"--profile", profile_path, "--timeout", "0.5", "sleep", "30"});
    const auto started = std::chrono::steady_clock::now();
    r = run_tool(home, args);
    CHECK(r.status == 124);  // timed out, as timeout(1) says it
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(10));

    REQUIRE(run_tool(home, {"remote", "add", "fixture", address, "--key", key, "--known-hosts", known_hosts}).status ==
            0);
    r = run_tool(home, {"remote", "test", "fixture"});
    CHECK_MESSAGE(r.status == 0, r.out << r.err);
    r = run_tool(home, {"verify", "--target", "fixture"});
    CHECK_MESSAGE(r.status == 0, r.out << r.err);
    CHECK(r.out.find("ok    only the loopback interface exists") != std::string::npos);

    // Without a host: the local transport does not exist in this build.
    r = run_tool(home, {"ls", "/"});
    CHECK(r.status == 120);
    CHECK(r.out.empty());
    CHECK(r.err.find("remote Linux hosts only") != std::string::npos);
    CHECK(r.err.find("--ssh") != std::string::npos);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    std::filesystem::remove_all(home);
}
