// The web API's routes: each request to the storefront's operation, its JSON in and out,
// and every failure to a status with a stable code (docs/http.md).

#include "http_routes.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include <choreo/saga/errors.hpp>
#include <choreo/sqlite/database.hpp>

#include "../kernel/errors.hpp"

namespace shop::app {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using request = http_request;
using response = http_response;

// A refusal on its way to the client: the status, a stable code, words for people.
struct api_error {
    http::status status;
    std::string code;
    std::string message;
};

response json_response(http::status status, const json::value& body, unsigned version) {
    response res{status, version};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::server, "choreo-shop");
    res.body() = json::serialize(body);
    res.body() += '\n';
    res.prepare_payload();
    return res;
}

response error_response(const api_error& e, unsigned version) {
    return json_response(e.status, json::object{{"error", json::object{{"code", e.code}, {"message", e.message}}}},
                         version);
}

http::status status_of(kernel::refusal kind) {
    switch (kind) {
    case kernel::refusal::invalid_input: return http::status::bad_request;
    case kernel::refusal::not_found: return http::status::not_found;
    case kernel::refusal::conflict: return http::status::conflict;
    case kernel::refusal::forbidden: return http::status::forbidden;
    case kernel::refusal::rule_violated: return http::status::unprocessable_entity;
    }
    return http::status::unprocessable_entity;
}

std::int64_t whole_number(std::string_view text, std::string_view what) {
    std::int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc::result_out_of_range)
        throw api_error{http::status::bad_request, "amount_too_large",
                        fmt::format("{} must fit in a 64-bit integer, not '{}'", what, text)};
    if (ec != std::errc{} || end != text.data() + text.size() || text.empty())
        throw api_error{http::status::bad_request, "invalid_parameter",
                        fmt::format("{} must be a whole number, not '{}'", what, text)};
    return value;
}

} // namespace

class http_routes::api {
public:
    explicit api(storefront& s) : shop_(s) {}

