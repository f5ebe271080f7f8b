// Typed publishers restricted to a context's own events.
#include "support.hpp"

#include <doctest/doctest.h>

using namespace test;

namespace {
using order_publisher = choreo::publisher<order_created, order_completed>;

template <class P, class E>
concept can_publish = requires(const P& p, E e) {
    p.publish(e);
};
} // namespace

static_assert(can_publish<order_publisher, order_created>);
static_assert(can_publish<order_publisher, const order_completed&>);
static_assert(!can_publish<order_publisher, stock_deducted>, "a context cannot publish another context's events");
static_assert(!can_publish<order_publisher, coupon_used>);

TEST_CASE("a publisher publishes its own events, with a key or into an explicit unit of work") {
    choreo::bus bus{{.threads = 1}};
    order_publisher orders{bus};
    std::vector<std::string> seen;
    auto created = bus.subscribe<order_created>([&](const order_created&, const choreo::envelope& env) {
        seen.push_back("created " + std::string{env.key.view()});
    });
    auto completed = bus.subscribe<order_completed>([&](const order_completed&) { seen.push_back("completed"); },
                                                    {.when = choreo::phase::after_commit});
    orders.publish(order_created{1}, choreo::correlation_key{"k"});
    auto unit = bus.begin();
    orders.publish(unit, order_completed{1});
    CHECK(seen == std::vector<std::string>{"created k"});
    unit.commit();
    CHECK(seen == std::vector<std::string>{"created k", "completed"});
    CHECK(&orders.target() == &bus);
}
