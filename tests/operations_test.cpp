// SPDX-License-Identifier: MIT
// Agent operations over both transports, against real bwrap and a real sshd: host folders are
// bound into the sandbox (read-only at /data, writable at /out) so results can be checked here.
#include <doctest/doctest.h>
#include <shannot/shannot.hpp>

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "support/transports.hpp"

namespace ops_test {

namespace fs = std::filesystem;
using shannot::errc;

/// A host folder, removed with everything in it at the end.
class HostDir {
public:
    HostDir() {
        char name[] = "/tmp/shannot-ops-XXXXXX";
        if (::mkdtemp(name)) path_ = name;
        ::chmod(path_.c_str(), 0755);
    }
    ~HostDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    HostDir(const HostDir&) = delete;
    HostDir& operator=(const HostDir&) = delete;

    [[nodiscard]] const std::string& path() const { return path_; }
    void write(const std::string& name, const std::string& bytes) const {
        const fs::path p = fs::path(path_) / name;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << bytes;
    }
    [[nodiscard]] std::string read(const std::string& name) const {
        std::ifstream f(fs::path(path_) / name, std::ios::binary);
        return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    }
    [[nodiscard]] bool exists(const std::string& name) const {
        std::error_code ec;
        return fs::exists(fs::symlink_status(fs::path(path_) / name, ec));
    }

private:
    std::string path_;
};

/// Every byte value, `rounds` times over.
inline std::string all_bytes(int rounds) {
    std::string s;
    for (int r = 0; r < rounds; ++r)
        for (int b = 0; b < 256; ++b) s.push_back(static_cast<char>(b));
    return s;
}

inline std::string random_bytes(std::size_t n, unsigned seed) {
    std::mt19937 gen(seed);
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(gen() & 0xff);
    return s;
}

/// The test profile plus the operations' commands, with `data` read-only at /data and `out`
/// writable at /out.
template <class T>
shannot::SandboxProfile<T> profile(const HostDir& data, const HostDir& out) {
    auto p = shannot_test::test_profile<T>();
    for (const char* c : {"cat", "find", "dd", "rm", "ls", "grep", "df", "free", "python3", "perl"})
        if (std::find(p.allowed_commands.begin(), p.allowed_commands.end(), c) == p.allowed_commands.end())
            p.allowed_commands.emplace_back(c);
    p.binds.push_back({.source = data.path(), .target = "/data"});
    p.binds.push_back({.source = out.path(), .target = "/out", .read_only = false});
    return p;
}

template <class T>
shannot::SandboxProfile<T> without(shannot::SandboxProfile<T> p, std::string_view command) {
    std::erase(p.allowed_commands, std::string(command));
    return p;
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

}  // namespace ops_test

TEST_CASE_TEMPLATE("operations read_file", T, SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    using namespace ops_test;
    HostDir data, out;
    auto sandbox = shannot_test::make_sandbox<T>(profile<T>(data, out));

    SUBCASE("all 256 byte values arrive exact") {
        const auto bytes = all_bytes(4);
        data.write("bytes.bin", bytes);
        auto r = shannot::read_file(sandbox, "/data/bytes.bin");
        REQUIRE(r);
        CHECK(*r == bytes);
    }
    SUBCASE("1 MiB of random bytes arrives exact") {
        const auto bytes = random_bytes(1u << 20, 1);
        data.write("big.bin", bytes);
        auto r = shannot::read_file(sandbox, "/data/big.bin");
        REQUIRE(r);
        CHECK(r->size() == bytes.size());
        CHECK(*r == bytes);
    }
    SUBCASE("names with a leading dash or a newline are files, not options") {
        data.write("-n", "dash\n");
        data.write("--version", "long dash\n");
        data.write("a\nb", "newline\n");
        for (const auto& file : std::vector<std::pair<std::string, std::string>>{
                 {"-n", "dash\n"}, {"--version", "long dash\n"}, {"a\nb", "newline\n"}}) {
            CAPTURE(file.first);
            auto r = shannot::read_file(sandbox, "/data/" + file.first);
            REQUIRE(r);
            CHECK(*r == file.second);
        }
    }
    SUBCASE("an empty file is an empty string") {
        data.write("empty", "");
        auto r = shannot::read_file(sandbox, "/data/empty");
        REQUIRE(r);
        CHECK(r->empty());
    }
    SUBCASE("a file larger than max_output is refused, never returned truncated") {
        data.write("big.bin", random_bytes(1u << 20, 2));
        auto r = shannot::read_file(sandbox, "/data/big.bin", {.max_output = 64u << 10});
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::io_error);
        CHECK(contains(r.error().message, "'/data/big.bin'"));
        CHECK(contains(r.error().message, "65536-byte limit"));
        auto exact = shannot::read_file(sandbox, "/data/big.bin", {.max_output = 1u << 20});  // exactly the cap: fits
        REQUIRE(exact);
        CHECK(exact->size() == (1u << 20));
    }
    SUBCASE("a missing file is an error naming it, with the result attached") {
        auto r = shannot::read_file(sandbox, "/data/missing-file");
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::command_failed);
        CHECK(contains(r.error().message, "read_file('/data/missing-file')"));
        CHECK(contains(r.error().message, "No such file"));
        REQUIRE(r.error().result);
        CHECK(r.error().result->exit_code == 1);
    }
    SUBCASE("a relative path is refused before anything runs") {
        for (const std::string path : {"data/bytes.bin", "-n", ""}) {
            CAPTURE(path);
            auto r = shannot::read_file(sandbox, path);
            REQUIRE_FALSE(r);
            CHECK(r.error().code == errc::invalid_argument);
            CHECK(r.error().result == nullptr);
            if (!path.empty()) CHECK(contains(r.error().message, "'" + path + "'"));
        }
    }
    SUBCASE("the allowlist decides: without cat in the profile, nothing is read") {
        data.write("x", "x");
        auto refused = shannot_test::make_sandbox<T>(without(profile<T>(data, out), "cat"));
        auto r = shannot::read_file(refused, "/data/x");
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::command_refused);
        CHECK(contains(r.error().message, "read_file('/data/x')"));
        CHECK(contains(r.error().message, "command 'cat'"));
    }
}