    // Never throws: every failure becomes an error response.
    response handle(const request& req) {
        try {
            return route(req);
        } catch (const api_error& e) {
            return error_response(e, req.version());
        } catch (const kernel::domain_error& e) {
            return error_response({status_of(e.kind()), e.code(), e.what()}, req.version());
        } catch (const kernel::outside_unavailable& e) {
            return error_response({http::status::service_unavailable, e.code(), e.what()}, req.version());
        } catch (const choreo::saga::saga_overloaded_error& e) {
            // Refused before anything started: the client may send it again (with its
            // Idempotency-Key) after the whole seconds Retry-After says.
            auto res = error_response({http::status::service_unavailable, "busy", e.what()}, req.version());
            auto seconds = std::max<std::int64_t>(1, (e.retry_after().count() + 999) / 1000);
            res.set(http::field::retry_after, std::to_string(seconds));
            return res;
        } catch (const choreo::sqlite::sqlite_error& e) {
            return error_response({http::status::service_unavailable, "storage_unavailable", e.what()}, req.version());
        } catch (const std::exception& e) {
            return error_response({http::status::internal_server_error, "internal", e.what()}, req.version());
        } catch (...) {
            return error_response({http::status::internal_server_error, "internal", "an unknown error"}, req.version());
        }
    }

private:
    response route(const request& req) {
        auto parsed = boost::urls::parse_origin_form(req.target());
        if (!parsed) throw api_error{http::status::bad_request, "malformed_target", "the request target is not a path"};
        std::vector<std::string> path;
        for (auto segment : parsed->segments()) path.push_back(segment);
        auto method = req.method();
        auto v = req.version();
        auto is = [&](std::initializer_list<std::string_view> pattern) {
            if (path.size() != pattern.size()) return false;
            std::size_t i = 0;
            for (auto p : pattern) {
                if (p != "*" && p != path[i]) return false;
                ++i;
            }
            return true;
        };
        auto only = [&](http::verb allowed) {
            if (method != allowed)
                throw api_error{http::status::method_not_allowed, "method_not_allowed",
                                fmt::format("{} is not allowed here", std::string_view{req.method_string()})};
        };

        if (is({"health"})) {
            only(http::verb::get);
            return json_response(http::status::ok, json::object{{"status", "up"}, {"mode", to_string(shop_.mode())}},
                                 v);
        }
        if (path.size() < 2 || path[0] != "api" || path[1] != "v1")
            throw api_error{http::status::not_found, "no_route",
                            fmt::format("nothing at {}", std::string_view{req.target()})};
        path.erase(path.begin(), path.begin() + 2);

        if (is({"products"})) {
            if (method == http::verb::post) {
                auto body = object_body(req);
                auto id = shop_.add_product(text(body, "name"), integer(body, "price"), integer(body, "stock"),
                                            idempotency_key(req, "shop"));
                return json_response(http::status::created, json::object{{"id", id}}, v);
            }
            only(http::verb::get);
            std::string name;
            std::int64_t min_price = 0, max_price = std::numeric_limits<std::int64_t>::max();
            for (auto param : parsed->params()) {
                if (param.key == "name")
                    name = param.value;
                else if (param.key == "min_price")
                    min_price = whole_number(param.value, "min_price");
                else if (param.key == "max_price")
                    max_price = whole_number(param.value, "max_price");
                else
                    throw api_error{http::status::bad_request, "invalid_parameter",
                                    fmt::format("unknown parameter '{}' (name, min_price, max_price)", param.key)};
            }
            return json_response(http::status::ok, shop_.search_products(name, min_price, max_price), v);
        }
        if (is({"coupons"})) {
            if (method == http::verb::post) {
                auto body = object_body(req);
                auto id = shop_.define_coupon(
                    text(body, "name"), text(body, "type"), integer(body, "amount"), integer(body, "stock"),
                    std::chrono::seconds{integer(body, "valid_for_seconds")}, idempotency_key(req, "shop"));
                return json_response(http::status::created, json::object{{"id", id}}, v);
            }
            only(http::verb::get);
            return json_response(http::status::ok, shop_.coupons_of(user(req)), v);
        }
        if (is({"coupons", "*", "issue"})) {
            only(http::verb::post);
            auto who = user(req);
            auto id = shop_.issue_coupon(whole_number(path[1], "the coupon id"), who, idempotency_key(req, who));
            return json_response(http::status::created, json::object{{"issued_coupon", id}}, v);
        }
        if (is({"points"})) {
            only(http::verb::get);
            auto who = user(req);
            return json_response(http::status::ok, json::object{{"user", who}, {"balance", shop_.balance(who)}}, v);
        }
        if (is({"points", "charge"})) {
            only(http::verb::post);
            auto who = user(req);
            shop_.charge_points(who, integer(object_body(req), "amount"), idempotency_key(req, who));
            return json_response(http::status::ok, json::object{{"user", who}, {"balance", shop_.balance(who)}}, v);
        }
        if (is({"orders"})) {
            only(http::verb::post);
            return create_order(req);
        }
        if (is({"orders", "*"})) {
            only(http::verb::get);
            return json_response(http::status::ok, own_order(req, path[1]), v);
        }
        if (is({"orders", "*", "pay"})) {
            only(http::verb::post);
            return pay(req, path[1]);
        }
        if (is({"sagas", "*"})) {
            only(http::verb::get);
            return saga(req, path[1]);
        }
        // The simulated world around the shop, for trying failures by hand and in tests.
        if (is({"simulation", "card-gateway"})) {
            only(http::verb::put);
            auto b = text(object_body(req), "behaviour");
            shop_.set_card(named<card_behaviour>(card_behaviour_names, b));
            return json_response(http::status::ok, json::object{{"card_gateway", b}}, v);
        }
        if (is({"simulation", "data-platform"})) {
            only(http::verb::put);
            auto b = text(object_body(req), "behaviour");
            shop_.set_data_platform(named<platform_behaviour>(platform_behaviour_names, b));
            return json_response(http::status::ok, json::object{{"data_platform", b}}, v);
        }
        if (is({"audit"})) {
            only(http::verb::get);
            json::array broken;
            for (auto& b : shop_.check_invariants()) broken.emplace_back(b);
            bool holds = broken.empty();
            json::object orders; // how many in each status
            auto state = shop_.state();
            for (auto& o : state.at("orders").as_array()) {
                auto& count = orders[o.at("status").as_string()];
                count = count.is_null() ? 1 : count.as_int64() + 1;
            }
            return json_response(
                http::status::ok,
                json::object{{"invariants_hold", holds}, {"broken", std::move(broken)}, {"orders", std::move(orders)}},
                v);
        }
        throw api_error{http::status::not_found, "no_route",
                        fmt::format("nothing at {}", std::string_view{req.target()})};
    }

