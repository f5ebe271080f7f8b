// The core demo: an order placed in a unit of work, with before_commit listeners that
// chain inside the commit, an asynchronous after_commit data-platform send that fails
// twice before it succeeds, and a second order whose stock check fails and rolls back.
// Every dispatch is printed as a timeline by a tracer.
#include <choreo/choreo.hpp>

#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

namespace {

struct order_placed {
    static constexpr std::string_view choreo_event_name = "OrderPlaced";
    int order_id;
    int quantity;
};
struct stock_deducted {
    static constexpr std::string_view choreo_event_name = "StockDeducted";
    int order_id;
    int remaining;
};
struct order_confirmed {
    static constexpr std::string_view choreo_event_name = "OrderConfirmed";
    int order_id;
};

// A resource that prints what a database would do.
struct printing_database {
    void begin() { fmt::print("  [db] BEGIN\n"); }
    void commit() { fmt::print("  [db] COMMIT\n"); }
    void rollback() { fmt::print("  [db] ROLLBACK\n"); }
};

class timeline {
public:
    void record(const choreo::dispatch_trace& t) {
        std::lock_guard lock{mutex_};
        auto elapsed = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start_);
        fmt::print("  {:>7} us  {:<8} {:<16} {:<15} {:<22} {}{}\n", elapsed.count(), thread_name(t.thread),
                   choreo::to_string(t.listener_phase), t.event_type, t.listener, choreo::to_string(t.outcome),
                   t.attempt > 1 ? fmt::format(" (attempt {})", t.attempt) : std::string{});
    }

    void name_this_thread(std::string name) {
        std::lock_guard lock{mutex_};
        names_[std::this_thread::get_id()] = std::move(name);
    }

private:
    std::string thread_name(std::thread::id id) {
        auto [it, added] = names_.try_emplace(id, "");
        if (added) it->second = fmt::format("pool-{}", names_.size() - 1);
        return it->second;
    }
    std::mutex mutex_;
    std::map<std::thread::id, std::string> names_;
    std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

} // namespace

int main() {
    timeline log;
    log.name_this_thread("caller");
    fmt::print("choreo {}.{}.{} core demo\n\n", CHOREO_VERSION_MAJOR, CHOREO_VERSION_MINOR, CHOREO_VERSION_PATCH);
    fmt::print("  {:>7}     {:<8} {:<16} {:<15} {:<22} {}\n", "time", "thread", "phase", "event", "listener",
               "outcome");

    choreo::bus bus{{.on_incident =
                         [](const choreo::incident& i) {
                             fmt::print("  !! {} in '{}': {}\n", choreo::to_string(i.kind), i.listener, i.message);
                         },
                     .tracer = [&](const choreo::dispatch_trace& t) { log.record(t); }}};
    int stock = 3;
    std::atomic<int> platform_calls{0};

    auto deduct = bus.subscribe<order_placed>(
        [&](const order_placed& e) {
            if (e.quantity > stock) throw std::runtime_error(fmt::format("only {} left", stock));
            stock -= e.quantity;
            bus.publish(stock_deducted{e.order_id, stock});
        },
        {.name = "product: deduct stock", .when = choreo::phase::before_commit});
    auto confirm =
        bus.subscribe<stock_deducted>([&](const stock_deducted& e) { bus.publish(order_confirmed{e.order_id}); },
                                      {.name = "order: confirm", .when = choreo::phase::before_commit});
    auto send = bus.subscribe<order_confirmed>(
        [&](const order_confirmed&) {
            if (platform_calls.fetch_add(1) < 2) throw std::runtime_error("data platform timed out");
        },
        {.name = "data platform: send",
         .when = choreo::phase::after_commit,
         .mode = choreo::delivery::asynchronous,
         .retry = {.immediate_retries = 1, .delayed_retries = 2, .initial_delay = std::chrono::milliseconds{20}}});
    auto undo = bus.subscribe<order_placed>([](const order_placed&) {},
                                            {.name = "order: mark cancelled", .when = choreo::phase::after_rollback});

    fmt::print("\norder 1: 2 units (stock {})\n", stock);
    {
        printing_database db;
        auto unit = bus.begin(db);
        bus.publish(order_placed{1, 2});
        unit.commit();
    }
    bus.drain();
    fmt::print("  stock now {}; the data platform got the order after {} calls\n", stock, platform_calls.load());

    fmt::print("\norder 2: 5 units (stock {})\n", stock);
    try {
        printing_database db;
        auto unit = bus.begin(db);
        bus.publish(order_placed{2, 5});
        unit.commit();
    } catch (const std::exception& e) {
        fmt::print("  commit failed: {}\n", e.what());
    }
    bus.drain();
    fmt::print("  stock still {}\n", stock);

    fmt::print("\nwiring:\n");
    for (const auto& r : bus.wiring())
        fmt::print("  {:<15} -> {:<22} {:<15} {}\n", r.event_type, r.listener, choreo::to_string(r.when),
                   choreo::to_string(r.mode));
}