TEST_CASE_TEMPLATE("operations list_files", T, SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    using namespace ops_test;
    HostDir data, out;
    auto sandbox = shannot_test::make_sandbox<T>(profile<T>(data, out));

    SUBCASE("every name arrives intact, sorted, without . and ..") {
        std::vector<std::string> names{"plain",   "with space", "-rf", "--help", "line\nbreak",
                                       ".hidden", "*",          "(",   "!",      "tab\tx"};
        for (const auto& n : names) data.write(n, "x");
        data.write("sub/inner", "not listed");
        names.emplace_back("sub");
        std::sort(names.begin(), names.end());
        auto r = shannot::list_files(sandbox, "/data");
        REQUIRE(r);
        CHECK(*r == names);
        auto inner = shannot::list_files(sandbox, "/data/sub/");
        REQUIRE(inner);
        CHECK(*inner == std::vector<std::string>{"inner"});
    }
    SUBCASE("a symlink to a folder lists the folder") {
        data.write("sub/inner", "x");
        fs::create_directory_symlink("sub", fs::path(data.path()) / "link");
        auto r = shannot::list_files(sandbox, "/data/link");
        REQUIRE(r);
        CHECK(*r == std::vector<std::string>{"inner"});
    }
    SUBCASE("an empty folder lists nothing") {
        auto r = shannot::list_files(sandbox, "/data");
        REQUIRE(r);
        CHECK(r->empty());
    }
    SUBCASE("a file is not a directory") {
        data.write("file", "x");
        auto r = shannot::list_files(sandbox, "/data/file");
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::invalid_argument);
        CHECK(contains(r.error().message, "list_files('/data/file'): not a directory"));
    }
    SUBCASE("a missing folder is an error naming it") {
        auto r = shannot::list_files(sandbox, "/data/-missing");
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::command_failed);
        CHECK(contains(r.error().message, "/data/-missing"));
        CHECK(contains(r.error().message, "No such file"));
    }
    SUBCASE("a relative folder is refused") {
        auto r = shannot::list_files(sandbox, "-delete");
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::invalid_argument);
        CHECK(contains(r.error().message, "'-delete'"));
    }
}

