#pragma once
// The events of the shop: the only thing the bounded contexts share. Names follow the
// seed's diagrams (OrderCreateStart, OrderDeduct, ...). Plain structs, no behaviour.
// Those that go through the outbox are described (Boost.Describe), which is all the
// outbox's JSON codec needs to store them.

#include <boost/describe/class.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shop::events {

using id = std::int64_t;

struct order_line {
    id product_id = 0;
    std::int64_t quantity = 0;
};

// Order creation (order-creation-events.png)
struct OrderCreateStart {
    static constexpr std::string_view choreo_event_name = "OrderCreateStart";
    id order_id = 0;
    id user_id = 0;
    std::vector<order_line> lines;
    std::vector<id> issued_coupon_ids; // applied in this order
};

struct deducted_item {
    id product_id = 0;
    std::string name;
    std::int64_t unit_price = 0;
    std::int64_t quantity = 0;
};
struct OrderDeduct {
    static constexpr std::string_view choreo_event_name = "OrderDeduct";
    id order_id = 0;
    std::vector<deducted_item> items;
};

struct applied_coupon {
    id issued_coupon_id = 0;
    std::string type; // "PERCENT" or "FIXED"
    std::int64_t amount = 0;
};
struct OrderUsed {
    static constexpr std::string_view choreo_event_name = "OrderUsed";
    id order_id = 0;
    std::vector<applied_coupon> coupons;
};

struct OrderCreated {
    static constexpr std::string_view choreo_event_name = "OrderCreated";
    id order_id = 0;
    id user_id = 0;
    std::int64_t price = 0; // after discounts
};

struct OrderPaymentCreated {
    static constexpr std::string_view choreo_event_name = "OrderPaymentCreated";
    id order_id = 0;
    id payment_id = 0;
};

// Order payment (order-payment-events.png)
enum class payment_method { points, card };

[[nodiscard]] constexpr std::string_view to_string(payment_method m) noexcept {
    return m == payment_method::points ? "points" : "card";
}

struct PayStart {
    static constexpr std::string_view choreo_event_name = "PayStart";
    id order_id = 0;
    id user_id = 0;
    id payment_id = 0;
    std::int64_t amount = 0;
    payment_method method = payment_method::points;
};

struct PaymentOrderUse {
    static constexpr std::string_view choreo_event_name = "PaymentOrderUse";
    id order_id = 0;
    id payment_id = 0;
    std::int64_t amount = 0;
    payment_method method = payment_method::points;
    std::string reference; // the card charge, for card payments
};

struct OrderPaymentCompleted {
    static constexpr std::string_view choreo_event_name = "OrderPaymentCompleted";
    id order_id = 0;
    id payment_id = 0;
};

struct OrderCompleted {
    static constexpr std::string_view choreo_event_name = "OrderCompleted";
    id order_id = 0;
    id user_id = 0;
    std::int64_t price = 0;
};
BOOST_DESCRIBE_STRUCT(OrderCompleted, (), (order_id, user_id, price))

} // namespace shop::events
