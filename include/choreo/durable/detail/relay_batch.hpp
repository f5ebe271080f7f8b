#pragma once
// What the outbox's relay works with: a durable listener, and a claimed batch of rows whose
// asynchronous listeners report on any thread. Not part of the API.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <choreo/core/envelope.hpp>
#include <choreo/core/errors.hpp>
#include <choreo/durable/outbox_options.hpp>
#include <choreo/durable/store.hpp>

namespace choreo::durable::detail {

struct outbox_listener {
    std::string_view event_type; // event_type_name<E>(): static storage
    std::string name;
    retry_policy retry;
    std::function<void(std::string_view, const envelope&)> deliver;                    // subscribe()
    std::function<void(std::string_view, const envelope&, delivery_report)> hand_over; // subscribe_async()
};

// A row the outbox's own commit wrote claimed by its relay, and until when the claim holds.
struct fresh_row {
    outbox_row row;
    std::chrono::system_clock::time_point until{};
};

// A row of a batch handed to an asynchronous listener, and its report.
struct handed_row {
    std::size_t index = 0; // in the batch's rows and settled
    const outbox_listener* listener = nullptr;
    envelope env;
    unsigned round = 0;
    std::chrono::steady_clock::time_point handed_at{};
    std::chrono::steady_clock::time_point reported_at{};
    std::exception_ptr error;
    bool reported = false;
};
// A claimed batch. Rows of synchronous listeners are settled while it is handed over;
// the others when their reports come. Reports arrive on any thread and touch only the
// batch; the one that completes it (or the lease's end) calls on_complete once.
struct relay_batch {
    std::vector<outbox_row> rows;
    std::vector<settlement> settled;
    std::vector<handed_row> handed;
    std::chrono::system_clock::time_point claimed_at{};

    std::mutex mutex;
    std::condition_variable done;
    std::size_t unreported = 1; // the rows handed over, plus one until the hand-over ends
    bool complete = false;
    std::function<void()> on_complete; // set before the hand-over ends

    // Row `h` of `handed` reports; ignored if it had already, or the batch is complete.
    void report(std::size_t h, std::exception_ptr error) noexcept { finish_one(&h, std::move(error)); }
    void handover_ended() noexcept { finish_one(nullptr, nullptr); }
    // The lease ended: every row not reported yet is retried.
    void expire(std::chrono::milliseconds lease) noexcept {
        std::function<void()> then;
        {
            std::lock_guard lock{mutex};
            if (complete) return;
            auto why = std::make_exception_ptr(
                std::runtime_error(fmt::format("no delivery report within the lease ({} ms)", lease.count())));
            for (auto& row : handed)
                if (!row.reported) record(row, why);
            then = complete_locked();
        }
        announce(std::move(then));
    }
    void wait_for_reports(std::chrono::milliseconds lease) {
        {
            std::unique_lock lock{mutex};
            if (done.wait_for(lock, lease, [this] { return complete; })) return;
        }
        expire(lease);
    }

private:
    void finish_one(const std::size_t* h, std::exception_ptr error) noexcept {
        std::function<void()> then;
        {
            std::lock_guard lock{mutex};
            if (complete) return;
            if (h) {
                if (handed[*h].reported) return;
                record(handed[*h], std::move(error));
            }
            if (--unreported != 0) return;
            then = complete_locked();
        }
        announce(std::move(then));
    }
    static void record(handed_row& row, std::exception_ptr error) noexcept {
        row.reported = true;
        row.error = std::move(error);
        row.reported_at = std::chrono::steady_clock::now();
    }
    // Under the mutex: the batch is complete; returns what to call once it is released.
    std::function<void()> complete_locked() noexcept {
        complete = true;
        return std::move(on_complete);
    }
    void announce(std::function<void()> then) noexcept {
        done.notify_all();
        if (then) then();
    }
};

} // namespace choreo::durable::detail
