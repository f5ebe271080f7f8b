#include "command_shop.hpp"
#include "audit.hpp"
#include "client.hpp"
#include "remote.hpp"
#include "views.hpp"

#include "../platform/wiring.hpp"

#include <choreo/saga/key.hpp>

#include <fmt/format.h>

#include <sstream>
#include <thread>

#include "../events/events.hpp"

namespace shop::app {

namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

command_shop::command_shop(command_shop_options o)
    : options_(std::move(o)), client_(std::make_unique<shop_client>(options_.redis_url, options_.prefix)) {}

command_shop::~command_shop() = default;

json::object command_shop::call(std::string_view context, std::string op, const json::object& args,
                                std::chrono::milliseconds timeout) {
    try {
        return client_->call(context, std::move(op), args, timeout);
    } catch (const command_failed& e) {
        // A business rule's refusal stays one, kind and code included, as in one process.
        if (e.refusal() >= 0 && e.refusal() <= static_cast<int>(platform::refusal::rule_violated))
            throw platform::domain_error(static_cast<platform::refusal>(e.refusal()), e.code(), e.what());
        throw;
    }
}

void command_shop::wait_for_processes(std::chrono::seconds limit) {
    for (auto name : process_names) {
        try {
            (void)call(name, "ping", {}, limit);
        } catch (const std::exception& e) {
            throw std::runtime_error(fmt::format("the {} process did not answer: {}", name, e.what()));
        }
    }
}

void command_shop::remove_keys() { client_->remove_keys(); }

std::int64_t command_shop::add_product(const std::string& name, std::int64_t price, std::int64_t stock) {
    auto id = call("product", "add_product", {{"name", name}, {"price", price}, {"stock", stock}})
                  .at("product")
                  .as_int64();
    std::lock_guard lock{mutex_};
    initial_stock_[id] = stock;
    return id;
}

std::int64_t command_shop::define_coupon(const std::string& name, const std::string& type, std::int64_t amount,
                                        std::int64_t stock, std::chrono::seconds valid_for) {
    return call("coupon", "define_coupon",
               {{"name", name}, {"type", type}, {"amount", amount}, {"stock", stock}, {"valid_for", valid_for.count()}})
        .at("coupon")
        .as_int64();
}

std::int64_t command_shop::issue_coupon(std::int64_t coupon_id, std::int64_t user_id) {
    return call("coupon", "issue_coupon", {{"coupon", coupon_id}, {"user", user_id}}).at("issued_coupon").as_int64();
}

void command_shop::charge_points(std::int64_t user_id, std::int64_t amount) {
    (void)call("point", "charge_points", {{"user", user_id}, {"amount", amount}});
}

std::int64_t command_shop::balance(std::int64_t user_id) {
    return call("point", "balance", {{"user", user_id}}).at("balance").as_int64();
}

std::int64_t command_shop::create_order(std::int64_t user_id, const std::vector<std::pair<std::int64_t, std::int64_t>>& lines,
                                       const std::vector<std::int64_t>& issued_coupon_ids) {
    json::array order_lines, coupons;
    for (auto& [product, quantity] : lines) order_lines.push_back(json::array{product, quantity});
    for (auto c : issued_coupon_ids) coupons.push_back(c);
    auto id = call("order", "create_order", {{"user", user_id}, {"lines", order_lines}, {"coupons", coupons}})
                  .at("order")
                  .as_int64();
    std::lock_guard lock{mutex_};
    sagas_started_.emplace_back(choreo::saga::key_for<events::OrderCreateStart>(std::to_string(id)).view());
    return id;
}

void command_shop::pay(std::int64_t order_id, bool by_card) {
    auto attempt = call("order", "pay", {{"order", order_id}, {"card", by_card}}).at("attempt").as_int64();
    std::lock_guard lock{mutex_};
    sagas_started_.emplace_back(
        choreo::saga::key_for<events::PayStart>(fmt::format("{}#{}", order_id, attempt)).view());
}

json::object command_shop::activity_of_all(std::vector<std::string>* unsettled) {
    std::uint64_t work = 0;
    std::int64_t pending = 0, delivered = 0, failed = 0, attempts = 0;
    for (auto name : process_names) {
        auto a = call(name, "activity", {});
        work += a.at("work").to_number<std::uint64_t>();
        if (auto* o = a.if_contains("outbox")) {
            pending += o->at("pending").to_number<std::int64_t>();
            delivered += o->at("delivered").to_number<std::int64_t>();
            failed += o->at("failed").to_number<std::int64_t>();
            if (unsettled && o->at("pending").to_number<std::int64_t>() > 0)
                unsettled->push_back(fmt::format("the {} process's outbox has rows to deliver", name));
        }
        if (auto* n = a.if_contains("attempts")) attempts = n->to_number<std::int64_t>();
        if (auto* lag = a.if_contains("kafka_lag"); unsettled && lag && lag->to_number<std::int64_t>() != 0)
            unsettled->push_back(lag->to_number<std::int64_t>() < 0
                                     ? fmt::format("the {} process cannot tell its Kafka consumers' lag yet", name)
                                     : fmt::format("the {} process has {} Kafka records to handle", name,
                                                   lag->to_number<std::int64_t>()));
    }
    return {{"work", work},
            {"outbox", json::object{{"pending", pending}, {"delivered", delivered}, {"failed", failed}}},
            {"attempts", attempts}};
}

// First every saga the flows started has ended; then the processes are asked, round after
// round, what they have done and have still to do, and the streams what is unread or
// unacknowledged, until two quiet rounds in a row find the work counts unchanged.
void command_shop::settle() {
    auto deadline = clock_type::now() + options_.settle_timeout;
    std::vector<std::string> keys;
    {
        std::lock_guard lock{mutex_};
        keys = sagas_started_;
    }
    for (auto& key : keys)
        if (!client_->wait_ended(key, deadline))
            throw std::runtime_error(
                fmt::format("saga {} did not end within {} s", key, options_.settle_timeout.count()));
    bool last_round_quiet = false;
    std::uint64_t quiet_work = 0; // the work count of the last quiet round
    for (;;) {
        std::vector<std::string> unsettled;
        auto work = activity_of_all(&unsettled).at("work").to_number<std::uint64_t>();
        for (auto& s : client_->unsettled_streams()) unsettled.push_back(std::move(s));
        if (unsettled.empty() && last_round_quiet && quiet_work == work) return;
        last_round_quiet = unsettled.empty();
        quiet_work = work;
        if (clock_type::now() > deadline) {
            std::string what;
            for (auto& u : unsettled) what += "\n  " + u;
            throw std::runtime_error(
                fmt::format("the processes did not settle within {} s:{}", options_.settle_timeout.count(),
                            what.empty() ? std::string{"\n  their work counts kept moving"} : what));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
}

void command_shop::advance_clock(std::chrono::seconds by) {
    (void)call("coupon", "advance_clock", {{"seconds", by.count()}});
}

void command_shop::fail_step(const std::string& step) {
    auto slash = step.find('/');
    if (slash == std::string::npos) throw std::invalid_argument("a step is named context/step, not '" + step + "'");
    (void)call(step.substr(0, slash), "fail_step", {{"step", step}});
}

void command_shop::set_card(card_behaviour b) {
    (void)call("payment", "set_card", {{"behaviour", card_behaviour_names[static_cast<std::size_t>(b)]}});
}

void command_shop::set_data_platform(platform_behaviour b) {
    (void)call("data_platform", "set_data_platform", {{"behaviour", platform_behaviour_names[static_cast<std::size_t>(b)]}});
}

std::string command_shop::order_status(std::int64_t order_id) {
    return std::string{call("order", "order_status", {{"order", order_id}}).at("status").as_string()};
}

std::string command_shop::saga_outcome(std::int64_t order_id) {
    std::string text;
    auto describe = [&](const choreo::correlation_key& key) {
        auto s = client_->saga(std::string{key.view()});
        if (!s) return false;
        if (!text.empty()) text += "; ";
        text += fmt::format("{} {}", key.view(), choreo::saga::to_string(s->status));
        if (!s->reason.empty()) text += fmt::format(" at {}: {}", s->failed_step, s->reason);
        return true;
    };
    describe(choreo::saga::key_for<events::OrderCreateStart>(std::to_string(order_id)));
    for (int attempt = 1; attempt < 10; ++attempt)
        if (!describe(choreo::saga::key_for<events::PayStart>(fmt::format("{}#{}", order_id, attempt)))) break;
    return text;
}

json::array command_shop::search_products(const std::string& name_part, std::int64_t min_price, std::int64_t max_price) {
    return call("product", "search_products", {{"name", name_part}, {"min_price", min_price}, {"max_price", max_price}})
        .at("products")
        .as_array();
}

json::array command_shop::coupons_of(std::int64_t user_id) {
    return call("coupon", "coupons_of", {{"user", user_id}}).at("coupons").as_array();
}

std::optional<json::object> command_shop::order(std::int64_t order_id) {
    auto found = call("order", "order", {{"order", order_id}});
    if (found.at("order").is_null()) return std::nullopt;
    auto o = found.at("order").as_object();
    if (auto payment = found.at("payment").as_int64())
        o["payment"] = call("payment", "payment", {{"payment", payment}}).at("payment");
    return o;
}

std::optional<json::object> command_shop::saga(const std::string& key) {
    auto s = client_->saga(key);
    if (!s) return std::nullopt;
    return saga_view(*s);
}

json::object command_shop::state() {
    serving_databases dbs{options_.databases};
    json::object out;
    out["mode"] = to_string(mode());
    for (auto& [name, value] : dbs.contexts()) out[name] = value;
    out["card_gateway"] = dbs.card_gateway();
    json::array received;
    for (auto id : dbs.received_orders()) received.push_back(id);
    auto activity = activity_of_all(nullptr);
    out["data_platform"] = json::object{{"received_orders", std::move(received)}, {"attempts", activity.at("attempts")}};
    out["outbox"] = activity.at("outbox");
    return out;
}

std::vector<std::string> command_shop::check_invariants() {
    serving_databases dbs{options_.databases};
    auto contexts = dbs.contexts();
    audit_sources sources;
    {
        std::lock_guard lock{mutex_};
        sources.initial_stock = initial_stock_;
    }
    for (auto& p : contexts.at("products").as_array())
        sources.initial_stock.try_emplace(p.at("id").as_int64(), p.at("stock").as_int64() + p.at("sold").as_int64());
    sources.net_charged = [&dbs](std::int64_t order) { return dbs.net_charged(order); };
    sources.saga = [this](const std::string& key) { return client_->saga(key); };
    sources.holder = [this](const std::string& marker) { return client_->holder(marker); };
    return app::check_invariants(contexts, sources);
}

} // namespace shop::app
