// The web API (`shop serve --http`) served from the order process of the six-process shop:
// every request a command, through Redis, to the process that owns it.

#ifdef SHOP_WITH_HTTP
#include "../support/http_client.hpp"
#endif
#include "../support/redis_server.hpp"

#include <hosting/child_processes.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#ifndef SHOP_PROGRAM
#error "SHOP_PROGRAM must name the shop program"
#endif

using namespace std::chrono_literals;
using shop::app::read_text_file;
using shop::app::serving_processes;

#ifdef SHOP_WITH_HTTP
namespace {

// The integer after `"field":` in a JSON text (the process tests read replies without a JSON library).
std::int64_t json_integer(const std::string& text, const std::string& field) {
    auto at = text.find("\"" + field + "\":");
    REQUIRE_MESSAGE(at != std::string::npos, "no " << field << " in " << text);
    return std::stoll(text.substr(at + field.size() + 3));
}

} // namespace

TEST_CASE("six processes through Redis: the web API served from the order process") {
    namespace http = boost::beast::http;
    test_support::redis_server redis;
    auto dir = std::filesystem::temp_directory_path() / ("choreo-shop-web-" + std::to_string(::getpid()));
    serving_processes shop{SHOP_PROGRAM, redis.url(), dir, "shop:", {"--http", "127.0.0.1:0"}};
    unsigned short port = 0;
    for (auto deadline = std::chrono::steady_clock::now() + 30s; port == 0;) {
        auto log = read_text_file(dir / "order.log");
        if (auto at = log.find("web API on http://127.0.0.1:");
            at != std::string::npos && log.find('\n', at) != std::string::npos)
            port = static_cast<unsigned short>(std::stoi(log.substr(at + 28)));
        REQUIRE_MESSAGE(std::chrono::steady_clock::now() < deadline, "the order process did not serve: " << log);
        std::this_thread::sleep_for(20ms);
    }
    auto call = [&](http::verb method, const std::string& target, const std::string& body = {}, std::int64_t user = 0) {
        return test_support::http_call(port, method, target, body, user);
    };
    // The order once it shows `until` (or, with an empty one, once it is no longer
    // CREATE_PENDING), or as it is after 20 s.
    auto order_once = [&](std::int64_t id, std::int64_t user, const std::string& until) {
        test_support::http_reply r;
        for (auto deadline = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < deadline;) {
            r = call(http::verb::get, "/api/v1/orders/" + std::to_string(id), {}, user);
            REQUIRE(r.status == 200);
            bool done = until.empty() ? r.body.find("CREATE_PENDING") == std::string::npos
                                      : r.body.find(until) != std::string::npos;
            if (done) break;
            std::this_thread::sleep_for(20ms);
        }
        return r.body;
    };

    auto apple = json_integer(
        call(http::verb::post, "/api/v1/products", R"({"name": "apple", "price": 300, "stock": 10})").body, "id");
    auto last = json_integer(
        call(http::verb::post, "/api/v1/products", R"({"name": "last", "price": 100, "stock": 1})").body, "id");
    for (int user = 1; user <= 8; ++user)
        REQUIRE(call(http::verb::post, "/api/v1/points/charge", R"({"amount": 5000})", user).status == 200);

    // The walk-through: every request a command to the process that owns it.
    auto order_body = R"({"items": [{"product": )" + std::to_string(apple) + R"(, "quantity": 2}]})";
    auto created = test_support::http_call(port, http::verb::post, "/api/v1/orders", order_body, 1, "walk-through");
    REQUIRE(created.status == 202);
    auto id = json_integer(created.body, "id");
    // Sent again with its Idempotency-Key (its answer lost, say): the same order, not a second.
    auto again = test_support::http_call(port, http::verb::post, "/api/v1/orders", order_body, 1, "walk-through");
    CHECK(again.status == 202);
    CHECK(json_integer(again.body, "id") == id);
    // Payable as soon as it reads CREATED: it becomes CREATED with its payment.
    CHECK(order_once(id, 1, "\"status\":\"CREATED\"").find("\"payment\":{") != std::string::npos);
    CHECK(call(http::verb::post, "/api/v1/orders/" + std::to_string(id) + "/pay", R"({"method": "card"})", 1).status ==
          202);
    auto paid = order_once(id, 1, "\"status\":\"COMPLETED\"");
    CHECK(paid.find("\"status\":\"COMPLETED\"") != std::string::npos);
    CHECK(paid.find("\"status\":\"PAID\"") != std::string::npos); // the payment, from the payment process
    auto saga = call(http::verb::get, "/api/v1/sagas/PayStart:" + std::to_string(id) + "%231", {}, 1);
    CHECK(saga.status == 200);
    CHECK(saga.body.find("\"status\":\"completed\"") != std::string::npos);

    // Refusals keep their status and code across processes; another user's order is absent.
    auto range = call(http::verb::get, "/api/v1/products?min_price=5&max_price=1");
    CHECK(range.status == 400);
    CHECK(range.body.find("invalid_price_range") != std::string::npos);
    CHECK(call(http::verb::get, "/api/v1/orders/" + std::to_string(id), {}, 2).status == 404);
    CHECK(call(http::verb::post, "/api/v1/orders", R"({"items": []})", 1).status == 400);

    // Eight buyers at once for the last unit: exactly one order is created.
    std::vector<std::int64_t> ids(8);
    {
        std::vector<std::jthread> buyers;
        for (int b = 0; b < 8; ++b)
            buyers.emplace_back([&, b] {
                auto r = call(http::verb::post, "/api/v1/orders",
                              R"({"items": [{"product": )" + std::to_string(last) + R"(, "quantity": 1}]})", b + 1);
                if (r.status == 202) ids[static_cast<std::size_t>(b)] = json_integer(r.body, "id");
            });
    }
    int live = 0;
    for (int b = 0; b < 8; ++b) {
        auto order = ids[static_cast<std::size_t>(b)];
        REQUIRE(order != 0);
        auto body = order_once(order, b + 1, "");
        live += body.find("\"status\":\"CREATED\"") != std::string::npos ? 1 : 0;
    }
    CHECK(live == 1);
    auto audit = call(http::verb::get, "/api/v1/audit");
    INFO(audit.body);
    CHECK(audit.body.find("\"invariants_hold\":true") != std::string::npos);
    auto unclean = shop.stop();
    INFO(shop.logs());
    CHECK(unclean.empty());
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
}
#endif // SHOP_WITH_HTTP
