#pragma once
// The point context's model: a user's balance, charged and spent in positive amounts.

#include <cstdint>

#include <fmt/format.h>

#include "../kernel/errors.hpp"

namespace shop::point {

inline constexpr std::int64_t max_balance = 100'000'000;

inline void check_charge(std::int64_t balance, std::int64_t amount) {
    if (amount <= 0)
        throw kernel::domain_error(kernel::refusal::invalid_input, "invalid_amount",
                                   fmt::format("a charge must be positive, not {}", amount));
    if (amount > max_balance - balance) // balance + amount would overflow for amounts near INT64_MAX
        throw kernel::domain_error(kernel::refusal::rule_violated, "balance_limit",
                                   fmt::format("a balance may not exceed {} points", max_balance));
}

inline void check_use(std::int64_t balance, std::int64_t amount) {
    if (amount <= 0)
        throw kernel::domain_error(kernel::refusal::invalid_input, "invalid_amount",
                                   fmt::format("points used must be positive, not {}", amount));
    if (amount > balance)
        throw kernel::domain_error(kernel::refusal::rule_violated, "insufficient_points",
                                   fmt::format("insufficient points: balance {}, {} needed", balance, amount));
}

} // namespace shop::point
