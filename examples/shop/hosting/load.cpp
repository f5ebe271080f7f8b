// `shop load`: drives orders and payments through the six processes of `shop serve`, only
// through Redis (commands on a stream, saga ends from the saga bridge's stream), shows
// progress, and ends with throughput, latency percentiles and an audit of every database.

#include "../app/audit.hpp"
#include "command_client.hpp"
#include "hop_report.hpp"
#include "load_plan.hpp"
#include "serve_and_load.hpp"
#include "six_processes.hpp"
#include "streams.hpp"

#include <boost/json.hpp>

#include <choreo/saga/key.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "../events/events.hpp"

namespace shop::app {

namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

namespace {

// Sends a command that starts a saga. A shop that runs as many sagas as it may refuses it
// as busy, before anything starts, and says when to try again: the order waits that long (a
// client honouring Retry-After; only this order's thread waits) and sends it again with the
// same idempotency key, so it runs once whatever happened to the first.
json::object call_starting_saga(command_client& shop, const std::string& op, const json::object& args,
                                const std::string& idempotency_key, clock_type::time_point deadline, load_tally& t) {
    for (;;) {
        try {
            return shop.call(op, args, std::chrono::seconds{30}, idempotency_key);
        } catch (const command_failed& e) {
            if (e.code() != "busy" || clock_type::now() + e.retry_after() >= deadline) throw;
            {
                std::lock_guard lock{t.mutex};
                ++t.busy;
            }
            std::this_thread::sleep_for(e.retry_after());
        }
    }
}

// One order: create it, wait for its creation saga; if created, pay it and wait again.
// `run` tells this run's idempotency keys apart from an earlier run's on the same databases.
void run_order(command_client& shop, const load_options& o, const load_catalog& c, const std::string& run,
               std::size_t index, clock_type::time_point deadline, load_tally& t) {
    auto plan = plan_order(o, c, index);
    json::array lines, coupons;
    for (auto& [product, quantity] : plan.lines) lines.push_back(json::array{product, quantity});
    for (auto coupon : plan.coupons) coupons.push_back(coupon);
    auto started = clock_type::now();
    auto finish = [&](load_outcome what, std::size_t sagas, std::string problem = {}) {
        t.finish(what, sagas, started, std::move(problem));
    };
    try {
        auto id =
            call_starting_saga(shop, "create_order", {{"user", plan.user}, {"lines", lines}, {"coupons", coupons}},
                               fmt::format("load {} order {}", run, index + 1), deadline, t)
                .at("order")
                .as_int64();
        {
            std::lock_guard lock{t.mutex};
            ++t.created;
        }
        auto created = shop.wait_ended(
            std::string{choreo::saga::key_for<events::OrderCreateStart>(std::to_string(id)).view()}, deadline);
        if (!created)
            return finish(load_outcome::unfinished, 0, fmt::format("order {}: its creation saga did not end", id));
        if (*created != choreo::saga::saga_status::completed) return finish(load_outcome::cancelled, 1);
        auto attempt = call_starting_saga(shop, "pay", {{"order", id}, {"card", plan.by_card}},
                                          fmt::format("load {} pay {}", run, index + 1), deadline, t)
                           .at("attempt")
                           .as_int64();
        auto paid = shop.wait_ended(
            std::string{choreo::saga::key_for<events::PayStart>(fmt::format("{}#{}", id, attempt)).view()}, deadline);
        if (!paid)
            return finish(load_outcome::unfinished, 1, fmt::format("order {}: its payment saga did not end", id));
        finish(*paid == choreo::saga::saga_status::completed ? load_outcome::completed : load_outcome::payment_failed,
               2);
    } catch (const command_failed& e) {
        finish(load_outcome::refused, 0, fmt::format("order #{} refused: {}", index + 1, e.what()));
    } catch (const std::exception& e) {
        finish(load_outcome::unfinished, 0, fmt::format("order #{}: {}", index + 1, e.what()));
    }
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
std::vector<std::string> audit(command_client& shop, const load_options& o, const load_catalog& c,
                               std::size_t orders_before, std::size_t orders_added) {
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
    six_processes storefront{{.redis_url = o.redis_url, .prefix = o.prefix, .databases = o.directory}};
    auto c = set_up_catalog(storefront, o);
    auto orders_before = orders_in(o);
    print_catalog(c, o);
    std::fflush(stdout);

    load_tally t;
    const auto run = load_run_name();
    const auto deadline = clock_type::now() + o.timeout;
    drive_orders(o, t, [&](std::size_t index) { run_order(shop, o, c, run, index, deadline, t); });
    choreo::durable::hop_latency hops;
    for (auto name : process_names) add_hops_json(hops, shop.call(name, "hops", {}));
    print_hops(hops);
    if (t.busy > 0)
        fmt::print("  {} commands were refused as busy (too many sagas running) and sent again after the wait the "
                   "shop asked\n",
                   t.busy);
    if (auto n = shop.found_in_store())
        fmt::print("  {} saga ends were found in the store, their broadcast lost with a process\n", n);
    print_problems(t);

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
    bool all_ended = t.outcomes[load_outcome::unfinished] == 0;
    return broken.empty() && all_ended ? 0 : 1;
}

} // namespace shop::app
