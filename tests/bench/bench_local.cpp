// SPDX-License-Identifier: MIT
// Local benchmarks of issue 6 (and B12, issue 20). One per invocation: `bench_local b1|b7|b8|b12 [--reps N]`.
//   B1  LocalSandbox::run of `ls /` vs a bare posix_spawn of the identical bwrap argv
//   B7  1 GiB of stdout through the sandbox vs the same `head` on a raw pipe (throughput)
//   B8  peak RSS of a run printing 1 GiB under a 1 MiB cap, in a fresh child process
//   B11 B1's LocalSandbox::run of `ls /` with the default limits vs the same without any
//   B12 B1's LocalSandbox::run of `ls /` with the default syscall filter vs "syscall_filter": "none"
// Informational: prints figures and PASS/MISS, exits 0 unless a run failed (77: cannot run here).
#define DOCTEST_CONFIG_DISABLE  // the support headers use doctest macros; no test runner here
#include <shannot/shannot.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "bench_util.hpp"
#include "support/sandbox_env.hpp"

using namespace shannot_bench;

namespace {

constexpr std::uint64_t one_gib = 1ull << 30;
const std::vector<std::string> head_gib = {"head", "-c", std::to_string(one_gib), "/dev/zero"};

std::string bwrap_path() {
    auto path = shannot::PosixSpawnTransport().bwrap();
    if (!path) die(path.error().message);
    return *path;
}

shannot::ProcessResult run_or_die(shannot::LocalSandbox& sandbox, const std::vector<std::string>& command,
                                  const shannot::RunOptions& options) {
    auto r = sandbox.run(command, options);
    if (!r) die("sandbox run of '" + command.front() + "' failed: " + r.error().message);
    if (r->exit_code != 0) die("sandbox run of '" + command.front() + "' exited " + std::to_string(r->exit_code) + ": " + r->stderr_data);
    return std::move(*r);
}

int bench_b1(int reps) {
    auto profile = shannot::builtin_profile("minimal");
    if (!profile) die(profile.error().message);
    shannot::LocalSandbox sandbox(*profile);
    const std::vector<std::string> command = {"ls", "/"};
    auto args = sandbox.dry_run(command);
    if (!args) die("dry_run: " + args.error().message);
    std::vector<std::string> bare_argv{bwrap_path()};
    bare_argv.insert(bare_argv.end(), args->begin(), args->end());

    std::uint64_t expected = 0;
    auto sandboxed = [&] {
        const auto r = run_or_die(sandbox, command, {});
        if (expected == 0) expected = r.stdout_data.size();
        if (r.stdout_data.empty() || r.stdout_data.size() != expected) die("B1: the sandboxed ls / printed an unexpected amount");
    };
    // bwrap gets what the transport gives it: an empty environment, stdin /dev/null, stdout and
    // stderr pipes, fd 4 for --json-status-fd (here /dev/null: nobody reads it) and the built-in
    // syscall filter at fd 6 (--seccomp 6), from a sealed memfd.
    const SpawnOptions bare_options{.search_path = false, .inherit_env = false, .fd4_devnull = true,
                                    .fd6_data = std::string(*shannot::syscall_filter_bytes("default", std::vector<std::string>{}))};
    auto bare = [&] {
        const auto s = spawn_drain(bare_argv, bare_options);
        if (!s.ok()) die("B1: bare bwrap failed: " + s.describe());
        if (expected != 0 && s.out_bytes != expected) die("B1: bare bwrap printed " + std::to_string(s.out_bytes) + " bytes, the sandbox " + std::to_string(expected));
    };
    const auto s = interleave(reps, 10, sandboxed, bare);
    const double a = median(s.a), b = median(s.b);
    print_result("B1", "local run vs bare spawn of the same bwrap argv (ls /)", fmt_time(a) + " vs " + fmt_time(b), a / b,
                 fmt_ratio(a / b, 1.05), Goal::at_most, 1.05, "1.05x");
    print_spread("run", s.a, "bare", s.b);
    return 0;
}

/// PosixSpawnTransport with the limits taken away, for B11's baseline: the same admission, argv
/// and run loop, without what limits add (bwrap's --block-fd handshake and the prlimit calls,
/// the pids cgroup, --size on each tmpfs, the /dev/shm tmpfs, the read-only /dev): what B1 ran
/// before limits existed.
class UnlimitedTransport {
public:
    using process_type = shannot::PosixSpawnTransport::process_type;
    static constexpr std::string_view name = "local";
    static constexpr bool checks_local_paths = true;
    static constexpr int seccomp_fd = shannot::PosixSpawnTransport::seccomp_fd;
    static constexpr int syscall_filter_fd = shannot::PosixSpawnTransport::syscall_filter_fd;
    static constexpr int json_status_fd = shannot::PosixSpawnTransport::json_status_fd;

