#pragma once
/// @file
/// @brief The event bus: subscriptions, publication, units of work, asynchronous delivery.

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/thread_pool.hpp>

#include <choreo/core/connection.hpp>
#include <choreo/core/detail/channel.hpp>
#include <choreo/core/detail/event_buffer.hpp>
#include <choreo/core/detail/frame.hpp>
#include <choreo/core/envelope.hpp>
#include <choreo/core/errors.hpp>
#include <choreo/core/listener_options.hpp>
#include <choreo/core/observe.hpp>
#include <choreo/core/phase.hpp>
#include <choreo/core/resource.hpp>
#include <choreo/core/type_name.hpp>
#include <choreo/core/unit_of_work.hpp>

namespace choreo {

/// @brief Settings of a bus, fixed at construction.
struct bus_options {
    std::size_t threads = 0;        ///< threads of the bus's own pool; 0 means hardware concurrency (at least 2)
    unsigned max_commit_depth = 32; ///< before_commit hops one commit may take (a cycle hits this)
    std::size_t max_commit_events = 100'000; ///< events one unit of work may hold
    std::size_t key_lanes = 64;              ///< strands per executor for per-key ordering
    incident_handler on_incident{};          ///< the error handler; by default a line on stderr
    choreo::tracer tracer{};                 ///< sees every dispatch; empty costs nothing
};

/// @brief One registration, as bus::wiring() lists it.
struct registration {
    std::string event_type;                    ///< the event's type name
    std::string listener;                      ///< the listener's name
    phase when;                                ///< the phase it is bound to
    int order;                                 ///< its place among listeners of one phase
    delivery mode;                             ///< synchronous or asynchronous
    ordering order_by;                         ///< per-key ordering of asynchronous deliveries
    no_transaction_policy without_transaction; ///< what a before_commit or after_* listener does with no unit of work
};

namespace detail {
struct async_batch;
inline thread_local unit_of_work* current_unit = nullptr;
inline thread_local unit_of_work* committing_unit = nullptr; // runs its before_commit listeners here
inline thread_local const void* working_for = nullptr;       // the bus whose job or commit this thread runs
} // namespace detail

/// @brief Typed events, transaction-phase listeners and asynchronous delivery.
///
/// Thread-safe: subscribe, publish, disconnect, begin, drain and wiring may be called
/// from any thread at once. Dispatch takes no lock and allocates nothing per event.
/// Destroying the bus shuts it down (drains in-flight work first).
class bus {
public:
    /// @brief A bus with its own thread pool for asynchronous listeners.
    explicit bus(bus_options options = {});
    /// @brief Shuts down: waits for in-flight asynchronous work, then stops the pool.
    ~bus();
    bus(const bus&) = delete;
    bus& operator=(const bus&) = delete;
    bus(bus&&) = delete;
    bus& operator=(bus&&) = delete;

    /// @brief Subscribes `listener` to events of type E. The listener takes `const E&`,
    /// optionally followed by `const envelope&` or `const delivery_info&`.
    /// Throws choreo::usage_error for impossible options (an asynchronous before_commit
    /// listener, ordering or an executor on a synchronous one, retries where exceptions
    /// reach the caller) and choreo::bus_closed_error after shutdown.
    /// The listener stays subscribed while the returned connection lives: keep it (as a
    /// member, beside what the listener uses), or call its release() to keep the listener
    /// for the life of the bus, as a Spring listener bean is.
    template <event E, class F>
    [[nodiscard("the listener is unsubscribed when the returned connection is destroyed: keep the connection, "
                "or call .release() on it to keep the listener for the life of the bus")]] connection
    subscribe(F&& listener, listener_options options = {});

    /// @brief Publishes into the thread's current unit of work of this bus, or with none
    /// (then each transactional listener follows its no_transaction_policy).
    template <class E>
    void publish(E&& event);
    /// @brief As publish(event), with an explicit correlation key instead of the inherited one.
    template <class E>
    void publish(E&& event, const correlation_key& key);

    /// @brief Begins a unit of work on `resource` (calls resource.begin()); the resource must outlive it.
    template <transactional_resource R>
    [[nodiscard]] unit_of_work begin(R& resource);
    /// @brief Begins a unit of work with no resource (it only orders the listeners).
    [[nodiscard]] unit_of_work begin();

    /// @brief The innermost open unit of work of this bus on this thread, or null.
    [[nodiscard]] unit_of_work* current_unit() const noexcept;

    /// @brief Waits until no asynchronous job, delayed retry or commit is in flight.
    /// A choreo::usage_error when called from a listener of this bus (it would wait for itself).
    void drain();
    /// @brief Refuses new publications and commits (choreo::bus_closed_error), drains, stops the pool.
    /// Work already in flight, and what it publishes, completes. Idempotent.
    void shutdown();
    /// @brief True once shutdown() began.
    [[nodiscard]] bool is_closed() const noexcept { return closed_.load(std::memory_order_acquire); }

