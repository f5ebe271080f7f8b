#pragma once
/// @file
/// @brief Durable after-commit delivery: a transactional outbox and its relay.
///
/// A durable listener is subscribed on an outbox, not on the bus. When an event it listens
/// to is committed in a unit of work on the outbox store's resource, one row per durable
/// listener is written in that same transaction (a before_commit step that runs last), so
/// the row exists if and only if the business change committed. After the commit the relay
/// takes rows in batches on an Asio executor (a running relay's own commits hand it their
/// rows, written claimed for it; it claims the others from the store), delivers them, and
/// records per row whether it was delivered, will be retried, or failed. Delivery is at
/// least once; pair it with an inbox (choreo::durable::inbox_store) for effects that
/// happen once.
///
/// A listener subscribed with subscribe() delivers before it returns. One subscribed with
/// subscribe_async() hands the event to a transport and reports its fate later (a Kafka
/// producer's delivery report): the relay hands over a whole batch, settles it when the
/// last report came, and no thread of the relay's executor waits for the transport meanwhile.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include <choreo/core/bus.hpp>
#include <choreo/core/causation.hpp>
#include <choreo/durable/codec.hpp>
#include <choreo/durable/detail/outbox_directory.hpp>
#include <choreo/durable/detail/relay_batch.hpp>
#include <choreo/durable/json_codec.hpp>
#include <choreo/durable/outbox_options.hpp>
#include <choreo/durable/store.hpp>

namespace choreo::durable {

/// @brief A transactional outbox on `Store` with a relay; see the file comment.
///
/// Thread-safe. Subscribe every durable listener before start(); keep the outbox alive
/// while units of work on its resource commit, and destroy it before its bus and store.
template <outbox_store Store, class Codec = json_codec>
class outbox {
public:
    /// @brief An outbox writing through `store`; nothing is relayed before start().
    outbox(bus& owner, Store& store, outbox_options options = {}, Codec codec = {})
        : bus_(owner), store_(store), options_(std::move(options)), codec_(std::move(codec)),
          executor_(options_.executor ? *options_.executor : owner.executor()),
          directory_(detail::outbox_directory::of(&owner)), timer_(executor_), batch_deadline_(executor_) {
        if (options_.relay_name.empty()) throw usage_error("outbox_options::relay_name must not be empty");
        if (options_.batch_size == 0) throw usage_error("outbox_options::batch_size must be at least 1");
    }
    /// @brief Stops the relay and disconnects the outbox's steps from the bus.
    ~outbox() {
        stop();
        std::lock_guard lock{wiring_mutex_};
        for (auto& [type, entry] : types_) {
            entry->write.disconnect();
            entry->wake.disconnect();
            directory_->uncover(&store_.resource(), entry->event_type);
        }
    }
    outbox(const outbox&) = delete;
    outbox& operator=(const outbox&) = delete;

    /// @brief Subscribes a durable listener to events of type E committed on the store's
    /// resource. It takes `const E&`, optionally followed by `const envelope&`, and runs on
    /// the relay's executor inside a unit of work of its own. E must be encodable by the codec.
    /// A choreo::usage_error for an empty or repeated name, or after start().
    template <event E, class F>
    void subscribe(F&& listener, durable_options options);

    /// @brief Subscribes a durable listener that hands events on and reports later:
    /// `listener(event, envelope, report)` runs on the relay's executor, inside a unit of
    /// work of its own, and returns at once; the row is delivered when `report(nullptr)`
    /// is called, retried or failed when `report(error)` is (a thrown exception counts as
    /// reported). The relay hands every row of a batch over before the first report, in
    /// the rows' order, and waits for no report on its executor's threads. A row whose
    /// report has not come within outbox_options::lease is retried (a report after that is
    /// ignored). Retries are delayed rounds only: the transport retries within a round,
    /// so `immediate_retries` must be 0. A choreo::usage_error otherwise, and as subscribe().
    template <event E, class F>
    void subscribe_async(F&& listener, durable_options options);

