// SPDX-License-Identifier: MIT
// Local benchmarks of issue 6 (and B12, issue 20). One per invocation: `bench_local b1|b7|b8|b11|b12|b17|b17-options|b18 [--reps N]`.
//   B1  LocalSandbox::run of `ls /` vs a bare posix_spawn of the identical bwrap argv
//   B7  1 GiB of stdout through the sandbox vs the same `head` on a raw pipe (throughput)
//   B8  peak RSS of a run printing 1 GiB under a 1 MiB cap, in a fresh child process
//   B11 B1's LocalSandbox::run of `ls /` with the default limits vs the same without any
//   B12 B1's LocalSandbox::run of `ls /` with the default syscall filter vs "syscall_filter": "none"
//   B17 LocalSandbox::run of `ls /` with the default profile vs a raw bwrap of Shannot's minimal argv
//   B18 the CLI as a whole process (`shannot -- ls /`) vs a raw bwrap of the argv its --dry-run prints
//   b17-options (no target): what each option of the default profile's bwrap argv costs bwrap, by
//       timing the argv without it against the whole argv, interleaved (docs/performance.md's table)
// Informational: prints figures and PASS/MISS, exits 0 unless a run failed (77: cannot run here).
#define DOCTEST_CONFIG_DISABLE  // the support headers use doctest macros; no test runner here
#include <shannot/shannot.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
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
    if (r->exit_code != 0)
        die("sandbox run of '" + command.front() + "' exited " + std::to_string(r->exit_code) + ": " + r->stderr_data);
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
    const auto runnable = bare_bwrap_args(*args);
    bare_argv.insert(bare_argv.end(), runnable.begin(), runnable.end());

    std::uint64_t expected = 0;
    auto sandboxed = [&] {
        const auto r = run_or_die(sandbox, command, {});
        if (expected == 0) expected = r.stdout_data.size();
        if (r.stdout_data.empty() || r.stdout_data.size() != expected)
            die("B1: the sandboxed ls / printed an unexpected amount");
    };
    // bwrap gets what the transport gives it: an empty environment, stdin /dev/null, stdout and
    // stderr pipes, fd 4 for --json-status-fd (here /dev/null: nobody reads it) and the built-in
    // syscall filter at fd 6 (--seccomp 6), from a sealed memfd; without --block-fd, as the bare
    // spawn has no limits to set before bwrap goes on (bare_bwrap_args).
    const SpawnOptions bare_options{
        .search_path = false,
        .inherit_env = false,
        .fd4_devnull = true,
        .fd6_data = std::string(*shannot::syscall_filter_bytes("default", std::vector<std::string>{}))};
    auto bare = [&] {
        const auto s = spawn_drain(bare_argv, bare_options);
        if (!s.ok()) die("B1: bare bwrap failed: " + s.describe());
        if (expected != 0 && s.out_bytes != expected)
            die("B1: bare bwrap printed " + std::to_string(s.out_bytes) + " bytes, the sandbox " +
                std::to_string(expected));
    };
    const auto s = interleave(reps, 10, sandboxed, bare);
    const double a = median(s.a), b = median(s.b);
    print_result("B1", "local run vs bare spawn of the same bwrap argv (ls /)", fmt_time(a) + " vs " + fmt_time(b),
                 a / b, fmt_ratio(a / b, 1.05), Goal::at_most, 1.05, "1.05x");
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
    // The same copies of small files as the transport's (not a cost of limits).
    static constexpr auto copied_file_fds = shannot::PosixSpawnTransport::copied_file_fds;

    [[nodiscard]] bool executable_exists(std::string_view path) const { return inner_.executable_exists(path); }
    [[nodiscard]] std::map<std::string, std::string> host_symlinks(const std::vector<std::string>& paths) const {
        return inner_.host_symlinks(paths);
    }
    [[nodiscard]] std::map<std::string, unsigned> host_small_files(const std::vector<std::string>& paths,
                                                                   std::uint64_t max_bytes) const {
        return inner_.host_small_files(paths, max_bytes);
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
        if (r->exit_code != 0)
            die(std::string("B11: ") + which + " run exited " + std::to_string(r->exit_code) + ": " + r->stderr_data);
        if (expected == 0) expected = r->stdout_data.size();
        if (r->stdout_data.size() != expected)
            die(std::string("B11: the ") + which + " ls / printed an unexpected amount");
    };
    auto first = limited.run(command);
    check(first, "limited");
    if (first->limits_mechanism.empty()) die("B11: the limited run reports no limits mechanism");
    auto with_limits = [&] { check(limited.run(command), "limited"); };
    auto without = [&] { check(unlimited.run(command), "unlimited"); };
    const auto s = interleave(reps, 10, with_limits, without);
    const double a = median(s.a), b = median(s.b);
    print_result("B11", "local run with the default limits vs without limits (ls /)",
                 fmt_time(a) + " vs " + fmt_time(b), a / b, fmt_ratio(a / b, 1.03), Goal::at_most, 1.03, "1.03x");
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
    if (!args || std::find(args->begin(), args->end(), "--seccomp") == args->end())
        die("B12: the default profile's argv has no --seccomp");
    std::uint64_t expected = 0;
    auto run = [&](shannot::LocalSandbox& sandbox) {
        const auto r = run_or_die(sandbox, command, {});
        if (expected == 0) expected = r.stdout_data.size();
        if (r.stdout_data.size() != expected) die("B12: the two sandboxes' ls / printed different amounts");
    };
    const auto s = interleave(
        reps, 10, [&] { run(filtered); }, [&] { run(open); });
    const double a = median(s.a), b = median(s.b);
    print_result("B12", "B1 with the default syscall filter vs \"syscall_filter\": \"none\" (ls /)",
                 fmt_time(a) + " vs " + fmt_time(b), a / b, fmt_ratio(a / b, 1.03), Goal::at_most, 1.03, "1.03x");
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
            die("B7: the sandbox delivered " + std::to_string(r.stdout_dropped + r.stdout_data.size()) +
                " bytes, not 1 GiB");
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
    print_note("worst of " + std::to_string(reps) +
               " fresh processes (VmHWM); the same process after a 1-byte run: " + fmt_mib(static_cast<double>(small)));
    return 0;
}

