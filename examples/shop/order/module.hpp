#pragma once
// The order context's front door: orders, the sagas of both flows it starts (creation and
// payment), the steps that add an order's items and coupons, confirm it, record its payment
// and complete it, and the commands that create, pay and show orders.

#include <array>
#include <string_view>

#include "../kernel/context.hpp"
#include "listeners.hpp"
#include "publisher.hpp"
#include "repository.hpp"
#include "service.hpp"

namespace shop::order {

// An order with its items and coupons; `payment` as the caller has it (the payment's view,
// its id, or null).
[[nodiscard]] inline boost::json::object order_view(const order& o, boost::json::value payment) {
    boost::json::array items, coupons;
    for (auto& i : o.items)
        items.push_back(boost::json::object{
            {"product", i.product_id}, {"name", i.name}, {"unit_price", i.unit_price}, {"quantity", i.quantity}});
    for (auto& c : o.coupons)
        coupons.push_back(
            boost::json::object{{"issued_coupon", c.issued_coupon_id}, {"type", c.type}, {"amount", c.amount}});
    return boost::json::object{{"id", o.id},
                               {"user", o.user_id},
                               {"status", o.status},
                               {"price", o.price},
                               {"items", std::move(items)},
                               {"coupons", std::move(coupons)},
                               {"payment", std::move(payment)}};
}

struct module {
    static constexpr std::string_view name = "order";
    using publisher = shop::order::publisher;
    static constexpr std::array<std::string_view, 4> commands{"create_order", "pay", "order", "order_status"};

    class instance {
    public:
        explicit instance(kernel::context_host& host)
            : db_(host.db), orders_(host.db), service_(host.wiring, host.db, orders_) {
            orders_.create_schema();
            wire(host.wiring, orders_);
        }
        void answer(kernel::command_table& table) {
            table.add("create_order", [this](const boost::json::object& args, kernel::request& request) {
                std::vector<events::order_line> lines;
                auto* l = args.if_contains("lines");
                if (!l || !l->is_array())
                    throw kernel::domain_error("create_order needs 'lines': [[product, quantity], ...]");
                for (auto& line : l->as_array()) {
                    if (!line.is_array() || line.as_array().size() != 2 || !line.as_array()[0].is_int64() ||
                        !line.as_array()[1].is_int64())
                        throw kernel::domain_error("an order line is [product, quantity]");
                    lines.push_back({line.as_array()[0].as_int64(), line.as_array()[1].as_int64()});
                }
                std::vector<std::int64_t> coupons;
                if (auto* cs = args.if_contains("coupons"); cs && cs->is_array())
                    for (auto& c : cs->as_array())
                        if (c.is_int64()) coupons.push_back(c.as_int64());
                service_.create(kernel::integer(args, "user"), lines, coupons, request);
                return request.answer();
            });
            table.add("pay", [this](const boost::json::object& args, kernel::request& request) {
                auto method =
                    kernel::flag(args, "card") ? events::payment_method::card : events::payment_method::points;
                service_.pay(kernel::integer(args, "order"), method, request);
                return request.answer();
            });
            // The order, and its payment's id for the payment context to show.
            table.add("order", [this](const boost::json::object& args) {
                auto id = kernel::integer(args, "order");
                auto found = db_.read([&] { return orders_.find(id); });
                if (!found) return boost::json::object{{"order", nullptr}, {"payment", 0}};
                return boost::json::object{{"order", order_view(*found, nullptr)}, {"payment", found->payment_id}};
            });
            table.add("order_status", [this](const boost::json::object& args) {
                auto id = kernel::integer(args, "order");
                auto found = db_.read([&] { return orders_.find(id); });
                return boost::json::object{{"status", found ? found->status : std::string{"NONE"}}};
            });
        }

    private:
        kernel::database& db_;
        repository orders_;
        service service_;
    };

    // "orders": every order, its payment as the payment's id (the audit joins the two).
    static void read(kernel::database& db, boost::json::object& out) {
        repository orders{db};
        out["orders"] = kernel::rows_as_json(
            db, [&] { return orders.ids(); },
            [&](std::int64_t id) {
                auto o = *orders.find(id);
                return order_view(o, o.payment_id);
            });
    }
};

} // namespace shop::order
