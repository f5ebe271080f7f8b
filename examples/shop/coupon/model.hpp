#pragma once
// The coupon context's model: coupons (a limited stock issued inside a window) and the
// coupons issued to users (owned, expiring, used once).

#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "../kernel/errors.hpp"

namespace shop::coupon {

struct coupon {
    std::int64_t id = 0;
    std::string name;
    std::string type; // PERCENT (1-100) or FIXED (>= 1)
    std::int64_t amount = 0;
    std::int64_t stock = 0;                       // how many may be issued
    std::int64_t issued = 0;                      // how many were
    std::int64_t issue_from = 0, issue_until = 0; // seconds; issue only inside [from, until)
    std::int64_t valid_for = 0;                   // seconds an issued coupon lasts
};

struct issued_coupon {
    std::int64_t id = 0;
    std::int64_t coupon_id = 0;
    std::int64_t user_id = 0;
    std::int64_t expires_at = 0;
    std::int64_t used_by_order = 0; // 0: unused
    std::string type;
    std::int64_t amount = 0;
};

inline void check_definition(const std::string& type, std::int64_t amount) {
    if (type == "PERCENT" && (amount < 1 || amount > 100))
        throw kernel::domain_error(kernel::refusal::invalid_input, "invalid_coupon",
                                   fmt::format("a PERCENT coupon takes 1 to 100, not {}", amount));
    if (type == "FIXED" && amount < 1)
        throw kernel::domain_error(kernel::refusal::invalid_input, "invalid_coupon",
                                   fmt::format("a FIXED coupon takes at least 1, not {}", amount));
    if (type != "PERCENT" && type != "FIXED")
        throw kernel::domain_error(kernel::refusal::invalid_input, "invalid_coupon",
                                   fmt::format("unknown coupon type '{}'", type));
}

inline void check_issue(const coupon& c, std::int64_t now) {
    if (now < c.issue_from || now >= c.issue_until)
        throw kernel::domain_error(kernel::refusal::rule_violated, "coupon_not_issuing",
                                   fmt::format("coupon '{}' is not being issued now", c.name));
    if (c.issued >= c.stock)
        throw kernel::domain_error(kernel::refusal::conflict, "coupon_sold_out",
                                   fmt::format("coupon '{}' has run out", c.name));
}

inline void check_use(const issued_coupon& c, std::int64_t user_id, std::int64_t now) {
    if (c.user_id != user_id)
        throw kernel::domain_error(kernel::refusal::forbidden, "coupon_of_another_user",
                                   fmt::format("coupon {} belongs to another user", c.id));
    if (c.used_by_order != 0)
        throw kernel::domain_error(kernel::refusal::conflict, "coupon_already_used",
                                   fmt::format("coupon {} was already used by order {}", c.id, c.used_by_order));
    if (now >= c.expires_at)
        throw kernel::domain_error(kernel::refusal::rule_violated, "coupon_expired",
                                   fmt::format("coupon {} has expired", c.id));
}

} // namespace shop::coupon
