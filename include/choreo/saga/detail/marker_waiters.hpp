#pragma once
// The steps of one process waiting in in-progress markers' queues (decision 0046), and what
// wakes each: the marker handed to it by this process, its holder's saga end heard here, or
// its wait's bound. Internal to the saga runtime.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace choreo::saga::detail {

class marker_waiters {
public:
    struct wait {
        std::uint64_t id = 0;      // 0: handed over already, and resumed
        bool holder_ended = false; // its end was heard here: the hand-over is due from elsewhere
    };

    // Saga `key` waits for `aggregate`, held by `holder`; `resume` runs it again, once.
    // A hand-over heard while the saga was between two attempts resumes it at once.
    wait add(std::string_view aggregate, std::string_view key, std::string_view holder, std::function<void()> resume) {
        {
            std::lock_guard lock{mutex_};
            auto handed = std::find_if(handed_over_.begin(), handed_over_.end(),
                                       [&](const auto& h) { return h.first == aggregate && h.second == key; });
            if (handed == handed_over_.end()) {
                waiting_.push_back(
                    {++count_, std::string{aggregate}, std::string{key}, std::string{holder}, std::move(resume)});
                return {count_, ended_.contains(std::string{holder})};
            }
            handed_over_.erase(handed);
        }
        resume();
        return {};
    }

    // This process handed the marker on `aggregate` to saga `next`.
    void handed_to(std::string_view aggregate, std::string_view next) {
        auto woken = take([&](const waiter& w) { return w.aggregate == aggregate && w.key == next; });
        if (!woken.empty()) return resume(std::move(woken));
        std::lock_guard lock{mutex_};
        if (handed_over_.size() >= max_handed_over) handed_over_.erase(handed_over_.begin());
        handed_over_.emplace_back(std::string{aggregate}, std::string{next});
    }

    // Saga `key` ended (every participant of the process says so; the first one counts):
    // its markers are released, here or in the process that held them.
    void ended(std::string_view key) {
        {
            std::lock_guard lock{mutex_};
            if (waiting_.empty() && handed_over_.empty()) return remember_locked(key);
            std::erase_if(handed_over_, [&](const auto& h) { return h.second == key; });
            remember_locked(key);
        }
        resume(take([&](const waiter& w) { return w.holder == key; }));
    }

    // The wait `id` reached its bound: true if it was still waiting (it is no more).
    bool withdraw(std::uint64_t id) {
        return !take([&](const waiter& w) { return w.id == id; }).empty();
    }

private:
    struct waiter {
        std::uint64_t id;
        std::string aggregate;
        std::string key;
        std::string holder;
        std::function<void()> resume;
    };
    static constexpr std::size_t max_handed_over = 1024;
    static constexpr std::size_t max_ended = 256;

    // The sagas whose end was heard lately: a waiter queued behind one of them learns of the
    // hand-over from the process that held it, which tells only its own waiters.
    void remember_locked(std::string_view key) {
        std::string k{key};
        if (!ended_.insert(k).second) return;
        ended_order_.push_back(std::move(k));
        if (ended_order_.size() > max_ended) {
            ended_.erase(ended_order_.front());
            ended_order_.pop_front();
        }
    }

    template <class Match>
    std::vector<waiter> take(Match match) {
        std::vector<waiter> taken;
        std::lock_guard lock{mutex_};
        for (auto it = waiting_.begin(); it != waiting_.end();)
            if (match(*it)) {
                taken.push_back(std::move(*it));
                it = waiting_.erase(it);
            } else {
                ++it;
            }
        return taken;
    }
    static void resume(std::vector<waiter> woken) {
        for (auto& w : woken) w.resume();
    }

    std::mutex mutex_;
    std::vector<waiter> waiting_;
    std::uint64_t count_ = 0;
    std::vector<std::pair<std::string, std::string>> handed_over_; // (aggregate, saga) heard with no waiter
    std::unordered_set<std::string> ended_;
    std::deque<std::string> ended_order_; // oldest first
};

} // namespace choreo::saga::detail
