#pragma once
// What `shop load` does, whichever shop it drives: the catalog it sets up, each order it
// places (drawn from the seed, so two runs with one seed place the same orders), and the
// tally of how orders ended. hosting/load.cpp drives the six processes through Redis;
// hosting/load_in_process.cpp the one-process transactional shop, for comparison.

#include "../app/storefront.hpp"
#include "serve_and_load.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace shop::app {

enum class load_outcome { completed, cancelled, payment_failed, refused, unfinished };

struct load_catalog {
    std::vector<std::int64_t> products;
    std::map<std::int64_t, std::int64_t> initial_stock;
    std::map<std::int64_t, std::vector<std::int64_t>> coupons_of; // user -> issued coupons
    std::int64_t stock = 0, points = 0;
};

// Products with stock for most orders (a few run out), one coupon of 50 issued twice to each
// user, and points for each user.
inline load_catalog set_up_catalog(storefront& shop, const load_options& o) {
    load_catalog c;
    c.stock = o.stock > 0 ? static_cast<std::int64_t>(o.stock)
                          : std::max<std::int64_t>(1, static_cast<std::int64_t>(o.orders * 8 / (5 * o.products)));
    c.points = 2000;
    for (std::size_t i = 0; i < o.products; ++i) {
        auto id = shop.add_product(fmt::format("item-{}", i + 1), static_cast<std::int64_t>(100 + 50 * i), c.stock);
        c.products.push_back(id);
        c.initial_stock[id] = c.stock;
    }
    auto coupon =
        shop.define_coupon("welcome", "FIXED", 50, static_cast<std::int64_t>(2 * o.users), std::chrono::seconds{86400});
    for (std::int64_t user = 1; user <= static_cast<std::int64_t>(o.users); ++user) {
        for (int n = 0; n < 2; ++n) c.coupons_of[user].push_back(shop.issue_coupon(coupon, user));
        shop.charge_points(user, c.points);
    }
    return c;
}

inline void print_catalog(const load_catalog& c, const load_options& o) {
    fmt::print("catalog: {} products with {} in stock each{}, {} users with 2 coupons and {} points each\n",
               c.products.size(), c.stock, o.stock > 0 ? "" : " (orders will run some out)", o.users, c.points);
}

// Order number `index` of a run with seed o.seed: who orders what, with which coupon, paid how.
struct load_order {
    std::int64_t user = 0;
    std::vector<std::pair<std::int64_t, std::int64_t>> lines; // product, quantity
    std::vector<std::int64_t> coupons;
    bool by_card = false;
};

inline load_order plan_order(const load_options& o, const load_catalog& c, std::size_t index) {
    std::mt19937_64 rng{o.seed * 1'000'003 + index};
    load_order order;
    order.user = static_cast<std::int64_t>(1 + rng() % o.users);
    auto first = rng() % c.products.size();
    auto count = std::min<std::size_t>(c.products.size(), 1 + rng() % 2);
    for (std::size_t n = 0; n < count; ++n)
        order.lines.emplace_back(c.products[(first + n) % c.products.size()], static_cast<std::int64_t>(1 + rng() % 2));
    if (rng() % 3 == 0) order.coupons.push_back(c.coupons_of.at(order.user)[rng() % 2]);
    order.by_card = rng() % 2 == 0;
    return order;
}

// How the orders of a run ended, shared by its threads.
struct load_tally {
    std::mutex mutex;
    std::condition_variable order_ended; // the progress line waits on it
    std::map<load_outcome, std::size_t> outcomes;
    std::vector<double> latencies_ms; // of the orders that ended
    std::size_t sagas_ended = 0;
    std::size_t created = 0;           // create_order commands answered with an order
    std::size_t busy = 0;              // commands refused as busy, and sent again after the wait asked
    std::vector<std::string> problems; // orders that did not end, commands that failed
    std::size_t ended() {
        std::size_t n = 0;
        for (auto& [o, count] : outcomes) n += count;
        return n;
    }
    // An order ended `what` way after `sagas` sagas, `started` when it was placed.
    void finish(load_outcome what, std::size_t sagas, std::chrono::steady_clock::time_point started,
                std::string problem = {}) {
        std::lock_guard lock{mutex};
        ++outcomes[what];
        sagas_ended += sagas;
        if (what != load_outcome::unfinished && what != load_outcome::refused)
            latencies_ms.push_back(
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count());
        if (!problem.empty()) problems.push_back(std::move(problem));
        order_ended.notify_all();
    }
};

