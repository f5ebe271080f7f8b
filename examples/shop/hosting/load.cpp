// `shop load`: drives orders and payments through the six processes of `shop serve`, only
// through Redis (commands on a stream, saga ends from the saga bridge's stream), shows
// progress, and ends with throughput, latency percentiles and an audit of every database.

#include "../app/audit.hpp"
#include "command_client.hpp"
#include "hop_report.hpp"
#include "serve_and_load.hpp"
#include "streams.hpp"

#include <boost/json.hpp>

#include <choreo/saga/key.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../events/events.hpp"

namespace shop::app {

namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

namespace {

enum class outcome { completed, cancelled, payment_failed, refused, unfinished };

struct catalog {
    std::vector<std::int64_t> products;
    std::map<std::int64_t, std::int64_t> initial_stock;
    std::map<std::int64_t, std::vector<std::int64_t>> coupons_of; // user -> issued coupons
    std::int64_t stock = 0, points = 0;
};

catalog set_up(command_client& shop, const load_options& o) {
    catalog c;
    c.stock = std::max<std::int64_t>(1, static_cast<std::int64_t>(o.orders * 8 / (5 * o.products)));
    c.points = 2000;
    for (std::size_t i = 0; i < o.products; ++i) {
        auto id = shop.call("add_product", {{"name", fmt::format("item-{}", i + 1)},
                                            {"price", static_cast<std::int64_t>(100 + 50 * i)},
                                            {"stock", c.stock}})
                      .at("product")
                      .as_int64();
        c.products.push_back(id);
        c.initial_stock[id] = c.stock;
    }
    auto coupon = shop.call("define_coupon", {{"name", "welcome"},
                                              {"type", "FIXED"},
                                              {"amount", 50},
                                              {"stock", static_cast<std::int64_t>(2 * o.users)},
                                              {"valid_for", 86400}})
                      .at("coupon")
                      .as_int64();
    for (std::int64_t user = 1; user <= static_cast<std::int64_t>(o.users); ++user) {
        for (int n = 0; n < 2; ++n)
            c.coupons_of[user].push_back(
                shop.call("issue_coupon", {{"coupon", coupon}, {"user", user}}).at("issued_coupon").as_int64());
        shop.call("charge_points", {{"user", user}, {"amount", c.points}});
    }
    return c;
}

struct tally {
    std::mutex mutex;
    std::condition_variable order_ended; // the progress line waits on it
    std::map<outcome, std::size_t> outcomes;
    std::vector<double> latencies_ms; // of the orders that ended
    std::size_t sagas_ended = 0;
    std::size_t created = 0;           // create_order commands answered with an order
    std::vector<std::string> problems; // orders that did not end, commands that failed
    std::size_t ended() {
        std::size_t n = 0;
        for (auto& [o, count] : outcomes) n += count;
        return n;
    }
};

// One order: create it, wait for its creation saga; if created, pay it and wait again.
void run_order(command_client& shop, const load_options& o, const catalog& c, std::size_t index,
               clock_type::time_point deadline, tally& t) {
    std::mt19937_64 rng{o.seed * 1'000'003 + index};
    auto user = static_cast<std::int64_t>(1 + rng() % o.users);
    json::array lines;
    auto first = rng() % c.products.size();
    auto count = std::min<std::size_t>(c.products.size(), 1 + rng() % 2);
    for (std::size_t n = 0; n < count; ++n)
        lines.push_back(
            json::array{c.products[(first + n) % c.products.size()], static_cast<std::int64_t>(1 + rng() % 2)});
    json::array coupons;
    if (rng() % 3 == 0) coupons.push_back(c.coupons_of.at(user)[rng() % 2]);
    bool by_card = rng() % 2 == 0;

    auto started = clock_type::now();
    auto finish = [&](outcome what, std::size_t sagas, std::string problem = {}) {
        std::lock_guard lock{t.mutex};
        ++t.outcomes[what];
        t.sagas_ended += sagas;
        if (what != outcome::unfinished && what != outcome::refused)
            t.latencies_ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - started).count());
        if (!problem.empty()) t.problems.push_back(std::move(problem));
        t.order_ended.notify_all();
    };
    try {
        auto id =
            shop.call("create_order", {{"user", user}, {"lines", lines}, {"coupons", coupons}}).at("order").as_int64();
        {
            std::lock_guard lock{t.mutex};
            ++t.created;
        }
        auto created = shop.wait_ended(
            std::string{choreo::saga::key_for<events::OrderCreateStart>(std::to_string(id)).view()}, deadline);
        if (!created) return finish(outcome::unfinished, 0, fmt::format("order {}: its creation saga did not end", id));
        if (*created != choreo::saga::saga_status::completed) return finish(outcome::cancelled, 1);
        auto attempt = shop.call("pay", {{"order", id}, {"card", by_card}}).at("attempt").as_int64();
        auto paid = shop.wait_ended(
            std::string{choreo::saga::key_for<events::PayStart>(fmt::format("{}#{}", id, attempt)).view()}, deadline);
        if (!paid) return finish(outcome::unfinished, 1, fmt::format("order {}: its payment saga did not end", id));
        finish(*paid == choreo::saga::saga_status::completed ? outcome::completed : outcome::payment_failed, 2);
    } catch (const command_failed& e) {
        finish(outcome::refused, 0, fmt::format("order #{} refused: {}", index + 1, e.what()));
    } catch (const std::exception& e) {
        finish(outcome::unfinished, 0, fmt::format("order #{}: {}", index + 1, e.what()));
    }
}

