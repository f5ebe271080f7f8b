#pragma once
/// @file
/// @brief The step journal: a participant's record, in its own database, of the steps it
/// committed, so a process that restarts can still finish and compensate them.
///
/// Without a journal a participant keeps the event each step consumed in memory, and a
/// step's local commit and its `finish` in the store are two writes: a process killed in
/// between leaves the step claimed, and a restarted process cannot compensate what it no
/// longer remembers. With one, every step writes a row in its own transaction (the event
/// it consumed, encoded, and the markers it holds), so:
/// - a step claimed by a process that died is resolved by the participant when the saga
///   rolls back: committed (its row exists) is finished and compensated, not committed is
///   abandoned (a row that makes a late commit of it fail) and marked failed;
/// - a done step is compensated from its row after a restart;
/// - a compensation writes its mark in its own transaction, so it runs once however often
///   it is attempted; the markers of a saga that ends are released from the rows.
/// The rows are deleted when the participant hears that the saga ended (abandonments stay).

#include <choreo/core/type_name.hpp>

#include <concepts>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace choreo::saga {

/// @brief What a journal holds about one step of one saga.
struct journal_entry {
    /// How far the step got, as far as this participant's database knows.
    enum class state : std::uint8_t {
        done,        ///< committed
        compensated, ///< committed, then compensated
        abandoned,   ///< never committed; recorded so that it never will
    };
    std::string key;                          ///< the saga
    std::string step;                         ///< the step's full name
    journal_entry::state state = state::done; ///< how far the step got
    bool completes = false;                   ///< the step completed the saga
    std::string payload;                      ///< the event it consumed, encoded (empty for a fan-in)
    std::vector<std::string> markers;         ///< the aggregates held for the saga when it committed
    std::uint64_t sequence = 0;               ///< order of recording: compensations run newest first
};

/// @brief A step journal on the participant's own transactional resource.
///
/// record(), mark_compensated() and abandon() run inside the transaction the participant has
/// open on that resource (the step's, the compensation's, or one of its own), so they commit
/// with it or not at all; forget() makes a transaction of its own. `encode(const E&)` and
/// `decode<E>(text)` turn the consumed events into payloads and back.
template <class J>
concept step_journal = requires(J& journal, std::string_view key, std::string_view step, std::string_view payload,
                                bool completes, const std::vector<std::string>& markers) {
    /// Records a committed step; false if the step has a row already (a delivery that
    /// committed it, or an abandonment): the caller rolls back.
    { journal.record(key, step, payload, completes, markers) } -> std::same_as<bool>;
    /// Marks a done step compensated; false if it is not done (compensated already, or never ran).
    { journal.mark_compensated(key, step) } -> std::same_as<bool>;
    /// Records that a step never committed and must not: true if the row was written,
    /// false if the step committed after all (its row is there).
    { journal.abandon(key, step) } -> std::same_as<bool>;
    /// The step's row.
    { journal.find(key, step) } -> std::same_as<std::optional<journal_entry>>;
    /// Every row of the saga, oldest first.
    { journal.entries(key) } -> std::same_as<std::vector<journal_entry>>;
    /// The sagas with rows of committed steps, oldest first: those not heard to end.
    { journal.sagas() } -> std::same_as<std::vector<std::string>>;
    /// Deletes the saga's rows (it ended); abandonments may stay, as tombstones.
    {journal.forget(key)};
};

namespace detail {

// A journal as the participant holds it, whatever its type.
class journal_ref {
public:
    virtual ~journal_ref() = default;
    virtual bool record(std::string_view key, std::string_view step, std::string_view payload, bool completes,
                        const std::vector<std::string>& markers) = 0;
    virtual bool mark_compensated(std::string_view key, std::string_view step) = 0;
    virtual bool abandon(std::string_view key, std::string_view step) = 0;
    virtual std::optional<journal_entry> find(std::string_view key, std::string_view step) = 0;
    virtual std::vector<journal_entry> entries(std::string_view key) = 0;
    virtual std::vector<std::string> sagas() = 0;
    virtual void forget(std::string_view key) = 0;
    virtual const void* identity() const noexcept = 0;
};

template <step_journal J>
class journal_adapter final : public journal_ref {
public:
    explicit journal_adapter(J& journal) noexcept : journal_(journal) {}
    bool record(std::string_view key, std::string_view step, std::string_view payload, bool completes,
                const std::vector<std::string>& markers) override {
        return journal_.record(key, step, payload, completes, markers);
    }
    bool mark_compensated(std::string_view key, std::string_view step) override {
        return journal_.mark_compensated(key, step);
    }
    bool abandon(std::string_view key, std::string_view step) override { return journal_.abandon(key, step); }
    std::optional<journal_entry> find(std::string_view key, std::string_view step) override {
        return journal_.find(key, step);
    }
    std::vector<journal_entry> entries(std::string_view key) override { return journal_.entries(key); }
    std::vector<std::string> sagas() override { return journal_.sagas(); }
    void forget(std::string_view key) override { journal_.forget(key); }
    const void* identity() const noexcept override { return &journal_; }

private:
    J& journal_;
};

} // namespace detail
} // namespace choreo::saga
