// `shop load --mode transactional`: the load of `shop load` (the same catalog, and the same
// orders for a seed) placed on the one-process transactional shop, each order and payment
// one local transaction across the five contexts. The six-process saga shop's run of the same
// load is measured against it: how many orders each completed.

#include "../app/one_process.hpp"
#include "../kernel/errors.hpp"
#include "load_plan.hpp"
#include "serve_and_load.hpp"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace shop::app {

int load_in_process(const load_options& o) {
    if (o.orders == 0 || o.concurrency == 0 || o.products == 0 || o.users == 0)
        throw std::invalid_argument("--orders, --concurrency, --products and --users must be at least 1");
    if (o.directory.empty()) throw std::invalid_argument("load needs --dir, where the shop's databases are made");
    if (std::filesystem::exists(o.directory) && !std::filesystem::is_empty(o.directory))
        throw std::invalid_argument(
            fmt::format("--dir {} is not empty: the in-process load starts from no data", o.directory));
    std::filesystem::create_directories(o.directory);
    fmt::print("load: {} orders, {} at a time, on the one-process transactional shop (databases in {})\n", o.orders,
               o.concurrency, o.directory);
    one_process shop{config{.mode = mode::transactional, .directory = o.directory}};
    auto c = set_up_catalog(shop, o);
    print_catalog(c, o);
    std::fflush(stdout);

    load_tally t;
    const auto run = load_run_name();
    drive_orders(o, t, [&](std::size_t index) {
        auto plan = plan_order(o, c, index);
        auto started = std::chrono::steady_clock::now();
        std::int64_t id = 0;
        try {
            id =
                shop.create_order(plan.user, plan.lines, plan.coupons, fmt::format("load {} order {}", run, index + 1));
        } catch (const kernel::domain_error&) {
            // Out of stock, a coupon used: what the saga shop reports as a cancelled order.
            return t.finish(load_outcome::cancelled, 0, started);
        } catch (const std::exception& e) {
            return t.finish(load_outcome::refused, 0, started, fmt::format("order #{}: {}", index + 1, e.what()));
        }
        try {
            shop.pay(id, plan.by_card, fmt::format("load {} pay {}", run, index + 1));
            t.finish(load_outcome::completed, 0, started);
        } catch (const kernel::domain_error&) {
            t.finish(load_outcome::payment_failed, 0, started); // too few points
        } catch (const std::exception& e) {
            t.finish(load_outcome::payment_failed, 0, started, fmt::format("order {}: {}", id, e.what()));
        }
    });
    print_problems(t);
    auto broken = shop.check_invariants();
    if (broken.empty()) {
        fmt::print("invariants: all hold across the five contexts' databases and the card gateway\n");
    } else {
        fmt::print("invariants: {} broken\n", broken.size());
        for (auto& b : broken) fmt::print("  {}\n", b);
    }
    return broken.empty() ? 0 : 1;
}

} // namespace shop::app
