// The shop's web API (`shop serve --http`), driven over HTTP against a server started on a
// free loopback port: the create-and-pay walk-through in both modes, every class of error,
// another user's resources refused, the race for the last unit, and SIGTERM under load.

#include "../support/fault_log.hpp"
#include "http_server.hpp"

#include <doctest/doctest.h>

#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace shop_http_test;

TEST_CASE("http: order and pay, in both modes, as the README's walk-through does") {
    for (std::string mode : {"transactional", "saga"}) {
        INFO("mode: " << mode);
        server s{mode};
        auto c = seed(s);
        auto found = s.get("/api/v1/products?name=app&max_price=400");
        REQUIRE(found.status == 200);
        CHECK(found.body.as_array().size() == 1);
        auto coupons = s.get("/api/v1/coupons", 1);
        REQUIRE(coupons.status == 200);
        CHECK(coupons.body.as_array().size() == 1);

        auto created = s.post("/api/v1/orders",
                              R"({"items": [{"product": )" + std::to_string(c.apple) +
                                  R"(, "quantity": 2}], "coupons": [)" + std::to_string(c.issued) + "]}",
                              1);
        CHECK(created.status == (mode == "saga" ? 202 : 201));
        auto order = id_of(created);
        CHECK(payable_order(s, order, 1).at("status") == "CREATED");
        auto paid = s.post("/api/v1/orders/" + std::to_string(order) + "/pay", R"({"method": "points"})", 1);
        CHECK(paid.status == (mode == "saga" ? 202 : 200));
        auto o = order_when(s, order, 1, [](const json::object& o) { return o.at("status") == "COMPLETED"; });
        CHECK(o.at("status") == "COMPLETED");
        CHECK(o.at("price") == 540); // 2 x 300, minus 10%
        CHECK(o.at("payment").at("status") == "PAID");
        CHECK(s.get("/api/v1/points", 1).body.at("balance") == 5000 - 540);
        if (mode == "saga") {
            auto saga = s.get("/api/v1/sagas/PayStart:" + std::to_string(order) + "%231", 1);
            REQUIRE(saga.status == 200);
            CHECK(saga.body.at("status") == "completed");
            CHECK(saga.body.at("steps").as_array().size() == 4);
        }
        auto audit = s.get("/api/v1/audit");
        INFO(audit.text);
        CHECK(audit.body.at("invariants_hold") == true);
        CHECK(s.terminate() == 0);
    }
}

// A client that did not hear the answer sends the request again with the same Idempotency-Key:
// it gets the first outcome, and nothing changes twice.
TEST_CASE("http: a changing request sent again with its Idempotency-Key changes nothing more") {
    for (std::string mode : {"transactional", "saga"}) {
        INFO("mode: " << mode);
        server s{mode};
        auto c = seed(s);
        auto order_body = R"({"items": [{"product": )" + std::to_string(c.apple) + R"(, "quantity": 1}]})";
        auto first = s.post("/api/v1/orders", order_body, 1, "order-1");
        auto again = s.post("/api/v1/orders", order_body, 1, "order-1");
        REQUIRE(first.status == (mode == "saga" ? 202 : 201));
        CHECK(again.status == first.status);
        CHECK(id_of(again) == id_of(first));
        // The key is the user's own: another user's same key is another request.
        auto other = s.post("/api/v1/orders", order_body, 2, "order-1");
        CHECK(id_of(other) != id_of(first));

        auto order = std::to_string(id_of(first));
        (void)payable_order(s, id_of(first), 1);
        CHECK(s.post("/api/v1/orders/" + order + "/pay", R"({"method": "points"})", 1, "pay-1").status ==
              (mode == "saga" ? 202 : 200));
        CHECK(s.post("/api/v1/orders/" + order + "/pay", R"({"method": "points"})", 1, "pay-1").status ==
              (mode == "saga" ? 202 : 200));
        auto paid = order_when(s, id_of(first), 1, [](const json::object& o) { return o.at("status") == "COMPLETED"; });
        CHECK(paid.at("status") == "COMPLETED");
        if (mode == "saga") CHECK(s.get("/api/v1/sagas/PayStart:" + order + "%232", 1).status == 404);

        auto balance = [&] { return s.get("/api/v1/points", 1).body.at("balance").as_int64(); };
        auto before = balance();
        CHECK(s.post("/api/v1/points/charge", R"({"amount": 100})", 1, "charge-1").status == 200);
        CHECK(s.post("/api/v1/points/charge", R"({"amount": 100})", 1, "charge-1").status == 200);
        CHECK(balance() == before + 100);

        auto product = R"({"name": "kiwi", "price": 50, "stock": 3})";
        CHECK(id_of(s.post("/api/v1/products", product, 0, "kiwi")) ==
              id_of(s.post("/api/v1/products", product, 0, "kiwi")));
        CHECK(s.get("/api/v1/products?name=kiwi").body.as_array().size() == 1);

        auto bad = s.post("/api/v1/orders", order_body, 1, std::string(256, 'k'));
        CHECK(bad.status == 400);
        CHECK(bad.body.at("error").at("code") == "invalid_idempotency_key");

        auto audit = s.get("/api/v1/audit");
        INFO(audit.text);
        CHECK(audit.body.at("invariants_hold") == true);
        CHECK(s.terminate() == 0);
    }
}

