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

/// @brief Settings of an outbox and its relay.
struct outbox_options {
    /// Unique among the relays of one database. A relay that restarts under the same name
    /// takes back the rows its previous run had claimed (a crash leaves them claimed).
    std::string relay_name = "relay";
    /// false: only write rows; another process (or start() later) relays them.
    bool relay = true;
    std::size_t batch_size = 256;                            ///< rows claimed per pass
    std::chrono::milliseconds lease{30'000};                 ///< a claim expires after this (longer than a batch takes)
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
          executor_(options_.executor ? *options_.executor : owner.executor()), timer_(executor_) {
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
        if (options.name.empty()) throw usage_error("a durable listener needs a name: rows are stored under it");
        constexpr std::string_view type = event_type_name<E>();
        std::lock_guard lock{wiring_mutex_};
        if (started_)
            throw usage_error(fmt::format("durable listener '{}' subscribed after start(): subscribe every durable "
                                          "listener first, so the relay knows each row's listener",
                                          options.name));
        auto key = std::pair{std::string{type}, options.name};
        if (listeners_.contains(key))
            throw usage_error(fmt::format("a durable listener named '{}' is already subscribed to {}", options.name, type));
        auto entry = std::make_unique<listener_entry>();
        entry->event_type = type;
        entry->name = options.name;
        entry->retry = std::move(options.retry);
        entry->deliver = [this, f = std::forward<F>(listener)](std::string_view payload, const envelope& env) mutable {
            E event = decode<E>(payload);
            if constexpr (std::is_invocable_v<F&, const E&, const envelope&>)
                f(std::as_const(event), env);
            else
                f(std::as_const(event));
        };
        auto& slot = types_[std::string{type}];
        if (!slot) slot = connect_type<E>();
        slot->listeners.push_back(entry.get());
        listeners_.emplace(std::move(key), std::move(entry));
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

    /// @brief Stops relaying and waits for the pass in flight. Rows keep being written.
    void stop() {
        std::unique_lock lock{relay_mutex_};
        stopping_ = true;
        relaying_ = false;
        timer_.cancel();
        idle_.wait(lock, [this] { return outstanding_ == 0; });
    }

    /// @brief Runs one relay pass on this thread: claims up to batch_size due rows, delivers
    /// them, records the outcomes. Returns how many rows it settled. Not inside a unit of
    /// work on the store's resource (the claim needs a transaction of its own).
    std::size_t relay_once() { return pass(); }

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
        std::function<void(std::string_view, const envelope&)> deliver;
    };
    struct type_entry {
        std::vector<const listener_entry*> listeners;
        connection write;
        connection wake;
    };

    // The outbox that the thread's last before_commit wrote rows into: the after_commit
    // step wakes the relay only for commits that wrote to this outbox.
    static inline thread_local const void* wrote_rows_for = nullptr;

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
        // Units on other resources belong to other outboxes (or to none).
        if (!unit || !unit->runs_on(store_.resource())) return;
        std::lock_guard lock{wiring_mutex_};
        if (entry.listeners.empty()) return;
        std::string payload = codec_.encode(event);
        for (const auto* listener : entry.listeners)
            store_.append(outbox_message{listener->event_type, listener->name, env, payload});
        wrote_rows_for = this;
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
        for (;;) {
            std::size_t settled = 0;
            try {
                settled = pass();
            } catch (...) {
                report(incident_kind::listener_failed, nullptr, nullptr, std::current_exception(), 0,
                       fmt::format("outbox relay '{}': a pass failed and will be tried again: {}", options_.relay_name,
                                   describe(std::current_exception())));
            }
            std::lock_guard lock{relay_mutex_};
            if (stopping_) break;
            if (settled == options_.batch_size || again_) {
                again_ = false;
                continue;
            }
            break;
        }
        std::lock_guard lock{relay_mutex_};
        state_ = pass_state::idle;
        if (!stopping_) arm_timer_locked();
        --outstanding_;
        idle_.notify_all();
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

    std::size_t pass() {
        std::lock_guard one_pass{pass_mutex_};
        if (bus_.is_closed()) return 0;
        auto now = std::chrono::system_clock::now();
        auto rows = store_.claim(options_.relay_name, options_.batch_size, now, options_.lease);
        std::vector<settlement> settled;
        settled.reserve(rows.size());
        for (auto& row : rows) settled.push_back(deliver(row));
        store_.settle(settled);
        for (const auto& s : settled) {
            if (s.result != settlement::outcome::retry) continue;
            std::lock_guard lock{relay_mutex_};
            if (!next_retry_ || s.retry_at < *next_retry_) next_retry_ = s.retry_at;
        }
        if (now - last_purge_ >= std::max<std::chrono::milliseconds>(options_.poll_interval, std::chrono::seconds{1})) {
            last_purge_ = now;
            store_.purge_delivered(now - options_.keep_delivered);
        }
        return settled.size();
    }

    settlement deliver(const outbox_row& row) {
        const unsigned round = row.attempts + 1;
        if (!row.problem.empty()) return give_up(row, round, row.problem);
        const listener_entry* listener = find(row.event_type, row.listener);
        if (!listener)
            return give_up(row, round,
                           fmt::format("no durable listener named '{}' for event type '{}' is subscribed on this outbox",
                                       row.listener, row.event_type));
        const envelope env{row.event, row.causation, correlation_key{row.key}, row.time, listener->event_type};
        const auto& policy = listener->retry;
        const unsigned per_round = 1 + policy.immediate_retries;
        for (unsigned attempt = 1;; ++attempt) {
            const unsigned overall = (round - 1) * per_round + attempt;
            auto error = attempt_delivery(*listener, row.payload, env, overall);
            if (!error) return {row.id, settlement::outcome::delivered, round, {}, {}};
            bool retryable = !is_codec_error(error) && policy.retryable(error);
            auto message = describe(error);
            if (retryable && attempt < per_round) {
                report(incident_kind::listener_failed, listener, &env, error, overall, message);
                continue;
            }
            if (retryable && round <= policy.delayed_retries) {
                report(incident_kind::listener_failed, listener, &env, error, overall, message);
                return {row.id, settlement::outcome::retry, round,
                        std::chrono::system_clock::now() + policy.delay_before(round - 1), message};
            }
            report(incident_kind::retries_exhausted, listener, &env, error, overall, message);
            return {row.id, settlement::outcome::failed, round, {}, message};
        }
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
        const auto& tracer = bus_.options().tracer;
        auto start = std::chrono::steady_clock::now();
        std::exception_ptr error;
        try {
            causation_scope cause{env};
            auto unit = bus_.begin();
            listener.deliver(payload, env);
            unit.commit();
        } catch (...) {
            error = std::current_exception();
        }
        if (tracer) {
            try {
                tracer(dispatch_trace{listener.event_type, listener.name, phase::after_commit, delivery::asynchronous,
                                      completion::committed, std::this_thread::get_id(),
                                      std::chrono::steady_clock::now() - start,
                                      error ? dispatch_outcome::failed : dispatch_outcome::succeeded, attempt, env,
                                      error});
            } catch (...) {
                std::fputs("choreo: the tracer threw; the trace was dropped\n", stderr);
            }
        }
        return error;
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
        try {
            handler(incident{kind, listener ? listener->event_type : std::string_view{},
                             listener ? std::string_view{listener->name} : std::string_view{}, phase::after_commit, env,
                             std::move(error), attempt, message});
        } catch (...) {
            std::fputs("choreo: the error handler threw; an incident was printed here instead\n", stderr);
        }
    }

    enum class pass_state : std::uint8_t { idle, scheduled, running };

    bus& bus_;
    Store& store_;
    outbox_options options_;
    Codec codec_;
    boost::asio::any_io_executor executor_;

    mutable std::mutex wiring_mutex_;
    bool started_ = false;
    std::map<std::pair<std::string, std::string>, std::unique_ptr<listener_entry>, std::less<>> listeners_;
    std::map<std::string, std::unique_ptr<type_entry>, std::less<>> types_;

    std::mutex pass_mutex_; // one pass at a time in this process; other processes are kept apart by claims
    std::chrono::system_clock::time_point last_purge_{};

    std::mutex relay_mutex_;
    std::condition_variable idle_;
    boost::asio::steady_timer timer_;
    bool relaying_ = false;
    bool stopping_ = false;
    bool again_ = false;
    pass_state state_ = pass_state::idle;
    std::size_t outstanding_ = 0; // posted runs and armed timers
    std::optional<std::chrono::system_clock::time_point> next_retry_;
};

} // namespace choreo::durable