    /// @brief Takes back the rows an earlier run of this relay left claimed, then relays
    /// every pending row and, from now on, each commit's rows right after it. Idempotent.
    void start();

    /// @brief Stops relaying and waits for the pass in flight (with the reports of the rows
    /// it handed to asynchronous listeners, up to the lease). Rows keep being written.
    void stop();

    /// @brief Runs one relay pass on this thread: takes up to batch_size due rows, delivers
    /// them (waiting for the reports of asynchronous listeners, up to the lease), records
    /// the outcomes. Returns how many rows it settled. Not inside a unit of work on the
    /// store's resource (the claim needs a transaction of its own).
    std::size_t relay_once();

    /// @brief Wakes the relay (rows written by another process, or resubmitted).
    void poke() {
        std::lock_guard lock{relay_mutex_};
        schedule_locked();
    }

    /// @brief Rows per state in the store.
    [[nodiscard]] outbox_counts counts() { return store_.counts(); }
    /// @brief Up to `limit` failed rows with their reasons, oldest first.
    [[nodiscard]] std::vector<outbox_row> failed(std::size_t limit = 100) { return store_.failed(limit); }
    /// @brief Makes failed row `id` pending again with a fresh retry budget; false if it is not failed.
    bool resubmit(std::int64_t id) {
        bool again = store_.resubmit(id);
        if (again) poke();
        return again;
    }
    /// @brief Makes every failed row pending again; returns how many.
    std::size_t resubmit_failed() {
        auto n = store_.resubmit_failed();
        if (n) poke();
        return n;
    }

    /// @brief The durable listeners, as bus::wiring() lists the bus's own (phase after_commit, asynchronous).
    [[nodiscard]] std::vector<registration> wiring() const {
        std::lock_guard lock{wiring_mutex_};
        std::vector<registration> out;
        for (const auto& [key, listener] : listeners_)
            out.push_back({std::string{listener->event_type}, listener->name, phase::after_commit, 0,
                           delivery::asynchronous, ordering::none, no_transaction_policy::error});
        return out;
    }

    /// @brief The options it was built with.
    [[nodiscard]] const outbox_options& options() const noexcept { return options_; }

private:
    using listener_entry = detail::outbox_listener;
    using handed_row = detail::handed_row;
    using batch = detail::relay_batch;
    struct type_entry {
        std::string_view event_type; // event_type_name<E>(): static storage
        std::vector<const listener_entry*> listeners;
        connection write;
        connection wake;
    };

    // The outbox that the committing unit of work on this thread wrote rows into (its
    // after_completion step wakes the relay only for units that wrote to this outbox), and
    // the rows written claimed by this outbox's relay, handed to it once the unit committed.
    struct written_rows {
        const void* outbox = nullptr;
        std::vector<detail::fresh_row> rows;
    };
    static inline thread_local written_rows written_;

    // After a unit of work that wrote rows here ended: its rows written claimed go to the
    // relay if it committed (dropped if not), and the relay is woken.
    void unit_ended(completion outcome);

    // Registers a listener whose deliver or hand_over is set.
    template <class E>
    void add_listener(std::unique_ptr<listener_entry> entry, durable_options options);

    template <class E>
    E decode(std::string_view payload) const;

    template <class E>
    std::unique_ptr<type_entry> connect_type();

    template <class E>
    void write_rows(const type_entry& entry, const E& event, const envelope& env);

    [[noreturn]] void refuse_uncovered(const unit_of_work& unit, const type_entry& entry) const {
        std::string names;
        {
            std::lock_guard lock{wiring_mutex_};
            for (const auto* listener : entry.listeners)
                names += fmt::format("{}'{}'", names.empty() ? "" : ", ", listener->name);
        }
        throw usage_error(fmt::format(
            "{} was committed in a unit of work {}, and no outbox of this bus writes rows for it there: durable "
            "listener(s) {} of outbox '{}' would never receive it. Begin the unit of work on the outbox store's "
            "database (bus.begin(database)), or give that database an outbox with these listeners",
            entry.event_type, unit.resource_address() ? "on another database" : "with no resource", names,
            options_.relay_name));
    }

