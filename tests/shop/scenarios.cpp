// The shop end to end: every scenario in both modes must end as it expects with every
// invariant holding (stock + sold = initial, a coupon used at most once, points charged
// minus spent equals the balance, every order agreeing with its payment and the card
// gateway, nothing half-done).

#include "app/scenarios.hpp"
#include "../support/fault_log.hpp"
#include "app/one_process.hpp"

#include <algorithm>
#include <filesystem>
#include <string>

#include <doctest/doctest.h>

using namespace shop::app;

namespace {

const boost::json::object& find(const boost::json::array& rows, const char* key, std::int64_t value) {
    for (auto& r : rows)
        if (r.as_object().at(key).as_int64() == value) return r.as_object();
    throw std::runtime_error("no such row");
}

} // namespace

TEST_CASE("every scenario ends as expected, with every invariant holding, in both modes") {
    for (auto m : {mode::transactional, mode::saga}) {
        for (auto& name : scenario_names()) {
            CAPTURE(name);
            INFO("mode: " << std::string(to_string(m)));
            auto o = run_scenario(name, m);
            CHECK(o.as_expected);
            CHECK(o.broken == std::vector<std::string>{});
            if (!o.as_expected || !o.broken.empty())
                for (auto& line : o.story) MESSAGE(line);
        }
    }
}

