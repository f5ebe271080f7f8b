#pragma once
// Test doubles shared by the core tests.

#include <choreo/choreo.hpp>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace test {

struct order_created {
    int id = 0;
};
struct stock_deducted {
    int id = 0;
};
struct coupon_used {
    int id = 0;
};
struct order_completed {
    int id = 0;
};
struct named_event {
    static constexpr std::string_view choreo_event_name = "NamedEvent";
    int value = 0;
};

// A thread-safe log of what happened, in order.
class journal {
public:
    void add(std::string entry) {
        std::lock_guard lock{mutex_};
        entries_.push_back(std::move(entry));
    }
    [[nodiscard]] std::vector<std::string> entries() const {
        std::lock_guard lock{mutex_};
        return entries_;
    }
    [[nodiscard]] std::size_t count(const std::string& entry) const {
        std::lock_guard lock{mutex_};
        return static_cast<std::size_t>(std::count(entries_.begin(), entries_.end(), entry));
    }
    void clear() {
        std::lock_guard lock{mutex_};
        entries_.clear();
    }

private:
    mutable std::mutex mutex_;
    std::vector<std::string> entries_;
};

// A resource that records its calls into a journal and can be told to fail.
struct recording_resource {
    journal* log;
    bool fail_commit = false;
    bool fail_rollback = false;
    void begin() { log->add("begin"); }
    void commit() {
        log->add("commit");
        if (fail_commit) throw std::runtime_error("disk full");
    }
    void rollback() {
        log->add("rollback");
        if (fail_rollback) throw std::runtime_error("connection lost");
    }
};

// Collects the incidents a bus reports.
class incidents {
public:
    choreo::incident_handler handler() {
        return [this](const choreo::incident& i) {
            std::lock_guard lock{mutex_};
            seen_.push_back({i.kind, std::string{i.listener}, std::string{i.message}, i.attempt});
        };
    }
    struct entry {
        choreo::incident_kind kind;
        std::string listener;
        std::string message;
        unsigned attempt;
    };
    [[nodiscard]] std::vector<entry> all() const {
        std::lock_guard lock{mutex_};
        return seen_;
    }
    [[nodiscard]] std::size_t count(choreo::incident_kind kind) const {
        std::lock_guard lock{mutex_};
        return static_cast<std::size_t>(
            std::count_if(seen_.begin(), seen_.end(), [&](const entry& e) { return e.kind == kind; }));
    }

private:
    mutable std::mutex mutex_;
    std::vector<entry> seen_;
};

// Waits (bounded) until a condition holds; tests assert the condition afterwards.
template <class F>
bool eventually(F&& condition, std::chrono::milliseconds limit = std::chrono::seconds{10}) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds{1});
    }
    return true;
}

} // namespace test