/// The bwrap argv Shannot (Python, bubblewrap era, commit 7f08196) builds for its shipped
/// minimal.json profile and `ls /` on a merged-/usr Debian 12 host (the session's anchor
/// ../shared/anchors/shannot_minimal_argv.json), argv[0] left out. It runs in the caller's
/// environment (no --clearenv), binds all of /etc (the host's /etc/ssh keys and /etc/shadow),
/// keeps capabilities and the caller's session: B17 measures what it costs to build, not what it
/// protects.
const std::vector<std::string> shannot_minimal_args = {"--die-with-parent",
                                                       "--unshare-net",
                                                       "--unshare-user",
                                                       "--unshare-ipc",
                                                       "--unshare-pid",
                                                       "--unshare-uts",
                                                       "--unshare-cgroup",
                                                       "--proc",
                                                       "/proc",
                                                       "--dev",
                                                       "/dev",
                                                       "--tmpfs",
                                                       "/home/sandbox",
                                                       "--tmpfs",
                                                       "/tmp",
                                                       "--ro-bind",
                                                       "/bin",
                                                       "/bin",
                                                       "--ro-bind",
                                                       "/etc",
                                                       "/etc",
                                                       "--ro-bind",
                                                       "/lib",
                                                       "/lib",
                                                       "--ro-bind",
                                                       "/lib64",
                                                       "/lib64",
                                                       "--ro-bind",
                                                       "/usr",
                                                       "/usr",
                                                       "--setenv",
                                                       "HOME",
                                                       "/home/sandbox",
                                                       "--setenv",
                                                       "LANG",
                                                       "C.UTF-8",
                                                       "--setenv",
                                                       "PATH",
                                                       "/usr/bin:/bin",
                                                       "--hostname",
                                                       "sandbox",
                                                       "--chdir",
                                                       "/home/sandbox",
                                                       "--",
                                                       "ls",
                                                       "/"};

