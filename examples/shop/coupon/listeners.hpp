#pragma once
// The coupon context's reaction to an order: use the issued coupons it names.

#include <functional>
#include <string>

#include "../events/events.hpp"
#include "../kernel/wiring.hpp"
#include "model.hpp"
#include "publisher.hpp"
#include "repository.hpp"

namespace shop::coupon {

inline void wire(kernel::wiring& w, repository& coupons, std::function<std::int64_t()> now) {
    publisher out{w.bus()};
    w.step<events::OrderCreateStart>(
        "use coupons",
        [&coupons, out, now](const events::OrderCreateStart& order, kernel::step_scope& scope) {
            events::OrderUsed used{.order_id = order.order_id, .coupons = {}};
            for (auto id : order.issued_coupon_ids) {
                scope.hold("coupon:" + std::to_string(id));
                auto c = coupons.find_issued(id);
                if (!c)
                    throw kernel::domain_error(kernel::refusal::not_found, "coupon_not_found",
                                               fmt::format("no issued coupon with id {}", id));
                check_use(*c, order.user_id, now());
                coupons.mark_used(id, order.order_id);
                used.coupons.push_back({id, c->type, c->amount});
            }
            out.publish(scope.unit(), std::move(used)); // also with no coupons: the order waits for this branch
        },
        [&coupons](const events::OrderCreateStart& order, kernel::step_scope&) {
            for (auto id : order.issued_coupon_ids) coupons.mark_unused(id, order.order_id);
        });
}

} // namespace shop::coupon
