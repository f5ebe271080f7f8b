#pragma once
// Many sagas at once on a real bus: four pool threads, several starting threads, a store and
// real timers. Outcomes depend on timing (contention may exhaust its retries), so the test
// checks invariants that must hold whatever happened. Run with memory_store by the saga
// tests and with the Redis store by the Redis tests.

#include "support.hpp"

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

namespace saga_test {

// Places threads * orders_per_thread orders from `threads` threads on a bus with four pool
// threads, with sagas on `store`, and checks every invariant; every tenth order cannot be
// served and must roll back.
template <class Store>
void concurrent_orders(Store& store, int threads, int orders_per_thread) {
    using namespace choreo::saga;
    constexpr long initial_stock = 1000;
    constexpr long initial_points = 10'000'000;

    choreo::bus events{{.threads = 4}};
    std::atomic<int> step_failures{0};
    runtime sagas{events,
                  store,
                  {.timeout = std::chrono::seconds{60},
                   .marker_wait = std::chrono::seconds{30},
                   .on_incident = [&](const saga_incident& i) {
                       if (i.kind == saga_incident_kind::step_failed) ++step_failures;
                   }}};
    std::vector<std::string> products;
    std::map<std::string, std::string> orders; // order id -> product
    {
        shop s{sagas};
        for (int p = 0; p < 8; ++p) {
            products.push_back("p" + std::to_string(p));
            s.products.write(products.back() + ".stock", initial_stock);
            s.products.write(products.back() + ".price", 10 + p);
        }
        for (int c = 0; c < threads * orders_per_thread; ++c) s.coupons.write("c" + std::to_string(c) + ".amount", 5);
        s.points.write("ann", initial_points);

        std::vector<std::thread> starters;
        std::mutex orders_mutex;
        for (int t = 0; t < threads; ++t)
            starters.emplace_back([&, t] {
                for (int i = 0; i < orders_per_thread; ++i) {
                    int n = t * orders_per_thread + i;
                    auto id = std::to_string(n);
                    auto product = products[static_cast<std::size_t>(n % 8)];
                    // Every tenth order asks for more than there is: its saga must roll back.
                    long quantity = n % 10 == 7 ? initial_stock + 1 : 1;
                    saga_test::order_create_start e{
                        id, {{product, quantity}}, n % 3 == 0 ? "c" + std::to_string(n) : "", "ann"};
                    s.create_order(events, e);
                    std::lock_guard lock{orders_mutex};
                    orders[id] = product;
                }
            });
        for (auto& t : starters) t.join();
        sagas.drain();

        std::map<std::string, long> sold;
        long spent = 0;
        int completed = 0, rolled_back = 0;
        for (auto& entry : orders) {
            const std::string& id = entry.first;
            const std::string& product = entry.second;
            CAPTURE(id);
            auto state = sagas.state(choreo::saga::key_for<saga_test::order_create_start>(id));
            REQUIRE(state);
            REQUIRE(has_ended(state->status)); // nothing stuck half-way
            long status = s.orders.read(id + ".status");
            if (state->status == saga_status::completed) {
                ++completed;
                CHECK(status == saga_test::completed);
                sold[product] += 1;
                long price = s.orders.read(id + ".price") - s.orders.read(id + ".discount");
                CHECK(s.payments.read(id + ".paid") == price);
                spent += price;
                if (std::stoi(id) % 3 == 0) CHECK(s.coupons.read("c" + id + ".used") == 1);
            } else {
                ++rolled_back;
                CHECK(status == saga_test::cancelled);
                CHECK(s.payments.read(id + ".paid") == 0);
                CHECK(s.coupons.read("c" + id + ".used") == 0);
                CHECK(state->count(step_state::done) == 0);
            }
            if (std::stoi(id) % 10 == 7) CHECK(state->status == saga_status::rolled_back);
        }
        for (auto& p : products) CHECK(s.products.read(p + ".stock") == initial_stock - sold[p]);
        CHECK(s.points.read("ann") == initial_points - spent);
        CHECK(completed + rolled_back == threads * orders_per_thread);
        CHECK(rolled_back >= threads * orders_per_thread / 10);
        CHECK(step_failures >= threads * orders_per_thread / 10);
        for (auto& p : products) CHECK_FALSE(sagas.holder("product:" + p));
        MESSAGE(completed << " completed, " << rolled_back << " rolled back");
    }
}

} // namespace saga_test
