// SPDX-License-Identifier: MIT
// shannot mcp: the server loop. Quick requests are answered in order on the reading thread; tool
// calls run on worker threads, with progress notifications and cancellation; EOF ends it all.
#pragma once

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <shannot/shannot.hpp>

#include "audit.hpp"
#include "calls.hpp"
#include "jsonrpc.hpp"
#include "prompts.hpp"
#include "protocol.hpp"
#include "resources.hpp"
#include "tools.hpp"

namespace shannot_cli::mcp {

/// Tool calls running at once; more wait, up to max_waiting_calls; a call beyond both is refused
/// at once (isError), so a burst of requests costs bounded threads, processes and memory.
inline constexpr std::size_t max_running_calls = 8;
inline constexpr std::size_t max_waiting_calls = 64;
/// A request line longer than this gets an error and is dropped as it arrives (never kept whole).
inline constexpr std::size_t max_request_bytes = 4u << 20;
/// How often a call that asked for progress hears of it.
inline constexpr auto progress_interval = std::chrono::milliseconds(500);
/// The least time between a call's last progress notification and its answer (see work()).
inline constexpr auto progress_gap = std::chrono::milliseconds(10);

inline constexpr std::string_view server_instructions =
    "Shannot runs commands in read-only sandboxes (bubblewrap), on this host or on remote hosts over ssh. Each sandbox "
    "profile has a run tool, sandbox_<profile> (sandbox_<target>_<profile> on a remote host), that takes the command "
    "as an "
    "array of words; its description lists the commands the profile allows. read_file, list_directory, search_files, "
    "grep_content, check_disk_usage and check_memory take a `profile` argument. The resources "
    "sandbox://profiles/{name} "
    "describe each profile.";

class Server {
public:
    /// Reads requests from `in_fd`, writes messages to `out_fd`; stops when `wake_fd` (if >= 0)
    /// becomes readable (a signal handler writes to it).
    Server(Catalog& catalog, AuditLog& audit, int in_fd, int out_fd, int wake_fd)
        : catalog_(catalog), audit_(audit), in_fd_(in_fd), wake_fd_(wake_fd), writer_(out_fd) {}
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;
    ~Server() { stop(); }

