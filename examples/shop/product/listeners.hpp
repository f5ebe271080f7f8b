#pragma once
// The product context's reaction to an order: deduct the stock of every line. Stock is a
// counter whose changes commute, so a saga reserves what it takes (escrow) rather than
// holding the product: other orders go on against what is left, and nobody waits.

#include <algorithm>
#include <string>
#include <vector>

#include "../events/events.hpp"
#include "../kernel/wiring.hpp"
#include "model.hpp"
#include "publisher.hpp"
#include "repository.hpp"

namespace shop::product {

// The account a saga reserves a product's stock on, and back.
inline constexpr std::string_view stock_account = "product:";
inline std::string stock_of(std::int64_t product_id) { return std::string{stock_account} + std::to_string(product_id); }
inline std::int64_t product_of(const std::string& account) { return std::stoll(account.substr(stock_account.size())); }

inline void wire(kernel::wiring& w, repository& products, choreo::sqlite::reservations* reserved) {
    publisher out{w.bus()};
    w.step<events::OrderCreateStart>(
        "deduct stock",
        [&products, out, reserved](const events::OrderCreateStart& order, kernel::step_scope& scope) {
            events::OrderDeduct deducted{.order_id = order.order_id, .items = {}};
            for (auto& line : order.lines) {
                auto p = products.find(line.product_id);
                if (!p)
                    throw kernel::domain_error(kernel::refusal::not_found, "product_not_found",
                                               fmt::format("no product with id {}", line.product_id));
                check_deduct(*p, line.quantity);
                products.deduct(p->id, line.quantity);
                scope.reserve(reserved, stock_of(p->id), line.quantity);
                deducted.items.push_back({p->id, p->name, p->price, line.quantity});
            }
            out.publish(scope.unit(), std::move(deducted));
        },
        [&products, reserved](const events::OrderCreateStart&, kernel::step_scope& scope) {
            for (auto& r : scope.release(reserved)) products.restock(product_of(r.account), r.amount);
        });
}

} // namespace shop::product
