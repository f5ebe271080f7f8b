#pragma once
// The order context's listeners: it collects the stock and coupon branches (fan-in), is
// priced, becomes CREATED with its payment recorded, and completes when paid.

#include <string>
#include <string_view>

#include "../events/events.hpp"
#include "../kernel/checked.hpp"
#include "../kernel/wiring.hpp"
#include "model.hpp"
#include "publisher.hpp"
#include "repository.hpp"

namespace shop::order {

// Both branches are in: price the order and tell the payment context. The order becomes
// CREATED only with its payment (record payment), so whoever sees it CREATED can pay it.
inline void confirm(repository& orders, const publisher& out, std::int64_t id, choreo::unit_of_work& unit) {
    auto o = orders.find(id);
    if (!o) throw kernel::domain_error(kernel::refusal::not_found, "order_not_found", fmt::format("no order {}", id));
    std::int64_t price = 0;
    for (auto& i : o->items)
        price = kernel::checked_add(price,
                                    kernel::checked_multiply(i.unit_price, i.quantity,
                                                             fmt::format("the price of {} x '{}'", i.quantity, i.name)),
                                    fmt::format("the price of order {}", id));
    price = price_after(price, o->coupons);
    orders.set_price(id, price);
    out.publish(unit, events::OrderCreated{id, o->user_id, price});
}

inline std::int64_t order_of(std::string_view saga_key) {
    return std::stoll(std::string{saga_key.substr(saga_key.find(':') + 1)});
}

inline void wire(kernel::wiring& w, repository& orders) {
    publisher out{w.bus()};
    w.starts<events::OrderCreateStart>("create order",
                                       [&orders](const events::OrderCreateStart& e, choreo::saga::step_context&) {
                                           orders.set_status(e.order_id, cancelled);
                                       });
    // A failed payment leaves the order CREATED, to be paid again.
    w.starts<events::PayStart>("start payment", [](const events::PayStart&, choreo::saga::step_context&) {});
    // `within`: the step that brought a branch (the transactional timeline shows where the
    // confirmation ran).
    auto fan_in = [&orders, out, &w](std::int64_t id, kernel::step_scope& scope, const char* within) {
        if (scope.in_saga()) return; // the saga runtime's join does it
        auto o = orders.find(id);
        if (o && o->product_status && o->coupon_status) {
            w.check_fault("order/confirm order");
            confirm(orders, out, id, scope.unit());
            w.ran("confirm order", within);
        }
    };
    w.step<events::OrderDeduct>(
        "add items",
        [&orders, fan_in](const events::OrderDeduct& e, kernel::step_scope& scope) {
            std::vector<item> items;
            for (auto& i : e.items) items.push_back({i.product_id, i.name, i.unit_price, i.quantity});
            orders.add_items(e.order_id, items);
            fan_in(e.order_id, scope, "inside order/add items");
        },
        [&orders](const events::OrderDeduct& e, kernel::step_scope&) { orders.remove_items(e.order_id); });
    w.step<events::OrderUsed>(
        "add coupons",
        [&orders, fan_in](const events::OrderUsed& e, kernel::step_scope& scope) {
            std::vector<used_coupon> coupons;
            for (auto& c : e.coupons) coupons.push_back({c.issued_coupon_id, c.type, c.amount});
            orders.add_coupons(e.order_id, coupons);
            fan_in(e.order_id, scope, "inside order/add coupons");
        },
        [&orders](const events::OrderUsed& e, kernel::step_scope&) { orders.remove_coupons(e.order_id); });
    w.join(
        "confirm order", {"add items", "add coupons"},
        [&orders, out](choreo::saga::step_context& ctx) {
            confirm(orders, out, order_of(ctx.saga().view()), ctx.unit());
        },
        [&orders](choreo::saga::step_context& ctx) { orders.set_status(order_of(ctx.saga().view()), create_pending); });
    w.step<events::OrderPaymentCreated>(
        "record payment",
        [&orders](const events::OrderPaymentCreated& e, kernel::step_scope& scope) {
            orders.set_payment(e.order_id, e.payment_id);
            orders.set_status(e.order_id, created);
            scope.complete_saga(); // the order is created and has its payment
        },
        [&orders](const events::OrderPaymentCreated& e, kernel::step_scope&) {
            orders.set_status(e.order_id, create_pending);
            orders.set_payment(e.order_id, 0);
        });
    w.step<events::OrderPaymentCompleted>(
        "complete order",
        [&orders, out](const events::OrderPaymentCompleted& e, kernel::step_scope& scope) {
            auto o = orders.find(e.order_id);
            if (!o)
                throw kernel::domain_error(kernel::refusal::not_found, "order_not_found",
                                           fmt::format("no order {}", e.order_id));
            if (o->status != std::string{created})
                throw kernel::domain_error(kernel::refusal::conflict, "order_not_payable",
                                           fmt::format("order {} is {}, not CREATED", o->id, o->status));
            orders.set_status(e.order_id, completed);
            out.publish(scope.unit(), events::OrderCompleted{o->id, o->user_id, o->price});
            scope.complete_saga();
        },
        [&orders](const events::OrderPaymentCompleted& e, kernel::step_scope&) {
            orders.set_status(e.order_id, created);
        });
}

} // namespace shop::order