    // Under relay_mutex_: post a run of passes unless one is queued, or ask the running
    // one to go again.
    void schedule_locked();

    void post_run_locked();

    // The poll after an idle pass: picks up retries that came due and rows of other writers.
    void wait_locked(std::chrono::milliseconds delay);

    void run_passes() noexcept;

    // Passes until one settles less than a batch. A batch handed to asynchronous listeners
    // returns the thread to the executor; its last report posts resume_after().
    void continue_passes() noexcept;

    // Arranges for resume_after() to run once `handed` is complete; false if it already is
    // (every report came during the hand-over).
    bool await_reports(const std::shared_ptr<batch>& handed);

    void resume_after(const std::shared_ptr<batch>& handed) noexcept;

    void pass_failed() noexcept;

    // After a pass that settled `settled` rows: true to run another at once; otherwise the
    // run ends (the poll timer armed unless stopping).
    bool go_again(std::size_t settled) noexcept;

    void arm_timer_locked();

    // Claims a batch, delivers the rows of synchronous listeners and hands the others over.
    // Null when there was nothing to claim.
    std::shared_ptr<batch> begin_pass();

    // The batch's rows: those this process's commits wrote claimed first, then (when there
    // were none, or a poll interval passed since the last claim) rows claimed from the store.
    std::vector<outbox_row> take_rows(std::chrono::system_clock::time_point now);

    // Settles a complete batch: the handed rows by their reports.
    std::size_t finish_pass(batch& handed);

    static envelope envelope_of(const outbox_row& row, const listener_entry& listener) {
        return {row.event, row.causation, correlation_key{row.key}, row.time, listener.event_type};
    }

    // A row of a synchronous listener (or of none: `listener` null), delivered here.
    settlement deliver(const outbox_row& row, const listener_entry* listener);

    // What attempt `attempt` of `per_round` in round `round` comes to: nothing when another
    // attempt of the round is due. Failed attempts are reported as incidents.
    std::optional<settlement> conclude(const outbox_row& row, const listener_entry& listener, const envelope& env,
                                       unsigned round, unsigned attempt, unsigned per_round,
                                       const std::exception_ptr& error) {
        if (!error) return settlement{row.id, settlement::outcome::delivered, round, {}, {}};
        const auto& policy = listener.retry;
        const unsigned overall = (round - 1) * per_round + attempt;
        bool retryable = !is_codec_error(error) && policy.retryable(error);
        auto message = describe(error);
        if (retryable && attempt < per_round) {
            report(incident_kind::listener_failed, &listener, &env, error, overall, message);
            return std::nullopt;
        }
        if (retryable && round <= policy.delayed_retries) {
            report(incident_kind::listener_failed, &listener, &env, error, overall, message);
            return settlement{row.id, settlement::outcome::retry, round,
                              std::chrono::system_clock::now() + policy.delay_before(round - 1), message};
        }
        report(incident_kind::retries_exhausted, &listener, &env, error, overall, message);
        return settlement{row.id, settlement::outcome::failed, round, {}, message};
    }

    settlement give_up(const outbox_row& row, unsigned round, std::string reason);

    // The listener runs inside a unit of work of its own, as after_commit listeners do:
    // what it publishes commits when it returns and is rolled back when it throws.
    std::exception_ptr attempt_delivery(const listener_entry& listener, std::string_view payload, const envelope& env,
                                        unsigned attempt) noexcept {
        auto start = std::chrono::steady_clock::now();
        std::exception_ptr error;
        choreo::detail::handled_failure_scope handled; // a saga step's failure, for the tracer
        try {
            causation_scope cause{env};
            auto unit = bus_.begin();
            listener.deliver(payload, env);
            unit.commit();
        } catch (...) {
            error = std::current_exception();
        }
        trace(listener, env, error ? error : handled.error(), attempt, std::chrono::steady_clock::now() - start);
        return error;
    }

