// In-progress markers, contention between sagas, and timeouts, on the manual clock.

#include "support.hpp"

#include <doctest/doctest.h>

using namespace choreo::saga;
using namespace std::chrono_literals;

namespace {

struct reserve {
    static constexpr std::string_view choreo_event_name = "Reserve";
    std::string sku;
    long quantity = 0;
};
struct reserved {
    std::string sku;
};
struct close_order {};

// A desk starts sagas that reserve stock in a warehouse; a saga completes only when
// the test sends close_order, so a test decides how long it holds the SKU's marker.
struct depot {
    saga_test::table desk_rows, stock;
    participant desk, warehouse;
    std::vector<std::string> log;

    explicit depot(runtime& sagas) : desk(sagas, "desk", desk_rows), warehouse(sagas, "warehouse", stock) {
        desk.starts<reserve>("open", [this](const reserve&, step_context& ctx) {
            log.push_back("desk undo " + std::string{ctx.saga().view()});
        });
        warehouse.step<reserve>(
            "reserve",
            [this](const reserve& r, step_context& ctx) {
                ctx.hold("sku:" + r.sku);
                stock[r.sku] -= r.quantity;
                ctx.publish(reserved{r.sku});
            },
            [this](const reserve& r, step_context&) { stock[r.sku] += r.quantity; });
        desk.step<close_order>("close", [](const close_order&, step_context& ctx) { ctx.complete_saga(); });
    }

    choreo::correlation_key open(const std::string& id, const std::string& sku) {
        return desk.start(reserve{sku, 1}, id);
    }
};

} // namespace

TEST_CASE("a second saga on a held aggregate waits, then completes when the first ends") {
    testing::harness h;
    depot d{h.sagas};
    d.stock.write("x", 5);
    auto a = d.open("a", "x");
    h.settle();
    CHECK(h.sagas.holder("sku:x") == std::string{a.view()});

    auto b = d.open("b", "x");
    h.settle();
    CHECK(h.count(saga_incident_kind::aggregate_busy) == 1);
    CHECK(h.sagas.state(b)->state_of("warehouse/reserve") == step_state::claimed); // waiting, not failed
    CHECK(d.stock.read("x") == 4);
    h.advance(500ms); // no timer polls the marker meanwhile
    CHECK(h.count(saga_incident_kind::aggregate_busy) == 1);
    CHECK(d.stock.read("x") == 4);

    h.events.publish(close_order{}, a);
    h.settle(); // a's end hands the marker to b, which runs at once: no clock moved
    CHECK(h.sagas.state(a)->status == saga_status::completed);
    CHECK(h.sagas.holder("sku:x") == std::string{b.view()});
    CHECK(h.sagas.state(b)->state_of("warehouse/reserve") == step_state::done);
    h.events.publish(close_order{}, b);
    h.settle();
    CHECK(h.sagas.state(b)->status == saga_status::completed);
    CHECK_FALSE(h.sagas.holder("sku:x"));
    CHECK(d.stock.read("x") == 3);
    CHECK(h.count(saga_incident_kind::contention_exhausted) == 0);
}

TEST_CASE("sagas waiting for one aggregate get it in the order they came") {
    testing::harness h;
    depot d{h.sagas};
    d.stock.write("x", 10);
    auto a = d.open("a", "x");
    h.settle();
    std::vector<choreo::correlation_key> waiting;
    for (std::string id : {"b", "c", "d", "e"}) {
        waiting.push_back(d.open(id, "x"));
        h.settle();
    }
    CHECK(h.count(saga_incident_kind::aggregate_busy) == 4);
    auto holder = a;
    for (auto& next : waiting) {
        h.events.publish(close_order{}, holder);
        h.settle();
        CHECK(h.sagas.holder("sku:x") == std::string{next.view()});
        holder = next;
    }
    h.events.publish(close_order{}, holder);
    h.settle();
    CHECK(d.stock.read("x") == 5);
    for (auto& key : waiting) CHECK(h.sagas.state(key)->status == saga_status::completed);
}