TEST_CASE("http: every class of error has its status and code, and the server keeps serving") {
    server s{"transactional"};
    auto c = seed(s);
    auto apple = std::to_string(c.apple);
    auto order_of = [&](const std::string& items, std::int64_t user, const std::string& coupons = "[]") {
        return s.post("/api/v1/orders", R"({"items": )" + items + R"(, "coupons": )" + coupons + "}", user);
    };
    struct expectation {
        const char* what;
        reply got;
        int status;
        const char* code;
    };
    std::vector<expectation> cases{
        {"malformed JSON", s.post("/api/v1/orders", "{\"items\": [", 1), 400, "malformed_json"},
        {"a body that is not an object", s.post("/api/v1/orders", "[1, 2]", 1), 400, "invalid_body"},
        {"no user", order_of("[{\"product\": " + apple + ", \"quantity\": 1}]", 0), 400, "user_required"},
        {"a quantity that is not a number", order_of("[{\"product\": " + apple + ", \"quantity\": \"two\"}]", 1), 400,
         "invalid_field"},
        {"a negative quantity", order_of("[{\"product\": " + apple + ", \"quantity\": -1}]", 1), 400,
         "invalid_quantity"},
        {"a bad price range", s.get("/api/v1/products?min_price=500&max_price=100"), 400, "invalid_price_range"},
        {"a price that is not a number", s.get("/api/v1/products?min_price=cheap"), 400, "invalid_parameter"},
        {"an unknown order", s.get("/api/v1/orders/999", 1), 404, "order_not_found"},
        {"an unknown product", order_of("[{\"product\": 999, \"quantity\": 1}]", 1), 404, "product_not_found"},
        {"an unknown route", s.get("/api/v1/nothing"), 404, "no_route"},
        {"a wrong method", s.call(http::verb::delete_, "/api/v1/products"), 405, "method_not_allowed"},
        {"out of stock", order_of("[{\"product\": " + apple + ", \"quantity\": 11}]", 1), 409, "out_of_stock"},
        {"a charge that is not positive", s.post("/api/v1/points/charge", R"({"amount": 0})", 1), 400,
         "invalid_amount"},
        {"an oversized body", s.post("/api/v1/orders", std::string(100'000, ' '), 1), 413, "body_too_large"},
    };
    // A coupon used twice, and an order bob cannot pay.
    auto first = order_of("[{\"product\": " + apple + ", \"quantity\": 1}]", 1, "[" + std::to_string(c.issued) + "]");
    REQUIRE(first.status == 201);
    cases.push_back(
        {"a coupon already used",
         order_of("[{\"product\": " + apple + ", \"quantity\": 1}]", 1, "[" + std::to_string(c.issued) + "]"), 409,
         "coupon_already_used"});
    auto bobs = order_of("[{\"product\": " + apple + ", \"quantity\": 1}]", 2);
    REQUIRE(bobs.status == 201);
    cases.push_back({"too few points", s.post("/api/v1/orders/" + std::to_string(id_of(bobs)) + "/pay", "{}", 2), 422,
                     "insufficient_points"});
    // The card gateway not answering: a dependency down.
    REQUIRE(s.call(http::verb::put, "/api/v1/simulation/card-gateway", R"({"behaviour": "time_out"})").status == 200);
    cases.push_back({"the card gateway down",
                     s.post("/api/v1/orders/" + std::to_string(id_of(first)) + "/pay", R"({"method": "card"})", 1), 503,
                     "card_gateway_unavailable"});
    REQUIRE(s.call(http::verb::put, "/api/v1/simulation/card-gateway", R"({"behaviour": "approve"})").status == 200);
    for (auto& e : cases) {
        INFO(e.what << ": " << e.got.status << " " << e.got.text);
        CHECK(e.got.status == e.status);
        CHECK(e.got.code() == e.code);
        CHECK(e.got.body.at("error").at("message").as_string().size() > 0);
    }
    // A user that is not a number; not HTTP at all; a header block too large: answered 400,
    // 400 and 431, and the connection closed after the last two.
    auto who = s.raw("GET /api/v1/points HTTP/1.1\r\nHost: x\r\nX-User-Id: ann\r\nConnection: close\r\n\r\n");
    CHECK(who.starts_with("HTTP/1.1 400"));
    CHECK(who.find("invalid_parameter") != std::string::npos);
    CHECK(s.raw("this is not http\r\n\r\n").starts_with("HTTP/1.1 400"));
    CHECK(s.raw("GET / HTTP/1.1\r\nX-Big: " + std::string(20'000, 'x') + "\r\n\r\n").starts_with("HTTP/1.1 431"));
    // Still serving, and nothing half-done.
    CHECK(s.get("/health").status == 200);
    CHECK(s.post("/api/v1/orders/" + std::to_string(id_of(first)) + "/pay", R"({"method": "card"})", 1).status == 200);
    auto audit = s.get("/api/v1/audit");
    INFO(audit.text);
    CHECK(audit.body.at("invariants_hold") == true);
    bool all_answered = std::all_of(cases.begin(), cases.end(), [](const expectation& e) {
        return e.got.status == e.status && e.got.code() == e.code;
    });
    test_support::record_fault("shop web API",
                               "malformed, invalid, oversized and refused requests; the card gateway down",
                               "transactional, HTTP", static_cast<long>(cases.size()) + 3,
                               all_answered && audit.body.at("invariants_hold") == true,
                               "each answered with its status and code, the server still serving, every invariant");
}

TEST_CASE("http: a user never reads or spends another user's orders, coupons or points") {
    server s{"transactional"};
    auto c = seed(s); // the coupon and the points are ann's (user 1)
    auto order =
        s.post("/api/v1/orders", R"({"items": [{"product": )" + std::to_string(c.apple) + R"(, "quantity": 1}]})", 1);
    REQUIRE(order.status == 201);
    auto path = "/api/v1/orders/" + std::to_string(id_of(order));
    CHECK(s.get(path, 2).status == 404);                                      // bob cannot see it
    CHECK(s.post(path + "/pay", R"({"method": "points"})", 2).status == 404); // nor pay it with his points
    auto stolen = s.post("/api/v1/orders",
                         R"({"items": [{"product": )" + std::to_string(c.apple) + R"(, "quantity": 1}], "coupons": [)" +
                             std::to_string(c.issued) + "]}",
                         2);
    CHECK(stolen.status == 403);
    CHECK(stolen.code() == "coupon_of_another_user");
    CHECK(s.get("/api/v1/coupons", 2).body.as_array().empty());
    CHECK(s.get("/api/v1/points", 2).body.at("balance") == 0);
    CHECK(s.get("/api/v1/sagas/OrderCreateStart:" + std::to_string(id_of(order)), 2).status == 404);
    CHECK(s.get(path, 1).status == 200); // ann can
    CHECK(s.get("/api/v1/points", 1).body.at("balance") == 5000);
}

TEST_CASE("http: many buyers at once for the last unit, exactly one gets it") {
    for (std::string mode : {"transactional", "saga"}) {
        INFO("mode: " << mode);
        server s{mode};
        auto c = seed(s);
        constexpr int buyers = 8;
        std::vector<reply> replies(buyers);
        {
            std::vector<std::jthread> threads;
            for (int b = 0; b < buyers; ++b)
                threads.emplace_back([&, b] {
                    replies[static_cast<std::size_t>(b)] = s.post(
                        "/api/v1/orders",
                        R"({"items": [{"product": )" + std::to_string(c.last_unit) + R"(, "quantity": 1}]})", b + 1);
                });
        }
        int live = 0;
        for (int b = 0; b < buyers; ++b) {
            auto& r = replies[static_cast<std::size_t>(b)];
            if (r.status == 409) continue; // refused at once (transactional)
            REQUIRE(r.status == (mode == "saga" ? 202 : 201));
            auto status = created_order(s, id_of(r), b + 1).at("status");
            live += status == "CREATED" ? 1 : 0;
        }
        CHECK(live == 1);
        auto audit = s.get("/api/v1/audit");
        INFO(audit.text);
        CHECK(audit.body.at("invariants_hold") == true);
    }
}

TEST_CASE("http: SIGTERM in the middle of load loses nothing that was acknowledged") {
    server s{"saga"};
    (void)seed(s);
    (void)s.post("/api/v1/points/charge", R"({"amount": 1000000})", 1);
    auto plenty =
        std::to_string(id_of(s.post("/api/v1/products", R"({"name": "plenty", "price": 10, "stock": 100000})")));
    std::mutex mutex;
    std::vector<std::int64_t> acknowledged; // orders the server said it took
    std::atomic<bool> refused{false};
    {
        std::vector<std::jthread> clients;
        for (int t = 0; t < 4; ++t)
            clients.emplace_back([&] {
                while (!refused) {
                    try {
                        auto r = s.post("/api/v1/orders",
                                        R"({"items": [{"product": )" + plenty + R"(, "quantity": 1}]})", 1);
                        if (r.status != 202) continue;
                        auto id = r.body.at("id").as_int64();
                        {
                            std::lock_guard lock{mutex};
                            acknowledged.push_back(id);
                        }
                        // Payable once its creation saga is done.
                        if (payable_order(s, id, 1).at("status") == "CREATED")
                            (void)s.post("/api/v1/orders/" + std::to_string(id) + "/pay", R"({"method": "points"})", 1);
                    } catch (const std::exception&) {
                        refused = true; // the server stopped accepting
                    }
                }
            });
        std::this_thread::sleep_for(700ms);
        CHECK(s.terminate() == 0);
        refused = true;
    }
    auto log = read_text_file(s.log());
    INFO(log);
    CHECK(log.find("shop: stopped") != std::string::npos);
    REQUIRE(acknowledged.size() > 10);
    // Started again on the same databases: every acknowledged order is there, and none is
    // left half-created (the sagas in flight ended before the server exited).
    s.start("saga");
    std::set<std::string> statuses;
    for (auto id : acknowledged) {
        auto r = s.get("/api/v1/orders/" + std::to_string(id), 1);
        REQUIRE(r.status == 200);
        statuses.insert(std::string{r.body.at("status").as_string()});
        CHECK(r.body.at("status") != "CREATE_PENDING");
    }
    CHECK(statuses.contains("COMPLETED"));
    auto audit = s.get("/api/v1/audit");
    INFO(audit.text);
    CHECK(audit.body.at("invariants_hold") == true);
    MESSAGE(acknowledged.size() << " orders acknowledged before SIGTERM, all found after the restart");
    test_support::record_fault(
        "shop web API", "SIGTERM while four clients create and pay orders", "saga, HTTP", 1,
        !statuses.contains("CREATE_PENDING") && audit.body.at("invariants_hold") == true,
        "exit 0; after a restart every acknowledged order there, none half-created, every invariant");
}
