#pragma once
// Checked arithmetic for money, stock, points and times: a result that does not fit in 64
// bits is refused with `amount_too_large` (a 400), never wrapped. Signed overflow is also
// undefined behaviour, so every such sum or product in the shop goes through here.

#include <cstdint>
#include <limits>
#include <string_view>

#include <fmt/format.h>

#include "errors.hpp"

namespace shop::kernel {

[[noreturn]] inline void refuse_too_large(std::string_view what) {
    throw domain_error(refusal::invalid_input, "amount_too_large",
                       fmt::format("{} does not fit in a 64-bit integer (at most {})", what,
                                   std::numeric_limits<std::int64_t>::max()));
}

// a + b, or amount_too_large naming `what`.
[[nodiscard]] inline std::int64_t checked_add(std::int64_t a, std::int64_t b, std::string_view what) {
    std::int64_t sum = 0;
    if (__builtin_add_overflow(a, b, &sum)) refuse_too_large(what);
    return sum;
}

// a * b, or amount_too_large naming `what`.
[[nodiscard]] inline std::int64_t checked_multiply(std::int64_t a, std::int64_t b, std::string_view what) {
    std::int64_t product = 0;
    if (__builtin_mul_overflow(a, b, &product)) refuse_too_large(what);
    return product;
}

} // namespace shop::kernel