TEST_CASE("a saga rolled back while it holds the aggregate hands it to the next in line") {
    testing::harness h{{.timeout = 2s, .marker_wait = 5s}};
    depot d{h.sagas};
    d.stock.write("x", 10);
    auto a = d.open("a", "x");
    h.advance(1500ms);
    auto b = d.open("b", "x"); // due at 3.5 s
    h.settle();
    h.events.publish(close_order{}, a);
    h.settle();
    REQUIRE(h.sagas.holder("sku:x") == std::string{b.view()});
    h.advance(1500ms);
    auto c = d.open("c", "x");
    h.settle();
    CHECK(h.sagas.state(c)->state_of("warehouse/reserve") == step_state::claimed);
    h.advance(500ms); // b's deadline: b is rolled back, and its marker goes to c
    CHECK(h.sagas.state(b)->status == saga_status::rolled_back);
    CHECK(h.sagas.holder("sku:x") == std::string{c.view()});
    CHECK(h.sagas.state(c)->state_of("warehouse/reserve") == step_state::done);
    CHECK(d.stock.read("x") == 8); // a's and c's; b's undone
}

TEST_CASE("a saga that waits past its bound is refused cleanly and compensated") {
    testing::harness h{{.marker_wait = 100ms}};
    depot d{h.sagas};
    d.stock.write("x", 5);
    auto a = d.open("a", "x");
    auto b = d.open("b", "x");
    h.settle();
    h.advance(99ms);
    CHECK(h.sagas.state(b)->status == saga_status::running);
    h.advance(1ms);
    auto state = h.sagas.state(b);
    REQUIRE(state);
    CHECK(state->status == saga_status::rolled_back);
    CHECK(state->failed_step == "warehouse/reserve");
    CHECK(state->reason == "'sku:x' stayed in progress for saga Reserve:a through the 100 ms wait");
    CHECK(h.count(saga_incident_kind::aggregate_busy) == 1);
    CHECK(h.count(saga_incident_kind::contention_exhausted) == 1);
    CHECK(d.log == std::vector<std::string>{"desk undo Reserve:b"});
    CHECK(d.stock.read("x") == 4);                           // only a's unit
    CHECK(h.sagas.holder("sku:x") == std::string{a.view()}); // b never took it, and did not release a's

    h.events.publish(close_order{}, a);
    h.settle();
    CHECK(h.sagas.state(a)->status == saga_status::completed);
    CHECK_FALSE(h.sagas.holder("sku:x")); // b left the queue: nobody was handed it
}

TEST_CASE("a runtime running its most sagas refuses a start before anything is created") {
    testing::harness h{{.timeout = 1s, .max_running = 2}};
    depot d{h.sagas};
    d.stock.write("x", 10);
    auto a = d.open("a", "x");
    (void)d.open("b", "y");
    h.settle();
    bool refused = false;
    try {
        (void)d.open("c", "x");
    } catch (const saga_overloaded_error& e) {
        refused = true;
        CHECK(e.retry_after() >= 1ms);
        CHECK(std::string{e.what()}.starts_with("2 sagas are running, the most this process starts at once"));
    }
    CHECK(refused);
    CHECK_FALSE(h.sagas.state("Reserve:c")); // nothing created, nothing published
    CHECK(d.stock.read("x") == 9);

    h.events.publish(close_order{}, a);
    h.settle();
    auto c = d.open("c", "x"); // a's end made room
    h.settle();
    CHECK(h.sagas.state(c)->state_of("warehouse/reserve") == step_state::done);
    CHECK_THROWS_AS((void)d.open("d", "x"), saga_overloaded_error);
    h.advance(1s); // b and c pass their deadline: rolled back, and their places freed
    (void)d.open("d", "x");
}

