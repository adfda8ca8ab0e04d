// SPDX-License-Identifier: MIT
// Test support: one way to get a working sandbox for each transport, so behaviour tests run
// once per transport (TEST_CASE_TEMPLATE) against real bwrap and a real sshd.
#pragma once

#include <shannot/shannot.hpp>

#include "sandbox_env.hpp"
#include "sshd_fixture.hpp"

namespace shannot_test {

template <class T>
struct TransportFixture;

template <>
struct TransportFixture<shannot::PosixSpawnTransport> {
    static const char* unavailable() { return bwrap_usable() ? nullptr : "bwrap is not usable on this machine"; }
    static shannot::PosixSpawnTransport transport() { return shannot::PosixSpawnTransport(); }
};

template <>
struct TransportFixture<shannot::OpenSshProcessTransport> {
    static const char* unavailable() {
        if (!bwrap_usable()) return "bwrap is not usable on this machine";
        return shared_sshd() ? nullptr : "sshd could not be started";
    }
    /// One transport (one pool of connections) shared by the tests, as an application would.
    static shannot::OpenSshProcessTransport transport() {
        static shannot::OpenSshProcessTransport shared(shared_sshd()->connection());
        return shared;
    }
};

template <class T>
shannot::SandboxManager<T> make_sandbox(shannot::SandboxProfile<T> profile = test_profile<T>()) {
    return shannot::SandboxManager<T>(std::move(profile), TransportFixture<T>::transport());
}

}  // namespace shannot_test

/// Skips when the transport cannot run here, except under CI=true, where that is a failure.
#define SHANNOT_REQUIRE_TRANSPORT(T)                                                           \
    do {                                                                                       \
        if (const char* why = shannot_test::TransportFixture<T>::unavailable()) {              \
            if (shannot_test::in_ci()) FAIL(std::string(why) << " (CI=true)");                 \
            MESSAGE("skipped: " << std::string(why));                                          \
            return;                                                                            \
        }                                                                                      \
    } while (0)

#define SHANNOT_TRANSPORTS shannot::PosixSpawnTransport, shannot::OpenSshProcessTransport
