#pragma once
/// @file
/// @brief Durable after-commit delivery: a transactional outbox and its relay.
///
/// A durable listener is subscribed on an outbox, not on the bus. When an event it listens
/// to is committed in a unit of work on the outbox store's resource, one row per durable
/// listener is written in that same transaction (a before_commit step that runs last), so
/// the row exists if and only if the business change committed. After the commit the relay
/// claims rows in batches on an Asio executor, delivers them, and records per row whether
/// it was delivered, will be retried, or failed. Delivery is at least once; pair it with an
/// inbox (choreo::durable::inbox_store) for effects that happen once.
///
/// A listener subscribed with subscribe() delivers before it returns. One subscribed with
/// subscribe_async() hands the event to a transport and reports its fate later (a Kafka
/// producer's delivery report): the relay hands over a whole batch, settles it when the
/// last report came, and no thread of the relay's executor waits for the transport meanwhile.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstddef>
#include <cstdint>
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
#include <choreo/durable/json_codec.hpp>
#include <choreo/durable/store.hpp>

namespace choreo::durable {

/// @brief How a durable listener is subscribed.
struct durable_options {
    /// Required and stable: rows name their listener, so a renamed listener no longer
    /// receives rows written under the old name (they fail with that reason).
    std::string name{};
    /// Per row: 1 + immediate_retries attempts make a round; a failed round is retried
    /// delayed_retries times, after retry.delay_before(n), then the row fails.
    retry_policy retry{.immediate_retries = 0, .delayed_retries = 5, .initial_delay = std::chrono::milliseconds{100}};
};

/// @brief How an asynchronous durable listener reports what became of an event it was handed:
/// null once it was delivered, else the reason it was not (retried, or failed for a
/// choreo::permanent_error, as a listener's exception is). Call it once, from any thread;
/// later calls are ignored.
using delivery_report = std::function<void(std::exception_ptr)>;

/// @brief Settings of an outbox and its relay.
struct outbox_options {
    /// Unique among the relays of one database. A relay that restarts under the same name
    /// takes back the rows its previous run had claimed (a crash leaves them claimed).
    std::string relay_name = "relay";
    /// false: only write rows; another process (or start() later) relays them.
    bool relay = true;
    std::size_t batch_size = 256;                            ///< rows claimed per pass
    /// A claim expires after this (longer than a batch takes); a row handed to an
    /// asynchronous listener whose report has not come by then is retried.
    std::chrono::milliseconds lease{30'000};
    std::chrono::milliseconds poll_interval{500};            ///< passes also run this often (retries, rows of other writers)
    std::chrono::milliseconds keep_delivered{600'000};       ///< delivered rows are purged after this
    std::optional<boost::asio::any_io_executor> executor{};  ///< where the relay runs; the bus's pool by default
};

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
          directory_(detail::outbox_directory::of(&owner)), timer_(executor_),
          batch_deadline_(executor_) {
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
    void subscribe(F&& listener, durable_options options) {
        static_assert(codec_for<Codec, E>, "the outbox's codec cannot encode and decode this event type");
        static_assert(std::is_invocable_v<F&, const E&> || std::is_invocable_v<F&, const E&, const envelope&>,
                      "a durable listener takes (const E&) or (const E&, const envelope&)");
        auto entry = std::make_unique<listener_entry>();
        entry->deliver = [this, f = std::forward<F>(listener)](std::string_view payload, const envelope& env) mutable {
            E event = decode<E>(payload);
            if constexpr (std::is_invocable_v<F&, const E&, const envelope&>)
                f(std::as_const(event), env);
            else
                f(std::as_const(event));
        };
        add_listener<E>(std::move(entry), std::move(options));
    }

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
    void subscribe_async(F&& listener, durable_options options) {
        static_assert(codec_for<Codec, E>, "the outbox's codec cannot encode and decode this event type");
        static_assert(std::is_invocable_v<F&, const E&, const envelope&, delivery_report>,
                      "an asynchronous durable listener takes (const E&, const envelope&, delivery_report)");
        if (options.retry.immediate_retries != 0)
            throw usage_error(fmt::format("asynchronous durable listener '{}': immediate_retries must be 0 (its "
                                          "transport retries within a round; the relay retries in delayed rounds)",
                                          options.name));
        auto entry = std::make_unique<listener_entry>();
        entry->hand_over = [this, f = std::forward<F>(listener)](std::string_view payload, const envelope& env,
                                                                 delivery_report report) mutable {
            E event = decode<E>(payload);
            f(std::as_const(event), env, std::move(report));
        };
        add_listener<E>(std::move(entry), std::move(options));
    }

    /// @brief Takes back the rows an earlier run of this relay left claimed, then relays
    /// every pending row and, from now on, each commit's rows right after it. Idempotent.
    void start() {
        {
            std::lock_guard lock{wiring_mutex_};
            if (started_) return;
            started_ = true;
        }
        if (!options_.relay) return;
        store_.release(options_.relay_name);
        std::lock_guard lock{relay_mutex_};
        relaying_ = true;
        stopping_ = false;
        state_ = pass_state::idle;
        schedule_locked();
    }

    /// @brief Stops relaying and waits for the pass in flight (with the reports of the rows
    /// it handed to asynchronous listeners, up to the lease). Rows keep being written.
    void stop() {
        std::unique_lock lock{relay_mutex_};
        stopping_ = true;
        relaying_ = false;
        timer_.cancel();
        idle_.wait(lock, [this] { return outstanding_ == 0; });
    }

    /// @brief Runs one relay pass on this thread: claims up to batch_size due rows, delivers
    /// them (waiting for the reports of asynchronous listeners, up to the lease), records
    /// the outcomes. Returns how many rows it settled. Not inside a unit of work on the
    /// store's resource (the claim needs a transaction of its own).
    std::size_t relay_once() {
        auto handed = begin_pass();
        if (!handed) return 0;
        handed->wait_for_reports(options_.lease);
        return finish_pass(*handed);
    }

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
    struct listener_entry {
        std::string_view event_type; // event_type_name<E>(): static storage
        std::string name;
        retry_policy retry;
        std::function<void(std::string_view, const envelope&)> deliver; // subscribe()
        std::function<void(std::string_view, const envelope&, delivery_report)> hand_over; // subscribe_async()
    };

    // A row of a batch handed to an asynchronous listener, and its report.
    struct handed_row {
        std::size_t index = 0; // in the batch's rows and settled
        const listener_entry* listener = nullptr;
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
    struct batch {
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
                auto why = std::make_exception_ptr(std::runtime_error(
                    fmt::format("no delivery report within the lease ({} ms)", lease.count())));
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
    struct type_entry {
        std::string_view event_type; // event_type_name<E>(): static storage
        std::vector<const listener_entry*> listeners;
        connection write;
        connection wake;
    };

    // The outbox that the thread's last before_commit wrote rows into: the after_commit
    // step wakes the relay only for commits that wrote to this outbox.
    static inline thread_local const void* wrote_rows_for = nullptr;

    // Registers a listener whose deliver or hand_over is set.
    template <class E>
    void add_listener(std::unique_ptr<listener_entry> entry, durable_options options) {
        if (options.name.empty()) throw usage_error("a durable listener needs a name: rows are stored under it");
        if (!options.retry.invalid_reason().empty())
            throw usage_error(fmt::format("durable listener '{}': {}", options.name, options.retry.invalid_reason()));
        constexpr std::string_view type = event_type_name<E>();
        std::lock_guard lock{wiring_mutex_};
        if (started_)
            throw usage_error(fmt::format("durable listener '{}' subscribed after start(): subscribe every durable "
                                          "listener first, so the relay knows each row's listener",
                                          options.name));
        auto key = std::pair{std::string{type}, options.name};
        if (listeners_.contains(key))
            throw usage_error(fmt::format("a durable listener named '{}' is already subscribed to {}", options.name, type));
        entry->event_type = type;
        entry->name = options.name;
        entry->retry = std::move(options.retry);
        auto& slot = types_[std::string{type}];
        if (!slot) {
            slot = connect_type<E>();
            directory_->cover(&store_.resource(), type);
        }
        slot->listeners.push_back(entry.get());
        listeners_.emplace(std::move(key), std::move(entry));
    }

    template <class E>
    E decode(std::string_view payload) const {
        try {
            return codec_.template decode<E>(payload);
        } catch (const codec_error&) {
            throw;
        } catch (const std::exception& e) {
            throw codec_error(fmt::format("cannot decode {}: {}", event_type_name<E>(), e.what()));
        }
    }

    template <class E>
    std::unique_ptr<type_entry> connect_type() {
        auto entry = std::make_unique<type_entry>();
        entry->event_type = event_type_name<E>();
        type_entry* raw = entry.get();
        // Last among before_commit steps, so the rows reflect the event as committed; an
        // event published with no unit of work cannot be made durable, hence `error`.
        entry->write = bus_.subscribe<E>(
            [this, raw](const E& event, const delivery_info& info) { write_rows(*raw, event, info.event_envelope()); },
            {.name = fmt::format("choreo.outbox.write:{}", options_.relay_name),
             .when = phase::before_commit,
             .order = std::numeric_limits<int>::max(),
             .without_transaction = no_transaction_policy::error});
        entry->wake = bus_.subscribe<E>(
            [this](const E&) {
                if (wrote_rows_for != this) return;
                wrote_rows_for = nullptr;
                poke();
            },
            {.name = fmt::format("choreo.outbox.wake:{}", options_.relay_name),
             .when = phase::after_commit,
             .without_transaction = no_transaction_policy::error});
        return entry;
    }

    template <class E>
    void write_rows(const type_entry& entry, const E& event, const envelope& env) {
        unit_of_work* unit = unit_of_work::committing();
        if (!unit) return;
        if (!unit->runs_on(store_.resource())) {
            // Another outbox of the bus writes this unit's rows; if none does, the durable
            // listeners would never receive the event: the commit fails instead.
            if (!directory_->covers(unit->resource_address(), entry.event_type)) refuse_uncovered(*unit, entry);
            return;
        }
        std::lock_guard lock{wiring_mutex_};
        if (entry.listeners.empty()) return;
        std::string payload = codec_.encode(event);
        for (const auto* listener : entry.listeners)
            store_.append(outbox_message{listener->event_type, listener->name, env, payload});
        wrote_rows_for = this;
    }

    [[noreturn]] void refuse_uncovered(const unit_of_work& unit, const type_entry& entry) const {
        std::string names;
        {
            std::lock_guard lock{wiring_mutex_};
            for (const auto* listener : entry.listeners) names += fmt::format("{}'{}'", names.empty() ? "" : ", ", listener->name);
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
    void schedule_locked() {
        if (!relaying_ || stopping_) return;
        if (state_ == pass_state::idle) {
            state_ = pass_state::scheduled;
            post_run_locked();
        } else if (state_ == pass_state::running) {
            again_ = true;
        }
    }

    void post_run_locked() {
        ++outstanding_;
        boost::asio::post(executor_, [this] { run_passes(); });
    }

    // The poll after an idle pass: picks up retries that came due and rows of other writers.
    void wait_locked(std::chrono::milliseconds delay) {
        timer_.expires_after(delay);
        ++outstanding_;
        timer_.async_wait([this](const boost::system::error_code& error) {
            std::lock_guard lock{relay_mutex_};
            --outstanding_;
            if (!error && !stopping_) schedule_locked();
            idle_.notify_all();
        });
    }

    void run_passes() noexcept {
        {
            std::lock_guard lock{relay_mutex_};
            state_ = pass_state::running;
            again_ = false;
        }
        continue_passes();
    }

    // Passes until one settles less than a batch. A batch handed to asynchronous listeners
    // returns the thread to the executor; its last report posts resume_after().
    void continue_passes() noexcept {
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

    // Arranges for resume_after() to run once `handed` is complete; false if it already is
    // (every report came during the hand-over).
    bool await_reports(const std::shared_ptr<batch>& handed) {
        std::lock_guard lock{handed->mutex};
        if (handed->complete) return false;
        // Armed before on_complete is set, so resume_after()'s cancel comes after it.
        batch_deadline_.expires_after(options_.lease);
        batch_deadline_.async_wait([handed, lease = options_.lease](const boost::system::error_code& error) {
            if (!error) handed->expire(lease);
        });
        // The batch would own itself through a strong pointer here; whoever completes it
        // holds one while calling this.
        handed->on_complete = [this, weak = std::weak_ptr<batch>{handed}] {
            if (auto complete = weak.lock())
                boost::asio::post(executor_, [this, complete]() noexcept { resume_after(complete); });
        };
        return true;
    }

    void resume_after(const std::shared_ptr<batch>& handed) noexcept {
        batch_deadline_.cancel();
        std::size_t settled = 0;
        try {
            settled = finish_pass(*handed);
        } catch (...) {
            pass_failed();
        }
        if (go_again(settled)) continue_passes();
    }

    void pass_failed() noexcept {
        report(incident_kind::listener_failed, nullptr, nullptr, std::current_exception(), 0,
               fmt::format("outbox relay '{}': a pass failed and will be tried again: {}", options_.relay_name,
                           describe(std::current_exception())));
    }

    // After a pass that settled `settled` rows: true to run another at once; otherwise the
    // run ends (the poll timer armed unless stopping).
    bool go_again(std::size_t settled) noexcept {
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

    void arm_timer_locked() {
        auto delay = options_.poll_interval;
        if (next_retry_) {
            auto until = std::chrono::duration_cast<std::chrono::milliseconds>(*next_retry_ - std::chrono::system_clock::now());
            delay = std::clamp(until, std::chrono::milliseconds{1}, delay);
            next_retry_.reset();
        }
        wait_locked(delay);
    }

    // Claims a batch, delivers the rows of synchronous listeners and hands the others over.
    // Null when there was nothing to claim.
    std::shared_ptr<batch> begin_pass() {
        std::lock_guard one_pass{pass_mutex_};
        if (bus_.is_closed()) return nullptr;
        auto handed = std::make_shared<batch>();
        handed->claimed_at = std::chrono::system_clock::now();
        handed->rows = store_.claim(options_.relay_name, options_.batch_size, handed->claimed_at, options_.lease);
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

    // Settles a complete batch: the handed rows by their reports.
    std::size_t finish_pass(batch& handed) {
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
        store_.settle(handed.settled);
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

    static envelope envelope_of(const outbox_row& row, const listener_entry& listener) {
        return {row.event, row.causation, correlation_key{row.key}, row.time, listener.event_type};
    }

    // A row of a synchronous listener (or of none: `listener` null), delivered here.
    settlement deliver(const outbox_row& row, const listener_entry* listener) {
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

    // What attempt `attempt` of `per_round` in round `round` comes to: nothing when another
    // attempt of the round is due. Failed attempts are reported as incidents.
    std::optional<settlement> conclude(const outbox_row& row, const listener_entry& listener, const envelope& env,
                                       unsigned round, unsigned attempt, unsigned per_round, const std::exception_ptr& error) {
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

    settlement give_up(const outbox_row& row, unsigned round, std::string reason) {
        report(incident_kind::retries_exhausted, nullptr, nullptr, nullptr, round,
               fmt::format("outbox row {} ({} for '{}') failed: {}", row.id, row.event_type, row.listener, reason));
        return {row.id, settlement::outcome::failed, round, {}, std::move(reason)};
    }

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
        choreo::detail::hand_to_error_handler(
            handler, incident{kind, listener ? listener->event_type : std::string_view{},
                              listener ? std::string_view{listener->name} : std::string_view{}, phase::after_commit,
                              env, std::move(error), attempt, message});
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

    std::mutex relay_mutex_;
    std::condition_variable idle_;
    boost::asio::steady_timer timer_;
    boost::asio::steady_timer batch_deadline_; // the lease of the relay's batch handed to asynchronous listeners
    bool relaying_ = false;
    bool stopping_ = false;
    bool again_ = false;
    pass_state state_ = pass_state::idle;
    std::size_t outstanding_ = 0; // posted runs and armed timers
    std::optional<std::chrono::system_clock::time_point> next_retry_;
};

} // namespace choreo::durable
