#include "command_storefront.hpp"
#include "views.hpp"

#include <choreo/saga/key.hpp>

#include <fmt/format.h>

#include "../events/events.hpp"

namespace shop::app {

namespace json = boost::json;

std::int64_t command_storefront::add_product(const std::string& name, std::int64_t price, std::int64_t stock,
                                             const std::string& idempotency_key) {
    auto id = call("add_product", {{"name", name}, {"price", price}, {"stock", stock}}, idempotency_key)
                  .at("product")
                  .as_int64();
    std::lock_guard lock{mutex_};
    initial_stock_[id] = stock;
    return id;
}

std::int64_t command_storefront::define_coupon(const std::string& name, const std::string& type, std::int64_t amount,
                                               std::int64_t stock, std::chrono::seconds valid_for,
                                               const std::string& idempotency_key) {
    return call(
               "define_coupon",
               {{"name", name}, {"type", type}, {"amount", amount}, {"stock", stock}, {"valid_for", valid_for.count()}},
               idempotency_key)
        .at("coupon")
        .as_int64();
}

std::int64_t command_storefront::issue_coupon(std::int64_t coupon_id, std::int64_t user_id,
                                              const std::string& idempotency_key) {
    return call("issue_coupon", {{"coupon", coupon_id}, {"user", user_id}}, idempotency_key)
        .at("issued_coupon")
        .as_int64();
}

void command_storefront::charge_points(std::int64_t user_id, std::int64_t amount, const std::string& idempotency_key) {
    (void)call("charge_points", {{"user", user_id}, {"amount", amount}}, idempotency_key);
}

std::int64_t command_storefront::balance(std::int64_t user_id) {
    return call("balance", {{"user", user_id}}).at("balance").as_int64();
}

json::array command_storefront::search_products(const std::string& name_part, std::int64_t min_price,
                                                std::int64_t max_price) {
    return call("search_products", {{"name", name_part}, {"min_price", min_price}, {"max_price", max_price}})
        .at("products")
        .as_array();
}

json::array command_storefront::coupons_of(std::int64_t user_id) {
    return call("coupons_of", {{"user", user_id}}).at("coupons").as_array();
}

std::int64_t command_storefront::create_order(std::int64_t user_id,
                                              const std::vector<std::pair<std::int64_t, std::int64_t>>& lines,
                                              const std::vector<std::int64_t>& issued_coupon_ids,
                                              const std::string& idempotency_key) {
    json::array order_lines, coupons;
    for (auto& [product, quantity] : lines) order_lines.push_back(json::array{product, quantity});
    for (auto c : issued_coupon_ids) coupons.push_back(c);
    auto id = call("create_order", {{"user", user_id}, {"lines", order_lines}, {"coupons", coupons}}, idempotency_key)
                  .at("order")
                  .as_int64();
    if (mode() == mode::saga) {
        std::lock_guard lock{mutex_};
        sagas_started_.emplace_back(choreo::saga::key_for<events::OrderCreateStart>(std::to_string(id)).view());
    }
    return id;
}

void command_storefront::pay(std::int64_t order_id, bool by_card, const std::string& idempotency_key) {
    auto attempt = call("pay", {{"order", order_id}, {"card", by_card}}, idempotency_key).at("attempt").as_int64();
    if (mode() == mode::saga) {
        std::lock_guard lock{mutex_};
        sagas_started_.emplace_back(
            choreo::saga::key_for<events::PayStart>(fmt::format("{}#{}", order_id, attempt)).view());
    }
}

void command_storefront::advance_clock(std::chrono::seconds by) {
    (void)call("advance_clock", {{"seconds", by.count()}});
}

void command_storefront::set_card(card_behaviour b) {
    (void)call("set_card", {{"behaviour", card_behaviour_names[static_cast<std::size_t>(b)]}});
}

void command_storefront::set_data_platform(platform_behaviour b) {
    (void)call("set_data_platform", {{"behaviour", platform_behaviour_names[static_cast<std::size_t>(b)]}});
}

std::string command_storefront::order_status(std::int64_t order_id) {
    return std::string{call("order_status", {{"order", order_id}}).at("status").as_string()};
}

// The creation saga, then each payment attempt's until one is missing.
std::string command_storefront::saga_outcome(std::int64_t order_id) {
    std::string text;
    auto describe = [&](const choreo::correlation_key& key) {
        auto s = saga_record(std::string{key.view()});
        if (!s) return false;
        if (!text.empty()) text += "; ";
        text += fmt::format("{} {}", key.view(), choreo::saga::to_string(s->status));
        if (!s->reason.empty()) text += fmt::format(" at {}: {}", s->failed_step, s->reason);
        return true;
    };
    describe(choreo::saga::key_for<events::OrderCreateStart>(std::to_string(order_id)));
    for (int attempt = 1;; ++attempt)
        if (!describe(choreo::saga::key_for<events::PayStart>(fmt::format("{}#{}", order_id, attempt)))) break;
    return text;
}

// The order from the order context, with its payment from the payment context.
std::optional<json::object> command_storefront::order(std::int64_t order_id) {
    auto found = call("order", {{"order", order_id}});
    if (found.at("order").is_null()) return std::nullopt;
    auto o = found.at("order").as_object();
    if (auto payment = found.at("payment").as_int64())
        o["payment"] = call("payment", {{"payment", payment}}).at("payment");
    return o;
}

std::optional<json::object> command_storefront::saga(const std::string& key) {
    auto s = saga_record(key);
    if (!s) return std::nullopt;
    return saga_view(*s);
}

std::map<std::int64_t, std::int64_t> command_storefront::initial_stock() const {
    std::lock_guard lock{mutex_};
    return initial_stock_;
}

std::vector<std::string> command_storefront::sagas_started() const {
    std::lock_guard lock{mutex_};
    return sagas_started_;
}

} // namespace shop::app
