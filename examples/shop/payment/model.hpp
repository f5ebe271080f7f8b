#pragma once
// The payment context's model: a payment per order, PENDING until paid.

#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "../kernel/errors.hpp"

namespace shop::payment {

struct payment {
    std::int64_t id = 0;
    std::int64_t order_id = 0;
    std::int64_t amount = 0;
    std::string status;    // PENDING, PAID, CANCELLED
    std::string method;    // empty until paid
    std::string reference; // the card charge, while it stands
};

inline void check_payable(const payment& p) {
    if (p.status != "PENDING")
        throw kernel::domain_error(kernel::refusal::conflict, "payment_not_pending",
                                   fmt::format("payment {} is {}, not PENDING", p.id, p.status));
}

} // namespace shop::payment
