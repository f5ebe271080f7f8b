#include "scenarios.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <functional>
#include <map>
#include <stdexcept>
#include <thread>

#include <fmt/format.h>

namespace shop::app {

namespace {

using namespace std::chrono_literals;

constexpr std::int64_t ann = 1, bob = 2;

std::string slug(const std::string& step) {
    std::string s = "fail-" + step;
    std::replace(s.begin(), s.end(), '/', '-');
    std::replace(s.begin(), s.end(), ' ', '-');
    return s;
}

struct catalog {
    std::int64_t apple = 0, pear = 0, last_unit = 0;
    std::int64_t ten_percent = 0, five_hundred_off = 0; // issued to ann
};

// The shop every scenario starts from.
catalog seed(storefront& s) {
    catalog c;
    c.apple = s.add_product("apple", 300, 10);
    c.pear = s.add_product("pear", 500, 5);
    c.last_unit = s.add_product("last unit", 1000, 1);
    auto percent = s.define_coupon("welcome 10%", "PERCENT", 10, 100, std::chrono::hours{24 * 7});
    auto fixed = s.define_coupon("500 off", "FIXED", 500, 100, std::chrono::hours{24 * 7});
    c.ten_percent = s.issue_coupon(percent, ann);
    c.five_hundred_off = s.issue_coupon(fixed, ann);
    s.charge_points(ann, 100'000);
    s.charge_points(bob, 100);
    return c;
}

class runner {
public:
    runner(std::string name, storefront& shop) : s(shop) {
        out.name = std::move(name);
        out.mode = s.mode();
        c = seed(s);
    }

    // Runs a command; records what happened. Returns false when it threw.
    bool attempt(const std::string& what, const std::function<void()>& command) {
        try {
            command();
            s.settle();
            out.story.push_back(what + ": ok");
            return true;
        } catch (const std::exception& e) {
            s.settle();
            out.story.push_back(fmt::format("{}: refused: {}", what, e.what()));
            return false;
        }
    }
    std::int64_t create(const std::string& what, std::int64_t user,
                        std::vector<std::pair<std::int64_t, std::int64_t>> lines, std::vector<std::int64_t> coupons) {
        std::int64_t id = 0;
        attempt(what, [&] { id = s.create_order(user, lines, coupons); });
        if (id != 0) note_order(id);
        return id;
    }
    bool pay(const std::string& what, std::int64_t order, bool by_card) {
        bool ok = attempt(what, [&] { s.pay(order, by_card); });
        note_order(order);
        return ok;
    }
    void note_order(std::int64_t id) {
        auto line = fmt::format("  order {} is {}", id, s.order_status(id));
        if (s.mode() == mode::saga) line += fmt::format(" (saga {})", s.saga_outcome(id));
        out.story.push_back(line);
    }
    // "Not created": the transaction rolled back (no order), or the saga cancelled it.
    bool not_live(std::int64_t id) {
        auto status = id == 0 ? std::string{"NONE"} : s.order_status(id);
        return status == "NONE" || status == "CANCELLED";
    }
    std::string status(std::int64_t id) { return id == 0 ? "NONE" : s.order_status(id); }

    scenario_outcome finish(std::string description, std::string expected, bool met) {
        s.settle();
        out.description = std::move(description);
        out.expected = std::move(expected);
        out.as_expected = met;
        out.broken = s.check_invariants();
        out.state = s.state();
        return std::move(out);
    }

    storefront& s;
    catalog c;
    scenario_outcome out;
};

using scenario_fn = std::function<scenario_outcome(runner&)>;

scenario_outcome happy_path(runner& r, bool by_card) {
    auto id = r.create("ann orders 2 apples and 1 pear with both coupons", ann, {{r.c.apple, 2}, {r.c.pear, 1}},
                       {r.c.ten_percent, r.c.five_hundred_off});
    r.pay(fmt::format("ann pays order {} by {}", id, by_card ? "card" : "points"), id, by_card);
    bool met = r.status(id) == "COMPLETED" && (by_card || r.s.balance(ann) == 100'000 - 490);
    return r.finish(
        fmt::format("order and pay by {}: 1100, minus 10% is 990, minus 500 is 490", by_card ? "card" : "points"),
        "order COMPLETED at 490, payment PAID, the data platform told", met);
}

const std::map<std::string, scenario_fn>& table() {
    static const std::map<std::string, scenario_fn> scenarios{
        {"happy-path", [](runner& r) { return happy_path(r, false); }},
        {"card-payment", [](runner& r) { return happy_path(r, true); }},
        {"out-of-stock",
         [](runner& r) {
             auto id = r.create("ann orders 6 pears (5 in stock)", ann, {{r.c.pear, 6}}, {});
             return r.finish("an order for more than the stock", "the order is not created; stock untouched",
                             r.not_live(id));
         }},
        {"coupon-expired",
         [](runner& r) {
             r.s.advance_clock(std::chrono::hours{24 * 8});
             r.out.story.push_back("eight days pass: ann's coupons (valid seven days) expire");
             auto id = r.create("ann orders an apple with her 10% coupon", ann, {{r.c.apple, 1}}, {r.c.ten_percent});
             return r.finish("an expired coupon", "the order is not created; the coupon stays unused", r.not_live(id));
         }},
        {"coupon-already-used",
         [](runner& r) {
             auto first = r.create("ann orders an apple with her 10% coupon", ann, {{r.c.apple, 1}}, {r.c.ten_percent});
             auto second = r.create("ann orders a pear with the same coupon", ann, {{r.c.pear, 1}}, {r.c.ten_percent});
             return r.finish("one coupon, two orders", "the first order is CREATED, the second is not created",
                             r.status(first) == "CREATED" && r.not_live(second));
         }},
        {"insufficient-points",
         [](runner& r) {
             auto id = r.create("bob (100 points) orders an apple at 300", bob, {{r.c.apple, 1}}, {});
             bool paid = r.pay(fmt::format("bob pays order {} by points", id), id, false);
             // One transaction refuses the command itself; a saga commits its start, then rolls back.
             bool refused = r.s.mode() == mode::saga || !paid;
             return r.finish(
                 "paying with too few points",
                 "the payment fails; the order stays CREATED with its payment PENDING; bob keeps 100 points",
                 refused && r.status(id) == "CREATED" && r.s.balance(bob) == 100);
         }},
        {"card-declined",
         [](runner& r) {
             auto id = r.create("ann orders an apple", ann, {{r.c.apple, 1}}, {});
             r.s.set_card(card_behaviour::decline);
             r.pay(fmt::format("ann pays order {} by card; the gateway declines", id), id, true);
             return r.finish("a declined card", "the order stays CREATED, nothing is charged",
                             r.status(id) == "CREATED");
         }},
        {"card-timeout",
         [](runner& r) {
             auto id = r.create("ann orders an apple", ann, {{r.c.apple, 1}}, {});
             r.s.set_card(card_behaviour::time_out);
             r.pay(fmt::format("ann pays order {} by card; the gateway times out", id), id, true);
             return r.finish("a card gateway that does not answer", "the order stays CREATED, nothing is charged",
                             r.status(id) == "CREATED");
         }},
        {"card-refund",
         [](runner& r) {
             auto id = r.create("ann orders an apple", ann, {{r.c.apple, 1}}, {});
             r.s.fail_step("order/complete order");
             r.pay(fmt::format("ann pays order {} by card; completing the order then fails", id), id, true);
             return r.finish("a card charged, then a later step fails",
                             "the charge is refunded; the order stays CREATED with its payment PENDING",
                             r.status(id) == "CREATED");
         }},
        {"data-platform-down",
         [](runner& r) {
             r.s.set_data_platform(platform_behaviour::down);
             auto id = r.create("ann orders an apple", ann, {{r.c.apple, 1}}, {});
             r.pay(fmt::format("ann pays order {} by points; the data platform is down", id), id, false);
             return r.finish("a data platform that fails",
                             "the order is COMPLETED anyway; the failed send is retried, then reported",
                             r.status(id) == "COMPLETED");
         }},
        {"data-platform-slow",
         [](runner& r) {
             r.s.set_data_platform(platform_behaviour::slow);
             auto id = r.create("ann orders an apple", ann, {{r.c.apple, 1}}, {});
             std::chrono::milliseconds took{};
             r.attempt(fmt::format("ann pays order {} by points; the data platform takes 300 ms", id), [&] {
                 auto start = std::chrono::steady_clock::now();
                 r.s.pay(id, false);
                 took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
             });
             r.out.story.push_back(
                 fmt::format("  the payment command returned in {} ms; the data platform's 300 ms ran after the commit",
                             took.count()));
             return r.finish("a slow data platform", "the order is COMPLETED; the data platform gets it later",
                             r.status(id) == "COMPLETED" &&
                                 r.s.state().at("data_platform").at("received_orders").as_array().size() == 1);
         }},
        {"last-unit-race",
         [](runner& r) {
             std::int64_t ids[2] = {0, 0};
             std::string errors[2];
             std::thread buyers[2];
             for (int b = 0; b < 2; ++b)
                 buyers[b] = std::thread([&, b] {
                     try {
                         ids[b] = r.s.create_order(b == 0 ? ann : bob, {{r.c.last_unit, 1}}, {});
                     } catch (const std::exception& e) {
                         errors[b] = e.what();
                     }
                 });
             for (auto& t : buyers) t.join();
             r.s.settle();
             int live = 0;
             bool own = true; // each buyer's order is that buyer's, with the line that buyer ordered
             for (int b = 0; b < 2; ++b) {
                 r.out.story.push_back(fmt::format("{} orders the last unit at the same time: {}",
                                                   b == 0 ? "ann" : "bob",
                                                   errors[b].empty() ? "ok" : "refused: " + errors[b]));
                 if (ids[b]) r.note_order(ids[b]);
                 live += r.not_live(ids[b]) ? 0 : 1;
                 if (auto o = ids[b] ? r.s.order(ids[b]) : std::nullopt) {
                     bool mine = o->at("user").as_int64() == (b == 0 ? ann : bob);
                     for (auto& item : o->at("items").as_array())
                         mine = mine && item.at("product").as_int64() == r.c.last_unit;
                     if (!mine)
                         r.out.story.push_back(fmt::format("  order {} is not {}'s: {}", ids[b], b == 0 ? "ann" : "bob",
                                                           boost::json::serialize(*o)));
                     own = own && mine;
                 }
             }
             return r.finish("two orders for the last unit at once", "exactly one order gets it, each buyer's own",
                             live == 1 && own);
         }},
    };
    return scenarios;
}

// A failure injected at `step`, then the same command once more without it: the first
// leaves nothing half-done, and the shop takes the second (a failed start must not leave
// anything behind that refuses the next order or payment).
scenario_outcome failure_at(runner& r, const std::string& step) {
    bool pay_flow = step == "order/start payment" || step == "point/use points" || step == "payment/charge card" ||
                    step == "payment/complete payment" || step == "order/complete order";
    bool by_card = step == "payment/charge card";
    auto how = by_card ? "card" : "points";
    if (!pay_flow) {
        r.s.fail_step(step);
        auto id = r.create("ann orders 2 apples and 1 pear with her 10% coupon", ann, {{r.c.apple, 2}, {r.c.pear, 1}},
                           {r.c.ten_percent});
        bool untouched = r.not_live(id);
        auto next = r.create("then ann orders an apple", ann, {{r.c.apple, 1}}, {});
        r.pay(fmt::format("ann pays order {} by points", next), next, false);
        return r.finish(fmt::format("a failure injected at {}, then the next order", step),
                        "the order is not created, every context as before; the next order COMPLETED",
                        untouched && next != 0 && next != id && r.status(next) == "COMPLETED");
    }
    auto id = r.create("ann orders 2 apples and 1 pear with her 10% coupon", ann, {{r.c.apple, 2}, {r.c.pear, 1}},
                       {r.c.ten_percent});
    r.s.fail_step(step);
    r.pay(fmt::format("ann pays order {} by {}", id, how), id, by_card);
    bool untouched = r.status(id) == "CREATED" && r.s.balance(ann) == 100'000;
    r.pay(fmt::format("ann pays order {} by {} again", id, how), id, by_card);
    return r.finish(fmt::format("a failure injected at {}, then the payment again", step),
                    "the payment fails, the order stays CREATED with its payment PENDING, points and card untouched; "
                    "paid again, the order is COMPLETED",
                    untouched && r.status(id) == "COMPLETED");
}

} // namespace

std::vector<std::string> scenario_names() {
    std::vector<std::string> names{"happy-path",         "card-payment",        "out-of-stock",
                                   "coupon-expired",     "coupon-already-used", "insufficient-points",
                                   "card-declined",      "card-timeout",        "card-refund",
                                   "data-platform-down", "data-platform-slow",  "last-unit-race"};
    for (auto& step : one_process::steps()) names.push_back(slug(step));
    return names;
}

scenario_outcome run_order(const std::vector<std::pair<std::int64_t, std::int64_t>>& lines, mode m, bool by_card) {
    one_process s{config{.mode = m}};
    runner r{"order", s};
    std::string what = "ann orders";
    for (auto& [product, quantity] : lines) what += fmt::format(" {} of product {},", quantity, product);
    what.pop_back();
    auto id = r.create(what, ann, lines, {});
    bool paid = id != 0 && r.status(id) == "CREATED" &&
                r.pay(fmt::format("ann pays order {} by {}", id, by_card ? "card" : "points"), id, by_card);
    return r.finish("an order from the command line", "the order is COMPLETED", paid && r.status(id) == "COMPLETED");
}

void check_scenario_name(const std::string& name) {
    auto names = scenario_names();
    if (std::find(names.begin(), names.end(), name) == names.end())
        throw std::invalid_argument(fmt::format("unknown scenario '{}'", name));
}

scenario_outcome run_scenario(const std::string& name, mode m, bool keep_timeline) {
    check_scenario_name(name);
    one_process s{config{.mode = m, .record_timeline = keep_timeline}};
    auto outcome = run_scenario(name, s);
    outcome.timeline = s.timeline();
    outcome.incidents = s.incidents();
    return outcome;
}

scenario_outcome run_scenario(const std::string& name, storefront& s) {
    check_scenario_name(name);
    runner r{name, s};
    if (auto it = table().find(name); it != table().end()) return it->second(r);
    for (auto& step : one_process::steps())
        if (slug(step) == name) return failure_at(r, step);
    throw std::logic_error("scenario without a body: " + name);
}

} // namespace shop::app
