#pragma once
// The product context's front door: its catalogue and stock, the step that deducts stock
// for an order, and the commands that add and search products.

#include <array>
#include <string_view>

#include "../kernel/context.hpp"
#include "listeners.hpp"
#include "publisher.hpp"
#include "repository.hpp"
#include "service.hpp"

namespace shop::product {

[[nodiscard]] inline boost::json::array products_view(const std::vector<product>& products) {
    boost::json::array found;
    for (auto& p : products)
        found.push_back(boost::json::object{{"id", p.id}, {"name", p.name}, {"price", p.price}, {"stock", p.stock}});
    return found;
}

struct module {
    static constexpr std::string_view name = "product";
    using publisher = shop::product::publisher;
    static constexpr std::array<std::string_view, 2> commands{"add_product", "search_products"};

    class instance {
    public:
        explicit instance(kernel::context_host& host) : products_(host.db), service_(host.bus, host.db, products_) {
            products_.create_schema();
            wire(host.wiring, products_, host.reservations);
        }
        void answer(kernel::command_table& table) {
            table.add("add_product", [this](const boost::json::object& args, kernel::request& request) {
                service_.add(kernel::text(args, "name"), kernel::integer(args, "price"), kernel::integer(args, "stock"),
                             request);
                return request.answer();
            });
            table.add("search_products", [this](const boost::json::object& args) {
                return boost::json::object{
                    {"products",
                     products_view(service_.search(kernel::text(args, "name"), kernel::integer(args, "min_price"),
                                                   kernel::integer(args, "max_price")))}};
            });
        }

    private:
        repository products_;
        service service_;
    };

    // "products": every product with its stock and units sold.
    static void read(kernel::database& db, boost::json::object& out) {
        repository products{db};
        out["products"] = kernel::rows_as_json(
            db, [&] { return products.all(); },
            [](const product& p) {
                return boost::json::object{
                    {"id", p.id}, {"name", p.name}, {"price", p.price}, {"stock", p.stock}, {"sold", p.sold}};
            });
    }
};

} // namespace shop::product
