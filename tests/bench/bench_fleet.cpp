// SPDX-License-Identifier: MIT
// Fleet benchmarks of issue 22, on private sshds listening on 127.0.0.2 and up (tests/support/fleet_fixture.hpp).
// One per invocation: `bench_fleet b14|b15|b16 [--hosts N] [--reps N]`.
//   B14 cold: `uptime` on 200 hosts, sandboxed (`shannot --ssh ... --persist 0`) vs parallel-ssh,
//       clush and Ansible ad-hoc (`ansible all -m command -a uptime`), all unsandboxed, 32 at a time
//   B15 warm: the same with the connections kept (`--persist`) vs parallel-ssh; also the library's
//       Fleet run a second time, and what a kept connection costs at rest (processes, descriptors, memory)
//   B16 a repeated CLI one-shot to one host with --persist vs a plain `ssh host true`
// The tools come from Debian (tools/bench.sh installs them); one that is missing is left out and
// said so. Logins keep the user's own HOME and rc files, as the other ssh benchmarks do.
// Informational: prints figures and PASS/MISS, exits 0 unless a run failed (77: cannot run here).
#define DOCTEST_CONFIG_DISABLE  // the support headers use doctest macros; no test runner here
#include <shannot/shannot.hpp>

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.hpp"
#include "support/fleet_fixture.hpp"
#include "support/sandbox_env.hpp"

using namespace shannot_bench;

namespace {

constexpr int fanout = 32;

std::string which(const std::string& program) {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    for (std::size_t from = 0; from <= dirs.size();) {
        const auto colon = std::min(dirs.find(':', from), dirs.size());
        const auto candidate = dirs.substr(from, colon - from) + "/" + program;
        if (::access(candidate.c_str(), X_OK) == 0) return candidate;
        from = colon + 1;
    }
    return {};
}

std::string cli_path() {
    const char* root = std::getenv("SHANNOT_BUILD_ROOT");
    const auto path = std::string(root ? root : ".") + "/examples/cli/shannot";
    if (::access(path.c_str(), X_OK) != 0) die("the shannot tool is not built at " + path);
    return path;
}

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

/// Everything the benchmark writes (profile, host lists, inventory, HOME of the tool), removed at the end.
struct Workspace {
    std::filesystem::path dir;
    Workspace() {
        char templ[] = "/tmp/shannot-bench-fleet-XXXXXX";
        if (!::mkdtemp(templ)) die("mkdtemp failed");
        dir = templ;
        ::mkdir((dir / "run").c_str(), 0700);
    }
    ~Workspace() {
        auto closed = shannot::close_persisted((dir / "run" / "shannot").string());
        (void)closed;
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    [[nodiscard]] std::string kept_folder() const { return (dir / "run" / "shannot").string(); }
};

/// The fleet, the files each tool reads, and the command lines.
struct Setup {
    const shannot_test::FleetSshd& fleet;
    Workspace& ws;
    std::size_t hosts;
    std::string profile, hosts_file, inventory, cli;

    Setup(const shannot_test::FleetSshd& f, Workspace& w, std::size_t n) : fleet(f), ws(w), hosts(n), cli(cli_path()) {
        auto p = *shannot::builtin_profile<shannot::OpenSshProcessTransport>("minimal");
        p.name = "bench";
        for (const char* c : {"uptime", "true"}) p.allowed_commands.emplace_back(c);
        profile = (ws.dir / "bench.json").string();
        std::ofstream(profile) << p.to_json().dump(2);
        hosts_file = (ws.dir / "hosts").string();
        inventory = (ws.dir / "inventory.ini").string();
        std::ofstream h(hosts_file), inv(inventory);
        inv << "[fleet]\n";
        for (std::size_t i = 0; i < hosts; ++i) {
            h << fleet.destination(i) << "\n";
            inv << "h" << i << " ansible_host=" << fleet.address(i) << "\n";
        }
        inv << "[fleet:vars]\nansible_port=" << fleet.port() << "\nansible_user=" << shannot_test::SshdFixture::user()
            << "\nansible_ssh_private_key_file=" << fleet.key()
            << "\nansible_ssh_common_args='-o UserKnownHostsFile=" << fleet.known_hosts()
            << " -o StrictHostKeyChecking=yes'\n";
    }