TEST_CASE("the happy path leaves each context in the state the seed describes") {
    for (auto m : {mode::transactional, mode::saga}) {
        INFO("mode: " << std::string(to_string(m)));
        auto o = run_scenario("happy-path", m);
        auto& st = o.state;
        auto& order = find(st["orders"].as_array(), "id", 1);
        CHECK(order.at("status").as_string() == "COMPLETED");
        CHECK(order.at("price").as_int64() == 490); // 1100, -10% = 990, -500 = 490
        CHECK(order.at("items").as_array().size() == 2);
        CHECK(order.at("coupons").as_array().size() == 2);
        CHECK(find(st["products"].as_array(), "id", 1).at("stock").as_int64() == 8);
        CHECK(find(st["products"].as_array(), "id", 2).at("stock").as_int64() == 4);
        CHECK(find(st["points"].as_array(), "user", 1).at("balance").as_int64() == 99'510);
        CHECK(find(st["payments"].as_array(), "order", 1).at("status").as_string() == "PAID");
        CHECK(find(st["coupons"].as_array(), "issued_coupon", 1).at("used_by_order").as_int64() == 1);
        CHECK(st["data_platform"].at("received_orders").as_array().size() == 1);
        CHECK(o.incidents.empty());
        for (auto& line : o.incidents) MESSAGE(line);
    }
}

TEST_CASE("a failure anywhere leaves nothing half-done") {
    for (auto m : {mode::transactional, mode::saga}) {
        bool held = true;
        for (auto& step : ::shop::app::one_process::steps()) {
            CAPTURE(step);
            INFO("mode: " << std::string(to_string(m)));
            std::string name = "fail-" + step;
            std::replace(name.begin(), name.end(), '/', '-');
            std::replace(name.begin(), name.end(), ' ', '-');
            auto o = run_scenario(name, m);
            auto& st = o.state;
            // Whatever failed left nothing behind, and the command that followed went through:
            // a failed creation sells nothing, so the next order (one apple at 300, by points)
            // is the only sale; a failed payment, paid again, completes the order (two apples and
            // a pear at 990 with the coupon), by card only at the card step.
            bool pay_flow = step == "order/start payment" || step == "point/use points" ||
                            step == "payment/charge card" || step == "payment/complete payment" ||
                            step == "order/complete order";
            bool by_card = step == "payment/charge card";
            CHECK(o.as_expected);
            CHECK(find(st["products"].as_array(), "id", 1).at("sold").as_int64() == (pay_flow ? 2 : 1));
            CHECK(find(st["points"].as_array(), "user", 1).at("balance").as_int64() == (by_card    ? 100'000
                                                                                        : pay_flow ? 100'000 - 990
                                                                                                   : 100'000 - 300));
            CHECK(st["card_gateway"].at("charges").as_int64() ==
                  st["card_gateway"].at("refunds").as_int64() + (by_card ? 1 : 0));
            CHECK(o.broken.empty());
            for (auto& line : o.broken) MESSAGE(line);
            if (!o.broken.empty() || !o.as_expected)
                for (auto& line : o.story) MESSAGE(line);
            held = held && o.as_expected && o.broken.empty();
        }
        test_support::record_fault("shop, one process",
                                   "a fault injected at each of the thirteen steps, then the command again",
                                   to_string(m), static_cast<long>(::shop::app::one_process::steps().size()), held,
                                   "nothing half-done: stock, coupons, points and card charges add up; "
                                   "the next order, or the payment again, completes");
    }
}

TEST_CASE("a refused card charge and a refunded one: the gateway's books balance") {
    for (auto m : {mode::transactional, mode::saga}) {
        INFO("mode: " << std::string(to_string(m)));
        auto refund = run_scenario("card-refund", m);
        CHECK(refund.state["card_gateway"].at("charges").as_int64() == 1);
        CHECK(refund.state["card_gateway"].at("refunds").as_int64() == 1);
        CHECK(find(refund.state["payments"].as_array(), "order", 1).at("status").as_string() == "PENDING");
        auto declined = run_scenario("card-declined", m);
        CHECK(declined.state["card_gateway"].at("charges").as_int64() == 0);
    }
}

TEST_CASE("a data platform that is down never rolls back the order, and its failure is reported") {
    for (auto m : {mode::transactional, mode::saga}) {
        INFO("mode: " << std::string(to_string(m)));
        auto o = run_scenario("data-platform-down", m);
        CHECK(find(o.state["orders"].as_array(), "id", 1).at("status").as_string() == "COMPLETED");
        CHECK(o.state["data_platform"].at("received_orders").as_array().empty());
        CHECK(o.state["data_platform"].at("attempts").as_int64() == 3); // the first try and two retries
        bool reported = false;
        for (auto& i : o.incidents) reported = reported || i.starts_with("retries_exhausted");
        CHECK(reported);
    }
}

TEST_CASE("the last-unit race never sells two units") {
    for (auto m : {mode::transactional, mode::saga}) {
        for (int round = 0; round < 10; ++round) {
            INFO("mode: " << std::string(to_string(m)));
            CAPTURE(round);
            auto o = run_scenario("last-unit-race", m);
            CHECK(o.as_expected);
            auto& last = find(o.state["products"].as_array(), "id", 3);
            CHECK(last.at("stock").as_int64() == 0);
            CHECK(last.at("sold").as_int64() == 1);
            CHECK(o.broken.empty());
        }
    }
}

TEST_CASE("the contexts' own operations enforce the seed's rules") {
    for (auto m : {mode::transactional, mode::saga}) {
        INFO("mode: " << std::string(to_string(m)));
        ::shop::app::one_process s{config{.mode = m}};
        auto apple = s.add_product("apple", 300, 10);
        s.add_product("green apple", 350, 3);
        s.add_product("pear", 500, 5);
        auto found = s.search_products("apple", 0, 320);
        REQUIRE(found.size() == 1);
        CHECK(found[0].at("id").as_int64() == apple);
        CHECK(s.search_products("", 320, 600).size() == 2);
        CHECK_THROWS_WITH(s.search_products("", 600, 300), "the lowest price is above the highest");

        auto limited = s.define_coupon("first two", "FIXED", 100, 2, std::chrono::hours{24});
        CHECK(s.issue_coupon(limited, 1) > 0);
        CHECK(s.issue_coupon(limited, 2) > 0);
        CHECK_THROWS_WITH(s.issue_coupon(limited, 3), "coupon 'first two' has run out");
        CHECK(s.coupons_of(1).size() == 1);
        CHECK_THROWS_WITH(s.define_coupon("bad", "PERCENT", 150, 1, std::chrono::hours{1}),
                          "a PERCENT coupon takes 1 to 100, not 150");
        CHECK_THROWS_WITH(s.define_coupon("bad", "FIXED", 0, 1, std::chrono::hours{1}),
                          "a FIXED coupon takes at least 1, not 0");
        auto window = s.define_coupon("this month", "PERCENT", 5, 10, std::chrono::hours{1});
        s.advance_clock(std::chrono::hours{24 * 31});
        CHECK_THROWS_WITH(s.issue_coupon(window, 1), "coupon 'this month' is not being issued now");

        s.charge_points(1, 99'999'000);
        CHECK_THROWS_WITH(s.charge_points(1, 1'001), "a balance may not exceed 100000000 points");
        CHECK_THROWS_WITH(s.charge_points(1, 0), "a charge must be positive, not 0");
        CHECK_THROWS_WITH(s.charge_points(1, -5), "a charge must be positive, not -5");
        CHECK(s.balance(1) == 99'999'000);

        CHECK_THROWS_WITH(s.create_order(1, {}, {}), "an order needs at least one product");
        CHECK_THROWS_WITH(s.create_order(1, {{apple, -1}}, {}), "quantity must be at least 1 (product 1: -1)");
        CHECK_THROWS_WITH(s.pay(42, false), "no order 42");
        CHECK(s.check_invariants().empty());
    }
}

TEST_CASE("an unknown product: refused in one transaction, compensated in a saga") {
    for (auto m : {mode::transactional, mode::saga}) {
        INFO("mode: " << std::string(to_string(m)));
        auto o = run_order({{99, 1}}, m, false);
        CHECK_FALSE(o.as_expected);
        CHECK(o.broken.empty());
        bool explained = false;
        for (auto& line : o.story) explained = explained || line.find("no product with id 99") != std::string::npos;
        CHECK(explained);
    }
}

TEST_CASE("on SQLite files, in WAL mode, both modes behave as in memory") {
    auto dir = std::filesystem::temp_directory_path() / "choreo-shop-test";
    for (auto m : {mode::transactional, mode::saga}) {
        INFO("mode: " << std::string(to_string(m)));
        std::filesystem::remove_all(dir);
        {
            ::shop::app::one_process s{config{.mode = m, .directory = dir.string()}};
            auto apple = s.add_product("apple", 300, 10);
            s.charge_points(1, 1000);
            auto id = s.create_order(1, {{apple, 2}}, {});
            s.settle();
            s.pay(id, false);
            s.settle();
            CHECK(s.order_status(id) == "COMPLETED");
            CHECK(s.balance(1) == 400);
            CHECK(s.check_invariants().empty());
        }
        CHECK(std::filesystem::exists(dir / (m == mode::saga ? "order.db" : "shop.db")));
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("the wiring is the seed's diagrams: solid arrows in one transaction, dashed across contexts") {
    ::shop::app::one_process tx{config{.mode = mode::transactional}};
    bool found_solid = false, found_dashed = false;
    for (auto& e : tx.wiring()) {
        if (e.from == "order" && e.to == "product" && e.event == "OrderCreateStart") found_solid = e.synchronous;
        if (e.from == "order" && e.to == "data_platform" && e.event == "OrderCompleted") found_dashed = !e.synchronous;
    }
    CHECK(found_solid);
    CHECK(found_dashed);
    ::shop::app::one_process saga{config{.mode = mode::saga}};
    auto edges = saga.wiring();
    CHECK(edges.size() == tx.wiring().size());
    for (auto& e : edges) CHECK_FALSE(e.synchronous);
}
