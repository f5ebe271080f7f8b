#pragma once
// The point context's part of a payment by points: spend the user's points.

#include <string>

#include "../events/events.hpp"
#include "../kernel/wiring.hpp"
#include "model.hpp"
#include "publisher.hpp"
#include "repository.hpp"

namespace shop::point {

inline void wire(kernel::wiring& w, repository& points) {
    publisher out{w.bus()};
    w.step<events::PayStart>(
        "use points",
        [&points, out](const events::PayStart& pay, kernel::step_scope& scope) {
            scope.hold("points:" + std::to_string(pay.user_id));
            check_use(points.balance(pay.user_id), pay.amount);
            points.change(pay.user_id, "USE", pay.amount, pay.order_id);
            out.publish(scope.unit(), events::PaymentOrderUse{.order_id = pay.order_id,
                                                              .payment_id = pay.payment_id,
                                                              .amount = pay.amount,
                                                              .method = pay.method,
                                                              .reference = {}});
        },
        [&points](const events::PayStart& pay, kernel::step_scope&) {
            points.change(pay.user_id, "REFUND", pay.amount, pay.order_id);
        },
        [](const events::PayStart& pay) { return pay.method == events::payment_method::points; }); // cards: not ours
}

} // namespace shop::point