double percentile(std::vector<double> values, double p) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    auto rank = static_cast<std::size_t>(p / 100.0 * static_cast<double>(values.size() - 1) + 0.5);
    return values[std::min(rank, values.size() - 1)];
}

// Every invariant of the shop over the five databases, the card gateway's books, the data
// platform's and the saga store; empty when all hold.
// The orders the order database holds now (none when it does not exist yet).
std::size_t orders_in(const load_options& o) {
    try {
        serving_databases databases{o.directory};
        return databases.contexts().at("orders").as_array().size();
    } catch (const std::runtime_error&) {
        return 0;
    }
}

// `orders_added`: how many create_order commands this run had answered with an order.
std::vector<std::string> audit(command_client& shop, const load_options& o, const catalog& c, std::size_t orders_before,
                               std::size_t orders_added) {
    std::optional<serving_databases> databases;
    try {
        databases.emplace(o.directory);
    } catch (const std::runtime_error& e) {
        return {e.what()};
    }
    audit_sources sources{.initial_stock = c.initial_stock,
                          .net_charged = [&databases](std::int64_t order) { return databases->net_charged(order); },
                          .saga = [&shop](const std::string& key) { return shop.saga(key); },
                          .holder = [&shop](const std::string& marker) { return shop.holder(marker); }};
    auto contexts = databases->contexts();
    // Products an earlier run added (a load on databases that already hold orders, after a
    // restart): their stock is audited as stock + sold, this run's against what it added.
    for (auto& p : contexts.at("products").as_array())
        sources.initial_stock.try_emplace(p.at("id").as_int64(), p.at("stock").as_int64() + p.at("sold").as_int64());
    auto broken = check_invariants(contexts, sources);
    // A command that ran twice (its process died before answering, the stream handed it over
    // again) leaves an order nobody asked for.
    auto orders_now = contexts.at("orders").as_array().size();
    if (orders_now != orders_before + orders_added)
        broken.push_back(fmt::format("the order database went from {} to {} orders, but this run was answered {} "
                                     "create_order commands (one ran twice?)",
                                     orders_before, orders_now, orders_added));

    // The data platform has every completed order exactly once, and nothing else.
    std::map<std::int64_t, int> received;
    for (auto id : databases->received_orders()) ++received[id];
    for (auto& v : contexts.at("orders").as_array()) {
        auto id = v.at("id").as_int64();
        int expected = v.at("status").as_string() == "COMPLETED" ? 1 : 0;
        if (received[id] != expected)
            broken.push_back(fmt::format("order {} is {} and reached the data platform {} times", id,
                                         std::string_view{v.at("status").as_string()}, received[id]));
    }
    return broken;
}

} // namespace

