// The web API's routes in this process, over a one-process shop the test configures: what a
// served shop shows only by chance, here on demand (a saga shop at its limit of sagas).

#include "hosting/http_routes.hpp"
#include "app/one_process.hpp"

#include <doctest/doctest.h>

#include <boost/json.hpp>

#include <string>

using namespace shop::app;
namespace http = boost::beast::http;

namespace {

http_response post(http_routes& routes, const std::string& target, const std::string& body,
                   const std::string& idempotency_key) {
    http_request req{http::verb::post, target, 11};
    req.set("X-User-Id", "1");
    req.set(http::field::content_type, "application/json");
    if (!idempotency_key.empty()) req.set("Idempotency-Key", idempotency_key);
    req.body() = body;
    req.prepare_payload();
    return routes.handle(req);
}

std::string code_of(const http_response& res) {
    return std::string{boost::json::parse(res.body()).at("error").at("code").as_string()};
}

} // namespace

TEST_CASE("http: an order past the sagas the shop may run is refused with 503 and Retry-After, then taken") {
    // The outbox relay waits, so the first order's saga stays running until it starts.
    one_process s{config{.mode = mode::saga, .start_relay = false, .max_running = 1}};
    auto lamp = s.add_product("lamp", 100, 10);
    s.charge_points(1, 10'000);
    http_routes routes{s};
    const auto order = R"({"items": [{"product": )" + std::to_string(lamp) + R"(, "quantity": 1}]})";

    auto first = post(routes, "/api/v1/orders", order, "first");
    CHECK(first.result() == http::status::accepted);

    auto second = post(routes, "/api/v1/orders", order, "second");
    CHECK(second.result() == http::status::service_unavailable);
    CHECK(code_of(second) == "busy");
    CHECK(std::stoi(std::string{second[http::field::retry_after]}) >= 1);
    CHECK(s.state().at("orders").as_array().size() == 1); // the refused request created nothing

    s.start_relay();
    s.settle(); // the first order's saga ends, and makes room
    auto again = post(routes, "/api/v1/orders", order, "second");
    CHECK(again.result() == http::status::accepted);
    s.settle();
    auto orders = s.state().at("orders").as_array();
    CHECK(orders.size() == 2);
    for (auto& o : orders) CHECK(o.at("status").as_string() == "CREATED");
    CHECK(s.check_invariants().empty());
}
