// SPDX-License-Identifier: MIT
// Runs a command with the test suite's private sshd up (tests/support/sshd_fixture.hpp), for the
// MCP client tests of remote tools: `with_sshd PROGRAM ARGS...` exports SHANNOT_TEST_SSH_PORT,
// _USER, _KEY and _KNOWN_HOSTS, runs PROGRAM, stops sshd, and exits with PROGRAM's status (77,
// meson's "skipped", when no sshd can start here; a failure under CI=true).
#define DOCTEST_CONFIG_DISABLE  // the fixture's doctest macros are not used outside the suite
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "../support/sshd_fixture.hpp"

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: with_sshd PROGRAM [ARGS...]\n");
        return 2;
    }
    shannot_test::SshdFixture sshd;
    if (!sshd.running()) {
        std::fprintf(stderr, "with_sshd: sshd could not start: %s\n", sshd.error().c_str());
        return shannot_test::in_ci() ? 1 : 77;
    }
    const auto connection = sshd.connection();
    ::setenv("SHANNOT_TEST_SSH_PORT", std::to_string(sshd.port()).c_str(), 1);
    ::setenv("SHANNOT_TEST_SSH_USER", connection.user.c_str(), 1);
    ::setenv("SHANNOT_TEST_SSH_KEY", connection.identity_file.c_str(), 1);
    ::setenv("SHANNOT_TEST_SSH_KNOWN_HOSTS", connection.known_hosts_file.c_str(), 1);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::execvp(argv[1], argv + 1);
        std::perror("with_sshd: exec");
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
