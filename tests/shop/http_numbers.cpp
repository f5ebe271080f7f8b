// The web API against numbers at the edges: every numeric field and parameter is sent 0, -1,
// 2^31, 2^53, 2^62, INT64_MAX, INT64_MIN, 2^63, 1e308, 1.5, "2" and exponents. Each request
// is answered 2xx or 4xx with a known code, never 5xx and never with a wrapped number; every
// order is priced exactly (checked here in 128 bits), and the audit's invariants hold after.

#include "http_server.hpp"

#include <doctest/doctest.h>

#include <boost/json.hpp>

#include <set>
#include <string>
#include <vector>

using namespace shop_http_test;

namespace {

// Every code docs/http.md lists for a 4xx.
const std::set<std::string> client_error_codes{
    "malformed_json",      "invalid_body",        "invalid_field",          "invalid_parameter",   "user_required",
    "empty_order",         "invalid_quantity",    "invalid_amount",         "invalid_coupon",      "invalid_product",
    "invalid_price_range", "amount_too_large",    "coupon_of_another_user", "order_not_found",     "product_not_found",
    "coupon_not_found",    "payment_not_found",   "out_of_stock",           "coupon_already_used", "coupon_sold_out",
    "order_not_payable",   "payment_not_pending", "insufficient_points",    "coupon_expired",      "coupon_not_issuing",
    "balance_limit"};

const std::vector<std::string> edges{"0",
                                     "-1",
                                     "2147483648",           // 2^31
                                     "9007199254740992",     // 2^53
                                     "4611686018427387904",  // 2^62
                                     "9223372036854775807",  // INT64_MAX
                                     "-9223372036854775808", // INT64_MIN
                                     "9223372036854775808",  // 2^63
                                     "18446744073709551616", // 2^64
                                     "1e308",
                                     "-1e308",
                                     "1.5",
                                     "1e3",
                                     "\"2\""};

// 128-bit integers (a GCC and Clang extension), wide enough for any product of two prices.
__extension__ typedef __int128 wide;

// The order's price as the seed defines it, in 128 bits: the sum of the lines, then each
// coupon in turn (PERCENT takes amount% rounded down, FIXED its amount), never below zero.
// Shown as text, since doctest cannot print a 128-bit integer.
std::string expected_price(const json::object& order) {
    wide price = 0;
    for (auto& i : order.at("items").as_array())
        price += static_cast<wide>(i.at("unit_price").as_int64()) * i.at("quantity").as_int64();
    for (auto& c : order.at("coupons").as_array()) {
        wide amount = c.at("amount").as_int64();
        price -= c.at("type") == "PERCENT" ? price * amount / 100 : amount;
        if (price < 0) price = 0;
    }
    std::string digits;
    do {
        digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(price % 10)));
        price /= 10;
    } while (price > 0);
    return digits;
}

void check_answer(const reply& r, const std::string& what) {
    INFO(what << " -> " << r.status << " " << r.text);
    CHECK(r.status < 500);
    if (r.status >= 400) {
        CHECK(client_error_codes.contains(r.code()));
        CHECK(!r.body.at("error").at("message").as_string().empty());
    }
}

std::string with(std::string body, const std::string& number) { return body.replace(body.find('@'), 1, number); }

} // namespace

TEST_CASE("http: numbers at the edges of every numeric field are answered 2xx or 4xx, never wrapped") {
    for (std::string mode : {"transactional", "saga"}) {
        INFO("mode: " << mode);
        server s{mode};
        auto c = seed(s);
        auto apple = std::to_string(c.apple);
        std::vector<std::int64_t> orders;
        for (auto& n : edges) {
            std::vector<std::pair<std::string, reply>> answers;
            auto post = [&](const std::string& target, const std::string& body, std::int64_t user = 0) {
                answers.emplace_back(target + " " + body, s.post(target, body, user));
                return answers.back().second;
            };
            // Products priced at the edge are ordered once, twice and three times.
            auto added = post("/api/v1/products", with(R"({"name": "edge", "price": @, "stock": 10})", n));
            (void)post("/api/v1/products", with(R"({"name": "edge stock", "price": 1, "stock": @})", n));
            for (const char* type : {"PERCENT", "FIXED"})
                (void)post("/api/v1/coupons", with(std::string{R"({"name": "c", "type": ")"} + type +
                                                       R"(", "amount": @, "stock": 1, "valid_for_seconds": 60})",
                                                   n));
            (void)post("/api/v1/coupons",
                       with(R"({"name": "c", "type": "FIXED", "amount": 1, "stock": @, "valid_for_seconds": 60})", n));
            (void)post("/api/v1/coupons",
                       with(R"({"name": "c", "type": "FIXED", "amount": 1, "stock": 1, "valid_for_seconds": @})", n));
            (void)post("/api/v1/points/charge", with(R"({"amount": @})", n), 3);
            (void)post("/api/v1/orders", with(R"({"items": [{"product": @, "quantity": 1}]})", n), 1);
            (void)post("/api/v1/orders", with(R"({"items": [{"product": )" + apple + R"(, "quantity": @}]})", n), 1);
            (void)post("/api/v1/orders",
                       with(R"({"items": [{"product": )" + apple + R"(, "quantity": 1}], "coupons": [@]})", n), 1);
            if (added.status == 201)
                for (int times = 1; times <= 3; ++times) {
                    auto order = post("/api/v1/orders",
                                      R"({"items": [{"product": )" + std::to_string(id_of(added)) +
                                          R"(, "quantity": )" + std::to_string(times) + "}]}",
                                      4);
                    if (order.status / 100 == 2) orders.push_back(id_of(order));
                }
            for (auto& [what, r] : answers) check_answer(r, what);
            if (n.find_first_of(".e\"") == std::string::npos) { // a query string or a path holds bare numbers
                check_answer(s.get("/api/v1/products?min_price=" + n), "min_price " + n);
                check_answer(s.get("/api/v1/products?max_price=" + n), "max_price " + n);
                check_answer(s.get("/api/v1/orders/" + n, 1), "order " + n);
                check_answer(s.post("/api/v1/coupons/" + n + "/issue", "", 1), "issue coupon " + n);
                auto who = s.raw("GET /api/v1/points HTTP/1.1\r\nHost: x\r\nX-User-Id: " + n +
                                 "\r\nConnection: close\r\n\r\n");
                INFO("X-User-Id " << n << " -> " << who);
                CHECK((who.starts_with("HTTP/1.1 2") || who.starts_with("HTTP/1.1 4")));
            }
        }
        // Every order taken is priced exactly, or (saga mode) cancelled because its price
        // does not fit; none is COMPLETED or CREATED with a wrapped price.
        for (auto id : orders) {
            auto o = created_order(s, id, 4);
            INFO(json::serialize(o));
            if (o.at("status") == "CANCELLED") continue;
            REQUIRE(o.at("status") == "CREATED");
            CHECK(std::to_string(o.at("price").as_int64()) == expected_price(o));
        }
        auto audit = s.get("/api/v1/audit");
        INFO(audit.text);
        CHECK(audit.body.at("invariants_hold") == true);
    }
}

