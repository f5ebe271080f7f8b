#pragma once
/// @file
/// @brief The rollback-state store and in-progress marker concepts.
///
/// Every operation names one saga (or one marker) and must be atomic for it: a store
/// over a network does each in one round trip (one Lua script or MULTI on one key), so
/// a store never needs a lock across keys and works on Redis Cluster.

#include <concepts>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <choreo/saga/status.hpp>

namespace choreo::saga {

/// @brief A rollback-state store: the saga's status, its steps, the reason it rolled back,
/// its deadline and its fan-in arrivals. The semantics each operation must have are in
/// docs/sagas.md; memory_store is the reference implementation.
template <class S>
concept rollback_store = requires(S& store, const S& cstore, std::string_view key, std::string_view step,
                                  std::string_view reason, std::string_view branch, time_point when, step_state state,
                                  bool succeeded) {
    /// Creates a running saga started at `when`, due by a deadline, whose first step is in
    /// `state`; false if the key exists.
    { store.create(key, when, when, step, state) } -> std::same_as<bool>;
    /// Claims a step for running: the barrier against duplicates and steps that come too late.
    { store.claim(key, step) } -> std::same_as<claim_outcome>;
    /// Records how a claimed step's local transaction ended.
    { store.finish(key, step, succeeded) } -> std::same_as<transition>;
    /// Marks a running saga rolling back (first caller wins) and the step, if claimed, failed.
    { store.roll_back(key, reason, step) } -> std::same_as<transition>;
    /// Decides whether the step must be compensated now, and if so marks it compensating.
    { store.begin_compensation(key, step) } -> std::same_as<compensation_outcome>;
    /// Marks a compensating step compensated; the saga ends when nothing is left to undo.
    { store.finish_compensation(key, step) } -> std::same_as<transition>;
    /// Marks a running saga completed.
    { store.complete(key) } -> std::same_as<transition>;
    /// Rolls a running saga back if its deadline is at or before `when`.
    { store.expire(key, when, reason) } -> std::same_as<transition>;
    /// Records the arrival of `branch` at the fan-in `step`.
    { store.join(key, step, branch) } -> std::same_as<join_outcome>;
    /// The status alone (cheap).
    { cstore.status(key) } -> std::same_as<std::optional<saga_status>>;
    /// The whole record.
    { cstore.get(key) } -> std::same_as<std::optional<saga_record>>;
    /// Running sagas whose deadline is at or before `when` (recovery after a restart).
    { cstore.overdue(when) } -> std::same_as<std::vector<std::string>>;
    /// Sagas still rolling back whose deadline is at or before `when`: their rollback may not
    /// have reached every participant (the process that announced it died), so it is
    /// announced again (runtime::announce_stalled).
    { cstore.stalled(when) } -> std::same_as<std::vector<std::string>>;
};

/// @brief A rollback_store that also finishes a step together with what follows it, in one
/// operation (one round trip for a store over a network): the step becomes done; if the saga
/// still runs, the step's arrival is recorded at each fan-in of `joins` (as join() does, in
/// order); then, if `complete` and the saga still runs, it completes (as complete() does).
/// Optional: for a store without it the runtime makes the same calls one by one.
template <class S>
concept step_finishing_store = rollback_store<S> &&
    requires(S& store, std::string_view key, std::string_view step, const std::vector<std::string_view>& joins,
             bool complete) {
    { store.finish_step(key, step, joins, complete) } -> std::same_as<step_finish>;
};

/// @brief In-progress markers on aggregate roots: at most one saga holds a marker, other
/// sagas wait for it in a queue, first come first served; a marker expires at its deadline
/// so a crashed holder cannot block an aggregate forever, and a waiter leaves the queue at
/// the end of its wait. Each operation is atomic for its marker.
template <class M>
concept marker_store = requires(M& markers, const M& cmarkers, std::string_view marker, std::string_view key,
                                time_point now, time_point until, time_point wait_until) {
    /// Takes the marker for `key` until `until` if it is free, expired, held by `key` (taking
    /// it again extends the expiry) or was handed to `key`; the caller leaves the queue then.
    /// Otherwise, if `wait_until` is after `now`, queues `key` (once) behind the waiters
    /// still waiting, to be handed the marker by release() up to `wait_until`.
    { markers.acquire(marker, key, now, until, wait_until) } -> std::same_as<marker_outcome>;
    /// Takes `key` out of the queue; if `key` holds the marker, hands it to the first waiter
    /// still waiting at `now` (who holds it for as long as it asked) or frees it.
    { markers.release(marker, key, now) } -> std::same_as<marker_release>;
    /// The saga holding the marker at time `now`, or nothing.
    { cmarkers.holder(marker, now) } -> std::same_as<std::optional<std::string>>;
};

} // namespace choreo::saga
