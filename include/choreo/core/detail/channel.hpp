#pragma once
// Per event type: the registrations (a Boost.Signals2 signal, which gives thread-safe
// connect and disconnect, connections, and ordering by group = (phase, order)), and the
// snapshot dispatch reads: a contiguous array of two-word delegates per phase,
// replaced copy-on-write whenever the registrations change.

#include <array>
#include <atomic>
#include <concepts>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/signals2/signal.hpp>

#include <choreo/core/delivery_info.hpp>
#include <choreo/core/detail/reclaim.hpp>
#include <choreo/core/listener_options.hpp>
#include <choreo/core/phase.hpp>

namespace choreo::detail {

// Where asynchronous work goes: an executor, and for per-key ordering a fixed set of
// strands on it chosen by the hash of the key.
struct lane {
    boost::asio::any_io_executor executor;
    // Set for the per-key strands of the bus's own pool: posting to the concrete strand
    // spares a type-erased allocation per job.
    std::optional<boost::asio::strand<boost::asio::thread_pool::executor_type>> pool_strand;
    std::vector<std::unique_ptr<lane>> keyed;
    // A per-key strand: its jobs run in the order they were posted, and one that waits for
    // a delayed retry holds back those after it. `held` and `parked` are touched only on
    // the strand.
    bool ordered = false;
    bool held = false;
    std::vector<std::function<void()>> parked;

    [[nodiscard]] lane* for_key(const correlation_key& key) noexcept {
        if (keyed.empty() || key.empty()) return this;
        return keyed[key.hash() % keyed.size()].get();
    }
};

struct listener_record;
using invoke_fn = void (*)(listener_record&, const void* event, const delivery_info&);

struct listener_record {
    // What dispatch reads first, on the record's first cache line; the rest is for setup and reports.
    std::atomic<bool> alive{true};
    invoke_fn invoke = nullptr;
    lane* target = nullptr; // asynchronous listeners
    std::string name;
    std::string_view event_type;
    listener_options options;

    virtual ~listener_record() = default;
    [[nodiscard]] bool is_async() const noexcept { return options.mode == delivery::asynchronous; }
};

template <class E, class F>
struct typed_listener final : listener_record {
    explicit typed_listener(F&& f) : fn(std::move(f)) {}
    explicit typed_listener(const F& f) : fn(f) {}
    F fn;

    static void call(listener_record& record, const void* event, const delivery_info& info) {
        auto& self = static_cast<typed_listener&>(record);
        const E& e = *static_cast<const E*>(event);
        if constexpr (std::invocable<F&, const E&, const delivery_info&>)
            self.fn(e, info);
        else if constexpr (std::invocable<F&, const E&, const envelope&>)
            self.fn(e, info.event_envelope());
        else
            self.fn(e);
    }
};

template <class F, class E>
concept listener_for = std::invocable<F&, const E&> || std::invocable<F&, const E&, const envelope&> ||
    std::invocable<F&, const E&, const delivery_info&>;

// Two words: the function and the listener it was made for.
struct delegate {
    invoke_fn invoke;
    listener_record* record;
};

struct snapshot {
    std::vector<delegate> entries;                        // sorted by (phase, order, registration)
    std::vector<std::shared_ptr<listener_record>> owners; // parallel to entries
    std::array<std::uint32_t, phase_count + 1> bounds{};
    bool transactional = false;                            // any listener outside phase::immediate
    bool async_immediate = false;                          // an immediate listener delivered asynchronously
    const listener_record* requires_transaction = nullptr; // first with policy error

    [[nodiscard]] std::span<const delegate> in(phase p) const noexcept {
        auto i = static_cast<std::size_t>(p);
        return {entries.data() + bounds[i], entries.data() + bounds[i + 1]};
    }
    [[nodiscard]] const std::shared_ptr<listener_record>& owner_of(const delegate& d) const noexcept {
        return owners[static_cast<std::size_t>(&d - entries.data())];
    }
};

struct snapshot_builder {
    std::vector<std::shared_ptr<listener_record>> records;
};

class channel {
public:
    explicit channel(std::string_view type_name) : type_name_(type_name) {}
    channel(const channel&) = delete;
    channel& operator=(const channel&) = delete;
    ~channel() { delete current_.load(std::memory_order_relaxed); }

    [[nodiscard]] std::string_view type_name() const noexcept { return type_name_; }

    // Null while nothing was ever subscribed. Read it inside a read_section.
    [[nodiscard]] const snapshot* current() const noexcept { return current_.load(std::memory_order_acquire); }

    boost::signals2::connection add(std::shared_ptr<listener_record> record) {
        std::lock_guard lock{mutex_};
        group_type group{static_cast<int>(record->options.when), record->options.order};
        auto connection = registrations_.connect(
            group, [record](snapshot_builder& builder) { builder.records.push_back(record); },
            boost::signals2::at_back);
        rebuild_locked();
        return connection;
    }

    void rebuild() {
        std::lock_guard lock{mutex_};
        rebuild_locked();
    }

private:
    using group_type = std::pair<int, int>;
    using signal_type =
        boost::signals2::signal<void(snapshot_builder&), boost::signals2::optional_last_value<void>, group_type>;

    void rebuild_locked() {
        snapshot_builder builder;
        registrations_(builder); // visits live connections in (phase, order, registration) order
        auto next = std::make_unique<snapshot>();
        next->entries.reserve(builder.records.size());
        std::size_t phase_index = 0;
        for (auto& record : builder.records) {
            if (!record->alive.load(std::memory_order_relaxed)) continue;
            auto p = static_cast<std::size_t>(record->options.when);
            while (phase_index < p) next->bounds[++phase_index] = static_cast<std::uint32_t>(next->entries.size());
            if (record->options.when == phase::immediate && record->is_async()) next->async_immediate = true;
            if (record->options.when != phase::immediate) {
                next->transactional = true;
                if (!next->requires_transaction && record->options.without_transaction == no_transaction_policy::error)
                    next->requires_transaction = record.get();
            }
            next->entries.push_back({record->invoke, record.get()});
            next->owners.push_back(record);
        }
        while (phase_index < phase_count)
            next->bounds[++phase_index] = static_cast<std::uint32_t>(next->entries.size());
        const snapshot* old = current_.exchange(next.release(), std::memory_order_acq_rel);
        if (old) retired_.retire(const_cast<snapshot*>(old), [](void* p) { delete static_cast<snapshot*>(p); });
    }

    std::string_view type_name_;
    std::mutex mutex_;
    signal_type registrations_;
    std::atomic<const snapshot*> current_{nullptr};
    retire_list retired_;
};

} // namespace choreo::detail
