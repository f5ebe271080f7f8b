#pragma once
// The events of the shop: the only thing the bounded contexts share. Names follow the
// seed's diagrams (OrderCreateStart, OrderDeduct, ...). Plain structs, no behaviour.
// They are described (Boost.Describe), which is all the outbox's JSON codec needs to
// store them: the data platform send and, in saga mode, every step goes through outboxes.

#include <boost/describe/class.hpp>
#include <boost/describe/enum.hpp>

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
BOOST_DESCRIBE_STRUCT(order_line, (), (product_id, quantity))

// Order creation (order-creation-events.png)
struct OrderCreateStart {
    static constexpr std::string_view choreo_event_name = "OrderCreateStart";
    id order_id = 0;
    id user_id = 0;
    std::vector<order_line> lines;
    std::vector<id> issued_coupon_ids; // applied in this order
};
BOOST_DESCRIBE_STRUCT(OrderCreateStart, (), (order_id, user_id, lines, issued_coupon_ids))

struct deducted_item {
    id product_id = 0;
    std::string name;
    std::int64_t unit_price = 0;
    std::int64_t quantity = 0;
};
BOOST_DESCRIBE_STRUCT(deducted_item, (), (product_id, name, unit_price, quantity))
struct OrderDeduct {
    static constexpr std::string_view choreo_event_name = "OrderDeduct";
    id order_id = 0;
    std::vector<deducted_item> items;
};
BOOST_DESCRIBE_STRUCT(OrderDeduct, (), (order_id, items))

struct applied_coupon {
    id issued_coupon_id = 0;
    std::string type; // "PERCENT" or "FIXED"
    std::int64_t amount = 0;
};
BOOST_DESCRIBE_STRUCT(applied_coupon, (), (issued_coupon_id, type, amount))
struct OrderUsed {
    static constexpr std::string_view choreo_event_name = "OrderUsed";
    id order_id = 0;
    std::vector<applied_coupon> coupons;
};
BOOST_DESCRIBE_STRUCT(OrderUsed, (), (order_id, coupons))

struct OrderCreated {
    static constexpr std::string_view choreo_event_name = "OrderCreated";
    id order_id = 0;
    id user_id = 0;
    std::int64_t price = 0; // after discounts
};
BOOST_DESCRIBE_STRUCT(OrderCreated, (), (order_id, user_id, price))

struct OrderPaymentCreated {
    static constexpr std::string_view choreo_event_name = "OrderPaymentCreated";
    id order_id = 0;
    id payment_id = 0;
};
BOOST_DESCRIBE_STRUCT(OrderPaymentCreated, (), (order_id, payment_id))

// Order payment (order-payment-events.png)
enum class payment_method { points, card };
BOOST_DESCRIBE_ENUM(payment_method, points, card)

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
BOOST_DESCRIBE_STRUCT(PayStart, (), (order_id, user_id, payment_id, amount, method))

struct PaymentOrderUse {
    static constexpr std::string_view choreo_event_name = "PaymentOrderUse";
    id order_id = 0;
    id payment_id = 0;
    std::int64_t amount = 0;
    payment_method method = payment_method::points;
    std::string reference; // the card charge, for card payments
};
BOOST_DESCRIBE_STRUCT(PaymentOrderUse, (), (order_id, payment_id, amount, method, reference))

struct OrderPaymentCompleted {
    static constexpr std::string_view choreo_event_name = "OrderPaymentCompleted";
    id order_id = 0;
    id payment_id = 0;
};
BOOST_DESCRIBE_STRUCT(OrderPaymentCompleted, (), (order_id, payment_id))

struct OrderCompleted {
    static constexpr std::string_view choreo_event_name = "OrderCompleted";
    id order_id = 0;
    id user_id = 0;
    std::int64_t price = 0;
};
BOOST_DESCRIBE_STRUCT(OrderCompleted, (), (order_id, user_id, price))

} // namespace shop::events
