#pragma once
// The point context's part of a payment by points: spend the user's points. A balance is a
// counter whose changes commute, so a payment reserves what it spends (escrow) rather than
// holding the balance: the user's other payments go on against what is left.

#include <string>

#include "../events/events.hpp"
#include "../kernel/wiring.hpp"
#include "model.hpp"
#include "publisher.hpp"
#include "repository.hpp"

namespace shop::point {

inline void wire(kernel::wiring& w, repository& points, choreo::sqlite::reservations* reserved) {
    publisher out{w.bus()};
    w.step<events::PayStart>(
        "use points",
        [&points, out, reserved](const events::PayStart& pay, kernel::step_scope& scope) {
            check_use(points.balance(pay.user_id), pay.amount);
            points.change(pay.user_id, "USE", pay.amount, pay.order_id);
            scope.reserve(reserved, "points:" + std::to_string(pay.user_id), pay.amount);
            out.publish(scope.unit(), events::PaymentOrderUse{.order_id = pay.order_id,
                                                              .payment_id = pay.payment_id,
                                                              .amount = pay.amount,
                                                              .method = pay.method,
                                                              .reference = {}});
        },
        [&points, reserved](const events::PayStart& pay, kernel::step_scope& scope) {
            for (auto& r : scope.release(reserved)) points.change(pay.user_id, "REFUND", r.amount, pay.order_id);
        },
        [](const events::PayStart& pay) { return pay.method == events::payment_method::points; }); // cards: not ours
}

} // namespace shop::point