inline double load_percentile(std::vector<double> values, double p) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(values.size() - 1) + 0.5);
    return values[std::min(rank, values.size() - 1)];
}

// Places o.orders orders, o.concurrency at a time (`place(index)` places one and records how
// it ended in `t`), with a progress line each second until the last one ends (woken by it,
// not polling); then prints throughput and latency.
template <class PlaceOrder>
void drive_orders(const load_options& o, load_tally& t, PlaceOrder place) {
    using clock_type = std::chrono::steady_clock;
    std::atomic<std::size_t> next{0};
    auto start = clock_type::now();
    std::vector<std::jthread> workers;
    for (std::size_t w = 0; w < std::min(o.concurrency, o.orders); ++w)
        workers.emplace_back([&] {
            for (auto i = next++; i < o.orders; i = next++) place(i);
        });
    auto line = [&](std::string_view prefix) {
        std::lock_guard lock{t.mutex};
        auto seconds = std::chrono::duration<double>(clock_type::now() - start).count();
        auto ended = t.ended();
        fmt::print(
            "{}[{:6.1f} s] {:>5}/{} ended: completed {}, cancelled {}, payment failed {}, refused {}, unfinished {}; "
            "{:.1f} orders/s\n",
            prefix, seconds, ended, o.orders, t.outcomes[load_outcome::completed], t.outcomes[load_outcome::cancelled],
            t.outcomes[load_outcome::payment_failed], t.outcomes[load_outcome::refused],
            t.outcomes[load_outcome::unfinished], seconds > 0 ? static_cast<double>(ended) / seconds : 0.0);
        std::fflush(stdout);
    };
    for (auto next_line = clock_type::now() + std::chrono::seconds{1};; next_line += std::chrono::seconds{1}) {
        {
            std::unique_lock lock{t.mutex};
            if (t.order_ended.wait_until(lock, next_line, [&] { return t.ended() >= o.orders; })) break;
        }
        line("  ");
    }
    workers.clear(); // joins
    auto elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
    line("  ");
    if (t.sagas_ended > 0)
        fmt::print("throughput: {:.1f} orders/s and {:.1f} sagas/s over {:.1f} s (an order is a creation saga and, "
                   "once created, a payment saga)\n",
                   static_cast<double>(o.orders) / elapsed, static_cast<double>(t.sagas_ended) / elapsed, elapsed);
    else
        fmt::print("throughput: {:.1f} orders/s over {:.1f} s\n", static_cast<double>(o.orders) / elapsed, elapsed);
    fmt::print(
        "latency from create to its last saga's end (or the payment's answer, with no saga): p50 {:.1f} ms, p90 {:.1f} "
        "ms, p99 {:.1f} ms, max {:.1f} ms\n",
        load_percentile(t.latencies_ms, 50), load_percentile(t.latencies_ms, 90), load_percentile(t.latencies_ms, 99),
        load_percentile(t.latencies_ms, 100));
}

// The first ten problems the run met, and how many more.
inline void print_problems(const load_tally& t) {
    for (std::size_t i = 0; i < std::min<std::size_t>(t.problems.size(), 10); ++i) fmt::print("  {}\n", t.problems[i]);
    if (t.problems.size() > 10) fmt::print("  ... and {} more\n", t.problems.size() - 10);
}

// Tells one run's idempotency keys apart from an earlier run's on the same databases.
inline std::string load_run_name() {
    return fmt::format(
        "{}", std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
                  .count());
}

} // namespace shop::app