TEST_CASE_TEMPLATE("operations write_file and remove_file", T, SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    using namespace ops_test;
    HostDir data, out;
    auto sandbox = shannot_test::make_sandbox<T>(profile<T>(data, out));

    SUBCASE("1 MiB of binary through a writable bind, read back in a later run") {
        const auto bytes = random_bytes(1u << 20, 3) + all_bytes(1);
        auto w = shannot::write_file(sandbox, "/out/big.bin", bytes);
        REQUIRE(w);
        CHECK(out.read("big.bin") == bytes);
        auto r = shannot::read_file(sandbox, "/out/big.bin");
        REQUIRE(r);
        CHECK(*r == bytes);
    }
    SUBCASE("overwriting truncates; empty content makes an empty file") {
        REQUIRE(shannot::write_file(sandbox, "/out/f", "long content here"));
        REQUIRE(shannot::write_file(sandbox, "/out/f", "s"));
        CHECK(out.read("f") == "s");
        REQUIRE(shannot::write_file(sandbox, "/out/f", ""));
        CHECK(out.exists("f"));
        CHECK(out.read("f").empty());
    }
    SUBCASE("names with leading dashes and newlines are files") {
        for (const std::string name : {"-n", "--help", "of=x", "a\nb"}) {
            CAPTURE(name);
            REQUIRE(shannot::write_file(sandbox, "/out/" + name, "content of " + name));
            CHECK(out.read(name) == "content of " + name);
        }
    }
    SUBCASE("the tmpfs /tmp is writable, for that one run") {
        REQUIRE(shannot::write_file(sandbox, "/tmp/scratch", "gone soon"));
        auto r = shannot::read_file(sandbox, "/tmp/scratch");  // a fresh sandbox: a fresh /tmp
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::command_failed);
    }
    SUBCASE("a path no writable mount covers is refused before anything runs") {
        data.write("existing", "keep");
        // Even with dd and rm not allowed, the mount rule answers first: nothing was admitted or run.
        auto no_tools = shannot_test::make_sandbox<T>(without(without(profile<T>(data, out), "dd"), "rm"));
        for (const std::string path :
             {"/data/new", "/data/existing", "/usr/shannot-x", "/etc/passwd", "/nowhere/x", "/proc/x", "/dev/null"}) {
            CAPTURE(path);
            for (auto* sb : {&sandbox, &no_tools}) {
                auto w = shannot::write_file(*sb, path, "x");
                REQUIRE_FALSE(w);
                CHECK(w.error().code == errc::command_refused);
                CHECK(contains(w.error().message, "write_file('" + path + "')"));
                CHECK(contains(w.error().message, "no writable mount covers '" + path + "'"));
                CHECK(w.error().result == nullptr);
                auto rm = shannot::remove_file(*sb, path);
                REQUIRE_FALSE(rm);
                CHECK(rm.error().code == errc::command_refused);
                CHECK(contains(rm.error().message, "remove_file('" + path + "')"));
            }
        }
        auto ro = shannot::write_file(sandbox, "/data/new", "x");
        CHECK(contains(ro.error().message, "read-only bind /data"));
        CHECK(contains(ro.error().message, "writable: /out, /tmp"));
        CHECK_FALSE(data.exists("new"));
        CHECK(data.read("existing") == "keep");
        auto escape = shannot::write_file(sandbox, "/out/../data/new", "x");
        REQUIRE_FALSE(escape);
        CHECK(escape.error().code == errc::invalid_argument);
        CHECK(contains(escape.error().message, "'/out/../data/new'"));
    }
    SUBCASE("a covered path still needs its command allowed") {
        auto no_dd = shannot_test::make_sandbox<T>(without(profile<T>(data, out), "dd"));
        auto w = shannot::write_file(no_dd, "/out/f", "x");
        REQUIRE_FALSE(w);
        CHECK(w.error().code == errc::command_refused);
        CHECK(contains(w.error().message, "command 'dd'"));
        CHECK_FALSE(out.exists("f"));
    }
    SUBCASE("a read-only bind inside a writable one is not writable; beside it is") {
        auto p = profile<T>(data, out);
        p.binds.push_back({.source = data.path(), .target = "/out/ro"});
        auto nested = shannot_test::make_sandbox<T>(p);
        auto w = shannot::write_file(nested, "/out/ro/x", "x");
        REQUIRE_FALSE(w);
        CHECK(contains(w.error().message, "read-only bind /out/ro"));
        CHECK(shannot::write_file(nested, "/out/beside", "y"));
        CHECK(out.read("beside") == "y");
    }
    SUBCASE("remove_file removes exactly the named file") {
        out.write("-rf", "x");
        out.write("keep", "y");
        out.write("a\nb", "z");
        REQUIRE(shannot::remove_file(sandbox, "/out/-rf"));
        REQUIRE(shannot::remove_file(sandbox, "/out/a\nb"));
        CHECK_FALSE(out.exists("-rf"));
        CHECK_FALSE(out.exists("a\nb"));
        CHECK(out.read("keep") == "y");
    }
    SUBCASE("removing a missing file or a folder is an error naming it") {
        auto missing = shannot::remove_file(sandbox, "/out/missing");
        REQUIRE_FALSE(missing);
        CHECK(missing.error().code == errc::command_failed);
        CHECK(contains(missing.error().message, "remove_file('/out/missing')"));
        CHECK(contains(missing.error().message, "No such file"));
        out.write("dir/inside", "x");
        auto dir = shannot::remove_file(sandbox, "/out/dir");
        REQUIRE_FALSE(dir);
        CHECK(out.exists("dir/inside"));
    }
    SUBCASE("writing onto a folder fails instead of writing into it") {
        out.write("dir/inside", "x");
        auto w = shannot::write_file(sandbox, "/out/dir", "x");
        REQUIRE_FALSE(w);
        CHECK(w.error().code == errc::command_failed);
        CHECK(contains(w.error().message, "write_file('/out/dir')"));
        CHECK(out.read("dir/inside") == "x");
    }
}

