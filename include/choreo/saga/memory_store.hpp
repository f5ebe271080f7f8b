#pragma once
/// @file
/// @brief The default rollback-state and marker store: in process memory, thread-safe.

#include <algorithm>
#include <array>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <choreo/saga/status.hpp>
#include <choreo/saga/store.hpp>

namespace choreo::saga {

/// @brief Settings of a memory_store.
struct memory_store_options {
    /// Ended sagas kept for state() queries; beyond this the oldest ended ones are forgotten,
    /// so memory stays bounded however many sagas a process runs. Running sagas are never forgotten.
    std::size_t ended_sagas_kept = 100'000;
};

/// @brief A rollback_store and marker_store in memory: the default for one process and
/// for tests. Every operation is atomic per key under a lock striped by key hash, so
/// sagas on different keys rarely contend. Safe to use from any thread.
class memory_store {
public:
    /// @brief An empty store.
    explicit memory_store(memory_store_options options = {}) : options_(options) {}

    /// @brief A running saga whose first step is in `first_state`; false if the key exists.
    [[nodiscard]] bool create(std::string_view key, time_point started, time_point deadline,
                              std::string_view first_step, step_state first_state) {
        auto& s = shard_for(key);
        std::lock_guard lock{s.mutex};
        auto [it, inserted] = s.sagas.try_emplace(std::string{key});
        if (!inserted) return false;
        auto& r = it->second;
        r.key = std::string{key};
        r.started = started;
        r.deadline = deadline;
        r.steps.push_back({std::string{first_step}, first_state});
        return true;
    }

    /// @brief Claims a step: claimed, duplicate, not_running or unknown.
    [[nodiscard]] claim_outcome claim(std::string_view key, std::string_view step) {
        auto& s = shard_for(key);
        std::lock_guard lock{s.mutex};
        auto* r = find(s, key);
        if (!r) return claim_outcome::unknown;
        if (find_step(*r, step)) return claim_outcome::duplicate;
        if (r->status != saga_status::running) return claim_outcome::not_running;
        r->steps.push_back({std::string{step}, step_state::claimed});
        return claim_outcome::claimed;
    }

    /// @brief A claimed step becomes done or failed.
    [[nodiscard]] transition finish(std::string_view key, std::string_view step, bool succeeded) {
        return update(key, [&](saga_record& r, transition&) {
            auto* s = find_step(r, step);
            if (!s) s = &r.steps.emplace_back(step_record{std::string{step}, step_state::claimed});
            if (s->state == step_state::claimed) s->state = succeeded ? step_state::done : step_state::failed;
        });
    }

    /// @brief A running saga becomes rolling_back; the first caller wins.
    [[nodiscard]] transition roll_back(std::string_view key, std::string_view reason, std::string_view failed_step) {
        return update(key, [&](saga_record& r, transition& t) {
            if (r.status == saga_status::running) {
                r.status = saga_status::rolling_back;
                r.reason = std::string{reason};
                r.failed_step = std::string{failed_step};
                t.changed = true;
                t.steps = r.step_names();
            }
            if (auto* s = find_step(r, failed_step); s && s->state == step_state::claimed)
                s->state = step_state::failed;
        });
    }

    /// @brief Whether to compensate a step now (and marks it compensating).
    [[nodiscard]] compensation_outcome begin_compensation(std::string_view key, std::string_view step) {
        auto& s = shard_for(key);
        std::lock_guard lock{s.mutex};
        auto* r = find(s, key);
        if (!r) return compensation_outcome::unknown;
        if (r->status == saga_status::running || r->status == saga_status::completed)
            return compensation_outcome::not_rolling_back;
        auto* st = find_step(*r, step);
        if (!st) return compensation_outcome::never_ran;
        switch (st->state) {
        case step_state::claimed: return compensation_outcome::pending;
        case step_state::failed: return compensation_outcome::never_ran;
        case step_state::compensating:
        case step_state::compensated: return compensation_outcome::duplicate;
        case step_state::done: break;
        }
        st->state = step_state::compensating;
        return compensation_outcome::run;
    }

    /// @brief A compensating step becomes compensated.
    [[nodiscard]] transition finish_compensation(std::string_view key, std::string_view step) {
        return update(key, [&](saga_record& r, transition&) {
            if (auto* s = find_step(r, step); s && s->state == step_state::compensating)
                s->state = step_state::compensated;
        });
    }