    /// @brief Every live registration, grouped by event type, in dispatch order.
    [[nodiscard]] std::vector<registration> wiring() const;
    /// @brief The executor of the bus's own pool.
    [[nodiscard]] boost::asio::any_io_executor executor() noexcept { return pool_.get_executor(); }
    /// @brief The settings the bus was built with.
    [[nodiscard]] const bus_options& options() const noexcept { return options_; }

private:
    friend class unit_of_work;
    class work_scope;

    static constexpr std::size_t chunk_size = 64;
    static constexpr std::size_t chunk_count = 64;
    using chunk = std::array<std::atomic<detail::channel*>, chunk_size>;

    [[nodiscard]] detail::channel* find_channel(std::size_t index) const noexcept;
    std::shared_ptr<detail::channel> channel_for(std::size_t index, std::string_view type_name);
    detail::lane* lane_for(const listener_options& options);
    void validate(const listener_options& options, std::string_view type_name) const;

    template <class E>
    void publish_impl(E&& event, const correlation_key* key, unit_of_work* target);
    template <class T>
    void dispatch_immediate(const detail::snapshot& snap, const T& event, const detail::frame& f);
    template <class E>
    void buffer_into(unit_of_work& unit, E&& event, const detail::frame& f, const detail::snapshot& snap);
    template <class E>
    void publish_without_unit(E&& event, const detail::frame& f, const detail::snapshot& snap);
    template <class T>
    void post_single(const T& event, const detail::frame& f, const std::shared_ptr<detail::listener_record>& record);

    void invoke(const detail::delegate& d, const void* event, const detail::frame& f, phase when, completion outcome,
                unsigned attempt);
    std::exception_ptr attempt_delivery(detail::listener_record& record, const void* event, const envelope& env,
                                        phase when, completion outcome, unsigned attempt) noexcept;
    void deliver_sync_after(detail::listener_record& record, const void* event, const envelope& env, phase when,
                            completion outcome) noexcept;
    bool skip_outside_transaction(const unit_of_work& unit, const detail::listener_record& record, const envelope& env,
                                  phase when) noexcept;
    void run_before_commit(unit_of_work& unit, std::size_t index);
    void run_after(unit_of_work& unit, completion outcome);

    detail::async_batch* acquire_batch();
    void release_batch(detail::async_batch* batch) noexcept;
    std::unique_ptr<detail::event_buffer> acquire_buffer();
    void release_buffer(std::unique_ptr<detail::event_buffer> buffer) noexcept;
    void post_batch(detail::async_batch* batch);
    void run_group(detail::async_batch* batch, std::size_t group, std::size_t from, bool resumed) noexcept;
    bool deliver_async(detail::async_batch* batch, std::size_t group, std::size_t item) noexcept;

    bool begin_work() noexcept;
    void end_work() noexcept;
    [[noreturn]] void throw_closed() const;

    void report(incident_kind kind, const detail::listener_record* record, const envelope* env, phase when,
                std::exception_ptr error, unsigned attempt, std::string_view message) noexcept;
    void trace(const detail::listener_record& record, const envelope& env, phase when, completion outcome,
               std::chrono::steady_clock::time_point start, dispatch_outcome result, unsigned attempt,
               std::exception_ptr error) noexcept;

    bus_options options_;
    detail::id_source ids_;
    std::atomic<bool> closed_{false};

    std::array<std::atomic<chunk*>, chunk_count> table_{};
    mutable std::mutex registry_mutex_;
    std::vector<std::unique_ptr<chunk>> chunks_;
    std::vector<std::shared_ptr<detail::channel>> channels_;
    std::atomic<std::uint64_t> next_listener_{1};

    // Before the lanes: strands on the pool must be destroyed while the pool exists.
    // Its threads have been joined by shutdown() in the destructor already.
    boost::asio::thread_pool pool_;
    std::mutex lanes_mutex_;
    std::vector<std::unique_ptr<detail::lane>> lanes_;

    std::mutex pool_mutex_;
    std::vector<std::unique_ptr<detail::event_buffer>> free_buffers_;
    std::vector<std::unique_ptr<detail::async_batch>> free_batches_;

    std::atomic<std::size_t> in_flight_{0};
    std::mutex drain_mutex_;
    std::condition_variable drained_;
    std::mutex shutdown_mutex_;
    bool stopped_ = false;
};

} // namespace choreo

#include <choreo/core/impl/bus.hpp>
#include <choreo/core/impl/bus_delivery.hpp>
#include <choreo/core/impl/unit_of_work.hpp>