TEST_CASE("a saga not completed by its deadline is rolled back and compensated") {
    testing::harness h{{.timeout = 1s}};
    depot d{h.sagas};
    d.stock.write("x", 5);
    auto a = d.open("a", "x");
    h.settle();
    h.advance(999ms, 111ms);
    CHECK(h.sagas.state(a)->status == saga_status::running);
    h.advance(1ms);
    auto state = h.sagas.state(a);
    CHECK(state->status == saga_status::rolled_back);
    CHECK(state->reason == "timed out after 1000 ms");
    CHECK(state->failed_step.empty());
    CHECK(d.stock.read("x") == 5);
    CHECK_FALSE(h.sagas.holder("sku:x"));
    CHECK(h.count(saga_incident_kind::timed_out) == 1);

    h.events.publish(close_order{}, a); // too late
    h.settle();
    CHECK(h.sagas.state(a)->status == saga_status::rolled_back);
    CHECK(h.count(saga_incident_kind::step_too_late) == 1);
}

TEST_CASE("a saga that completed in time is not touched by its deadline") {
    testing::harness h{{.timeout = 1s}};
    depot d{h.sagas};
    d.stock.write("x", 5);
    auto a = d.open("a", "x");
    h.settle();
    h.events.publish(close_order{}, a);
    h.settle();
    h.advance(2s, 500ms);
    CHECK(h.sagas.state(a)->status == saga_status::completed);
    CHECK(d.stock.read("x") == 4);
    CHECK(h.count(saga_incident_kind::timed_out) == 0);
}

TEST_CASE("after a restart, expire_overdue rolls back what the lost timers would have") {
    testing::harness h{{.timeout = 1s}};
    depot d{h.sagas};
    d.stock.write("x", 5);
    auto a = d.open("a", "x");
    h.settle();
    // A second runtime on the same store and bus, as a restarted process would have, whose clock is past the deadline.
    testing::manual_clock later{h.clock.now() + 5s};
    runtime restarted{
        h.events, h.store, {.clock = &later, .deliver = h.net.hook(), .on_incident = [](const saga_incident&) {}}};
    CHECK(restarted.expire_overdue() == 1);
    h.settle();
    CHECK(h.sagas.state(a)->status == saga_status::rolled_back);
    CHECK(d.stock.read("x") == 5);
    CHECK(restarted.expire_overdue() == 0);
}

TEST_CASE("starting a saga twice with one key is refused") {
    testing::harness h;
    depot d{h.sagas};
    (void)d.open("a", "x");
    CHECK_THROWS_AS((void)d.open("a", "x"), saga_exists_error);
}

TEST_CASE("misuse is refused with clear errors") {
    testing::harness h;
    depot d{h.sagas};
    participant p{h.sagas, "p"};
    CHECK_THROWS_WITH_AS(p.start(reserve{"x", 1}, "id"),
                         "participant 'p' does not start sagas with Reserve: declare it with starts<Reserve>()",
                         choreo::usage_error);
    CHECK_THROWS_AS(participant(h.sagas, "a/b"), choreo::usage_error);
    CHECK_THROWS_AS(p.step<reserve>("", [](const reserve&, step_context&) {}), choreo::usage_error);
    CHECK_THROWS_WITH_AS(
        p.join(
            "j", {"x", "y"}, [](step_context&) {}, [](step_context&) {}),
        "join 'p/j' waits for 'p/x', which is not a step of participant 'p' (register its branches first)",
        choreo::usage_error);
    CHECK_THROWS_AS(p.join(
                        "j", {"x"}, [](step_context&) {}, [](step_context&) {}),
                    choreo::usage_error);
    // Two participants may not have one name: it prefixes their steps' names.
    CHECK_THROWS_AS(participant(h.sagas, "desk"), choreo::usage_error);
}

TEST_CASE("an event without a saga key reaches no step and is reported") {
    testing::harness h;
    depot d{h.sagas};
    h.events.publish(reserve{"x", 1});
    h.settle();
    CHECK(h.count(saga_incident_kind::missing_saga_key) == 1);
    CHECK(d.stock.read("x") == 0);
}