    /// @brief A running saga becomes completed.
    [[nodiscard]] transition complete(std::string_view key) {
        return update(key, [&](saga_record& r, transition& t) {
            if (r.status != saga_status::running) return;
            r.status = saga_status::completed;
            t.changed = true;
            t.ended_now = true;
        });
    }

    /// @brief A running saga past its deadline becomes rolling_back.
    [[nodiscard]] transition expire(std::string_view key, time_point now, std::string_view reason) {
        return update(key, [&](saga_record& r, transition& t) {
            if (r.status != saga_status::running || r.deadline > now) return;
            r.status = saga_status::rolling_back;
            r.reason = std::string{reason};
            t.changed = true;
            t.steps = r.step_names();
        });
    }

    /// @brief Records a fan-in branch once; says how many distinct branches arrived.
    [[nodiscard]] join_outcome join(std::string_view key, std::string_view join_step, std::string_view branch) {
        auto& s = shard_for(key);
        std::lock_guard lock{s.mutex};
        auto* r = find(s, key);
        if (!r) return {};
        join_outcome out{.found = true};
        std::string entry = std::string{join_step} + '/' + std::string{branch};
        if (std::find(r->joined.begin(), r->joined.end(), entry) == r->joined.end()) {
            r->joined.push_back(std::move(entry));
            out.added = true;
        }
        std::string prefix = std::string{join_step} + '/';
        out.arrived = static_cast<std::size_t>(std::count_if(
            r->joined.begin(), r->joined.end(), [&](const std::string& e) { return e.starts_with(prefix); }));
        return out;
    }

    /// @brief The saga's status, or nothing for an unknown key.
    [[nodiscard]] std::optional<saga_status> status(std::string_view key) const {
        auto& s = shard_for(key);
        std::lock_guard lock{s.mutex};
        auto* r = find(s, key);
        return r ? std::optional{r->status} : std::nullopt;
    }

    /// @brief The saga's whole record, or nothing for an unknown key.
    [[nodiscard]] std::optional<saga_record> get(std::string_view key) const {
        auto& s = shard_for(key);
        std::lock_guard lock{s.mutex};
        auto* r = find(s, key);
        return r ? std::optional{*r} : std::nullopt;
    }

    /// @brief The keys of running sagas whose deadline is before `now`.
    [[nodiscard]] std::vector<std::string> overdue(time_point now) const { return due(saga_status::running, now); }

    /// @brief The keys of sagas still rolling back whose deadline is at or before `when`.
    [[nodiscard]] std::vector<std::string> stalled(time_point when) const {
        return due(saga_status::rolling_back, when);
    }

    /// @brief Marks an aggregate as in progress for a saga until `until` (re-entrant), or
    /// queues the saga for it until `wait_until` (see choreo::saga::marker_store).
    [[nodiscard]] marker_outcome acquire(std::string_view marker, std::string_view key, time_point now,
                                         time_point until, time_point wait_until) {
        auto& s = shard_for(marker);
        std::lock_guard lock{s.mutex};
        auto it = s.markers.find(marker);
        if (it == s.markers.end()) it = s.markers.try_emplace(std::string{marker}).first;
        auto& entry = it->second;
        auto& queue = entry.queue;
        if (entry.holder.empty() || entry.holder == key || entry.until <= now) {
            std::erase_if(queue, [&](const waiter& w) { return w.key == key; });
            entry.holder = std::string{key};
            entry.until = until;
            return {.acquired = true, .holder = {}, .queued = false, .ahead = 0};
        }
        std::erase_if(queue, [&](const waiter& w) { return w.wait_until <= now; });
        auto mine = std::find_if(queue.begin(), queue.end(), [&](const waiter& w) { return w.key == key; });
        if (mine != queue.end())
            return {.acquired = false,
                    .holder = entry.holder,
                    .queued = true,
                    .ahead = static_cast<std::size_t>(mine - queue.begin())};
        if (wait_until <= now)
            return {.acquired = false, .holder = entry.holder, .queued = false, .ahead = queue.size()};
        queue.push_back({std::string{key}, wait_until, until - now});
        return {.acquired = false, .holder = entry.holder, .queued = true, .ahead = queue.size() - 1};
    }