TEST_CASE("operations writable_mount") {
    using P = shannot::SandboxProfile<shannot::OpenSshProcessTransport>;
    P p;
    p.name = "w";
    p.binds = {{.source = "/usr", .target = "/usr"},
               {.source = "/srv/data", .target = "/data/", .read_only = false},
               {.source = "/srv/ro", .target = "/data/ro"}};
    p.tmpfs_paths = {"/tmp", "/data/ro/scratch"};
    CHECK(shannot::writable_mount(p, "/data") == "/data");
    CHECK(shannot::writable_mount(p, "/data/x/y") == "/data");
    CHECK(shannot::writable_mount(p, "/data/ro/scratch/f") == "/data/ro/scratch");
    CHECK(shannot::writable_mount(p, "/tmp/f") == "/tmp");
    for (const char* path : {"/data/ro", "/data/ro/f", "/usr/bin/x", "/datax", "/", "/proc/1/x", "/dev/x"}) {
        CAPTURE(path);
        auto r = shannot::writable_mount(p, path);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == shannot::errc::command_refused);
        CHECK(ops_test::contains(r.error().message, std::string("'") + path + "'"));
    }
    for (const char* path : {"relative", "/data/../usr/x", "/data//x", "/data/./x"}) {
        CAPTURE(path);
        auto r = shannot::writable_mount(p, path);
        REQUIRE_FALSE(r);
        CHECK(r.error().code == shannot::errc::invalid_argument);
    }
    P none;
    none.name = "none";
    auto r = shannot::writable_mount(none, "/x");
    REQUIRE_FALSE(r);
    CHECK(ops_test::contains(r.error().message, "the profile has no writable mount"));
}

TEST_CASE_TEMPLATE("operations execute_code", T, SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    using namespace ops_test;
    HostDir data, out;
    auto sandbox = shannot_test::make_sandbox<T>(profile<T>(data, out));

    SUBCASE("each language runs its code from stdin") {
        struct Case {
            std::string language, code, want;
        };
        for (const auto& c :
             std::vector<Case>{{"python", "import sys\nprint(sum(range(10)), sys.version_info[0])\n", "45 3\n"},
                               {"python3", "print('py3')", "py3\n"},
                               {"Python", "print('any case')", "any case\n"},
                               {"sh", "echo $((6 * 7))\n", "42\n"},
                               {"bash", "[[ -n $BASH_VERSION ]] && echo bash\n", "bash\n"},
                               {"perl", "print 6 * 7, \"\\n\";", "42\n"}}) {
            CAPTURE(c.language);
            auto r = shannot::execute_code(sandbox, c.language, c.code);
            REQUIRE(r);
            CHECK(r->exit_code == 0);
            CHECK(r->stdout_data == c.want);
            CHECK(r->stderr_data.empty());
        }
    }
    SUBCASE("code far beyond one argv word's 128 KiB limit goes through") {
        std::string code;
        for (int i = 0; i < 40000; ++i) code += "x = " + std::to_string(i) + "\n";  // ~430 KiB
        code += "print('done', x)\n";
        auto r = shannot::execute_code(sandbox, "python", code);
        REQUIRE(r);
        CHECK(r->stdout_data == "done 39999\n");
    }
    SUBCASE("a failing program is a result, not an error; options reach it") {
        auto r = shannot::execute_code(sandbox, "sh", "echo \"$GREETING\" from $(pwd); echo bad >&2; exit 3",
                                       {.environment = {{"GREETING", "hi"}}, .working_directory = "/data"});
        REQUIRE(r);
        CHECK(r->exit_code == 3);
        CHECK(r->stdout_data == "hi from /data\n");
        CHECK(r->stderr_data == "bad\n");
    }
    SUBCASE("the timeout applies") {
        auto r = shannot::execute_code(sandbox, "sh", "sleep 4324.5", {.timeout = std::chrono::milliseconds(500)});
        REQUIRE(r);
        CHECK(r->timed_out);
    }
    SUBCASE("an unknown language is an error naming it") {
        auto r = shannot::execute_code(sandbox, "cobol", "DISPLAY 'HI'.");
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::invalid_argument);
        CHECK(contains(r.error().message, "'cobol'"));
        CHECK(contains(r.error().message, "python"));
    }
    SUBCASE("the interpreter must be allowed by the profile") {
        auto refused = shannot_test::make_sandbox<T>(without(profile<T>(data, out), "python3"));
        auto r = shannot::execute_code(refused, "python", "print(1)");
        REQUIRE_FALSE(r);
        CHECK(r.error().code == errc::command_refused);
        CHECK(contains(r.error().message, "execute_code('python')"));
        CHECK(contains(r.error().message, "command 'python3'"));
    }
}

