// The shop's invariants, checked over what the five contexts' databases hold.

#include "audit.hpp"
#include "views.hpp"

#include <fmt/format.h>

#include <choreo/saga/participant.hpp>

#include "../contexts.hpp"
#include "../events/events.hpp"
#include "../outside/card_gateway.hpp"
#include "../outside/data_platform_api.hpp"

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

namespace shop::app {

namespace json = boost::json;

namespace {

// The reservations the saga steps on `db` hold (choreo::sqlite::reservations), if it has any.
void read_reservations(kernel::database& db, json::array& out) {
    db.read([&] {
        kernel::statement exists{db,
                                 "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'choreo_reservations'"};
        if (!exists.step()) return;
        kernel::statement rows{db, "SELECT saga, step, account, amount FROM choreo_reservations"};
        while (rows.step())
            out.push_back(json::object{{"saga", rows.text(0)},
                                       {"step", rows.text(1)},
                                       {"account", rows.text(2)},
                                       {"amount", rows.integer(3)}});
    });
}

} // namespace

json::object read_contexts(const std::function<kernel::database&(std::string_view context)>& database_of) {
    json::object out;
    json::array reservations;
    std::vector<const kernel::database*> read; // one database may serve every context
    contexts::each([&](auto m) {
        using module = typename decltype(m)::type;
        auto& db = database_of(module::name);
        module::read(db, out);
        if (std::find(read.begin(), read.end(), &db) != read.end()) return;
        read.push_back(&db);
        read_reservations(db, reservations);
    });
    out["reservations"] = std::move(reservations);
    return out;
}

std::vector<std::string> check_invariants(const json::object& st, const audit_sources& sources) {
    std::vector<std::string> broken;
    auto fail = [&](std::string text) { broken.push_back(std::move(text)); };
    auto initial_stock = [&](std::int64_t product) {
        auto it = sources.initial_stock.find(product);
        return it == sources.initial_stock.end() ? std::int64_t{0} : it->second;
    };

    std::map<std::int64_t, std::string> order_status;
    std::map<std::int64_t, std::int64_t> units_in_live_orders; // product -> units in CREATED or COMPLETED orders
    std::map<std::int64_t, int> coupon_uses;                   // issued coupon -> live orders using it
    for (auto& v : st.at("orders").as_array()) {
        auto& o = v.as_object();
        auto id = o.at("id").as_int64();
        std::string status{o.at("status").as_string()};
        order_status[id] = status;
        if (status == "CREATE_PENDING")
            fail(fmt::format("order {} is still CREATE_PENDING after the flow settled", id));
        bool live = status == "CREATED" || status == "COMPLETED";
        if (!live && (!o.at("items").as_array().empty() || !o.at("coupons").as_array().empty()))
            fail(fmt::format("order {} is {} but still lists items or coupons", id, status));
        for (auto& i : o.at("items").as_array())
            if (live) units_in_live_orders[i.at("product").as_int64()] += i.at("quantity").as_int64();
        for (auto& c : o.at("coupons").as_array())
            if (live) coupon_uses[c.at("issued_coupon").as_int64()] += 1;
    }
    for (auto& v : st.at("products").as_array()) {
        auto& p = v.as_object();
        auto id = p.at("id").as_int64();
        auto stock = p.at("stock").as_int64(), sold = p.at("sold").as_int64();
        if (stock < 0) fail(fmt::format("product {} has negative stock", id));
        if (stock + sold != initial_stock(id))
            fail(fmt::format("product {}: stock {} + sold {} != initial {}", id, stock, sold, initial_stock(id)));
        if (sold != units_in_live_orders[id])
            fail(fmt::format("product {}: {} sold but live orders hold {}", id, sold, units_in_live_orders[id]));
    }
    for (auto& v : st.at("coupons").as_array()) {
        auto& c = v.as_object();
        auto id = c.at("issued_coupon").as_int64();
        auto used_by = c.at("used_by_order").as_int64();
        if (coupon_uses[id] > 1) fail(fmt::format("coupon {} is used by {} orders", id, coupon_uses[id]));
        bool used_by_live =
            used_by != 0 && (order_status[used_by] == "CREATED" || order_status[used_by] == "COMPLETED");
        if (used_by != 0 && !used_by_live)
            fail(fmt::format("coupon {} is marked used by order {}, which is {}", id, used_by,
                             order_status.count(used_by) ? order_status[used_by] : "absent"));
        if (coupon_uses[id] == 1 && !used_by_live)
            fail(fmt::format("coupon {} is in an order but not marked used", id));
    }
    for (auto& v : st.at("points").as_array()) {
        auto& p = v.as_object();
        auto expected = p.at("charged").as_int64() - p.at("used").as_int64() + p.at("refunded").as_int64();
        if (p.at("balance").as_int64() != expected)
            fail(fmt::format("user {}: balance {} != charged - used + refunded = {}", p.at("user").as_int64(),
                             p.at("balance").as_int64(), expected));
    }
    std::map<std::int64_t, std::string> payment_of_order;
    for (auto& v : st.at("payments").as_array()) {
        auto& p = v.as_object();
        auto order = p.at("order").as_int64();
        std::string status{p.at("status").as_string()};
        payment_of_order[order] = status;
        auto net = sources.net_charged(order);
        bool paid_by_card = status == "PAID" && p.at("method").as_string() == "card";
        if (net != (paid_by_card ? p.at("amount").as_int64() : 0))
            fail(fmt::format("order {}: card net charge {} does not match its {} payment", order, net, status));
    }
    for (auto& [id, status] : order_status) {
        auto payment = payment_of_order.count(id) ? payment_of_order[id] : std::string{"none"};
        bool agrees = (status == "COMPLETED" && payment == "PAID") || (status == "CREATED" && payment == "PENDING") ||
                      (status == "CANCELLED" && (payment == "none" || payment == "CANCELLED"));
        if (!agrees) fail(fmt::format("order {} is {} but its payment is {}", id, status, payment));
    }
    if (!sources.saga) return broken;
    // Saga mode: every saga ended (completed, or rolled back with every compensation done),
    // and no aggregate is left marked in progress.
    for (auto& [id, status] : order_status) {
        auto create =
            sources.saga(std::string{choreo::saga::key_for<events::OrderCreateStart>(std::to_string(id)).view()});
        if (create && !choreo::saga::has_ended(create->status))
            fail(fmt::format("order {}: its creation saga is still {}", id, choreo::saga::to_string(create->status)));
        for (int attempt = 1; attempt < 10; ++attempt) {
            auto pay = sources.saga(
                std::string{choreo::saga::key_for<events::PayStart>(fmt::format("{}#{}", id, attempt)).view()});
            if (!pay) break;
            if (!choreo::saga::has_ended(pay->status))
                fail(fmt::format("order {}: payment saga {} is still {}", id, attempt,
                                 choreo::saga::to_string(pay->status)));
        }
    }
    std::vector<std::string> markers;
    for (auto& v : st.at("products").as_array()) markers.push_back(fmt::format("product:{}", v.at("id").as_int64()));
    for (auto& v : st.at("coupons").as_array())
        markers.push_back(fmt::format("coupon:{}", v.at("issued_coupon").as_int64()));
    for (auto& v : st.at("points").as_array()) markers.push_back(fmt::format("points:{}", v.at("user").as_int64()));
    for (auto& v : st.at("payments").as_array()) markers.push_back(fmt::format("payment:{}", v.at("id").as_int64()));
    for (auto& marker : markers)
        if (auto holder = sources.holder(marker))
            fail(fmt::format("{} is still marked in progress by saga {}", marker, *holder));
    // Every saga ended: a completed one's reservations are final, a rolled-back one's given back.
    for (auto& r : st.at("reservations").as_array())
        fail(fmt::format("saga {} still holds {} of {} (step {})", std::string_view{r.at("saga").as_string()},
                         r.at("amount").as_int64(), std::string_view{r.at("account").as_string()},
                         std::string_view{r.at("step").as_string()}));
    return broken;
}

struct serving_databases::impl {
    static std::string path(const std::filesystem::path& directory, std::string_view name) {
        auto p = directory / (std::string{name} + ".db");
        if (!std::filesystem::exists(p))
            throw std::runtime_error(fmt::format("no database {} (is it the serving processes' --dir?)", p.string()));
        return p.string();
    }
    static std::map<std::string, std::unique_ptr<kernel::database>, std::less<>> open(const std::filesystem::path& d) {
        std::map<std::string, std::unique_ptr<kernel::database>, std::less<>> all;
        contexts::each([&](auto m) {
            auto name = decltype(m)::type::name;
            all.emplace(std::string{name}, std::make_unique<kernel::database>(path(d, name)));
        });
        return all;
    }
    explicit impl(const std::filesystem::path& d)
        : databases(open(d)), gateway(path(d, "card_gateway")), platform(path(d, "data_platform")) {}
    std::map<std::string, std::unique_ptr<kernel::database>, std::less<>> databases;
    outside::card_gateway gateway;
    outside::data_platform_api platform;
};

serving_databases::serving_databases(const std::filesystem::path& directory)
    : impl_(std::make_unique<impl>(directory)) {}
serving_databases::~serving_databases() = default;

json::object serving_databases::contexts() {
    return read_contexts(
        [this](std::string_view name) -> kernel::database& { return *impl_->databases.find(name)->second; });
}
std::int64_t serving_databases::net_charged(std::int64_t order_id) { return impl_->gateway.net_charged(order_id); }
json::object serving_databases::card_gateway() {
    return {{"charges", static_cast<std::int64_t>(impl_->gateway.charges())},
            {"refunds", static_cast<std::int64_t>(impl_->gateway.refunds())}};
}
std::vector<std::int64_t> serving_databases::received_orders() {
    std::vector<std::int64_t> ids;
    for (auto& r : impl_->platform.received()) ids.push_back(r.order_id);
    return ids;
}

} // namespace shop::app
