#pragma once
// The product context's reaction to an order: deduct the stock of every line.

#include <algorithm>
#include <string>
#include <vector>

#include "../events/events.hpp"
#include "../kernel/wiring.hpp"
#include "model.hpp"
#include "publisher.hpp"
#include "repository.hpp"

namespace shop::product {

inline void wire(kernel::wiring& w, repository& products) {
    publisher out{w.bus()};
    w.step<events::OrderCreateStart>(
        "deduct stock",
        [&products, out](const events::OrderCreateStart& order, kernel::step_scope& scope) {
            // Mark every product in progress first, in id order, so two sagas never wait on each other.
            auto lines = order.lines;
            std::sort(lines.begin(), lines.end(), [](auto& a, auto& b) { return a.product_id < b.product_id; });
            for (auto& line : lines) scope.hold("product:" + std::to_string(line.product_id));
            events::OrderDeduct deducted{.order_id = order.order_id, .items = {}};
            for (auto& line : order.lines) {
                auto p = products.find(line.product_id);
                if (!p)
                    throw kernel::domain_error(kernel::refusal::not_found, "product_not_found",
                                               fmt::format("no product with id {}", line.product_id));
                check_deduct(*p, line.quantity);
                products.deduct(p->id, line.quantity);
                deducted.items.push_back({p->id, p->name, p->price, line.quantity});
            }
            out.publish(scope.unit(), std::move(deducted));
        },
        [&products](const events::OrderCreateStart& order, kernel::step_scope&) {
            for (auto& line : order.lines) products.restock(line.product_id, line.quantity);
        });
}

} // namespace shop::product
