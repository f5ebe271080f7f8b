#pragma once
// A Kafka consumer's bookkeeping for order per key within a partition: a record whose
// handler failed waits for its retry in its key's lane, the later records of that key
// behind it, while the partition's other keys go on; and the offset each partition may
// commit, the lowest one not done yet. Not part of the API.

#include <algorithm>
#include <chrono>
#include <compare>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>

namespace choreo::kafka::detail {

// The records of one partition taken from the consumer and not done yet (handled or
// dead-lettered): everything below the lowest of them may be committed.
class partition_progress {
public:
    void taken(std::int64_t offset) {
        if (committable_ < 0) committable_ = offset; // where the partition started: nothing new yet
        open_.insert(offset);
        next_ = std::max(next_, offset + 1);
    }
    // `offset` is done: the offset to commit from now on, if this moved it.
    std::optional<std::int64_t> done(std::int64_t offset) {
        open_.erase(offset);
        auto low = open_.empty() ? next_ : *open_.begin();
        if (low <= committable_) return std::nullopt;
        committable_ = low;
        return low;
    }
    [[nodiscard]] bool idle() const noexcept { return open_.empty(); }

private:
    std::set<std::int64_t> open_;
    std::int64_t next_ = 0;
    std::int64_t committable_ = -1;
};

struct partition_id {
    std::string topic;
    std::int32_t partition = 0;
    friend auto operator<=>(const partition_id&, const partition_id&) = default;
};

struct lane_id {
    partition_id where;
    std::string key;
    friend auto operator<=>(const lane_id&, const lane_id&) = default;
};

// The records of one key waiting behind a failed one, the failed one first.
template <class Record>
struct lane {
    std::deque<Record> records;
    unsigned attempts = 0; // of the first record
    std::chrono::steady_clock::time_point next_try{};
};

template <class Record>
class key_lanes {
public:
    using clock = std::chrono::steady_clock;

    [[nodiscard]] bool empty() const noexcept { return lanes_.empty(); }
    // The lane of `id`, if a record of that key waits.
    lane<Record>* find(const lane_id& id) {
        auto it = lanes_.find(id);
        return it == lanes_.end() ? nullptr : &it->second;
    }
    // Puts a lane (back) in: its first record failed `attempts` tries and waits until `next_try`.
    void put(const lane_id& id, lane<Record> l) { lanes_.insert_or_assign(id, std::move(l)); }
    // When the earliest retry is due (max() with none waiting).
    [[nodiscard]] clock::time_point earliest() const {
        auto t = clock::time_point::max();
        for (auto& [id, l] : lanes_) t = std::min(t, l.next_try);
        return t;
    }
    // The lanes whose retry is due at `now`, taken out (the caller parks what fails again).
    std::map<lane_id, lane<Record>> take_due(clock::time_point now) {
        std::map<lane_id, lane<Record>> due;
        for (auto it = lanes_.begin(); it != lanes_.end();)
            if (it->second.next_try <= now) {
                due.insert(lanes_.extract(it++));
            } else {
                ++it;
            }
        return due;
    }
    // Forgets the lanes of partitions `keep` says are no longer this member's.
    template <class Keep>
    void drop_unless(Keep keep) {
        std::erase_if(lanes_, [&](const auto& entry) { return !keep(entry.first.where); });
    }

private:
    std::map<lane_id, lane<Record>> lanes_;
};

} // namespace choreo::kafka::detail
