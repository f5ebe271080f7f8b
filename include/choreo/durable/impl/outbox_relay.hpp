#pragma once
// The outbox, relaying: passes that claim due rows, deliver them or hand them to
// asynchronous listeners, and settle each row by its outcome; the timer that runs them.

#include <choreo/durable/outbox.hpp>

namespace choreo::durable {

template <outbox_store Store, class Codec>
void outbox<Store, Codec>::start() {
    {
        std::lock_guard lock{wiring_mutex_};
        if (started_) return;
        started_ = true;
    }
    if (!options_.relay) return;
    // Rows an earlier run wrote claimed, and rows it had claimed, become claimable again;
    // from here on this process's commits write theirs claimed for this relay.
    store_.release(options_.relay_name);
    if constexpr (claims_on_append<Store>) born_claimed_.store(true, std::memory_order_release);
    std::lock_guard lock{relay_mutex_};
    relaying_ = true;
    stopping_ = false;
    state_ = pass_state::idle;
    schedule_locked();
}

template <outbox_store Store, class Codec>
void outbox<Store, Codec>::stop() {
    born_claimed_.store(false, std::memory_order_release);
    std::unique_lock lock{relay_mutex_};
    stopping_ = true;
    relaying_ = false;
    fresh_.clear(); // claimed in the store until the next start() takes them back
    timer_.cancel();
    idle_.wait(lock, [this] { return outstanding_ == 0; });
}

template <outbox_store Store, class Codec>
std::size_t outbox<Store, Codec>::relay_once() {
    auto handed = begin_pass();
    if (!handed) return 0;
    handed->wait_for_reports(options_.lease);
    return finish_pass(*handed);
}

template <outbox_store Store, class Codec>
void outbox<Store, Codec>::schedule_locked() {
    if (!relaying_ || stopping_) return;
    if (state_ == pass_state::idle) {
        state_ = pass_state::scheduled;
        post_run_locked();
    } else if (state_ == pass_state::running) {
        again_ = true;
    }
}

template <outbox_store Store, class Codec>
void outbox<Store, Codec>::post_run_locked() {
    ++outstanding_;
    boost::asio::post(executor_, [this] { run_passes(); });
}

template <outbox_store Store, class Codec>
void outbox<Store, Codec>::wait_locked(std::chrono::milliseconds delay) {
    timer_.expires_after(delay);
    ++outstanding_;
    timer_.async_wait([this](const boost::system::error_code& error) {
        std::lock_guard lock{relay_mutex_};
        --outstanding_;
        if (!error && !stopping_) schedule_locked();
        idle_.notify_all();
    });
}

template <outbox_store Store, class Codec>
void outbox<Store, Codec>::run_passes() noexcept {
    {
        std::lock_guard lock{relay_mutex_};
        state_ = pass_state::running;
        again_ = false;
    }
    continue_passes();
}

template <outbox_store Store, class Codec>
void outbox<Store, Codec>::continue_passes() noexcept {
    for (;;) {
        std::size_t settled = 0;
        try {
            auto handed = begin_pass();
            if (handed && !handed->handed.empty()) {
                if (await_reports(handed)) return;
            }
            if (handed) settled = finish_pass(*handed);
        } catch (...) {
            pass_failed();
        }
        if (!go_again(settled)) return;
    }
}

template <outbox_store Store, class Codec>
bool outbox<Store, Codec>::await_reports(const std::shared_ptr<batch>& handed) {
    std::lock_guard lock{handed->mutex};
    if (handed->complete) return false;
    // Armed before on_complete is set, so resume_after()'s cancel comes after it.
    batch_deadline_.expires_after(options_.lease);
    batch_deadline_.async_wait([handed, lease = options_.lease](const boost::system::error_code& error) {
        if (!error) handed->expire(lease);
    });
    // The batch would own itself through a strong pointer here; whoever completes it
    // holds one while calling this.
    // The last report comes on the transport's thread; the pass goes on on the executor.
    // The post is counted until it returns: once its handler ran, stop() could let the
    // outbox and its executor go while that thread is still inside post().
    handed->on_complete = [this, weak = std::weak_ptr<batch>{handed}] {
        auto complete = weak.lock();
        if (!complete) return;
        {
            std::lock_guard lock{relay_mutex_};
            ++outstanding_;
        }
        boost::asio::post(executor_, [this, complete]() noexcept { resume_after(complete); });
        std::lock_guard lock{relay_mutex_};
        if (--outstanding_ == 0) idle_.notify_all();
    };
    return true;
}

template <outbox_store Store, class Codec>
void outbox<Store, Codec>::resume_after(const std::shared_ptr<batch>& handed) noexcept {
    batch_deadline_.cancel();
    std::size_t settled = 0;
    try {
        settled = finish_pass(*handed);
    } catch (...) {
        pass_failed();
    }
    if (go_again(settled)) continue_passes();
}

template <outbox_store Store, class Codec>
void outbox<Store, Codec>::pass_failed() noexcept {
    report(incident_kind::listener_failed, nullptr, nullptr, std::current_exception(), 0,
           fmt::format("outbox relay '{}': a pass failed and will be tried again: {}", options_.relay_name,
                       describe(std::current_exception())));
}

template <outbox_store Store, class Codec>
bool outbox<Store, Codec>::go_again(std::size_t settled) noexcept {
    std::lock_guard lock{relay_mutex_};
    if (!stopping_ && (settled == options_.batch_size || again_)) {
        again_ = false;
        return true;
    }
    state_ = pass_state::idle;
    if (!stopping_) arm_timer_locked();
    --outstanding_;
    idle_.notify_all();
    return false;
}

template <outbox_store Store, class Codec>
void outbox<Store, Codec>::arm_timer_locked() {
    auto delay = options_.poll_interval;
    if (next_retry_) {
        auto until =
            std::chrono::duration_cast<std::chrono::milliseconds>(*next_retry_ - std::chrono::system_clock::now());
        delay = std::clamp(until, std::chrono::milliseconds{1}, delay);
        next_retry_.reset();
    }
    wait_locked(delay);
}

template <outbox_store Store, class Codec>
auto outbox<Store, Codec>::begin_pass() -> std::shared_ptr<batch> {
    std::lock_guard one_pass{pass_mutex_};
    if (bus_.is_closed()) return nullptr;
    auto handed = std::make_shared<batch>();
    handed->claimed_at = std::chrono::system_clock::now();
    handed->rows = take_rows(handed->claimed_at);
    handed->settled.resize(handed->rows.size());
    for (std::size_t i = 0; i < handed->rows.size(); ++i) {
        const auto& row = handed->rows[i];
        const listener_entry* listener = row.problem.empty() ? find(row.event_type, row.listener) : nullptr;
        if (listener && listener->hand_over) {
            auto& next = handed->handed.emplace_back();
            next.index = i;
            next.listener = listener;
            next.env = envelope_of(row, *listener);
            next.round = row.attempts + 1;
        } else
            handed->settled[i] = deliver(row, listener);
    }
    // Handed over after the synchronous rows are done, in the rows' order; a report
    // can come at once, on this thread or another.
    {
        std::lock_guard lock{handed->mutex};
        handed->unreported += handed->handed.size();
    }
    for (std::size_t h = 0; h < handed->handed.size(); ++h) {
        auto& row = handed->handed[h];
        row.handed_at = std::chrono::steady_clock::now();
        auto thrown = attempt_hand_over(*row.listener, handed->rows[row.index].payload, row.env,
                                        [handed, h](std::exception_ptr error) { handed->report(h, std::move(error)); });
        if (thrown) handed->report(h, std::move(thrown));
    }
    handed->handover_ended();
    return handed;
}

template <outbox_store Store, class Codec>
std::vector<outbox_row> outbox<Store, Codec>::take_rows(std::chrono::system_clock::time_point now) {
    if (!unsettled_.empty()) {
        store_.settle(unsettled_);
        unsettled_.clear();
    }
    std::vector<outbox_row> rows;
    {
        std::lock_guard lock{relay_mutex_};
        std::size_t taken = 0;
        for (; taken < fresh_.size() && rows.size() < options_.batch_size; ++taken)
            // A claim that ran out may be another relay's by now: the store's claim decides.
            if (fresh_[taken].until > now) rows.push_back(std::move(fresh_[taken].row));
        fresh_.erase(fresh_.begin(), fresh_.begin() + static_cast<std::ptrdiff_t>(taken));
    }
    if (rows.size() < options_.batch_size && (rows.empty() || now - last_claim_ >= options_.poll_interval)) {
        last_claim_ = now;
        auto claimed = store_.claim(options_.relay_name, options_.batch_size - rows.size(), now, options_.lease);
        if (!claimed.empty()) {
            rows.insert(rows.end(), std::make_move_iterator(claimed.begin()), std::make_move_iterator(claimed.end()));
            // In id order, as claims are, so that a key's older rows are handed over first.
            std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
        }
    }
    return rows;
}

template <outbox_store Store, class Codec>
std::size_t outbox<Store, Codec>::finish_pass(batch& handed) {
    {
        // Complete: no report writes to it any more; the lock makes the last one's writes seen.
        std::lock_guard lock{handed.mutex};
    }
    for (auto& row : handed.handed) {
        const auto& stored = handed.rows[row.index];
        trace(*row.listener, row.env, row.error, row.round, row.reported_at - row.handed_at);
        handed.settled[row.index] = conclude(stored, *row.listener, row.env, row.round, 1, 1, row.error).value();
    }
    std::lock_guard one_pass{pass_mutex_};
    unsettled_.insert(unsettled_.end(), handed.settled.begin(), handed.settled.end());
    store_.settle(unsettled_);
    unsettled_.clear();
    for (const auto& s : handed.settled) {
        if (s.result != settlement::outcome::retry) continue;
        std::lock_guard lock{relay_mutex_};
        if (!next_retry_ || s.retry_at < *next_retry_) next_retry_ = s.retry_at;
    }
    auto now = handed.claimed_at;
    if (now - last_purge_ >= std::max<std::chrono::milliseconds>(options_.poll_interval, std::chrono::seconds{1})) {
        last_purge_ = now;
        store_.purge_delivered(now - options_.keep_delivered);
    }
    return handed.settled.size();
}

template <outbox_store Store, class Codec>
settlement outbox<Store, Codec>::deliver(const outbox_row& row, const listener_entry* listener) {
    const unsigned round = row.attempts + 1;
    if (!row.problem.empty()) return give_up(row, round, row.problem);
    if (!listener)
        return give_up(row, round,
                       fmt::format("no durable listener named '{}' for event type '{}' is subscribed on this outbox",
                                   row.listener, row.event_type));
    const envelope env = envelope_of(row, *listener);
    const unsigned per_round = 1 + listener->retry.immediate_retries;
    for (unsigned attempt = 1;; ++attempt) {
        const unsigned overall = (round - 1) * per_round + attempt;
        auto error = attempt_delivery(*listener, row.payload, env, overall);
        if (auto settled = conclude(row, *listener, env, round, attempt, per_round, error)) return *settled;
    }
}

template <outbox_store Store, class Codec>
settlement outbox<Store, Codec>::give_up(const outbox_row& row, unsigned round, std::string reason) {
    report(incident_kind::retries_exhausted, nullptr, nullptr, nullptr, round,
           fmt::format("outbox row {} ({} for '{}') failed: {}", row.id, row.event_type, row.listener, reason));
    return {row.id, settlement::outcome::failed, round, {}, std::move(reason)};
}

} // namespace choreo::durable
