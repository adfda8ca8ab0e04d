// SPDX-License-Identifier: MIT
// An agent-style loop: tool calls, as a model would emit them, dispatched to sandboxed operations.
#include <shannot/shannot.hpp>

#include <stdlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

/// One tool call: a name and string arguments, the shape a model's function call arrives in.
struct ToolCall {
    std::string tool;
    std::vector<std::string> args;
};

std::string describe(const ToolCall& call) {
    std::string out = call.tool + "(";
    for (std::size_t i = 0; i < call.args.size(); ++i) {
        std::string arg = call.args[i];
        if (arg.size() > 40) arg = arg.substr(0, 37) + "...";
        for (auto& c : arg) c = c == '\n' ? ' ' : c;
        out += (i ? ", " : "") + arg;
    }
    return out + ")";
}

std::string text_of(const shannot::Result<shannot::ProcessResult>& r) {
    if (!r) return "error: " + r.error().describe();
    std::string out = r->stdout_data + r->stderr_data;
    if (!r->succeeded()) out += "[exit " + std::to_string(r->exit_code) + "]";
    return out;
}

/// Runs the call and returns what the model would be shown. Errors are answers too: the loop
/// goes on, and the model reads why (the path, the command, the profile) in the message.
/// `sandbox` is any shannot::CommandRunner: a SandboxManager (a fresh sandbox per call) or, as
/// here, a SandboxSession (one warm sandbox for the whole conversation).
template <shannot::CommandRunner Runner>
std::string call_tool(Runner& sandbox, const ToolCall& call) {
    const auto& a = call.args;
    if (call.tool == "list_files") {
        auto names = shannot::list_files(sandbox, a.at(0));
        if (!names) return "error: " + names.error().describe();
        std::string out;
        for (const auto& n : *names) out += n + "\n";
        return out;
    }
    if (call.tool == "read_file") {
        auto bytes = shannot::read_file(sandbox, a.at(0));
        return bytes ? *bytes : "error: " + bytes.error().describe();
    }
    if (call.tool == "write_file") {
        auto done = shannot::write_file(sandbox, a.at(0), a.at(1));
        return done ? "wrote " + std::to_string(a.at(1).size()) + " bytes" : "error: " + done.error().describe();
    }
    if (call.tool == "grep_content")
        return text_of(shannot::grep_content(sandbox, a.at(0), a.at(1), {.recursive = true}));
    if (call.tool == "check_disk_usage") return text_of(shannot::check_disk_usage(sandbox));
    if (call.tool == "execute_code") return text_of(shannot::execute_code(sandbox, a.at(0), a.at(1)));
    return "error: unknown tool '" + call.tool + "'";
}

/// A folder on this host, removed at the end.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        char name[] = "/tmp/shannot-agent-XXXXXX";
        if (::mkdtemp(name)) path = name;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    void write(const std::string& name, const std::string& text) const {
        std::filesystem::create_directories((path / name).parent_path());
        std::ofstream(path / name) << text;
    }
};

}  // namespace

int main() {
    // The project the agent works on, shown read-only at /workspace; its output folder, writable at /output.
    TempDir workspace, output;
    if (workspace.path.empty() || output.path.empty()) return std::fprintf(stderr, "mkdtemp failed\n"), 2;
    workspace.write("notes.txt", "Release checklist\n- run the tests\n- TODO: update the changelog\n");
    workspace.write("src/app.py", "def main():\n    pass  # TODO: parse arguments\n");
    workspace.write("README.md", "# demo\n");

    auto profile = shannot::builtin_profile(shannot::default_profile_name);  // ls, cat, grep, find
    if (!profile) return std::fprintf(stderr, "%s\n", profile.error().describe().c_str()), 2;
    profile->name = "agent";
    for (const char* tool : {"df", "dd", "python3"}) profile->allowed_commands.emplace_back(tool);
    profile->binds.push_back({.source = workspace.path.string(), .target = "/workspace"});
    profile->binds.push_back({.source = output.path.string(), .target = "/output", .read_only = false});
    shannot::LocalSandbox sandbox(*profile);
    // One warm sandbox for the whole conversation: each call costs about a fork+exec instead
    // of a sandbox start, and the calls share /tmp (not variables or processes).
    auto session = sandbox.open_session();
    if (!session) return std::fprintf(stderr, "%s\n", session.error().describe().c_str()), 2;

    // In a real agent these come one at a time from the model, each chosen after reading the
    // previous result; here the script stands in for the model.
    const std::vector<ToolCall> calls{
        {"list_files", {"/workspace"}},
        {"read_file", {"/workspace/notes.txt"}},
        {"grep_content", {"TODO", "/workspace"}},
        {"check_disk_usage", {}},
        {"execute_code", {"python", "import os\nprint(len(os.listdir('/workspace')), 'entries')\n"}},
        {"write_file", {"/workspace/notes.txt", "overwritten"}},  // refused: /workspace is read-only
        {"write_file", {"/output/summary.txt", "2 TODOs: changelog, argument parsing\n"}},
        {"read_file", {"/output/summary.txt"}},
    };
    for (const auto& call : calls) {
        std::printf("> %s\n", describe(call).c_str());
        std::string result = call_tool(*session, call);
        if (!result.empty() && result.back() != '\n') result += '\n';
        std::size_t lines = 0, pos = 0;
        while (pos < result.size() && lines < 6) {  // the model gets it all; the console, a few lines
            const auto end = result.find('\n', pos);
            std::printf("  %s\n", result.substr(pos, end - pos).c_str());
            pos = end + 1;
            ++lines;
        }
        if (pos < result.size()) std::printf("  ...\n");
    }
    return 0;
}