int load(const load_options& o) {
    if (o.orders == 0 || o.concurrency == 0 || o.products == 0 || o.users == 0)
        throw std::invalid_argument("--orders, --concurrency, --products and --users must be at least 1");
    if (o.directory.empty())
        throw std::invalid_argument("load needs --dir, the serving processes' directory, for its audit");
    fmt::print("load: {} orders, {} at a time, through {} (keys under '{}')\n", o.orders, o.concurrency, o.redis_url,
               o.prefix);
    command_client shop{o.redis_url, o.prefix};
    for (auto name : process_names) {
        auto pong = shop.call(name, "ping", {}, std::chrono::seconds{60});
        fmt::print("  {:<13} process {} is up\n", name, pong.at("pid").as_int64());
    }
    auto c = set_up(shop, o);
    auto orders_before = orders_in(o);
    fmt::print("catalog: {} products with {} in stock each (orders will run some out), {} users with 2 coupons and {} "
               "points each\n",
               c.products.size(), c.stock, o.users, c.points);
    std::fflush(stdout);

    tally t;
    std::atomic<std::size_t> next{0};
    auto start = clock_type::now();
    auto deadline = start + o.timeout;
    std::vector<std::jthread> workers;
    for (std::size_t w = 0; w < std::min(o.concurrency, o.orders); ++w)
        workers.emplace_back([&] {
            for (auto i = next++; i < o.orders; i = next++) run_order(shop, o, c, i, deadline, t);
        });
    auto line = [&](std::string_view prefix) {
        std::lock_guard lock{t.mutex};
        auto seconds = std::chrono::duration<double>(clock_type::now() - start).count();
        auto ended = t.ended();
        fmt::print(
            "{}[{:6.1f} s] {:>5}/{} ended: completed {}, cancelled {}, payment failed {}, refused {}, unfinished {}; "
            "{:.1f} orders/s\n",
            prefix, seconds, ended, o.orders, t.outcomes[outcome::completed], t.outcomes[outcome::cancelled],
            t.outcomes[outcome::payment_failed], t.outcomes[outcome::refused], t.outcomes[outcome::unfinished],
            seconds > 0 ? static_cast<double>(ended) / seconds : 0.0);
        std::fflush(stdout);
    };
    // A progress line each second until the last order ends (woken by it, not polling).
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

    fmt::print("throughput: {:.1f} orders/s and {:.1f} sagas/s over {:.1f} s (an order is a creation saga and, once "
               "created, a payment saga)\n",
               static_cast<double>(o.orders) / elapsed, static_cast<double>(t.sagas_ended) / elapsed, elapsed);
    fmt::print(
        "latency from create to its last saga's end: p50 {:.1f} ms, p90 {:.1f} ms, p99 {:.1f} ms, max {:.1f} ms\n",
        percentile(t.latencies_ms, 50), percentile(t.latencies_ms, 90), percentile(t.latencies_ms, 99),
        percentile(t.latencies_ms, 100));
    choreo::durable::hop_latency hops;
    for (auto name : process_names) add_hops_json(hops, shop.call(name, "hops", {}));
    print_hops(hops);
    if (auto n = shop.found_in_store())
        fmt::print("  {} saga ends were found in the store, their broadcast lost with a process\n", n);
    for (std::size_t i = 0; i < std::min<std::size_t>(t.problems.size(), 10); ++i) fmt::print("  {}\n", t.problems[i]);
    if (t.problems.size() > 10) fmt::print("  ... and {} more\n", t.problems.size() - 10);

    // Ended sagas still release markers and relay the data platform's sends: the audit is
    // retried until it holds or the processes had ample time to settle.
    std::vector<std::string> broken;
    auto settle_until = clock_type::now() + std::chrono::seconds{30};
    do {
        broken = audit(shop, o, c, orders_before, t.created);
        if (broken.empty()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds{250});
    } while (clock_type::now() < settle_until);
    if (broken.empty()) {
        fmt::print("invariants: all hold across the five contexts' databases, the card gateway, the data platform and "
                   "the saga store\n");
    } else {
        fmt::print("invariants: {} broken\n", broken.size());
        for (auto& b : broken) fmt::print("  {}\n", b);
    }
    bool all_ended = t.outcomes[outcome::unfinished] == 0;
    return broken.empty() && all_ended ? 0 : 1;
}

} // namespace shop::app