    // Hands an event to an asynchronous listener, in a unit of work of its own as
    // attempt_delivery() runs a synchronous one; what it throws is its report.
    std::exception_ptr attempt_hand_over(const listener_entry& listener, std::string_view payload, const envelope& env,
                                         delivery_report report) noexcept {
        try {
            causation_scope cause{env};
            auto unit = bus_.begin();
            listener.hand_over(payload, env, std::move(report));
            unit.commit();
            return nullptr;
        } catch (...) {
            return std::current_exception();
        }
    }

    void trace(const listener_entry& listener, const envelope& env, const std::exception_ptr& error, unsigned attempt,
               std::chrono::steady_clock::duration took) noexcept {
        const auto& tracer = bus_.options().tracer;
        if (tracer) {
            try {
                tracer(dispatch_trace{listener.event_type, listener.name, phase::after_commit, delivery::asynchronous,
                                      completion::committed, std::this_thread::get_id(), took,
                                      error ? dispatch_outcome::failed : dispatch_outcome::succeeded, attempt, env,
                                      error});
            } catch (...) {
                std::fputs("choreo: the tracer threw; the trace was dropped\n", stderr);
            }
        }
    }

    static bool is_codec_error(const std::exception_ptr& error) {
        try {
            std::rethrow_exception(error);
        } catch (const codec_error&) {
            return true;
        } catch (...) {
            return false;
        }
    }

    const listener_entry* find(const std::string& type, const std::string& name) {
        std::lock_guard lock{wiring_mutex_};
        auto it = listeners_.find(std::pair{type, name});
        return it == listeners_.end() ? nullptr : it->second.get();
    }

    void report(incident_kind kind, const listener_entry* listener, const envelope* env, std::exception_ptr error,
                unsigned attempt, std::string_view message) noexcept {
        const auto& handler = bus_.options().on_incident;
        if (!handler) return;
        choreo::detail::hand_to_error_handler(handler,
                                              incident{kind, listener ? listener->event_type : std::string_view{},
                                                       listener ? std::string_view{listener->name} : std::string_view{},
                                                       phase::after_commit, env, std::move(error), attempt, message});
    }

    enum class pass_state : std::uint8_t { idle, scheduled, running };

    bus& bus_;
    Store& store_;
    outbox_options options_;
    Codec codec_;
    boost::asio::any_io_executor executor_;
    std::shared_ptr<detail::outbox_directory> directory_;

    mutable std::mutex wiring_mutex_;
    bool started_ = false;
    std::map<std::pair<std::string, std::string>, std::unique_ptr<listener_entry>, std::less<>> listeners_;
    std::map<std::string, std::unique_ptr<type_entry>, std::less<>> types_;

    std::mutex pass_mutex_; // one pass at a time in this process; other processes are kept apart by claims
    std::chrono::system_clock::time_point last_purge_{};
    std::chrono::system_clock::time_point last_claim_{};
    // Outcomes a pass could not record (the database refused the write): recorded first by
    // the next pass, so a delivered row is not delivered again once its lease runs out.
    std::vector<settlement> unsettled_;
    // While relaying on a store that claims_on_append: rows are written claimed by this relay.
    std::atomic<bool> born_claimed_{false};
    std::vector<detail::fresh_row> fresh_; // under relay_mutex_: committed rows written claimed, not yet taken

    std::mutex relay_mutex_;
    std::condition_variable idle_;
    boost::asio::steady_timer timer_;
    boost::asio::steady_timer batch_deadline_; // the lease of the relay's batch handed to asynchronous listeners
    bool relaying_ = false;
    bool stopping_ = false;
    bool again_ = false;
    pass_state state_ = pass_state::idle;
    std::size_t outstanding_ = 0; // posted runs, armed timers and posts under way from a report
    std::optional<std::chrono::system_clock::time_point> next_retry_;
};

} // namespace choreo::durable

#include <choreo/durable/impl/outbox_relay.hpp>
#include <choreo/durable/impl/outbox_writer.hpp>