    [[nodiscard]] std::vector<std::string> shannot_argv(std::size_t n, const std::string& persist,
                                                        const std::string& command) const {
        std::vector<std::string> argv{cli,
                                      "--profile",
                                      profile,
                                      "-i",
                                      fleet.key(),
                                      "--known-hosts",
                                      fleet.known_hosts(),
                                      "--fanout",
                                      std::to_string(fanout),
                                      "--persist",
                                      persist};
        for (std::size_t i = 0; i < n; ++i) argv.insert(argv.end(), {"--ssh", fleet.destination(i)});
        argv.push_back(command);
        return argv;
    }
    [[nodiscard]] std::vector<std::string> pssh_argv() const {
        return {"parallel-ssh", "-i",
                "-h",           hosts_file,
                "-p",           std::to_string(fanout),
                "-t",           "0",
                "-x",           "-i " + fleet.key(),
                "-O",           "UserKnownHostsFile=" + fleet.known_hosts(),
                "-O",           "StrictHostKeyChecking=yes",
                "-O",           "BatchMode=yes",
                "uptime"};
    }
    [[nodiscard]] std::vector<std::string> clush_argv() const {
        std::string nodes;
        for (std::size_t i = 0; i < hosts; ++i) {
            if (!nodes.empty()) nodes += ',';  // not `"," + address`: g++ 12 -O3 -Wrestrict misfires on it
            nodes += fleet.address(i);
        }
        return {"clush",
                "-w",
                nodes,
                "-f",
                std::to_string(fanout),
                "-l",
                shannot_test::SshdFixture::user(),
                "-o",
                "-p " + std::to_string(fleet.port()) + " -i " + fleet.key() +
                    " -oUserKnownHostsFile=" + fleet.known_hosts() + " -oStrictHostKeyChecking=yes",
                "uptime"};
    }
    [[nodiscard]] std::vector<std::string> ansible_argv() const {
        return {"ansible", "all", "-i", inventory, "-m", "command", "-a", "uptime", "-f", std::to_string(fanout)};
    }
    /// This process's environment for the tool: HOME and XDG_RUNTIME_DIR in the workspace (its
    /// kept connections), the user's own for the others (whose ssh reads nothing from HOME here).
    void use_workspace_home() const {
        ::setenv("XDG_RUNTIME_DIR", (ws.dir / "run").c_str(), 1);
        ::setenv("ANSIBLE_LOCALHOST_WARNING", "False", 1);
        ::setenv("ANSIBLE_HOST_KEY_CHECKING", "True", 1);
    }
};

/// CPU seconds (user + system) of this process's waited-for descendants so far: the tool and the
/// ssh clients it waited for, not the remote side (sshd, bwrap), which are sshd's.
double children_cpu() {
    rusage u{};
    ::getrusage(RUSAGE_CHILDREN, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/// Runs `argv`, which must succeed and print `expected` times "load average".
void run_expect(const std::vector<std::string>& argv, std::size_t expected, const char* what) {
    const auto s = spawn_drain(argv, {.search_path = true, .keep = 1 << 24});
    if (!s.ok()) die(std::string(what) + " failed: " + s.describe() + "\n" + s.out.substr(0, 2000));
    const auto n = count(s.out, "load average");
    if (n != expected)
        die(std::string(what) + " printed " + std::to_string(n) + " uptimes, not " + std::to_string(expected) + ": " +
            s.out.substr(0, 1500) + s.err.substr(0, 1500));
}

void login_note() {
    print_note(
        "logins: the user's own HOME and rc files (as a real remote login has them); this machine's root ~/.bashrc "
        "runs pyenv init");
}

int bench_b14(const Setup& s, int reps) {
    const auto n = s.hosts;
    const bool pssh = !which("parallel-ssh").empty(), clush = !which("clush").empty(),
               ansible = !which("ansible").empty();
    double cpu_ours = 0, cpu_pssh = 0;  // local CPU: the tool and its ssh clients
    const auto timed_cpu = [](double& into, auto&& run) {
        const double before = children_cpu();
        run();
        into += children_cpu() - before;
    };
    std::vector<std::function<void()>> runs{
        [&] { timed_cpu(cpu_ours, [&] { run_expect(s.shannot_argv(n, "0", "uptime"), n, "shannot"); }); }};
    if (pssh) runs.emplace_back([&] { timed_cpu(cpu_pssh, [&] { run_expect(s.pssh_argv(), n, "parallel-ssh"); }); });
    if (clush) runs.emplace_back([&] { run_expect(s.clush_argv(), n, "clush"); });
    const auto samples = interleave_all(reps, 0, runs);
    const double ours = median(samples[0]);
    std::size_t k = 1;
    const double pssh_time = pssh ? median(samples[k++]) : 0, clush_time = clush ? median(samples[k++]) : 0;
    if (pssh)
        print_result("B14",
                     "cold `uptime` on " + std::to_string(n) + " hosts, " + std::to_string(fanout) +
                         " at a time: shannot sandboxed (one CLI call, no kept connection) vs parallel-ssh unsandboxed",
                     fmt_time(ours) + " vs " + fmt_time(pssh_time), ours / pssh_time, fmt_ratio(ours / pssh_time, 1.1),
                     Goal::at_most, 1.1, "1.1x");
    else
        print_note("B14: parallel-ssh is not installed (tools/bench.sh installs pssh): shannot alone took " +
                   fmt_time(ours));
    const double per_host = cpu_ours / (reps * static_cast<double>(n));
    print_note("local CPU a host (the tool and its ssh client, not the remote side): shannot " + fmt_time(per_host) +
               (pssh ? ", parallel-ssh " + fmt_time(cpu_pssh / (reps * static_cast<double>(n))) : std::string()) +
               ": about " + format("%.0f", 1.0 / per_host) + " new connections a second per core on this machine");
    if (clush)
        print_note("clush -f " + std::to_string(fanout) + ": " + fmt_time(clush_time) + " (shannot " +
                   fmt_ratio(ours / clush_time) + " of it)");
    // Ansible is ~10x slower: one run, after the others, not interleaved.
    if (ansible) {
        const double a = time_once([&] { run_expect(s.ansible_argv(), n, "ansible"); });
        print_result("B14",
                     "the same vs Ansible ad-hoc (`ansible all -m command -a uptime -f " + std::to_string(fanout) +
                         "`, one run)",
                     fmt_time(ours) + " vs " + fmt_time(a), a / ours, fmt_ratio(a / ours, 5) + " faster",
                     Goal::at_least, 5, "5x");
    } else {
        print_note("Ansible is not installed (tools/bench.sh installs ansible-core): left out");
    }
    std::printf("    medians of %d interleaved runs each; shannot min/p90 %s/%s%s\n", reps,
                fmt_time(quantile(samples[0], 0)).c_str(), fmt_time(quantile(samples[0], 0.9)).c_str(),
                pssh ? (", parallel-ssh min/p90 " + fmt_time(quantile(samples[1], 0)) + "/" +
                        fmt_time(quantile(samples[1], 0.9)))
                           .c_str()
                     : "");
    login_note();
    return 0;
}

/// Processes, descriptors and resident memory of the kept connections' ssh and holder processes.
struct AtRest {
    std::size_t processes = 0, descriptors = 0, rss_kib = 0, pss_kib = 0;
};
AtRest measure_at_rest(const std::string& folder) {
    AtRest r;
    auto list = shannot::list_persisted(folder);
    if (!list) return r;
    for (const auto& c : *list) {
        std::vector<int> pids{c.ssh_pid};
        const auto state = shannot::detail::read_persisted_state(c.folder + "/state");
        if (state) pids.push_back(state->holder_pid);
        for (int pid : pids) {
            const auto base = "/proc/" + std::to_string(pid);
            if (::access(base.c_str(), F_OK) != 0) continue;
            ++r.processes;
            if (DIR* d = ::opendir((base + "/fd").c_str())) {
                while (auto* e = ::readdir(d))
                    if (e->d_name[0] != '.') ++r.descriptors;
                ::closedir(d);
            }
            std::ifstream status(base + "/status");
            for (std::string line; std::getline(status, line);)
                if (line.rfind("VmRSS:", 0) == 0) r.rss_kib += std::strtoul(line.c_str() + 6, nullptr, 10);
            std::ifstream rollup(base + "/smaps_rollup");  // Pss: shared pages divided among their users
            for (std::string line; std::getline(rollup, line);)
                if (line.rfind("Pss:", 0) == 0) r.pss_kib += std::strtoul(line.c_str() + 4, nullptr, 10);
        }
    }
    return r;
}

int bench_b15(const Setup& s, int reps) {
    const auto n = s.hosts;
    if (which("parallel-ssh").empty()) die("parallel-ssh is not installed (tools/bench.sh installs pssh)");
    run_expect(s.shannot_argv(n, "600", "uptime"), n, "shannot (opening the kept connections)");
    const auto rest = measure_at_rest(s.ws.kept_folder());
    const auto samples = interleave_all(reps, 0,
                                        {[&] { run_expect(s.shannot_argv(n, "600", "uptime"), n, "shannot"); },
                                         [&] { run_expect(s.pssh_argv(), n, "parallel-ssh"); }});
    const double ours = median(samples[0]), theirs = median(samples[1]);
    print_result("B15",
                 "warm `uptime` on " + std::to_string(n) +
                     " hosts: shannot with kept connections (--persist, a CLI call each time) vs parallel-ssh",
                 fmt_time(ours) + " vs " + fmt_time(theirs), theirs / ours, fmt_ratio(theirs / ours, 10) + " faster",
                 Goal::at_least, 10, "10x");
    print_spread("shannot", samples[0], "parallel-ssh", samples[1]);

    // The library: one Fleet run twice (its connections kept in the process), not a CLI call.
    auto profile = shannot::load_profile_from_path<shannot::OpenSshProcessTransport>(s.profile);
    if (!profile) die(profile.error().message);
    std::vector<shannot::FleetHost> hosts;
    for (std::size_t i = 0; i < n; ++i) hosts.push_back({s.fleet.destination(i), s.fleet.connection(i)});
    shannot::Fleet fleet(*profile, hosts);
    const auto lib_run = [&] {
        std::size_t ok = 0;
        for (const auto& r : fleet.run({"uptime"}, {}, {.fanout = fanout})) ok += r.result && r.result->exit_code == 0;
        if (ok != n) die("the library fleet ran on " + std::to_string(ok) + " hosts, not " + std::to_string(n));
    };
    lib_run();
    std::vector<double> lib;
    for (int i = 0; i < reps; ++i) lib.push_back(time_once(lib_run));
    print_note("the library's Fleet, run again on its open connections: " + fmt_time(median(lib)) + " (" +
               fmt_ratio(theirs / median(lib)) + " faster than parallel-ssh)");
    print_note("at rest, " + std::to_string(n) + " kept connections: " + std::to_string(rest.processes) +
               " processes (" + format("%.2f", static_cast<double>(rest.processes) / static_cast<double>(n)) +
               " a host), " + std::to_string(rest.descriptors) + " descriptors (" +
               format("%.1f", static_cast<double>(rest.descriptors) / static_cast<double>(n)) + " a host), " +
               format("%.0f", static_cast<double>(rest.rss_kib) / 1024.0) + " MiB resident (" +
               format("%.0f", static_cast<double>(rest.rss_kib) / static_cast<double>(n)) +
               " KiB a host; proportional set " +
               format("%.0f", static_cast<double>(rest.pss_kib) / static_cast<double>(n)) + " KiB a host)");
    login_note();
    return 0;
}

int bench_b16(const Setup& s, int reps) {
    const auto& f = s.fleet;
    std::vector<std::string> cli{s.cli,           "--profile", s.profile, "-i",    f.key(),          "--known-hosts",
                                 f.known_hosts(), "--persist", "600",     "--ssh", f.destination(0), "true"};
    std::vector<std::string> ssh{"ssh",
                                 "-i",
                                 f.key(),
                                 "-o",
                                 "IdentitiesOnly=yes",
                                 "-o",
                                 "UserKnownHostsFile=" + f.known_hosts(),
                                 "-o",
                                 "StrictHostKeyChecking=yes",
                                 "-o",
                                 "BatchMode=yes",
                                 "-p",
                                 std::to_string(f.port()),
                                 shannot_test::SshdFixture::user() + "@" + f.address(0),
                                 "true"};
    const SpawnOptions via_path{.search_path = true};
    const auto check = [](const Spawned& r, const char* what) {
        if (!r.ok()) die(std::string(what) + " failed: " + r.describe());
    };
    check(spawn_drain(cli, via_path), "shannot (opening the kept connection)");
    const auto samples = interleave(
        reps, 2, [&] { check(spawn_drain(cli, via_path), "shannot --persist"); },
        [&] { check(spawn_drain(ssh, via_path), "ssh host true"); });
    const double ours = median(samples.a), theirs = median(samples.b);
    print_result("B16",
                 "a repeated CLI one-shot to one host (`shannot --persist ... true`, a kept connection) vs a plain "
                 "`ssh host true`",
                 fmt_time(ours) + " vs " + fmt_time(theirs), ours / theirs, fmt_ratio(ours / theirs, 0.15),
                 Goal::at_most, 0.15, "0.15x");
    print_spread("shannot", samples.a, "ssh", samples.b);
    login_note();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string which_bench = argc >= 2 ? argv[1] : "";
    if (which_bench != "b14" && which_bench != "b15" && which_bench != "b16") {
        std::fprintf(stderr, "usage: %s b14|b15|b16 [--hosts N] [--reps N]\n", argv[0]);
        return 2;
    }
    if (!shannot_test::bwrap_usable()) {
        std::printf("%s: SKIP (bwrap is not usable on this machine)\n", which_bench.c_str());
        return exit_skip;
    }
    std::size_t hosts = which_bench == "b16" ? 1 : 200;
    for (int i = 2; i + 1 < argc; ++i)
        if (std::strcmp(argv[i], "--hosts") == 0) hosts = static_cast<std::size_t>(std::max(1, std::atoi(argv[i + 1])));
    return guarded([&] {
        shannot_test::FleetSshd fleet(hosts, shannot_test::SshdFixture::Home::users);
        if (!fleet.running()) {
            std::printf("%s: SKIP (the sshds could not be started: %s)\n", which_bench.c_str(), fleet.error().c_str());
            return exit_skip;
        }
        Workspace ws;
        Setup setup(fleet, ws, hosts);
        setup.use_workspace_home();
        print_note(std::to_string(hosts) + " hosts: " + std::to_string((hosts + 15) / 16) + " sshds on 127.0.0.2-" +
                   shannot_test::FleetSshd::address(hosts - 1) + ", port " + std::to_string(fleet.port()) + "; " +
                   std::to_string(std::thread::hardware_concurrency()) + " cores");
        if (which_bench == "b14") return bench_b14(setup, reps_from_args(argc, argv, 3));
        if (which_bench == "b15") return bench_b15(setup, reps_from_args(argc, argv, 3));
        return bench_b16(setup, reps_from_args(argc, argv, 20));
    });
}
