#pragma once
// The payment context: a PENDING payment for each created order; a card charged through
// the gateway for card payments; the payment completed once the money is in.

#include <string>

#include "../events/events.hpp"
#include "../kernel/wiring.hpp"
#include "../outside/card_gateway.hpp"
#include "model.hpp"
#include "publisher.hpp"
#include "repository.hpp"

namespace shop::payment {

inline void wire(kernel::wiring& w, repository& payments, outside::card_gateway& gateway) {
    publisher out{w.bus()};
    w.step<events::OrderCreated>(
        "create payment",
        [&payments, out](const events::OrderCreated& order, kernel::step_scope& scope) {
            auto id = payments.create(order.order_id, order.price);
            out.publish(scope.unit(), events::OrderPaymentCreated{order.order_id, id});
        },
        [&payments](const events::OrderCreated& order, kernel::step_scope&) {
            if (auto p = payments.for_order(order.order_id)) payments.set_status(p->id, "CANCELLED", "");
        });

    w.step<events::PayStart>(
        "charge card",
        [&payments, &gateway, out](const events::PayStart& pay, kernel::step_scope& scope) {
            auto p = payments.find(pay.payment_id);
            if (!p)
                throw kernel::domain_error(kernel::refusal::not_found, "payment_not_found",
                                           fmt::format("no payment {}", pay.payment_id));
            check_payable(*p);
            scope.hold("payment:" + std::to_string(p->id));
            auto reference = gateway.charge(pay.order_id, pay.amount);
            payments.set_reference(p->id, reference);
            out.publish(scope.unit(), events::PaymentOrderUse{.order_id = pay.order_id,
                                                              .payment_id = p->id,
                                                              .amount = pay.amount,
                                                              .method = pay.method,
                                                              .reference = reference});
        },
        [&payments, &gateway](const events::PayStart& pay, kernel::step_scope&) {
            auto p = payments.find(pay.payment_id);
            if (!p || p->reference.empty()) return;
            gateway.refund(p->reference);
            payments.set_reference(p->id, "");
        },
        [](const events::PayStart& pay) { return pay.method == events::payment_method::card; }); // points: not ours
    // The gateway is outside the transaction that records the charge (the whole flow's,
    // or the saga step's): if it rolls back after the card was charged, refund the charge.
    w.keep(w.bus().subscribe<events::PaymentOrderUse>(
        [&gateway](const events::PaymentOrderUse& use) {
            if (use.method == events::payment_method::card && !use.reference.empty()) gateway.refund(use.reference);
        },
        {.name = "payment/refund card", .when = choreo::phase::after_rollback}));

    w.step<events::PaymentOrderUse>(
        "complete payment",
        [&payments, out](const events::PaymentOrderUse& use, kernel::step_scope& scope) {
            auto p = payments.find(use.payment_id);
            if (!p)
                throw kernel::domain_error(kernel::refusal::not_found, "payment_not_found",
                                           fmt::format("no payment {}", use.payment_id));
            check_payable(*p);
            if (p->amount != use.amount)
                throw kernel::domain_error(fmt::format("payment {} is for {}, not {}", p->id, p->amount, use.amount));
            payments.set_status(p->id, "PAID", std::string{events::to_string(use.method)});
            out.publish(scope.unit(), events::OrderPaymentCompleted{use.order_id, p->id});
        },
        [&payments](const events::PaymentOrderUse& use, kernel::step_scope&) {
            payments.set_status(use.payment_id, "PENDING", "");
        });
}

} // namespace shop::payment