    // POST /api/v1/orders {"items": [{"product": 1, "quantity": 2}], "coupons": [7]}
    response create_order(const request& req) {
        auto who = user(req);
        auto body = object_body(req);
        std::vector<std::pair<std::int64_t, std::int64_t>> lines;
        auto* items = body.if_contains("items");
        if (!items || !items->is_array() || items->as_array().empty())
            throw api_error{http::status::bad_request, "invalid_field", "'items' must be a non-empty array"};
        for (auto& item : items->as_array()) {
            if (!item.is_object())
                throw api_error{http::status::bad_request, "invalid_field",
                                "each item is {\"product\": id, \"quantity\": n}"};
            lines.emplace_back(integer(item.as_object(), "product"), integer(item.as_object(), "quantity"));
        }
        std::vector<std::int64_t> coupons;
        if (auto* c = body.if_contains("coupons")) {
            if (!c->is_array())
                throw api_error{http::status::bad_request, "invalid_field", "'coupons' must be an array"};
            for (auto& id : c->as_array()) coupons.push_back(integer(id, "coupons"));
        }
        auto id = shop_.create_order(who, lines, coupons, idempotency_key(req, who));
        auto res = json_response(accepted_or(http::status::created), *shop_.order(id), req.version());
        res.set(http::field::location, fmt::format("/api/v1/orders/{}", id));
        return res;
    }

    // POST /api/v1/orders/{id}/pay {"method": "points" | "card"}
    response pay(const request& req, const std::string& id_text) {
        auto order = own_order(req, id_text);
        auto id = order.at("id").as_int64();
        std::string method = "points";
        if (!req.body().empty()) {
            auto body = object_body(req);
            if (body.contains("method")) method = text(body, "method");
        }
        if (method != "points" && method != "card")
            throw api_error{http::status::bad_request, "invalid_field", "'method' is points or card"};
        shop_.pay(id, method == "card", idempotency_key(req, user(req)));
        return json_response(accepted_or(http::status::ok), *shop_.order(id), req.version());
    }

    // GET /api/v1/sagas/{key}: the order's sagas only, OrderCreateStart:{id} or PayStart:{id}#{n}.
    response saga(const request& req, const std::string& key) {
        auto colon = key.find(':');
        auto type = key.substr(0, colon == std::string::npos ? 0 : colon);
        if (colon == std::string::npos || (type != "OrderCreateStart" && type != "PayStart"))
            throw api_error{http::status::not_found, "saga_not_found", fmt::format("no saga '{}'", key)};
        auto rest = key.substr(colon + 1);
        (void)own_order(req, rest.substr(0, rest.find('#')));
        auto s = shop_.saga(key);
        if (!s)
            throw api_error{http::status::not_found, "saga_not_found",
                            shop_.mode() == mode::saga
                                ? fmt::format("no saga '{}'", key)
                                : std::string{"this shop runs in transactional mode, without sagas"}};
        return json_response(http::status::ok, *s, req.version());
    }

    // The order, if it is the requesting user's: another user's is as absent as a missing one.
    json::object own_order(const request& req, const std::string& id_text) {
        auto who = user(req);
        auto id = whole_number(id_text, "the order id");
        auto order = shop_.order(id);
        if (!order || order->at("user").as_int64() != who)
            throw api_error{http::status::not_found, "order_not_found", fmt::format("no order {}", id)};
        return *order;
    }

