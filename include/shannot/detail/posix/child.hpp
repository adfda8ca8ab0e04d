// SPDX-License-Identifier: MIT
// spawn_child: posix_spawnp with pipes, an exit descriptor, reset signals and no stray descriptors.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <shannot/detail/posix/pipe.hpp>
#include <shannot/detail/posix/process.hpp>
#include <shannot/detail/posix/spawn_setup.hpp>
#include <shannot/detail/posix/unique_fd.hpp>
#include <shannot/error.hpp>

namespace shannot::detail {

/// A helper process (ssh): what to run and where its output goes.
struct ChildSpec {
    std::vector<std::string> argv;  ///< argv[0] is looked up on PATH
    bool pipe_stdin = false;        ///< else /dev/null
    std::string log_file{};         ///< when set: stdout is /dev/null and stderr appends here (no pipes)
    /// When set, the descriptor is this file (a fifo of a kept connection), opened in the child
    /// with the flags beside it, instead of a pipe or /dev/null.
    std::string stdin_path{}, stdout_path{}, stderr_path{};
    int stdin_flags = O_RDONLY, stdout_flags = O_WRONLY, stderr_flags = O_WRONLY;
    /// In a session of its own (setsid), for a process meant to outlive us: no terminal's
    /// hangup or Ctrl-C reaches it.
    bool new_session = false;
};

struct Child {
    ChildProcess process;   ///< waiting for it and signalling it
    UniqueFd in, out, err;  ///< parent ends, non-blocking
};

[[nodiscard]] inline Result<Child> spawn_child(const ChildSpec& spec) {
    UniqueFd in_r, in_w, out_r, out_w, err_r, err_w;
    const bool piped = spec.log_file.empty() && spec.stdout_path.empty() && spec.stderr_path.empty();
    if ((spec.pipe_stdin && !make_pipe(in_r, in_w)) ||
        (piped && (!make_pipe(out_r, out_w) || !make_pipe(err_r, err_w))))
        return fail(errc::spawn_failed, std::string("cannot create pipes: ") + std::strerror(errno));
    if (piped) {
        enlarge_output_pipe(out_w.get());
        enlarge_output_pipe(err_w.get());
    }

    SpawnSetup setup;
    if (spec.new_session) setup.new_session();
    if (spec.pipe_stdin)
        setup.dup_to(in_r.get(), 0);
    else
        setup.open_at(0, "/dev/null", O_RDONLY);
    if (piped) {
        setup.dup_to(out_w.get(), 1);
        setup.dup_to(err_w.get(), 2);
    } else {
        setup.open_at(1, "/dev/null", O_WRONLY);
        if (spec.log_file.empty())
            setup.open_at(2, "/dev/null", O_WRONLY);
        else
            setup.open_at(2, spec.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    }
    // File actions run in order: a path given for a descriptor replaces what was set up above.
    if (!spec.stdin_path.empty()) setup.open_at(0, spec.stdin_path.c_str(), spec.stdin_flags);
    if (!spec.stdout_path.empty()) setup.open_at(1, spec.stdout_path.c_str(), spec.stdout_flags);
    if (!spec.stderr_path.empty()) setup.open_at(2, spec.stderr_path.c_str(), spec.stderr_flags);
    setup.close_from(3);

    std::vector<char*> argv;
    for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = setup.spawn(&pid, argv[0], argv.data(), spawn_environment(), true);
    if (rc != 0) {
        if (rc == E2BIG)
            return fail(errc::invalid_argument,
                        "the command line is too long for the kernel: pass large data as input");
        return fail(errc::spawn_failed, "cannot start " + spec.argv[0] + ": " + std::strerror(rc));
    }
    auto process = ChildProcess::watch(pid);
    if (!process) return propagate(process);
    Child child;
    child.process = std::move(*process);
    child.in = std::move(in_w);
    child.out = std::move(out_r);
    child.err = std::move(err_r);
    for (int fd : {child.in.get(), child.out.get(), child.err.get()})
        if (fd >= 0) set_nonblocking(fd);
    return child;
}

}  // namespace shannot::detail
