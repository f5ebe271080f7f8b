#pragma once
// The product context's model: a product with its price and stock. Searching products is
// its main job; deducting stock for orders is the other.

#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "../kernel/errors.hpp"

namespace shop::product {

struct product {
    std::int64_t id = 0;
    std::string name;
    std::int64_t price = 0;
    std::int64_t stock = 0;
    std::int64_t sold = 0; // units deducted by orders, net of restocks: stock + sold stays constant
};

// Stock never goes negative: an order takes 1..stock units.
inline void check_deduct(const product& p, std::int64_t quantity) {
    if (quantity < 1)
        throw kernel::domain_error(kernel::refusal::invalid_input, "invalid_quantity",
                                   fmt::format("quantity of '{}' must be at least 1", p.name));
    if (quantity > p.stock)
        throw kernel::domain_error(
            kernel::refusal::conflict, "out_of_stock",
            fmt::format("out of stock: '{}' has {} left, {} ordered", p.name, p.stock, quantity));
}

} // namespace shop::product
