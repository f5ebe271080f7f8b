#pragma once
// A saga as JSON (the web API, the commands between processes). Each context shows its own
// things in its module.hpp (product::products_view, order::order_view...).

#include <boost/json.hpp>

#include <choreo/saga/status.hpp>

namespace shop::app {

[[nodiscard]] boost::json::object saga_view(const choreo::saga::saga_record& s);

} // namespace shop::app