TEST_CASE("http: an order whose price does not fit is refused, and a huge charge is a client error") {
    for (std::string mode : {"transactional", "saga"}) {
        INFO("mode: " << mode);
        server s{mode};
        (void)seed(s);
        REQUIRE(s.post("/api/v1/points/charge", R"({"amount": 100000})", 5).status == 200);
        auto product = [&](const std::string& price) {
            return std::to_string(
                id_of(s.post("/api/v1/products", R"({"name": "dear", "price": )" + price + R"(, "stock": 10})")));
        };
        // 6148914691236517206 x 3 wrapped to 2 and 2^62 x 2 to -2^63: both are refused.
        for (auto order : {std::pair{"6148914691236517206", 3}, std::pair{"4611686018427387904", 2}}) {
            // Not a structured binding: Clang 14 does not let INFO's lambda refer to one.
            const std::string price = order.first;
            const int quantity = order.second;
            INFO(price << " x " << quantity);
            auto r = s.post("/api/v1/orders",
                            R"({"items": [{"product": )" + product(price) + R"(, "quantity": )" +
                                std::to_string(quantity) + "}]}",
                            5);
            if (mode == "transactional") {
                CHECK(r.status == 400);
                CHECK(r.code() == "amount_too_large");
            } else {
                REQUIRE(r.status == 202);
                auto o = created_order(s, id_of(r), 5);
                CHECK(o.at("status") == "CANCELLED");
                auto saga = s.get("/api/v1/sagas/OrderCreateStart:" + std::to_string(id_of(r)), 5);
                INFO(saga.text);
                CHECK(saga.body.at("reason").as_string().find("does not fit") != json::string::npos);
            }
        }
        // INT64_MAX once fits exactly; paying it by points is refused as a rule, not as storage.
        auto r = s.post("/api/v1/orders",
                        R"({"items": [{"product": )" + product("9223372036854775807") + R"(, "quantity": 1}]})", 5);
        REQUIRE(r.status / 100 == 2);
        auto o = payable_order(s, id_of(r), 5);
        REQUIRE(o.at("status") == "CREATED");
        CHECK(o.at("price") == 9223372036854775807LL);
        auto paid = s.post("/api/v1/orders/" + std::to_string(id_of(r)) + "/pay", R"({"method": "points"})", 5);
        if (mode == "transactional") CHECK(paid.code() == "insufficient_points");
        // Saga mode answers before the payment's saga ended: the audit waits for it.
        else
            CHECK(ended_saga(s, "PayStart:" + std::to_string(id_of(r)) + "%231", 5).at("status") == "rolled_back");
        // Charging INT64_MAX points broke a database CHECK and answered 503; it is the balance limit.
        auto charged = s.post("/api/v1/points/charge", R"({"amount": 9223372036854775807})", 5);
        CHECK(charged.status == 422);
        CHECK(charged.code() == "balance_limit");
        CHECK(s.get("/api/v1/points", 5).body.at("balance") == 100000);
        // A coupon whose expiry would not fit is refused when defined.
        auto coupon = s.post(
            "/api/v1/coupons",
            R"({"name": "forever", "type": "FIXED", "amount": 1, "stock": 1, "valid_for_seconds": 9223372036854775807})");
        CHECK(coupon.status == 400);
        CHECK(coupon.code() == "amount_too_large");
        auto audit = s.get("/api/v1/audit");
        INFO(audit.text);
        CHECK(audit.body.at("invariants_hold") == true);
    }
}
