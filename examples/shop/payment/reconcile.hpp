#pragma once
// Reconciliation with the card gateway, as payment services run it against their
// provider's books: a charge no committed payment refers to is refunded. A process killed
// between the gateway's answer and its own commit leaves such a charge (the step never
// committed, so nothing will compensate it). Run it when no charge is in flight: at the
// start of the payment context's process, before it takes events.

#include <cstddef>

#include "../kernel/sqlite.hpp"
#include "../outside/card_gateway.hpp"
#include "repository.hpp"

namespace shop::payment {

inline std::size_t reconcile(outside::card_gateway& gateway, repository& payments, kernel::database& db) {
    std::size_t refunded = 0;
    for (auto& charge : gateway.standing()) {
        auto payment = db.read([&] { return payments.for_order(charge.order_id); });
        if (payment && payment->reference == charge.reference) continue;
        gateway.refund(charge.reference);
        ++refunded;
    }
    return refunded;
}

} // namespace shop::payment