TEST_CASE_TEMPLATE("operations diagnostics", T, SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    using namespace ops_test;
    HostDir data, out;
    data.write("notes.txt", "first line\nsay -needle here\nlast\n");
    data.write("sub/deep.txt", "-needle deep\n");
    data.write("plain", "no match\n");
    data.write(".hidden", "");
    auto sandbox = shannot_test::make_sandbox<T>(profile<T>(data, out));

    SUBCASE("check_disk_usage and check_memory") {
        auto df = shannot::check_disk_usage(sandbox);
        REQUIRE(df);
        CHECK(df->succeeded());
        CHECK(contains(df->stdout_data, "Filesystem"));
        CHECK(df->command.back() == "-h");
        auto mem = shannot::check_memory(sandbox);
        REQUIRE(mem);
        CHECK(mem->succeeded());
        CHECK(contains(mem->stdout_data, "Mem:"));
    }
    SUBCASE("list_directory, short, long and with hidden files") {
        auto brief = shannot::list_directory(sandbox, "/data");
        REQUIRE(brief);
        CHECK(brief->stdout_data == "notes.txt\nplain\nsub\n");
        auto hidden = shannot::list_directory(sandbox, "/data", {.hidden = true});
        REQUIRE(hidden);
        CHECK(contains(hidden->stdout_data, ".hidden\n"));
        auto long_format = shannot::list_directory(sandbox, "/data", {.long_format = true});
        REQUIRE(long_format);
        CHECK(contains(long_format->stdout_data, "total "));
        CHECK(contains(long_format->stdout_data, "\n-rw"));
        CHECK(contains(long_format->stdout_data, " notes.txt\n"));
        auto missing = shannot::list_directory(sandbox, "/data/--all");
        REQUIRE(missing);
        CHECK(missing->exit_code == 2);  // a missing path is ls's answer, not an error
        CHECK(contains(missing->stderr_data, "/data/--all"));
    }
    SUBCASE("search_files matches the last component against the glob") {
        auto r = shannot::search_files(sandbox, "/data", "*.txt");
        REQUIRE(r);
        CHECK(r->succeeded());
        CHECK(contains(r->stdout_data, "/data/notes.txt\n"));
        CHECK(contains(r->stdout_data, "/data/sub/deep.txt\n"));
        CHECK_FALSE(contains(r->stdout_data, "plain"));
    }
    SUBCASE("grep_content takes a leading-dash pattern as a pattern") {
        auto one = shannot::grep_content(sandbox, "-needle", "/data/notes.txt");
        REQUIRE(one);
        CHECK(one->exit_code == 0);
        CHECK(one->stdout_data == "say -needle here\n");
        auto tree = shannot::grep_content(sandbox, "-needle", "/data", {.recursive = true});
        REQUIRE(tree);
        CHECK(contains(tree->stdout_data, "/data/notes.txt:say -needle here\n"));
        CHECK(contains(tree->stdout_data, "/data/sub/deep.txt:-needle deep\n"));
        auto none = shannot::grep_content(sandbox, "absent", "/data", {.recursive = true});
        REQUIRE(none);  // no match is an answer: grep's status 1
        CHECK(none->exit_code == 1);
        CHECK(none->stdout_data.empty());
        auto not_recursive = shannot::grep_content(sandbox, "-needle", "/data");
        REQUIRE(not_recursive);
        CHECK(not_recursive->exit_code == 2);  // grep: /data: Is a directory
    }
    SUBCASE("diagnostics go through the allowlist too") {
        auto refused = shannot_test::make_sandbox<T>(without(without(profile<T>(data, out), "df"), "grep"));
        auto df = shannot::check_disk_usage(refused);
        REQUIRE_FALSE(df);
        CHECK(df.error().code == errc::command_refused);
        CHECK(contains(df.error().message, "command 'df'"));
        auto grep = shannot::grep_content(refused, "x", "/data");
        REQUIRE_FALSE(grep);
        CHECK(grep.error().code == errc::command_refused);
    }
    SUBCASE("relative paths are refused") {
        auto ls = shannot::list_directory(sandbox, "data");
        REQUIRE_FALSE(ls);
        CHECK(ls.error().code == errc::invalid_argument);
        auto find = shannot::search_files(sandbox, "-newer", "x");
        REQUIRE_FALSE(find);
        CHECK(find.error().code == errc::invalid_argument);
        auto grep = shannot::grep_content(sandbox, "x", "--help");
        REQUIRE_FALSE(grep);
        CHECK(grep.error().code == errc::invalid_argument);
        CHECK(contains(grep.error().message, "'--help'"));
    }
}

