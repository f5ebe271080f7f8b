#pragma once
// The shapes in which the shop shows its things as JSON (the web API, the commands between
// processes, the demo): one place for each, so every way of reaching the shop answers alike.

#include <boost/json.hpp>

#include <optional>
#include <vector>

#include <choreo/saga/status.hpp>

#include "../coupon/model.hpp"
#include "../order/model.hpp"
#include "../payment/model.hpp"
#include "../product/model.hpp"

namespace shop::app {

[[nodiscard]] boost::json::array products_view(const std::vector<product::product>& products);
[[nodiscard]] boost::json::array coupons_view(const std::vector<coupon::issued_coupon>& coupons);
// null when there is no payment (yet)
[[nodiscard]] boost::json::value payment_view(const std::optional<payment::payment>& p);
[[nodiscard]] boost::json::object order_view(const order::order& o, boost::json::value payment);
[[nodiscard]] boost::json::object saga_view(const choreo::saga::saga_record& s);

} // namespace shop::app
