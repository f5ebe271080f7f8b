#include "views.hpp"

namespace shop::app {

namespace json = boost::json;

json::array products_view(const std::vector<product::product>& products) {
    json::array found;
    for (auto& p : products)
        found.push_back(json::object{{"id", p.id}, {"name", p.name}, {"price", p.price}, {"stock", p.stock}});
    return found;
}

json::array coupons_view(const std::vector<coupon::issued_coupon>& coupons) {
    json::array found;
    for (auto& c : coupons)
        found.push_back(json::object{{"issued_coupon", c.id},  {"coupon", c.coupon_id},         {"type", c.type},
                                     {"amount", c.amount},     {"expires_at", c.expires_at}, {"used_by_order", c.used_by_order}});
    return found;
}

json::value payment_view(const std::optional<payment::payment>& p) {
    if (!p) return nullptr;
    return json::object{{"id", p->id}, {"amount", p->amount}, {"status", p->status}, {"method", p->method}};
}

json::object order_view(const order::order& o, json::value payment) {
    json::array items, coupons;
    for (auto& i : o.items)
        items.push_back(json::object{{"product", i.product_id}, {"name", i.name}, {"unit_price", i.unit_price},
                                     {"quantity", i.quantity}});
    for (auto& c : o.coupons)
        coupons.push_back(json::object{{"issued_coupon", c.issued_coupon_id}, {"type", c.type}, {"amount", c.amount}});
    return json::object{{"id", o.id},       {"user", o.user_id},       {"status", o.status},
                        {"price", o.price}, {"items", std::move(items)}, {"coupons", std::move(coupons)},
                        {"payment", std::move(payment)}};
}

json::object saga_view(const choreo::saga::saga_record& s) {
    json::array steps;
    for (auto& step : s.steps)
        steps.push_back(json::object{{"step", step.name}, {"state", choreo::saga::to_string(step.state)}});
    json::object out{{"key", s.key}, {"status", choreo::saga::to_string(s.status)}, {"steps", std::move(steps)}};
    if (!s.reason.empty()) {
        out["reason"] = s.reason;
        out["failed_step"] = s.failed_step;
    }
    return out;
}

} // namespace shop::app