TEST_CASE("operations example: examples/remote runs over a real sshd") {
    SHANNOT_REQUIRE_TRANSPORT(shannot::OpenSshProcessTransport);
    const char* build = std::getenv("SHANNOT_BUILD_ROOT");
    const std::string exe = build ? std::string(build) + "/examples/remote" : std::string();
    if (exe.empty() || ::access(exe.c_str(), X_OK) != 0) {
        MESSAGE("skipped: examples/remote is not built (meson -Dexamples=false?)");
        return;
    }
    const auto c = shannot_test::shared_sshd()->connection();
    auto quote = [](const std::string& s) {
        std::string out = "'";
        for (char ch : s) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
        return out + "'";
    };
    auto run = [&](const std::string& command, int& status) {
        const std::string line = quote(exe) + " 127.0.0.1 " + std::to_string(c.port) + " " + quote(c.user) + " " +
                                 quote(c.identity_file) + " " + quote(c.known_hosts_file) + " " + command + " 2>&1";
        std::string out;
        FILE* pipe = ::popen(line.c_str(), "r");
        REQUIRE(pipe);
        char buffer[4096];
        while (const auto n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
        status = ::pclose(pipe);
        return out;
    };
    int status = -1;
    const auto listing = run("ls /", status);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(ops_test::contains(listing, "usr\n"));
    CHECK(ops_test::contains(listing, "[remote exit 0 after "));
    const auto refused = run("rm -rf /", status);
    CHECK(WEXITSTATUS(status) == 3);
    CHECK(ops_test::contains(refused, "command 'rm' is not allowed"));
}

TEST_CASE_TEMPLATE("operations on a warm session", T, SHANNOT_TRANSPORTS) {
    SHANNOT_REQUIRE_TRANSPORT(T);
    using namespace ops_test;
    HostDir data, out;
    data.write("in.txt", "hello\n");
    shannot::SandboxManager<T> manager(profile<T>(data, out), shannot_test::TransportFixture<T>::transport());
    auto session = manager.open_session();
    REQUIRE_MESSAGE(session, (session ? "" : session.error().message));

    // The same operations, on one sandbox: what one writes to its tmpfs the next one reads.
    REQUIRE(shannot::write_file(*session, "/tmp/scratch", all_bytes(4)));
    auto back = shannot::read_file(*session, "/tmp/scratch");
    REQUIRE(back);
    CHECK(*back == all_bytes(4));
    auto listed = shannot::list_files(*session, "/data");
    REQUIRE(listed);
    CHECK(*listed == std::vector<std::string>{"in.txt"});
    REQUIRE(shannot::write_file(*session, "/out/result", "done"));
    CHECK(out.read("result") == "done");
    REQUIRE(shannot::remove_file(*session, "/tmp/scratch"));
    auto gone = shannot::read_file(*session, "/tmp/scratch");
    REQUIRE_FALSE(gone);
    auto code = shannot::execute_code(*session, "sh", "cat /data/in.txt; echo $X", {.environment = {{"X", "42"}}});
    REQUIRE(code);
    CHECK(code->stdout_data == "hello\n42\n");
}