    // In saga mode a flow has only started when its command returns.
    http::status accepted_or(http::status done) const {
        return shop_.mode() == mode::saga ? http::status::accepted : done;
    }

    // The request's Idempotency-Key, scoped to who sent it; empty when it has none. A
    // changing request sent again with the same key gets the first one's outcome, and
    // changes nothing more (the key is kept with the change, in the context's database).
    static std::string idempotency_key(const request& req, const auto& who) {
        auto header = req.find("Idempotency-Key");
        if (header == req.end()) return {};
        auto key = header->value();
        if (key.empty() || key.size() > 255 ||
            !std::all_of(key.begin(), key.end(), [](char c) { return c >= 0x21 && c <= 0x7e; }))
            throw api_error{http::status::bad_request, "invalid_idempotency_key",
                            "Idempotency-Key is 1 to 255 visible ASCII characters"};
        return fmt::format("{} {}", who, std::string_view{key});
    }
    static std::int64_t user(const request& req) {
        auto header = req.find("X-User-Id");
        if (header == req.end())
            throw api_error{http::status::bad_request, "user_required", "say who you are with the X-User-Id header"};
        auto id = whole_number(header->value(), "X-User-Id");
        if (id < 1) throw api_error{http::status::bad_request, "user_required", "X-User-Id is a positive number"};
        return id;
    }

    template <class Behaviour, std::size_t N>
    static Behaviour named(const std::array<std::string_view, N>& names, std::string_view name) {
        if (auto b = behaviour_named<Behaviour>(names, name)) return *b;
        std::string known;
        for (auto n : names) known += (known.empty() ? "" : ", ") + std::string{n};
        throw api_error{http::status::bad_request, "invalid_field", fmt::format("'behaviour' is one of {}", known)};
    }

    static json::object object_body(const request& req) {
        boost::system::error_code ec;
        auto value = json::parse(req.body(), ec);
        if (ec)
            throw api_error{http::status::bad_request, "malformed_json",
                            fmt::format("the body is not JSON: {}", ec.message())};
        if (!value.is_object())
            throw api_error{http::status::bad_request, "invalid_body", "the body must be a JSON object"};
        return std::move(value.as_object());
    }
    static std::int64_t integer(const json::object& o, std::string_view name) {
        auto* v = o.if_contains(name);
        if (!v)
            throw api_error{http::status::bad_request, "invalid_field", fmt::format("'{}' must be an integer", name)};
        return integer(*v, name);
    }
    // A whole number in 64 bits; one beyond them (2^63, 1e308) is amount_too_large, not
    // wrapped or rounded; a fraction, an exponent or a string is invalid_field.
    static std::int64_t integer(const json::value& v, std::string_view name) {
        if (v.is_int64()) return v.as_int64();
        bool whole_but_huge =
            v.is_uint64() || (v.is_double() && std::isfinite(v.as_double()) &&
                              std::trunc(v.as_double()) == v.as_double() && std::fabs(v.as_double()) >= 0x1p63);
        if (whole_but_huge)
            throw api_error{http::status::bad_request, "amount_too_large",
                            fmt::format("'{}' must fit in a 64-bit integer ({} to {})", name,
                                        std::numeric_limits<std::int64_t>::min(),
                                        std::numeric_limits<std::int64_t>::max())};
        throw api_error{
            http::status::bad_request, "invalid_field",
            fmt::format("'{}' must be an integer, written without a fraction, an exponent or quotes", name)};
    }
    static std::string text(const json::object& o, std::string_view name) {
        auto* v = o.if_contains(name);
        if (!v || !v->is_string())
            throw api_error{http::status::bad_request, "invalid_field", fmt::format("'{}' must be a string", name)};
        return std::string{v->as_string()};
    }

    storefront& shop_;
};

http_response http_error(http::status status, std::string code, std::string message, unsigned version) {
    return error_response({status, std::move(code), std::move(message)}, version);
}

http_routes::http_routes(storefront& s) : api_(std::make_unique<api>(s)) {}
http_routes::~http_routes() = default;
http_response http_routes::handle(const http_request& req) { return api_->handle(req); }

} // namespace shop::app
