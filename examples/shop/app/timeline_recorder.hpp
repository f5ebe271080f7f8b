#pragma once
// What the one-process shop shows of a run: every dispatch the bus traced, each saga start,
// fan-in and compensation the saga runtime traced (the bus sees only the events around
// them), the steps the transactional mode ran inside other code, and the incidents, with
// the threads they ran on. Thread-safe.

#include "storefront.hpp"

#include <choreo/core/observe.hpp>
#include <choreo/saga/observe.hpp>
#include <choreo/viz/flowchart.hpp>

#include <fmt/format.h>

#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace shop::app {

class timeline_recorder {
public:
    // `record`: keep the dispatches (the incidents are always kept).
    explicit timeline_recorder(bool record) : record_(record) {}

    void on_trace(const choreo::dispatch_trace& t) {
        if (!record_ || t.listener.starts_with("choreo.")) return; // the outbox's own steps
        std::lock_guard lock{mutex_};
        auto phase = std::string{choreo::to_string(t.listener_phase)};
        if (t.mode == choreo::delivery::asynchronous) phase += ", async";
        std::string outcome{choreo::to_string(t.outcome)};
        if (t.error) outcome += ": " + choreo::describe(t.error);
        log_.push_back({std::string{t.event_type}, phase, choreo::viz::node_of_listener(t.listener),
                        std::string{t.listener}, thread_name(t.thread), outcome,
                        std::string{t.event_envelope.key.view()}});
    }
    void on_saga_trace(const choreo::saga::saga_trace& t) {
        using choreo::saga::saga_work;
        if (!record_ || t.work == saga_work::step) return;
        std::lock_guard lock{mutex_};
        const char* where = t.work == saga_work::start  ? "in the command"
                            : t.work == saga_work::join ? "fan-in"
                                                        : "compensation";
        log_.push_back({t.work == saga_work::compensation ? "(undo)" : "", where, choreo::viz::node_of_listener(t.step),
                        std::string{t.step}, thread_name(t.thread),
                        t.succeeded ? std::string{"ok"} : fmt::format("failed: {}", t.error), std::string{t.saga}});
    }
    // Transactional mode: a step that ran inside other code, as the wiring reports it.
    void on_step_ran(const std::string& step, const char* where) {
        if (!record_) return;
        std::lock_guard lock{mutex_};
        log_.push_back(
            {"", where, choreo::viz::node_of_listener(step), step, thread_name(std::this_thread::get_id()), "ok", ""});
    }
    void on_incident(std::string line) {
        std::lock_guard lock{mutex_};
        incidents_.push_back(std::move(line));
    }

    [[nodiscard]] std::vector<timeline_entry> timeline() const {
        std::lock_guard lock{mutex_};
        return log_;
    }
    [[nodiscard]] std::vector<std::string> incidents() const {
        std::lock_guard lock{mutex_};
        return incidents_;
    }

private:
    // Under the mutex.
    std::string thread_name(std::thread::id id) {
        if (id == main_thread_) return "main";
        auto [it, inserted] = thread_names_.try_emplace(id, "");
        if (inserted) it->second = fmt::format("pool-{}", thread_names_.size());
        return it->second;
    }

    bool record_;
    mutable std::mutex mutex_;
    std::vector<timeline_entry> log_;
    std::vector<std::string> incidents_;
    std::map<std::thread::id, std::string> thread_names_;
    std::thread::id main_thread_ = std::this_thread::get_id();
};

} // namespace shop::app
