// SPDX-License-Identifier: MIT
// BubblewrapCommandBuilder: exact argv for every built-in (stored) and hand-written profiles.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "support/fake_transport.hpp"

using Args = std::vector<std::string>;
using Remote = shannot_test::RemoteLikeTransport;
using Profile = shannot::SandboxProfile<Remote>;

namespace {

/// The built-in syscall filter, on in every profile that does not say "none".
const Args filter = {"--seccomp", "6"};

const Args hardening = {"--unshare-user", "--unshare-ipc",     "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try",
                        "--unshare-net",  "--die-with-parent", "--new-session", "--cap-drop",    "ALL"};

/// Every tmpfs is sized (--size, the default tmpfs_bytes here); /dev/shm is one of its own, sorted
/// among the mounts; the root (bwrap's tmpfs, when the profile mounts nothing on "/") and /dev
/// itself are made read-only last, before "--".
const std::string tmpfs_size = std::to_string(shannot::ResourceLimits{}.tmpfs_bytes);
Args tmpfs(const std::string& target) { return {"--size", tmpfs_size, "--tmpfs", target}; }
const Args shm = tmpfs("/dev/shm");
const Args dev_ro = {"--remount-ro", "/", "--remount-ro", "/dev"};

Args concat(std::initializer_list<Args> parts) {
    Args out;
    for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

template <class T = Remote>
Args build(const shannot::SandboxProfile<T>& p, Args command = {"ls"}, shannot::BuildExtras extras = {}) {
    auto r = shannot::BubblewrapCommandBuilder<T>(p, std::move(command), std::move(extras)).build();
    REQUIRE_MESSAGE(r, (r ? "" : r.error().message));
    return *r;
}

}  // namespace

TEST_CASE("BubblewrapCommandBuilder: a bind that repeats another through a host symlink is --symlink") {
    const Args head = concat({hardening, {"--proc", "/proc", "--dev", "/dev"}});
    const Args tail = concat({{"--clearenv"}, filter, {"--json-status-fd", "4"}, dev_ro, {"--", "ls"}});
    const shannot::SandboxBind usr{.source = "/usr", .target = "/usr", .required = true};
    const shannot::SandboxBind bin{.source = "/bin", .target = "/bin", .optional = true};
    const shannot::BuildExtras links{.host_symlinks = {{"/bin", "/usr/bin"}}};

    SUBCASE("/bin -> /usr/bin under a read-only /usr: a symlink where the bind was") {
        Profile p{.name = "t", .binds = {usr, bin}};
        CHECK(build(p, {"ls"}, links) ==
              concat({head, {"--symlink", "/usr/bin", "/bin"}, shm, {"--ro-bind", "/usr", "/usr"}, tail}));
        CHECK(build(p) == concat({head, {"--ro-bind-try", "/bin", "/bin"}, shm, {"--ro-bind", "/usr", "/usr"}, tail}));
    }
    SUBCASE("a file works the same: /etc/os-release -> /usr/lib/os-release") {
        Profile p{.name = "t",
                  .binds = {usr, {.source = "/etc/os-release", .target = "/etc/os-release", .optional = true}}};
        CHECK(build(p, {"ls"}, {.host_symlinks = {{"/etc/os-release", "/usr/lib/os-release"}}}) ==
              concat({head,
                      shm,
                      {"--symlink", "/usr/lib/os-release", "/etc/os-release", "--ro-bind", "/usr", "/usr"},
                      tail}));
    }
    // Each of these would show something else (or more) than the bind did: the bind stays.
    const Args bind_bin = {"--ro-bind-try", "/bin", "/bin"};
    SUBCASE("the target is not bound: no /usr, or /usr only as a tmpfs") {
        CHECK(build(Profile{.name = "t", .binds = {bin}}, {"ls"}, links) == concat({head, bind_bin, shm, tail}));
        CHECK(build(Profile{.name = "t", .binds = {bin}, .tmpfs_paths = {"/usr"}}, {"ls"}, links) ==
              concat({head, bind_bin, shm, tmpfs("/usr"), tail}));
    }
    SUBCASE("the covering bind is writable, or shows another host path") {
        Profile rw{.name = "t",
                   .binds = {{.source = "/usr", .target = "/usr", .read_only = false, .required = true}, bin}};
        CHECK(build(rw, {"ls"}, links) == concat({head, bind_bin, shm, {"--bind", "/usr", "/usr"}, tail}));
        Profile elsewhere{.name = "t", .binds = {{.source = "/opt/usr", .target = "/usr", .required = true}, bin}};
        CHECK(build(elsewhere, {"ls"}, links) ==
              concat({head, bind_bin, shm, {"--ro-bind", "/opt/usr", "/usr"}, tail}));
    }
    SUBCASE("something is mounted between /usr and /usr/bin, or under /bin") {
        Profile between{.name = "t", .binds = {usr, bin}, .tmpfs_paths = {"/usr/bin"}};
        CHECK(build(between, {"ls"}, links) ==
              concat({head, bind_bin, shm, {"--ro-bind", "/usr", "/usr"}, tmpfs("/usr/bin"), tail}));
        Profile under{.name = "t", .binds = {usr, bin}, .tmpfs_paths = {"/bin/cache"}};
        CHECK(build(under, {"ls"}, links) ==
              concat({head, bind_bin, tmpfs("/bin/cache"), shm, {"--ro-bind", "/usr", "/usr"}, tail}));
    }
    SUBCASE("the bind is not source == target, or something is mounted on /") {
        Profile moved{.name = "t", .binds = {usr, {.source = "/bin", .target = "/tools", .required = true}}};
        CHECK(build(moved, {"ls"}, links) ==
              concat({head, shm, {"--ro-bind", "/bin", "/tools", "--ro-bind", "/usr", "/usr"}, tail}));
        // Under a bind of /, /bin masks part of it: never skipped, so --ro-bind whatever it says.
        Profile root{.name = "t", .binds = {{.source = "/", .target = "/", .required = true}, usr, bin}};
        CHECK(build(root, {"ls"}, links) == concat({hardening,
                                                    {"--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"},
                                                    {"--ro-bind", "/bin", "/bin"},
                                                    shm,
                                                    {"--ro-bind", "/usr", "/usr"},
                                                    {"--clearenv"},
                                                    filter,
                                                    {"--json-status-fd", "4", "--remount-ro", "/dev", "--", "ls"}}));
    }
    SUBCASE("a resolved path that is relative, or the bind itself, is ignored") {
        Profile p{.name = "t", .binds = {usr, bin}};
        CHECK(build(p, {"ls"}, {.host_symlinks = {{"/bin", "usr/bin"}}}) ==
              concat({head, bind_bin, shm, {"--ro-bind", "/usr", "/usr"}, tail}));
        CHECK(build(p, {"ls"}, {.host_symlinks = {{"/bin", "/bin/x"}}}) ==
              concat({head, bind_bin, shm, {"--ro-bind", "/usr", "/usr"}, tail}));
    }
}

TEST_CASE("BubblewrapCommandBuilder: binds whose source may be missing (SandboxBind)") {
    const Args head = concat({hardening, {"--proc", "/proc", "--dev", "/dev"}});
    const Args tail = concat({{"--clearenv"}, filter, {"--json-status-fd", "4"}, dev_ro, {"--", "ls"}});
    // /etc (required), a mask inside it, /opt (neither), /srv (optional), /data (writable, neither)
    // and a bind inside a tmpfs.
    const Profile p{.name = "t",
                    .binds = {{.source = "/etc", .target = "/etc", .required = true},
                              {.source = "/gone/null", .target = "/etc/shadow"},
                              {.source = "/opt", .target = "/opt"},
                              {.source = "/srv", .target = "/srv", .optional = true},
                              {.source = "/data", .target = "/data", .read_only = false},
                              {.source = "/gone/cache", .target = "/work/cache", .optional = true}},
                    .tmpfs_paths = {"/work"}};
    const Args masks = {"--ro-bind", "/etc", "/etc", "--ro-bind", "/gone/null", "/etc/shadow"};
    SUBCASE("sources not checked (a remote): bwrap skips a missing one there, but never a masking one") {
        CHECK(build(p) == concat({head,
                                  {"--bind-try", "/data", "/data"},
                                  shm,
                                  masks,
                                  {"--ro-bind-try", "/opt", "/opt", "--ro-bind-try", "/srv", "/srv"},
                                  tmpfs("/work"),
                                  {"--ro-bind", "/gone/cache", "/work/cache"},
                                  tail}));
    }
    SUBCASE("checked, none missing: plain binds, optional ones still -try") {
        CHECK(build(p, {"ls"}, {.missing_sources = std::vector<std::size_t>{}}) ==
              concat({head,
                      {"--bind", "/data", "/data"},
                      shm,
                      masks,
                      {"--ro-bind", "/opt", "/opt", "--ro-bind-try", "/srv", "/srv"},
                      tmpfs("/work"),
                      {"--ro-bind", "/gone/cache", "/work/cache"},
                      tail}));
    }
    SUBCASE("checked, some missing: those that may be skipped are left out, the others stay") {
        // Every index listed: /etc (required), the mask and the bind inside the tmpfs stay; /opt,
        // /srv and /data go.
        CHECK(build(p, {"ls"}, {.missing_sources = std::vector<std::size_t>{0, 1, 2, 3, 4, 5}}) ==
              concat({head, shm, masks, tmpfs("/work"), {"--ro-bind", "/gone/cache", "/work/cache"}, tail}));
        // Control: only /opt missing.
        CHECK(build(p, {"ls"}, {.missing_sources = std::vector<std::size_t>{2}}) ==
              concat({head,
                      {"--bind", "/data", "/data"},
                      shm,
                      masks,
                      {"--ro-bind-try", "/srv", "/srv"},
                      tmpfs("/work"),
                      {"--ro-bind", "/gone/cache", "/work/cache"},
                      tail}));
    }
}

TEST_CASE("BubblewrapCommandBuilder golden argv of the built-in profiles") {
    const char* root = std::getenv("SHANNOT_SOURCE_ROOT");
    REQUIRE_MESSAGE(root, "SHANNOT_SOURCE_ROOT is set by tests/meson.build");
    for (auto name : shannot::builtin_profile_names) {
        CAPTURE(name);
        std::ifstream file(std::string(root) + "/tests/golden/" + std::string(name) + ".json");
        REQUIRE(file);
        const auto golden = nlohmann::json::parse(file).get<Args>();
        const auto actual = build(*shannot::builtin_profile<Remote>(name), {"ls", "/"});
        CHECK_MESSAGE(actual == golden, "got: ", nlohmann::json(actual).dump());
    }
}

TEST_CASE("BubblewrapCommandBuilder hand-written profiles") {
    const Args tail_env = {"--clearenv"};
    const Args status = {"--json-status-fd", "4"};
    const Args proc_dev = {"--proc", "/proc", "--dev", "/dev"};
    const Args end = concat({dev_ro, {"--", "ls"}});
    // What follows a mount on "/" in an otherwise empty profile: the root stays as mounted.
    const Args after_own_root = concat({proc_dev, shm, tail_env, filter, status, {"--remount-ro", "/dev", "--", "ls"}});

    SUBCASE("an empty profile: hardening, private /proc and /dev, cleared environment") {
        CHECK(build(Profile{.name = "empty"}) == concat({hardening, proc_dev, shm, tail_env, filter, status, end}));
    }
    SUBCASE("every tmpfs is sized with tmpfs_bytes, the run's when it has one; /dev/shm is one") {
        Profile p{.name = "t", .tmpfs_paths = {"/tmp", "/var/tmp"}};
        p.limits.tmpfs_bytes = 1 << 20;
        const Args mib = {"--size", "1048576", "--tmpfs"};
        CHECK(build(p) == concat({hardening,
                                  proc_dev,
                                  mib,
                                  {"/dev/shm"},
                                  mib,
                                  {"/tmp"},
                                  mib,
                                  {"/var/tmp"},
                                  tail_env,
                                  filter,
                                  status,
                                  end}));
        shannot::ResourceLimits run;
        run.tmpfs_bytes = 4096;
        const Args page = {"--size", "4096", "--tmpfs"};
        CHECK(build(p, {"ls"}, {.limits = run}) == concat({hardening,
                                                           proc_dev,
                                                           page,
                                                           {"/dev/shm"},
                                                           page,
                                                           {"/tmp"},
                                                           page,
                                                           {"/var/tmp"},
                                                           tail_env,
                                                           filter,
                                                           status,
                                                           end}));
    }
    SUBCASE("a profile that mounts /dev/shm itself keeps its own mount there") {
        Profile bound{.name = "t", .binds = {{.source = "/srv/shm", .target = "/dev/shm", .required = true}}};
        CHECK(build(bound) ==
              concat({hardening, proc_dev, {"--ro-bind", "/srv/shm", "/dev/shm"}, tail_env, filter, status, end}));
        Profile own{.name = "t", .tmpfs_paths = {"/dev/shm/"}};
        CHECK(build(own) == concat({hardening, proc_dev, shm, tail_env, filter, status, end}));
    }
    SUBCASE("a transport that applies limits through bwrap's --block-fd gets it") {
        shannot::SandboxProfile<shannot::PosixSpawnTransport> local{.name = "t"};
        CHECK(build(local) ==
              concat({hardening, proc_dev, shm, tail_env, {"--seccomp", "7"}, status, {"--block-fd", "6"}, end}));
    }
    SUBCASE("a tmpfs under a bind is mounted after it, whatever the order written") {
        Profile p{.name = "t",
                  .binds = {{.source = "/srv", .target = "/srv", .required = true}},
                  .tmpfs_paths = {"/srv/cache"}};
        CHECK(build(p) == concat({hardening,
                                  proc_dev,
                                  shm,
                                  {"--ro-bind", "/srv", "/srv"},
                                  tmpfs("/srv/cache"),
                                  tail_env,
                                  filter,
                                  status,
                                  end}));
    }
    SUBCASE("a bind under a tmpfs is mounted after it") {
        Profile p{.name = "t", .binds = {{.source = "/etc/hosts", .target = "/etc/hosts"}}, .tmpfs_paths = {"/etc"}};
        CHECK(build(p) == concat({hardening,
                                  proc_dev,
                                  shm,
                                  tmpfs("/etc"),
                                  {"--ro-bind", "/etc/hosts", "/etc/hosts"},
                                  tail_env,
                                  filter,
                                  status,
                                  end}));
    }
    SUBCASE("a bind on / comes before /proc and /dev so it cannot hide them") {
        Profile p{.name = "t", .binds = {{.source = "/", .target = "/", .required = true}}};
        CHECK(build(p) == concat({hardening, {"--ro-bind", "/", "/"}, after_own_root}));
    }
    SUBCASE("optional, required and writable binds pick the matching bwrap flag") {
        Profile p{.name = "t",
                  .binds = {{.source = "/a", .target = "/a", .optional = true},
                            {.source = "/b", .target = "/b", .read_only = false, .required = true},
                            {.source = "/c", .target = "/c", .read_only = false, .optional = true},
                            {.source = "/d", .target = "/d", .required = true}}};
        CHECK(build(p) == concat({hardening,
                                  proc_dev,
                                  {"--ro-bind-try", "/a", "/a", "--bind", "/b", "/b", "--bind-try", "/c", "/c",
                                   "--ro-bind", "/d", "/d"},
                                  shm,
                                  tail_env,
                                  filter,
                                  status,
                                  end}));
    }
    SUBCASE("a trailing slash on a target does not change the order") {
        Profile p{.name = "t", .binds = {{.source = "/x/y", .target = "/x/y/"}}, .tmpfs_paths = {"/x/"}};
        CHECK(
            build(p) ==
            concat(
                {hardening, proc_dev, shm, tmpfs("/x"), {"--ro-bind", "/x/y", "/x/y"}, tail_env, filter, status, end}));
    }
    SUBCASE("profile and run variables: sorted, the run's override the profile's") {
        Profile p{.name = "t", .environment = {{"B", "profile"}, {"A", "profile"}}};
        CHECK(build(p, {"ls"}, {.environment = {{"B", "run"}, {"C", "run"}}}) ==
              concat({hardening,
                      proc_dev,
                      shm,
                      {"--clearenv", "--setenv", "A", "profile", "--setenv", "B", "run", "--setenv", "C", "run"},
                      filter,
                      status,
                      end}));
    }
    SUBCASE("a working directory becomes --chdir") {
        CHECK(build(Profile{.name = "t"}, {"ls"}, {.working_directory = "/tmp"}) ==
              concat({hardening, proc_dev, shm, tail_env, {"--chdir", "/tmp"}, filter, status, end}));
    }
    SUBCASE("seccomp is an fd number the transport chooses, never the path; with the built-in filter both are added") {
        Profile p{.name = "t", .seccomp_profile = "/etc/filter.bpf"};
        CHECK(
            build(p) ==
            concat(
                {hardening, proc_dev, shm, tail_env, {"--add-seccomp-fd", "6", "--add-seccomp-fd", "3"}, status, end}));
        p.syscall_filter = "none";
        CHECK(build(p) == concat({hardening, proc_dev, shm, tail_env, {"--seccomp", "3"}, status, end}));
        shannot::SandboxProfile<shannot_test::BareTransport> bare{
            .name = "t", .seccomp_profile = "/etc/filter.bpf", .syscall_filter = "none"};
        auto r = shannot::BubblewrapCommandBuilder<shannot_test::BareTransport>(bare, {"ls"}).build();
        REQUIRE_FALSE(r);
        CHECK(r.error().message == "profile 't' has a seccomp_profile but this transport cannot pass one to bwrap");
    }
    SUBCASE(
        "the built-in filter: --seccomp at the transport's fd unless \"none\"; relaxing groups changes the bytes, not "
        "the argv") {
        CHECK(build(Profile{.name = "t", .syscall_filter = "none"}) ==
              concat({hardening, proc_dev, shm, tail_env, status, end}));
        CHECK(build(Profile{.name = "t", .syscall_filter = "default", .syscall_filter_allow = {"unix_sockets"}}) ==
              concat({hardening, proc_dev, shm, tail_env, filter, status, end}));
        shannot::SandboxProfile<shannot_test::BareTransport> bare{.name = "t"};
        auto r = shannot::BubblewrapCommandBuilder<shannot_test::BareTransport>(bare, {"ls"}).build();
        REQUIRE_FALSE(r);
        CHECK(r.error().message ==
              "profile 't' has the built-in syscall filter on, but this transport cannot pass it to bwrap "
              "(\"syscall_filter\": \"none\" runs without it)");
    }
    SUBCASE("no --json-status-fd when the transport does not read it") {
        shannot::SandboxProfile<shannot_test::BareTransport> bare{.name = "t", .syscall_filter = "none"};
        CHECK(build(bare) == concat({hardening, proc_dev, shm, tail_env, end}));
    }
    SUBCASE("network and user namespace isolation can be turned off") {
        Profile p{.name = "t", .network_isolation = false, .user_namespace_isolation = false};
        CHECK(build(p) == concat({{"--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try",
                                   "--die-with-parent", "--new-session", "--cap-drop", "ALL"},
                                  proc_dev,
                                  shm,
                                  {"--clearenv"},
                                  filter,
                                  {"--json-status-fd", "4"},
                                  end}));
    }
    SUBCASE("a profile that mounts on \"/\" keeps its root as it made it; without one, / is made read-only") {
        const Args root_tmpfs = {"--size", tmpfs_size, "--tmpfs", "/"};
        Profile p{.name = "t", .tmpfs_paths = {"/"}};
        CHECK(build(p) == concat({hardening, root_tmpfs, after_own_root}));
        // A bind on "/": "a bind on / comes before /proc and /dev", above.
        // The control: the same profile without its mount on "/" gets the read-only root.
        CHECK(build(Profile{.name = "t"}) == concat({hardening, proc_dev, shm, tail_env, filter, status, end}));
    }
    SUBCASE("additional_args come last before --, verbatim") {
        Profile p{.name = "t", .additional_args = {"--hostname", "sandbox"}};
        CHECK(build(p, {"ls", "-l", "--", "-x"}) == concat({hardening,
                                                            proc_dev,
                                                            shm,
                                                            tail_env,
                                                            filter,
                                                            status,
                                                            {"--hostname", "sandbox"},
                                                            dev_ro,
                                                            {"--", "ls", "-l", "--", "-x"}}));
    }
}

namespace {
/// RemoteLikeTransport that also copies small files at fds 3 and 5; /etc/group, /etc/ld.so.cache
/// and /etc/passwd are its small files.
struct CopyingTransport : shannot_test::RemoteLikeTransport {
    static constexpr std::array<int, 2> copied_file_fds{3, 5};
    [[nodiscard]] std::map<std::string, unsigned> host_small_files(const std::vector<std::string>& paths,
                                                                   std::uint64_t) const {
        std::map<std::string, unsigned> files;
        for (const auto& p : paths)
            if (p == "/etc/group" || p == "/etc/ld.so.cache" || p == "/etc/passwd") files.emplace(p, 0644u);
        return files;
    }
};
}  // namespace

TEST_CASE("copies take the transport's descriptors that the launch leaves free: fd 3 only without a seccomp file") {
    auto profile = shannot::builtin_profile<CopyingTransport>("minimal");
    REQUIRE(profile);
    auto fds_of = [](const shannot::LaunchSpec& spec) {
        std::map<int, std::string> fds;
        for (const auto& f : spec.files) fds[f.fd] = f.path.empty() ? "(data)" : f.path;
        return fds;
    };
    auto has = [](const shannot::LaunchSpec& spec, const Args& words) {
        return std::search(spec.bwrap_args.begin(), spec.bwrap_args.end(), words.begin(), words.end()) !=
               spec.bwrap_args.end();
    };
    {
        auto spec = shannot::detail::launch_spec(*profile, CopyingTransport{}, {.command = {"ls"}});
        REQUIRE(spec);
        CHECK(has(*spec, {"--file", "3", "/etc/group"}));
        CHECK(has(*spec, {"--file", "5", "/etc/ld.so.cache"}));
        CHECK(fds_of(*spec) == std::map<int, std::string>{{3, "/etc/group"}, {5, "/etc/ld.so.cache"}, {6, "(data)"}});
        CHECK(has(*spec, {"--ro-bind-try", "/etc/passwd", "/etc/passwd"}));  // no fd left: a bind
    }
    profile->seccomp_profile = "/filters/own.bpf";
    auto spec = shannot::detail::launch_spec(*profile, CopyingTransport{}, {.command = {"ls"}});
    REQUIRE(spec);
    CHECK_FALSE(has(*spec, {"--file", "3"}));
    CHECK(has(*spec, {"--file", "5", "/etc/group"}));
    CHECK(has(*spec, {"--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"}));
    CHECK(fds_of(*spec) == std::map<int, std::string>{{3, "/filters/own.bpf"}, {5, "/etc/group"}, {6, "(data)"}});
}