    [[nodiscard]] bool executable_exists(std::string_view path) const { return inner_.executable_exists(path); }
    [[nodiscard]] std::map<std::string, std::string> host_symlinks(const std::vector<std::string>& paths) const {
        return inner_.host_symlinks(paths);
    }
    [[nodiscard]] shannot::Result<process_type> launch(const shannot::LaunchSpec& spec) {
        shannot::LaunchSpec bare = spec;
        bare.limits.reset();
        bare.bwrap_args.clear();
        const auto& a = spec.bwrap_args;
        for (std::size_t i = 0; i < a.size(); ++i) {
            if (a[i] == "--") {
                bare.bwrap_args.insert(bare.bwrap_args.end(), a.begin() + static_cast<std::ptrdiff_t>(i), a.end());
                break;
            }
            if (a[i] == "--size" || a[i] == "--remount-ro") {
                ++i;
                continue;
            }
            if (a[i] == "--tmpfs" && i + 1 < a.size() && a[i + 1] == "/dev/shm") {
                ++i;
                continue;
            }
            bare.bwrap_args.push_back(a[i]);
        }
        return inner_.launch(bare);
    }

private:
    shannot::PosixSpawnTransport inner_{};
};

int bench_b11(int reps) {
    auto profile = shannot::builtin_profile("minimal");
    if (!profile) die(profile.error().message);
    shannot::LocalSandbox limited(*profile);
    shannot::SandboxManager<UnlimitedTransport> unlimited(profile->for_transport<UnlimitedTransport>());
    const std::vector<std::string> command = {"ls", "/"};
    std::uint64_t expected = 0;
    auto check = [&](const shannot::Result<shannot::ProcessResult>& r, const char* which) {
        if (!r) die(std::string("B11: ") + which + " run failed: " + r.error().message);
        if (r->exit_code != 0) die(std::string("B11: ") + which + " run exited " + std::to_string(r->exit_code) + ": " + r->stderr_data);
        if (expected == 0) expected = r->stdout_data.size();
        if (r->stdout_data.size() != expected) die(std::string("B11: the ") + which + " ls / printed an unexpected amount");
    };
    auto first = limited.run(command);
    check(first, "limited");
    if (first->limits_mechanism.empty()) die("B11: the limited run reports no limits mechanism");
    auto with_limits = [&] { check(limited.run(command), "limited"); };
    auto without = [&] { check(unlimited.run(command), "unlimited"); };
    const auto s = interleave(reps, 10, with_limits, without);
    const double a = median(s.a), b = median(s.b);
    print_result("B11", "local run with the default limits vs without limits (ls /)", fmt_time(a) + " vs " + fmt_time(b), a / b,
                 fmt_ratio(a / b, 1.03), Goal::at_most, 1.03, "1.03x");
    print_spread("limited", s.a, "unlimited", s.b);
    print_note("limits enforced by: " + first->limits_mechanism);
    return 0;
}

int bench_b12(int reps) {
    auto filtered_profile = shannot::builtin_profile("minimal");
    if (!filtered_profile) die(filtered_profile.error().message);
    if (filtered_profile->syscall_filter != "default") die("B12: the minimal profile does not have the default filter");
    auto open_profile = *filtered_profile;
    open_profile.syscall_filter = "none";
    shannot::LocalSandbox filtered(*filtered_profile), open(open_profile);
    const std::vector<std::string> command = {"ls", "/"};
    auto args = filtered.dry_run(command);
    if (!args || std::find(args->begin(), args->end(), "--seccomp") == args->end()) die("B12: the default profile's argv has no --seccomp");
    std::uint64_t expected = 0;
    auto run = [&](shannot::LocalSandbox& sandbox) {
        const auto r = run_or_die(sandbox, command, {});
        if (expected == 0) expected = r.stdout_data.size();
        if (r.stdout_data.size() != expected) die("B12: the two sandboxes' ls / printed different amounts");
    };
    const auto s = interleave(reps, 10, [&] { run(filtered); }, [&] { run(open); });
    const double a = median(s.a), b = median(s.b);
    print_result("B12", "B1 with the default syscall filter vs \"syscall_filter\": \"none\" (ls /)", fmt_time(a) + " vs " + fmt_time(b),
                 a / b, fmt_ratio(a / b, 1.03), Goal::at_most, 1.03, "1.03x");
    print_spread("filter", s.a, "none", s.b);
    return 0;
}

int bench_b7(int reps) {
    auto sandbox = shannot::LocalSandbox(shannot_test::test_profile());
    shannot::RunOptions options;
    options.max_output = 64 << 10;
    options.timeout = std::chrono::minutes(5);
    auto sandboxed = [&] {
        const auto r = run_or_die(sandbox, head_gib, options);
        if (r.stdout_dropped + r.stdout_data.size() != one_gib)
            die("B7: the sandbox delivered " + std::to_string(r.stdout_dropped + r.stdout_data.size()) + " bytes, not 1 GiB");
    };
    const std::vector<std::string> raw_argv = {"head", "-c", std::to_string(one_gib), "/dev/zero"};
    auto raw = [&] {
        const auto s = spawn_drain(raw_argv, {.search_path = true, .stderr_devnull = true, .keep = 0});
        if (!s.ok() || s.out_bytes != one_gib) die("B7: raw head failed or short: " + s.describe());
    };
    const auto s = interleave(reps, 1, sandboxed, raw);
    const double a = static_cast<double>(one_gib) / median(s.a), b = static_cast<double>(one_gib) / median(s.b);
    print_result("B7", "1 GiB of stdout through the sandbox vs a raw pipe", fmt_rate(a) + " vs " + fmt_rate(b), a / b,
                 fmt_ratio(a / b, 0.8), Goal::at_least, 0.8, "0.8x");
    print_spread("sandbox", s.a, "raw", s.b);
    return 0;
}

/// VmHWM (peak resident set) of this process in bytes.
long long peak_rss_bytes() { return static_cast<long long>(shannot_test::peak_rss_kib()) * 1024; }

/// In a fresh process: one run printing `bytes` under a 1 MiB cap; prints VmHWM in bytes.
int rss_child(std::uint64_t bytes) {
    auto sandbox = shannot::LocalSandbox(shannot_test::test_profile());
    shannot::RunOptions options;
    options.max_output = 1 << 20;
    options.timeout = std::chrono::minutes(5);
    const auto r = run_or_die(sandbox, {"head", "-c", std::to_string(bytes), "/dev/zero"}, options);
    if (r.stdout_dropped + r.stdout_data.size() != bytes) die("B8 child: wrong byte count");
    if (r.stdout_data.size() > options.max_output) die("B8 child: kept more than the cap");
    std::printf("%lld\n", peak_rss_bytes());
    return 0;
}

long long rss_of_fresh_child(std::uint64_t bytes) {
    const auto s = spawn_drain({"/proc/self/exe", "--rss-child", std::to_string(bytes)});
    if (!s.ok()) die("B8: the measuring child failed: " + s.describe());
    const long long rss = std::atoll(s.out.c_str());
    if (rss <= 0) die("B8: the measuring child printed no VmHWM: " + s.out);
    return rss;
}

int bench_b8(int reps) {
    // Peaks are maxima, so the worst of a few fresh processes is reported; a 1-byte run in the
    // same kind of process shows how much of it is the process itself.
    long long big = 0, small = 0;
    for (int i = 0; i < reps; ++i) {
        big = std::max(big, rss_of_fresh_child(one_gib));
        small = std::max(small, rss_of_fresh_child(1));
    }
    print_result("B8", "peak RSS of a run printing 1 GiB under a 1 MiB cap", "", static_cast<double>(big),
                 fmt_mib(static_cast<double>(big)), Goal::at_most, 16.0 * 1024 * 1024, "16 MiB");
    print_note("worst of " + std::to_string(reps) + " fresh processes (VmHWM); the same process after a 1-byte run: " +
               fmt_mib(static_cast<double>(small)));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 3 && std::strcmp(argv[1], "--rss-child") == 0)
        return guarded([&] { return rss_child(std::strtoull(argv[2], nullptr, 10)); });
    const std::string which = argc >= 2 ? argv[1] : "";
    if (which != "b1" && which != "b7" && which != "b8" && which != "b11" && which != "b12") {
        std::fprintf(stderr, "usage: %s b1|b7|b8|b11|b12 [--reps N]\n", argv[0]);
        return 2;
    }
    if (!shannot_test::bwrap_usable()) {
        std::printf("%s: SKIP (bwrap is not usable on this machine)\n", which.c_str());
        return exit_skip;
    }
    return guarded([&] {
        if (which == "b1") return bench_b1(reps_from_args(argc, argv, 200));
        if (which == "b7") return bench_b7(reps_from_args(argc, argv, 20));
        if (which == "b11") return bench_b11(reps_from_args(argc, argv, 200));
        if (which == "b12") return bench_b12(reps_from_args(argc, argv, 300));
        return bench_b8(reps_from_args(argc, argv, 3));
    });
}
