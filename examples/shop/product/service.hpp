#pragma once
// The product context's own operations: add products and search them.

#include <string>
#include <vector>

#include <choreo/core/bus.hpp>

#include "../kernel/requests.hpp"
#include "../kernel/sqlite.hpp"
#include "model.hpp"
#include "repository.hpp"

namespace shop::product {

class service {
public:
    service(choreo::bus& bus, kernel::database& db, repository& products) : bus_(bus), db_(db), products_(products) {}

    std::int64_t add(const std::string& name, std::int64_t price, std::int64_t stock, kernel::request& request) {
        if (name.empty())
            throw kernel::domain_error(kernel::refusal::invalid_input, "invalid_product", "a product needs a name");
        if (price < 0 || stock < 0)
            throw kernel::domain_error(kernel::refusal::invalid_input, "invalid_product",
                                       "price and stock may not be negative");
        auto unit = bus_.begin(db_);
        auto id = products_.add(name, price, stock);
        request.record({{"product", id}});
        unit.commit();
        return id;
    }
    std::vector<product> search(const std::string& name_part, std::int64_t min_price, std::int64_t max_price) {
        if (min_price > max_price)
            throw kernel::domain_error(kernel::refusal::invalid_input, "invalid_price_range",
                                       "the lowest price is above the highest");
        return db_.read([&] { return products_.search(name_part, min_price, max_price); });
    }

private:
    choreo::bus& bus_;
    kernel::database& db_;
    repository& products_;
};

} // namespace shop::product
