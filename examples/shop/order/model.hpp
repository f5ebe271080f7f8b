#pragma once
// The order context's model: an order with the items and coupons it copied at order time
// (so later changes elsewhere do not alter it), its price, and its payment.

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "../kernel/errors.hpp"

namespace shop::order {

// CREATE_PENDING -> CREATED -> COMPLETED, or CANCELLED (never after COMPLETED).
inline constexpr const char* create_pending = "CREATE_PENDING";
inline constexpr const char* created = "CREATED";
inline constexpr const char* completed = "COMPLETED";
inline constexpr const char* cancelled = "CANCELLED";

struct item {
    std::int64_t product_id = 0;
    std::string name;
    std::int64_t unit_price = 0;
    std::int64_t quantity = 0;
};
struct used_coupon {
    std::int64_t issued_coupon_id = 0;
    std::string type;
    std::int64_t amount = 0;
};

struct order {
    std::int64_t id = 0;
    std::int64_t user_id = 0;
    std::string status;
    std::int64_t price = 0;      // after discounts, once CREATED
    bool product_status = false; // the stock branch has arrived
    bool coupon_status = false;  // the coupon branch has arrived
    std::int64_t payment_id = 0;
    std::vector<item> items;
    std::vector<used_coupon> coupons;
};

// Coupons apply one after another, in the order given; the price never goes below zero.
inline std::int64_t price_after(std::int64_t price, const std::vector<used_coupon>& coupons) {
    for (auto& c : coupons) {
        // price * amount / 100 without the product, which overflows for large prices:
        // price = 100q + r, so price * amount / 100 = q * amount + r * amount / 100 exactly.
        if (c.type == "PERCENT")
            price -= price / 100 * c.amount + price % 100 * c.amount / 100;
        else
            price -= c.amount;
        price = std::max<std::int64_t>(price, 0);
    }
    return price;
}

inline void check_payable(const order& o) {
    if (o.status != std::string{created})
        throw kernel::domain_error(kernel::refusal::conflict, "order_not_payable",
                                   fmt::format("order {} is {}, it can be paid only when CREATED", o.id, o.status));
}

} // namespace shop::order