int bench_b17(int reps) {
    auto profile = shannot::builtin_profile("minimal");
    if (!profile) die(profile.error().message);
    // The headline: a LocalSandbox keeping a spare sandbox (PosixSpawnOptions::spare_sandbox),
    // whose next sandbox is built while the caller is elsewhere (here: while the peer's runs);
    // beside it the same run with every sandbox started on demand.
    shannot::LocalSandbox spare(*profile, shannot::PosixSpawnTransport({.spare_sandbox = true}));
    shannot::LocalSandbox fresh(*profile);
    const std::vector<std::string> command = {"ls", "/"};
    std::vector<std::string> peer_argv{bwrap_path()};
    peer_argv.insert(peer_argv.end(), shannot_minimal_args.begin(), shannot_minimal_args.end());
    std::uint64_t expected = 0;
    auto ours = [&](shannot::LocalSandbox& sandbox) {
        const auto r = run_or_die(sandbox, command, {});
        if (expected == 0) expected = r.stdout_data.size();
        if (r.stdout_data.empty() || r.stdout_data.size() != expected)
            die("B17: the sandboxed ls / printed an unexpected amount");
    };
    // As Shannot's Python runs it: the caller's environment, stdin /dev/null, stdout and stderr
    // pipes read to the end.
    auto peer = [&] {
        const auto s = spawn_drain(peer_argv, {.search_path = false, .inherit_env = true});
        if (!s.ok() || s.out_bytes == 0) die("B17: Shannot's bwrap argv failed: " + s.describe());
    };
    const auto s = interleave_all(reps, 10, {[&] { ours(spare); }, peer, [&] { ours(fresh); }});
    const double a = median(s[0]), b = median(s[1]), c = median(s[2]);
    const auto used = spare.transport().spare_sandboxes_used();
    if (used < static_cast<std::uint64_t>(reps) / 2)
        die("B17: the spare sandbox served only " + std::to_string(used) + " of " + std::to_string(reps + 10) +
            " runs");
    print_result("B17",
                 "LocalSandbox::run, default profile, spare sandbox, vs a raw bwrap of Shannot's minimal argv (ls /)",
                 fmt_time(a) + " vs " + fmt_time(b), a / b, fmt_ratio(a / b, 0.9), Goal::at_most, 0.9, "0.9x");
    print_spread("run", s[0], "Shannot argv", s[1]);
    print_note("the spare served " + std::to_string(used) + " runs; every sandbox started on demand: " + fmt_time(c) +
               " = " + format("%.2fx", c / b) + " of Shannot's");
    // Back to back, the next spare is still being built when the run comes: it waits for it.
    std::vector<double> tight;
    for (int i = 0; i < reps / 3 + 5; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        ours(spare);
        tight.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    print_note("back to back (no pause between runs, " + std::to_string(tight.size()) +
               " runs): " + fmt_time(median(tight)) + " each with the spare");
    return 0;
}

/// How many words follow each bwrap option (those the built-in profiles use, and a few more).
int option_arity(const std::string& option) {
    static const std::map<std::string, int, std::less<>> arity = {{"--ro-bind", 2},
                                                                  {"--ro-bind-try", 2},
                                                                  {"--bind", 2},
                                                                  {"--bind-try", 2},
                                                                  {"--dev-bind", 2},
                                                                  {"--dev-bind-try", 2},
                                                                  {"--setenv", 2},
                                                                  {"--symlink", 2},
                                                                  {"--ro-bind-data", 2},
                                                                  {"--bind-data", 2},
                                                                  {"--file", 2},
                                                                  {"--cap-drop", 1},
                                                                  {"--cap-add", 1},
                                                                  {"--proc", 1},
                                                                  {"--dev", 1},
                                                                  {"--tmpfs", 1},
                                                                  {"--seccomp", 1},
                                                                  {"--add-seccomp-fd", 1},
                                                                  {"--json-status-fd", 1},
                                                                  {"--info-fd", 1},
                                                                  {"--block-fd", 1},
                                                                  {"--sync-fd", 1},
                                                                  {"--userns-block-fd", 1},
                                                                  {"--remount-ro", 1},
                                                                  {"--size", 1},
                                                                  {"--perms", 1},
                                                                  {"--chdir", 1},
                                                                  {"--hostname", 1},
                                                                  {"--unsetenv", 1},
                                                                  {"--dir", 1},
                                                                  {"--mqueue", 1},
                                                                  {"--uid", 1},
                                                                  {"--gid", 1},
                                                                  {"--chmod", 2}};
    const auto it = arity.find(option);
    return it == arity.end() ? 0 : it->second;
}

/// The default profile's argv cut into options, each with its words (--size and --perms go with
/// the operation they modify), and the command after "--".
struct OptionUnits {
    std::vector<std::vector<std::string>> units;
    std::vector<std::string> tail;  ///< "--" and the command
};

OptionUnits split_options(const std::vector<std::string>& args) {
    OptionUnits out;
    std::vector<std::string> pending;  // a modifier waiting for its operation
    for (std::size_t i = 0; i < args.size();) {
        if (args[i] == "--") {
            out.tail.assign(args.begin() + static_cast<std::ptrdiff_t>(i), args.end());
            break;
        }
        const auto n = static_cast<std::size_t>(option_arity(args[i]));
        std::vector<std::string> words(args.begin() + static_cast<std::ptrdiff_t>(i),
                                       args.begin() + static_cast<std::ptrdiff_t>(std::min(args.size(), i + 1 + n)));
        i += 1 + n;
        if (words.front() == "--size" || words.front() == "--perms") {
            pending.insert(pending.end(), words.begin(), words.end());
            continue;
        }
        pending.insert(pending.end(), words.begin(), words.end());
        out.units.push_back(std::move(pending));
        pending.clear();
    }
    return out;
}

std::string join_words(const std::vector<std::string>& words) {
    std::string text;
    for (const auto& w : words) text += (text.empty() ? "" : " ") + w;
    return text;
}

/// Not a benchmark with a target: for each option of the default profile's bwrap argv (as this
/// host gets it), the median cost of the whole argv minus the argv without that option, all
/// variants interleaved in one run. A variant that cannot run `ls /` (no /usr, no loader) is
/// reported as needed and not timed. Also: every /etc file bind at once, and the environment.
int bench_b17_options(int reps) {
    auto profile = shannot::builtin_profile("minimal");
    if (!profile) die(profile.error().message);
    shannot::LocalSandbox sandbox(*profile);
    auto args = sandbox.dry_run({"ls", "/"});
    if (!args) die("dry_run: " + args.error().message);
    const auto split = split_options(bare_bwrap_args(*args));
    const auto bwrap = bwrap_path();
    const SpawnOptions spawn_options{
        .search_path = false,
        .inherit_env = false,
        .fd4_devnull = true,
        .fd6_data = std::string(*shannot::syscall_filter_bytes("default", std::vector<std::string>{}))};

    struct Variant {
        std::string label;
        std::vector<std::string> argv;
    };
    auto build = [&](auto&& keep) {
        std::vector<std::string> argv{bwrap};
        for (std::size_t k = 0; k < split.units.size(); ++k)
            if (keep(k)) argv.insert(argv.end(), split.units[k].begin(), split.units[k].end());
        argv.insert(argv.end(), split.tail.begin(), split.tail.end());
        return argv;
    };
    std::vector<Variant> variants{{"(the whole argv)", build([](std::size_t) { return true; })}};
    for (std::size_t k = 0; k < split.units.size(); ++k)
        variants.push_back({join_words(split.units[k]), build([k](std::size_t j) { return j != k; })});
    auto is_etc_bind = [&](std::size_t k) {
        const auto& u = split.units[k];
        const bool bind = u.size() == 3 && u[0].rfind("--ro-bind", 0) == 0;
        const bool copy = u.size() == 5 && u[2] == "--file";  // --perms MODE --file FD TARGET
        return (bind || copy) && u.back().rfind("/etc/", 0) == 0;
    };
    auto is_env = [&](std::size_t k) { return split.units[k][0] == "--setenv" || split.units[k][0] == "--clearenv"; };
    variants.push_back({"every /etc bind at once", build([&](std::size_t k) { return !is_etc_bind(k); })});
    variants.push_back({"--clearenv and every --setenv at once", build([&](std::size_t k) { return !is_env(k); })});

    std::vector<Variant> timed, needed;
    for (auto& v : variants) (spawn_drain(v.argv, spawn_options).ok() ? timed : needed).push_back(std::move(v));
    if (timed.empty() || timed.front().label != "(the whole argv)")
        die("b17-options: the default profile's own argv does not run");
    std::vector<std::function<void()>> runs;
    for (const auto& v : timed)
        runs.emplace_back([&v, &spawn_options] {
            if (!spawn_drain(v.argv, spawn_options).ok()) die("b17-options: '" + v.label + "' stopped working");
        });
    const auto s = interleave_all(reps, 3, runs);
    const double whole = median(s[0]);
    std::printf(
        "b17-options: what each option of the default profile's bwrap argv costs (ls /; whole argv %s, %zu interleaved "
        "runs of "
        "each variant; p10 %s)\n",
        fmt_time(whole).c_str(), s[0].size(), fmt_time(quantile(s[0], 0.1)).c_str());
    // On 2 shared cores a run's spread is wide (p90 often 2-3x the minimum); the 10th percentile
    // is printed beside the median as the figure of the quieter runs.
    const double whole_p10 = quantile(s[0], 0.1);
    std::printf(
        "| option | cost: median (whole argv minus without it) | cost at p10 | without it: median, p10 "
        "|\n|---|---|---|---|\n");
    for (std::size_t k = 1; k < timed.size(); ++k) {
        const double m = median(s[k]), p10 = quantile(s[k], 0.1);
        std::printf("| `%s` | %+.2f ms | %+.2f ms | %s, %s |\n", timed[k].label.c_str(), (whole - m) * 1e3,
                    (whole_p10 - p10) * 1e3, fmt_time(m).c_str(), fmt_time(p10).c_str());
    }
    for (const auto& v : needed) std::printf("| `%s` | needed: `ls /` does not run without it | |\n", v.label.c_str());
    std::fflush(stdout);
    return 0;
}

std::string cli_path() {
    const char* root = std::getenv("SHANNOT_BUILD_ROOT");
    const auto path = std::string(root ? root : ".") + "/examples/cli/shannot";
    if (::access(path.c_str(), X_OK) != 0)
        die("the shannot tool is not built at " + path + " (set SHANNOT_BUILD_ROOT)");
    return path;
}

/// user + system CPU seconds of the waited-for children so far (the whole tree: the CLI, bwrap, ls).
double children_cpu() {
    rusage u{};
    ::getrusage(RUSAGE_CHILDREN, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/// B18: `shannot -- ls /` as a whole process vs a raw bwrap of the argv `shannot --dry-run -- ls /`
/// prints (given what the library gives bwrap: an empty environment, fd 4, the filter at fd 6).
/// Interleaved with them, to show where the CLI's time goes: `shannot --dry-run -- ls /` (start,
/// profile, admission, argv: all but the run) and `shannot --version` (the process start alone).
/// Each side's CPU per call (user + system, its whole process tree) is printed too.
int bench_b18(int reps) {
    const auto cli = cli_path();
    const auto printed = spawn_drain({cli, "--dry-run", "--", "ls", "/"}, {.keep = 1 << 20});
    if (!printed.ok()) die("B18: shannot --dry-run failed: " + printed.describe());
    const auto json = nlohmann::json::parse(printed.out, nullptr, false);
    if (!json.is_array() || json.empty()) die("B18: shannot --dry-run printed no argv: " + printed.out);
    std::vector<std::string> printed_args;
    for (const auto& word : json) printed_args.push_back(word.get<std::string>());
    std::vector<std::string> raw_argv{printed_args.front()};
    const auto runnable = bare_bwrap_args({printed_args.begin() + 1, printed_args.end()});
    raw_argv.insert(raw_argv.end(), runnable.begin(), runnable.end());
    const SpawnOptions raw_options{
        .search_path = false,
        .inherit_env = false,
        .fd4_devnull = true,
        .fd6_data = std::string(*shannot::syscall_filter_bytes("default", std::vector<std::string>{}))};
    std::uint64_t expected = 0;
    std::vector<double> cpu(4, 0.0);
    auto timed_cpu = [&](std::size_t k, auto&& f) {
        const double before = children_cpu();
        f();
        cpu[k] += children_cpu() - before;
    };
    const std::vector<std::string> cli_run = {cli, "--", "ls", "/"}, cli_dry = {cli, "--dry-run", "--", "ls", "/"},
                                   cli_version = {cli, "--version"};
    const auto s =
        interleave_all(reps, 5,
                       {[&] {
                            timed_cpu(0, [&] {
                                const auto r = spawn_drain(cli_run);
                                if (!r.ok()) die("B18: shannot -- ls / failed: " + r.describe());
                                if (expected == 0) expected = r.out_bytes;
                                if (r.out_bytes != expected) die("B18: shannot -- ls / printed an unexpected amount");
                            });
                        },
                        [&] {
                            timed_cpu(1, [&] {
                                const auto r = spawn_drain(raw_argv, raw_options);
                                if (!r.ok() || (expected != 0 && r.out_bytes != expected))
                                    die("B18: the raw bwrap failed or printed another amount: " + r.describe());
                            });
                        },
                        [&] {
                            timed_cpu(2, [&] {
                                if (!spawn_drain(cli_dry).ok()) die("B18: shannot --dry-run failed");
                            });
                        },
                        [&] {
                            timed_cpu(3, [&] {
                                if (!spawn_drain(cli_version).ok()) die("B18: shannot --version failed");
                            });
                        }});
    const double a = median(s[0]), b = median(s[1]);
    print_result("B18", "shannot -- ls / (whole process) vs a raw bwrap of its --dry-run argv",
                 fmt_time(a) + " vs " + fmt_time(b), a / b, fmt_ratio(a / b, 1.15), Goal::at_most, 1.15, "1.15x");
    print_spread("cli", s[0], "raw bwrap", s[1]);
    const double n = static_cast<double>(s[0].size() + 5);  // the warm-up runs count in the CPU totals
    const auto ms = [&](std::size_t k) { return format("%.2f ms", cpu[k] / n * 1e3); };
    print_note("interleaved with them: shannot --dry-run -- ls / " + fmt_time(median(s[2])) + ", shannot --version " +
               fmt_time(median(s[3])));
    print_note("CPU per call (user+sys, whole process tree): cli " + ms(0) + ", raw bwrap " + ms(1) + ", --dry-run " +
               ms(2) + ", --version " + ms(3));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc >= 3 && std::strcmp(argv[1], "--rss-child") == 0)
        return guarded([&] { return rss_child(std::strtoull(argv[2], nullptr, 10)); });
    const std::string which = argc >= 2 ? argv[1] : "";
    if (which != "b1" && which != "b7" && which != "b8" && which != "b11" && which != "b12" && which != "b17" &&
        which != "b17-options" && which != "b18") {
        std::fprintf(stderr, "usage: %s b1|b7|b8|b11|b12|b17|b17-options|b18 [--reps N]\n", argv[0]);
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
        if (which == "b17") return bench_b17(reps_from_args(argc, argv, 300));
        if (which == "b18") return bench_b18(reps_from_args(argc, argv, 200));
        if (which == "b17-options") return bench_b17_options(reps_from_args(argc, argv, 60));
        return bench_b8(reps_from_args(argc, argv, 3));
    });
}