    /// Serves until the client closes stdin (or a signal, or stdout is gone); then stops every
    /// call, waits for them, and returns.
    void serve() {
        LineSplitter splitter(max_request_bytes);
        std::string buffer(1u << 16, '\0');
        const auto on_line = [this](const Line& line) { handle_line(line); };
        pollfd fds[2] = {{in_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
        while (!writer_.broken()) {
            if (::poll(fds, wake_fd_ >= 0 ? 2 : 1, -1) < 0) {
                if (errno == EINTR) continue;
                break;
            }
            if (wake_fd_ >= 0 && fds[1].revents) break;
            if (!fds[0].revents) continue;
            const auto n = ::read(in_fd_, buffer.data(), buffer.size());
            if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
            if (n <= 0) {
                splitter.finish(on_line);
                break;
            }
            splitter.feed(std::string_view(buffer.data(), static_cast<std::size_t>(n)), on_line);
        }
        stop();
    }

private:
    struct Call {
        json id;
        std::string key;  ///< the id as text, for the table of calls
        Envelope envelope;
        const Tool* tool = nullptr;
        CallPlan plan;
        std::optional<json> progress_token;
        shannot::CancelToken token;
        bool cancelled = false;  ///< under mutex_: no response goes out
        std::string cancel_reason;
        double last_progress = 0;
        std::chrono::steady_clock::time_point progress_sent{};  ///< when the last one went out
        std::chrono::steady_clock::time_point received = std::chrono::steady_clock::now();
        std::chrono::system_clock::time_point received_wall = std::chrono::system_clock::now();
        std::atomic<std::uint64_t> bytes{0};
    };

    /// One line, whatever it holds: the server never dies of a request. (Nothing here is meant
    /// to throw; an exception, e.g. std::bad_alloc, is answered as an internal error.)
    void handle_line(const Line& line) {
        try {
            handle_line_unguarded(line);
        } catch (const std::exception& e) {
            send_error(nullptr, {rpc_error::internal_error, std::string("internal error: ") + e.what()});
        }
    }

    void handle_line_unguarded(const Line& line) {
        if (line.too_long) {
            send_error(recover_id(line.head, line.tail),
                       {rpc_error::invalid_request,
                        "the message is " + std::to_string(line.size) + " bytes, more than this server reads in one (" +
                            format_bytes(max_request_bytes) + "); it was dropped",
                        {{"limit", max_request_bytes}, {"size", line.size}}});
            return;
        }
        if (line.text.find_first_not_of(" \t\r") == std::string_view::npos) return;
        auto parsed = shannot::detail::parse_json_strict(line.text);
        if (!parsed) {
            send_error(nullptr, {rpc_error::parse_error, "parse error: " + parsed.error().message});
            return;
        }
        auto in = classify(std::move(*parsed));
        switch (in.kind) {
        case Incoming::Kind::invalid:
            if (in.id.is_null() && !in.method.empty() && in.error.code == rpc_error::invalid_params) {
                note("mcp: ignored the notification '" + in.method + "': " + in.error.message);
                return;
            }
            send_error(in.id, in.error);
            return;
        case Incoming::Kind::response: return;  // this server sends no requests
        case Incoming::Kind::notification: handle_notification(in); return;
        case Incoming::Kind::request: handle_request(in); return;
        }
    }

    void handle_notification(const Incoming& in) {
        if (in.method != "notifications/cancelled") return;  // initialized, progress, roots: nothing to do
        const auto id = in.params.find("requestId");
        if (id == in.params.end() || !(id->is_string() || id->is_number())) return;
        std::lock_guard lock(mutex_);
        const auto it = calls_.find(id->dump());
        if (it == calls_.end()) return;  // finished already, or never ours: ignored, as the spec says
        it->second->cancelled = true;
        it->second->cancel_reason = "cancelled by the client";
        it->second->token.cancel();
    }

    void handle_request(const Incoming& in) {
        auto envelope = read_envelope(in.params);
        if (!envelope) return send_error(in.id, envelope.error());
        Envelope env = *envelope;
        if (!env.modern) {
            std::lock_guard lock(mutex_);
            env.client_name = client_name_;
        }
        const auto& m = in.method;
        const auto& p = in.params;
        if (m == "initialize") return initialize(in);
        if (m == "ping") return answer(in.id, env, json::object(), false);
        if (m == "server/discover") {
            json result = {{"supportedVersions", supported_versions()},
                           {"capabilities", server_capabilities()},
                           {"instructions", server_instructions},
                           {"_meta", {{meta_server_info, server_info()}}}};
            env.modern = true;  // a discover is answered in the 2026-07-28 shape whatever else it carries
            return answer(in.id, env, std::move(result), true);
        }
        if (m == "tools/list" || m == "resources/list" || m == "resources/templates/list" || m == "prompts/list") {
            if (const auto cursor = p.find("cursor"); cursor != p.end() && !cursor->is_null())
                return send_error(in.id, {rpc_error::invalid_params,
                                          cursor->is_string() ? "unknown cursor: this server lists everything at once"
                                                              : "\"cursor\" must be a string"});
            if (m == "tools/list") return answer(in.id, env, {{"tools", catalog_.tools_json()}}, true);
            if (m == "resources/list") return answer(in.id, env, {{"resources", list_resources(catalog_)}}, true);
            if (m == "resources/templates/list")
                return answer(in.id, env, {{"resourceTemplates", resource_templates()}}, true);
            return answer(in.id, env, {{"prompts", list_prompts(catalog_)}}, true);
        }
        if (m == "resources/read") {
            auto r = read_resource(catalog_, p, env.modern);
            if (!r) return send_error(in.id, r.error());
            return answer(in.id, env, std::move(*r), true);
        }
        if (m == "prompts/get") {
            auto r = get_prompt(catalog_, p);
            if (!r) return send_error(in.id, r.error());
            return answer(in.id, env, std::move(*r), false);
        }
        if (m == "tools/call") return start_call(in, env);
        send_error(
            in.id,
            {rpc_error::method_not_found,
             "method '" + m +
                 "' not found (this server answers initialize, ping, server/discover, tools/list, "
                 "tools/call, resources/list, resources/templates/list, resources/read, prompts/list, prompts/get)"});
    }

    void initialize(const Incoming& in) {
        const auto& p = in.params;
        const auto version = p.find("protocolVersion");
        if (version == p.end() || !version->is_string())
            return send_error(in.id,
                              {rpc_error::invalid_params, "initialize: \"protocolVersion\" (a string) is required"});
        for (const char* key : {"capabilities", "clientInfo"})
            if (const auto it = p.find(key); it != p.end() && !it->is_object())
                return send_error(
                    in.id, {rpc_error::invalid_params, std::string("initialize: \"") + key + "\" must be an object"});
        if (const auto info = p.find("clientInfo"); info != p.end()) {
            if (const auto name = info->find("name"); name != info->end() && name->is_string()) {
                std::lock_guard lock(mutex_);
                client_name_ = name->get<std::string>();
            }
        }
        answer(in.id, Envelope{},
               {{"protocolVersion", negotiate_legacy(version->get<std::string>())},
                {"capabilities", server_capabilities()},
                {"serverInfo", server_info()},
                {"instructions", server_instructions}},
               false);
    }

    void answer(const json& id, const Envelope& env, json result, bool cacheable) {
        writer_.send(make_result(id, finish_result(std::move(result), env, cacheable)));
    }
    void send_error(const json& id, const RpcError& e) { writer_.send(make_error(id, e)); }

    /// Audit fields of a call, whatever became of it.
    void record(const Call& call, const std::string& tool, const CallOutcome* outcome, const std::string& error) {
        if (!audit_.enabled()) return;
        const Runner* runner = call.plan.runner;
        json r = {{"time", utc_timestamp(call.received_wall)}, {"client", call.envelope.client_name}, {"tool", tool}};
        r["profile"] = runner ? json(runner->profile().name) : json(nullptr);
        r["host"] = !runner ? json(nullptr) : runner->place().ssh ? json(runner->place().ssh->host) : json("local");
        r["argv"] = outcome && outcome->run     ? json(outcome->run->command)
                    : call.plan.command.empty() ? json(nullptr)
                                                : json(call.plan.command);
        r["exit"] = outcome && outcome->run ? json(outcome->run->exit_code) : json(nullptr);
        r["signal"] = outcome && outcome->run ? json(outcome->run->signal) : json(nullptr);
        r["timed_out"] = outcome && outcome->run && outcome->run->timed_out;
        r["duration_ms"] =
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - call.received).count();
        r["bytes"] = call.bytes.load();
        r["limit_exceeded"] =
            outcome && !outcome->limit_exceeded.empty() ? json(outcome->limit_exceeded) : json(nullptr);
        r["error"] = error.empty() ? json(nullptr) : json(error);
        r["id"] = call.id;
        audit_.write(r);
    }

    void start_call(const Incoming& in, const Envelope& env) {
        const auto& p = in.params;
        const auto name = p.find("name");
        if (name == p.end() || !name->is_string())
            return send_error(in.id, {rpc_error::invalid_params, "tools/call: \"name\" (a string) is required"});
        json arguments = json::object();
        if (const auto a = p.find("arguments"); a != p.end() && !a->is_null()) {
            if (!a->is_object())
                return send_error(in.id, {rpc_error::invalid_params, "tools/call: \"arguments\" must be an object"});
            arguments = *a;
        }
        const Tool* tool = catalog_.find(name->get<std::string>());
        if (!tool)
            return send_error(in.id, {rpc_error::invalid_params,
                                      "unknown tool '" + name->get<std::string>() + "' (tools/list lists them)"});
        auto call = std::make_shared<Call>();
        call->id = in.id;
        call->key = in.id.dump();
        call->envelope = env;
        call->tool = tool;
        if (const auto meta = p.find("_meta"); meta != p.end() && meta->is_object()) {
            if (const auto t = meta->find("progressToken"); t != meta->end() && (t->is_string() || t->is_number()))
                call->progress_token = *t;
        }
        auto plan = plan_call(catalog_, *tool, arguments);
        if (!plan) {
            const std::string message = tool->name + ": " + plan.error();
            record(*call, tool->name, nullptr, message);
            return answer(in.id, env, error_outcome(message).result, false);
        }
        call->plan = std::move(*plan);
        enum class Queued { yes, id_in_use, full } queued = Queued::yes;
        {
            std::lock_guard lock(mutex_);
            if (stopping_) return;
            if (calls_.count(call->key)) {
                queued = Queued::id_in_use;
            } else if (queue_.size() >= max_waiting_calls) {
                queued = Queued::full;
            } else {
                calls_.emplace(call->key, call);
                queue_.push_back(call);
                if (queue_.size() > idle_workers_ && workers_.size() < max_running_calls)
                    workers_.emplace_back([this] { work(); });
                if (call->progress_token && !ticker_.joinable()) ticker_ = std::thread([this] { tick(); });
            }
        }
        if (queued == Queued::id_in_use)
            return send_error(in.id, {rpc_error::invalid_request,
                                      "the id " + call->key + " is already in use by a call in progress"});
        if (queued == Queued::full) {
            const std::string message = "the server is busy: " + std::to_string(max_running_calls) +
                                        " calls are running and " + std::to_string(max_waiting_calls) +
                                        " waiting; try again when one has finished";
            record(*call, tool->name, nullptr, message);
            return answer(in.id, env, error_outcome(message).result, false);
        }
        work_ready_.notify_one();
    }

    void work() {
        while (true) {
            std::shared_ptr<Call> call;
            {
                std::unique_lock lock(mutex_);
                ++idle_workers_;
                work_ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
                --idle_workers_;
                if (stopping_) return;
                call = std::move(queue_.front());
                queue_.pop_front();
                if (call->cancelled) {
                    calls_.erase(call->key);
                    lock.unlock();
                    record(*call, call->tool->name, nullptr, call->cancel_reason + " before it ran");
                    continue;
                }
            }
            const auto outcome = execute_guarded(*call);
            bool cancelled;
            std::string reason;
            std::chrono::steady_clock::time_point progress_sent;
            {
                std::lock_guard lock(mutex_);
                calls_.erase(call->key);  // from here on no progress goes out for it
                cancelled = call->cancelled;
                reason = call->cancel_reason;
                progress_sent = call->progress_sent;
            }
            record(*call, call->tool->name, &outcome, cancelled ? reason : outcome.error);
            // The official TypeScript SDK handles a notification a microtask later than a response
            // read in the same chunk: a progress line just before the answer then finds its token
            // gone ("unknown token" on the client's onerror). Apart by a few ms, they are read apart.
            if (const auto since = std::chrono::steady_clock::now() - progress_sent; since < progress_gap)
                std::this_thread::sleep_for(progress_gap - since);
            if (!cancelled) answer(call->id, call->envelope, outcome.result, false);
        }
    }

    /// Runs a call; an exception (nothing here is meant to throw) becomes an isError result.
    CallOutcome execute_guarded(Call& call) {
        try {
            return execute(
                call.plan, call.token, [&call](std::size_t n) { call.bytes += n; }, catalog_.settings());
        } catch (const std::exception& e) {
            return error_outcome(std::string("internal error: ") + e.what());
        }
    }

    /// Progress for the calls that asked, every progress_interval while they run: elapsed
    /// seconds of the call's timeout, and how much it printed.
    void tick() {
        std::unique_lock lock(mutex_);
        while (!stopping_) {
            tick_wait_.wait_for(lock, progress_interval, [this] { return stopping_; });
            if (stopping_) break;
            const auto now = std::chrono::steady_clock::now();
            for (auto& [key, call] : calls_) {
                if (!call->progress_token || call->cancelled) continue;
                double progress = std::chrono::duration<double>(now - call->received).count();
                if (progress <= call->last_progress) progress = call->last_progress + 0.001;
                call->last_progress = progress;
                call->progress_sent = now;
                const double total =
                    std::chrono::duration<double>(call->plan.options.timeout.value_or(catalog_.settings().max_timeout))
                        .count();
                char text[120];
                std::snprintf(text, sizeof text, "running for %.1f s (timeout %g s); %llu bytes of output so far",
                              progress, total, static_cast<unsigned long long>(call->bytes.load()));
                writer_.send(make_notification("notifications/progress", {{"progressToken", *call->progress_token},
                                                                          {"progress", progress},
                                                                          {"total", total},
                                                                          {"message", text}}));
            }
        }
    }

    /// Stops every call (their sandboxes are killed through their tokens) and waits for the threads.
    void stop() {
        std::vector<std::shared_ptr<Call>> dropped;
        {
            std::lock_guard lock(mutex_);
            if (stopping_) return;
            stopping_ = true;
            for (auto& [key, call] : calls_) {
                if (!call->cancelled) call->cancel_reason = "stopped: the client closed the connection";
                call->cancelled = true;
                call->token.cancel();
            }
            dropped.assign(queue_.begin(), queue_.end());
            queue_.clear();
        }
        work_ready_.notify_all();
        tick_wait_.notify_all();
        for (auto& w : workers_) w.join();
        if (ticker_.joinable()) ticker_.join();
        for (const auto& call : dropped)
            record(*call, call->tool->name, nullptr, "not run: the client closed the connection");
    }

    Catalog& catalog_;
    AuditLog& audit_;
    int in_fd_;
    int wake_fd_;
    Writer writer_;

    std::mutex mutex_;
    std::condition_variable work_ready_, tick_wait_;
    std::map<std::string, std::shared_ptr<Call>> calls_;  ///< waiting and running, by id
    std::deque<std::shared_ptr<Call>> queue_;
    std::vector<std::thread> workers_;
    std::size_t idle_workers_ = 0;
    std::thread ticker_;
    bool stopping_ = false;
    std::string client_name_;  ///< from initialize
};

}  // namespace shannot_cli::mcp