    /// @brief Takes `key` out of a marker's queue and, if it holds the marker, hands it to the
    /// first saga still waiting or frees it.
    marker_release release(std::string_view marker, std::string_view key, time_point now) {
        auto& s = shard_for(marker);
        std::lock_guard lock{s.mutex};
        auto it = s.markers.find(marker);
        if (it == s.markers.end()) return {};
        auto& entry = it->second;
        std::erase_if(entry.queue, [&](const waiter& w) { return w.key == key || w.wait_until <= now; });
        if (entry.holder != key) return {};
        if (entry.queue.empty()) {
            s.markers.erase(it);
            return {.released = true, .next = {}};
        }
        auto next = std::move(entry.queue.front());
        entry.queue.pop_front();
        entry.holder = next.key;
        entry.until = now + next.hold_for;
        return {.released = true, .next = std::move(next.key)};
    }

    /// @brief The saga holding a marker at `now`, if any.
    [[nodiscard]] std::optional<std::string> holder(std::string_view marker, time_point now) const {
        auto& s = shard_for(marker);
        std::lock_guard lock{s.mutex};
        auto it = s.markers.find(marker);
        if (it == s.markers.end() || it->second.until <= now) return std::nullopt;
        return it->second.holder;
    }

    /// @brief Sagas known (running and kept ended ones), for tests and measurements.
    [[nodiscard]] std::size_t size() const {
        std::size_t n = 0;
        for (auto& s : shards_) {
            std::lock_guard lock{s.mutex};
            n += s.sagas.size();
        }
        return n;
    }

private:
    // The sorted keys of sagas in `status` whose deadline is at or before `when`.
    std::vector<std::string> due(saga_status status, time_point when) const {
        std::vector<std::string> keys;
        for (auto& s : shards_) {
            std::lock_guard lock{s.mutex};
            for (auto& [key, r] : s.sagas)
                if (r.status == status && r.deadline <= when) keys.push_back(key);
        }
        std::sort(keys.begin(), keys.end());
        return keys;
    }

    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
    };
    struct waiter {
        std::string key;
        time_point wait_until;
        time_point::duration hold_for; // how long it holds the marker once handed it
    };
    struct marker_entry {
        std::string holder;
        time_point until{};
        std::deque<waiter> queue; // first come, first served
    };
    struct shard {
        mutable std::mutex mutex;
        std::unordered_map<std::string, saga_record, string_hash, std::equal_to<>> sagas;
        std::unordered_map<std::string, marker_entry, string_hash, std::equal_to<>> markers;
        std::deque<std::string> ended; // oldest first, to bound what is kept
    };
    static constexpr std::size_t shard_count = 16;

    [[nodiscard]] shard& shard_for(std::string_view key) const noexcept {
        return shards_[string_hash{}(key) % shard_count];
    }
    static saga_record* find(shard& s, std::string_view key) {
        auto it = s.sagas.find(key);
        return it == s.sagas.end() ? nullptr : &it->second;
    }
    static const saga_record* find(const shard& s, std::string_view key) {
        auto it = s.sagas.find(key);
        return it == s.sagas.end() ? nullptr : &it->second;
    }
    static step_record* find_step(saga_record& r, std::string_view step) {
        for (auto& s : r.steps)
            if (s.name == step) return &s;
        return nullptr;
    }

    // Applies `change`, then ends a rolling-back saga when nothing is left to undo or wait for.
    template <class Change>
    transition update(std::string_view key, Change&& change) {
        auto& s = shard_for(key);
        std::lock_guard lock{s.mutex};
        auto* r = find(s, key);
        if (!r) return {};
        transition t;
        t.found = true;
        change(*r, t);
        if (r->status == saga_status::rolling_back && std::none_of(r->steps.begin(), r->steps.end(), [](auto& st) {
                return st.state == step_state::claimed || st.state == step_state::done ||
                       st.state == step_state::compensating;
            })) {
            r->status = saga_status::rolled_back;
            t.ended_now = true;
        }
        t.status = r->status;
        if (t.ended_now) remember_ended(s, key);
        return t;
    }

    void remember_ended(shard& s, std::string_view key) {
        s.ended.emplace_back(key);
        const std::size_t per_shard = std::max<std::size_t>(1, options_.ended_sagas_kept / shard_count);
        while (s.ended.size() > per_shard) {
            s.sagas.erase(s.ended.front());
            s.ended.pop_front();
        }
    }

    memory_store_options options_;
    mutable std::array<shard, shard_count> shards_;
};

static_assert(rollback_store<memory_store>);
static_assert(marker_store<memory_store>);

} // namespace choreo::saga
