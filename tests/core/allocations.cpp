// Dispatch allocates nothing per event: counted with a replaced global operator new.
#include "support.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
thread_local bool counting = false;
thread_local std::size_t allocations = 0;
} // namespace

// GCC sees the replaced pair inlined into library code and warns of a mismatch that is
// not there: both sides are the replacements below.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t size) {
    if (counting) ++allocations;
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc{};
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {
template <class F>
std::size_t allocations_during(F&& f) {
    allocations = 0;
    counting = true;
    f();
    counting = false;
    return allocations;
}
} // namespace

using namespace test;
using choreo::phase;

TEST_CASE("immediate dispatch allocates nothing per event") {
    choreo::bus bus{{.threads = 1}};
    long sum = 0;
    std::vector<choreo::connection> listeners;
    for (int i = 0; i < 16; ++i)
        listeners.push_back(bus.subscribe<order_created>([&](const order_created& e) { sum += e.id; }));
    listeners.push_back(bus.subscribe<order_created>(
        [&](const order_created&, const choreo::envelope& env) { sum += env.id.is_nil() ? 0 : 1; }));
    bus.publish(order_created{1}); // first use on this thread
    auto count = allocations_during([&] {
        for (int i = 0; i < 10'000; ++i) bus.publish(order_created{i});
    });
    CHECK(count == 0);
    CHECK(sum > 0);
}

TEST_CASE("a unit of work with before_commit and after_commit listeners allocates nothing per event in steady state") {
    choreo::bus bus{{.threads = 1}};
    long before = 0, after = 0;
    auto b = bus.subscribe<order_created>(
        [&](const order_created& e) {
            before += e.id;
            bus.publish(stock_deducted{e.id});
        },
        {.when = phase::before_commit});
    auto a =
        bus.subscribe<stock_deducted>([&](const stock_deducted& e) { after += e.id; }, {.when = phase::after_commit});
    auto one_unit = [&](int events) {
        choreo::no_resource db;
        auto unit = bus.begin(db);
        for (int i = 0; i < events; ++i) bus.publish(order_created{i});
        unit.commit();
    };
    one_unit(100); // warm the pooled buffers
    auto count = allocations_during([&] {
        for (int round = 0; round < 1000; ++round) one_unit(10);
    });
    CHECK(count == 0);
    CHECK(before == after);
}
