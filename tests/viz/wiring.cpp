// choreo/viz/wiring.hpp and flowchart.hpp: a bus's wiring as Mermaid and DOT, drawn from
// what is registered.

#include <choreo/choreo.hpp>
#include <choreo/viz/flowchart.hpp>
#include <choreo/viz/wiring.hpp>

#include <doctest/doctest.h>

#include "support.hpp"

#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using viz_test::database;
using viz_test::order_placed;
using viz_test::stock_reserved;

TEST_CASE("viz: the wiring is drawn from the listeners registered, solid in the transaction, dashed after it") {
    choreo::bus bus;
    auto a = bus.subscribe<order_placed>([](const order_placed&) {},
                                         {.name = "product/reserve stock", .when = choreo::phase::before_commit});
    auto b = bus.subscribe<order_placed>([](const order_placed&) {},
                                         {.name = "product:audit", .when = choreo::phase::before_commit});
    auto c = bus.subscribe<stock_reserved>([](const stock_reserved&) {},
                                           {.name = "payment/charge card", .when = choreo::phase::after_commit});
    auto d = bus.subscribe<stock_reserved>([](const stock_reserved&) {},
                                           {.name = "mail/rolled back", .when = choreo::phase::after_rollback});
    choreo::viz::wiring_options options{
        .publishers = {{std::string{choreo::event_type_name<order_placed>()}, {"order"}},
                       {std::string{choreo::event_type_name<stock_reserved>()}, {"product"}}},
        .events = {std::string{choreo::event_type_name<order_placed>()},
                   std::string{choreo::event_type_name<stock_reserved>()}},
        .node_of = {}};
    auto arrows = choreo::viz::arrows_of(bus.wiring(), options);
    REQUIRE(arrows.size() == 2); // two listeners of product on one event: one arrow; after_rollback: none
    CHECK(arrows[0].from == "order");
    CHECK(arrows[0].to == "product");
    CHECK(arrows[0].synchronous);
    CHECK(arrows[1].from == "product");
    CHECK(arrows[1].to == "payment");
    CHECK_FALSE(arrows[1].synchronous);

    auto placed = std::string{choreo::event_type_name<order_placed>()};
    auto reserved = std::string{choreo::event_type_name<stock_reserved>()};
    CHECK(choreo::viz::to_mermaid(arrows, "Order \"one\"") == "---\ntitle: Order 'one'\n---\nflowchart LR\n"
                                                              "    order[\"order\"] -- \"" +
                                                                  placed +
                                                                  "\" --> product[\"product\"]\n"
                                                                  "    product[\"product\"] -. \"" +
                                                                  reserved + "\" .-> payment[\"payment\"]\n");
    auto dot = choreo::viz::to_dot(arrows, "Orders");
    CHECK(dot.starts_with("digraph wiring {\n    label=\"Orders\\nsolid: before_commit"));
    CHECK(dot.find("    \"order\" -> \"product\" [label=\"" + placed + "\"];\n") != std::string::npos);
    CHECK(dot.find("    \"product\" -> \"payment\" [label=\"" + reserved + "\", style=dashed];\n") !=
          std::string::npos);
    CHECK(dot.ends_with("}\n"));

    // An event no node is said to publish comes from "?"; a node name Mermaid cannot take
    // as an id is kept as the label.
    auto unknown = choreo::viz::arrows_of(bus.wiring(), {.publishers = {}, .events = {reserved}, .node_of = {}});
    REQUIRE(unknown.size() == 1);
    CHECK(unknown[0].from == "?");
    CHECK(choreo::viz::to_mermaid(unknown).find("_[\"?\"] -. ") != std::string::npos);
}
