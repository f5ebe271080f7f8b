// The relay (include/choreo/durable/impl/outbox_relay.hpp): on a store that
// claims_on_append, the rows a commit writes are claimed by the relay already and reach it
// from memory, with no claim transaction per commit; a unit of work that rolls back hands it
// nothing; rows written claimed by a run that died are delivered by the next run. Two relays
// on one database deliver each row once; asynchronous listeners are settled by their reports
// without a relay thread waiting; the tracer sees the relay's deliveries.

#include "support.hpp"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace durable_test;
using choreo::durable::outbox;
using choreo::sqlite::database;
using choreo::sqlite::outbox_store;

namespace {

// The SQLite outbox store, counting the claims the relay makes; with `claiming` false it
// has no append_claimed (a store of the plain concept).
template <bool claiming>
class counting_store {
public:
    explicit counting_store(choreo::sqlite::outbox_store& inner) : inner_(inner) {}

    [[nodiscard]] database& resource() const noexcept { return inner_.resource(); }
    void append(const choreo::durable::outbox_message& message) { inner_.append(message); }
    std::int64_t append_claimed(const choreo::durable::outbox_message& message, std::string_view relay,
                                std::chrono::system_clock::time_point until) requires claiming {
        return inner_.append_claimed(message, relay, until);
    }
    std::vector<choreo::durable::outbox_row> claim(std::string_view relay, std::size_t limit,
                                                   std::chrono::system_clock::time_point now,
                                                   std::chrono::milliseconds lease) {
        ++claims;
        return inner_.claim(relay, limit, now, lease);
    }
    void settle(std::span<const choreo::durable::settlement> settled) { inner_.settle(settled); }
    std::size_t release(std::string_view relay) { return inner_.release(relay); }
    choreo::durable::outbox_counts counts() { return inner_.counts(); }
    std::vector<choreo::durable::outbox_row> failed(std::size_t limit) { return inner_.failed(limit); }
    bool resubmit(std::int64_t id) { return inner_.resubmit(id); }
    std::size_t resubmit_failed() { return inner_.resubmit_failed(); }
    std::size_t purge_delivered(std::chrono::system_clock::time_point before) { return inner_.purge_delivered(before); }

    std::atomic<int> claims{0};

private:
    choreo::sqlite::outbox_store& inner_;
};
static_assert(choreo::durable::claims_on_append<counting_store<true>>);
static_assert(!choreo::durable::claims_on_append<counting_store<false>>);
static_assert(choreo::durable::claims_on_append<choreo::sqlite::outbox_store>);

struct delivered_orders {
    std::mutex mutex;
    std::vector<std::int64_t> orders;

    void add(const order_paid& e) {
        std::lock_guard lock{mutex};
        orders.push_back(e.order_id);
    }
    std::size_t size() {
        std::lock_guard lock{mutex};
        return orders.size();
    }
};

// Commits `count` payments one at a time, each delivered before the next; returns the
// claims the relay made meanwhile.
template <bool claiming>
int claims_for_commits(int count) {
    scratch_dir dir;
    choreo::bus bus{quiet_bus()};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    choreo::sqlite::outbox_store sqlite_store{db};
    counting_store<claiming> store{sqlite_store};
    // The poll comes once an hour: every pass below is a commit's.
    outbox relay{bus, store, {.poll_interval = std::chrono::hours{1}}};
    delivered_orders got;
    relay.template subscribe<order_paid>([&](const order_paid& e) { got.add(e); }, {.name = "send"});
    relay.start();
    REQUIRE(eventually([&] { return store.claims.load() >= 1; })); // the first pass, at start
    for (int i = 1; i <= count; ++i) {
        pay(bus, db, i, 10);
        REQUIRE(eventually([&] { return got.size() == static_cast<std::size_t>(i); }));
    }
    REQUIRE(eventually([&] { return relay.counts().delivered == static_cast<std::uint64_t>(count); }));
    CHECK(relay.counts().pending == 0);
    relay.stop();
    std::set<std::int64_t> distinct(got.orders.begin(), got.orders.end());
    CHECK(distinct.size() == static_cast<std::size_t>(count));
    return store.claims.load();
}

} // namespace

TEST_CASE("a commit's rows reach the relay from memory: no claim per commit") {
    // Only the pass at start() claims; each commit's rows were written claimed.
    CHECK(claims_for_commits<true>(30) == 1);
    // A store without append_claimed: each commit's pass claims its rows back.
    CHECK(claims_for_commits<false>(30) >= 31);
}

TEST_CASE("a unit of work that fails at its commit hands its rows to no relay") {
    scratch_dir dir;
    choreo::bus bus{quiet_bus()};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    // A child row whose parent does not exist passes every statement and fails the COMMIT.
    db.execute("CREATE TABLE parents (id INTEGER PRIMARY KEY)");
    db.execute("CREATE TABLE children (parent INTEGER REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)");
    choreo::sqlite::outbox_store store{db};
    outbox relay{bus, store};
    delivered_orders got;
    relay.subscribe<order_paid>([&](const order_paid& e) { got.add(e); }, {.name = "send"});
    relay.start();
    {
        auto unit = bus.begin(db);
        db.execute("INSERT INTO children VALUES (42)");
        unit.publish(order_paid{1, 10, "never"});
        CHECK_THROWS(unit.commit()); // the outbox row was written claimed, then rolled back
    }
    // The next row may well get the rolled-back row's id: it must be delivered, once.
    pay(bus, db, 2, 10);
    REQUIRE(eventually([&] { return relay.counts().delivered == 1; }));
    relay.stop();
    CHECK(got.orders == std::vector<std::int64_t>{2});
    CHECK(relay.counts().pending == 0);
}

TEST_CASE("rows a run wrote claimed and never relayed are delivered by the next run") {
    scratch_dir dir;
    choreo::bus bus{quiet_bus()};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    choreo::sqlite::outbox_store store{db};
    // What a process that died between its commits and its relay's pass left: rows claimed
    // by its relay for an hour.
    db.transact([&] {
        for (std::int64_t order = 1; order <= 3; ++order) {
            choreo::envelope env;
            env.id = choreo::event_id{7, static_cast<std::uint64_t>(order)};
            auto payload = choreo::durable::json_codec{}.encode(order_paid{order, 10, "kim"});
            store.append_claimed({choreo::event_type_name<order_paid>(), "send", env, payload}, "relay",
                                 std::chrono::system_clock::now() + std::chrono::hours{1});
        }
    });
    outbox next{bus, store};
    delivered_orders got;
    next.subscribe<order_paid>([&](const order_paid& e) { got.add(e); }, {.name = "send"});
    next.start(); // takes back what its earlier run held
    REQUIRE(eventually([&] { return next.counts().delivered == 3; }));
    next.stop();
    CHECK(std::set<std::int64_t>(got.orders.begin(), got.orders.end()) == std::set<std::int64_t>{1, 2, 3});
    CHECK(got.size() == 3);
}

TEST_CASE("two relays on one database deliver each row once") {
    scratch_dir dir;
    choreo::bus bus{quiet_bus()};
    const auto path = dir.file("shop.db");
    database first_db{path};
    create_orders_table(first_db);
    database second_db{path};
    outbox_store first_store{first_db};
    outbox_store second_store{second_db};
    std::mutex mutex;
    std::map<std::int64_t, int> deliveries;
    std::map<std::string, int> by_relay;
    auto listener = [&](const char* relay) {
        return [&, relay](const order_paid& e) {
            std::lock_guard lock{mutex};
            ++deliveries[e.order_id];
            ++by_relay[relay];
        };
    };
    outbox first{bus, first_store, {.relay_name = "first", .batch_size = 16}};
    outbox second{bus, second_store, {.relay_name = "second", .batch_size = 16}};
    first.subscribe<order_paid>(listener("first"), {.name = "send"});
    second.subscribe<order_paid>(listener("second"), {.name = "send"});
    first.start();
    second.start();

    constexpr int per_writer = 400;
    std::thread writer_a{[&] {
        for (int i = 0; i < per_writer; ++i) pay(bus, first_db, 2 * i, 1);
    }};
    std::thread writer_b{[&] {
        for (int i = 0; i < per_writer; ++i) pay(bus, second_db, 2 * i + 1, 1);
    }};
    writer_a.join();
    writer_b.join();
    REQUIRE(eventually([&] { return first.counts().delivered == 2 * per_writer; }));
    std::lock_guard lock{mutex};
    CHECK(deliveries.size() == 2 * per_writer);
    int twice = 0;
    for (const auto& [order, n] : deliveries) twice += n != 1;
    CHECK(twice == 0);
    MESSAGE("first relay delivered " << by_relay["first"] << ", second " << by_relay["second"]);
}

namespace {

// What an asynchronous durable listener was handed, with the reports it has not made yet.
struct handed_log {
    std::mutex mutex;
    std::vector<std::int64_t> orders; // in hand-over order
    std::vector<choreo::durable::delivery_report> reports;

    void take(const order_paid& e, choreo::durable::delivery_report report) {
        std::lock_guard lock{mutex};
        orders.push_back(e.order_id);
        reports.push_back(std::move(report));
    }
    std::size_t size() {
        std::lock_guard lock{mutex};
        return orders.size();
    }
    // Reports for hand-over `n` from a thread of its own, as a transport's poller would.
    void report_from_another_thread(std::size_t n, std::exception_ptr error) {
        choreo::durable::delivery_report report;
        {
            std::lock_guard lock{mutex};
            report = reports.at(n);
        }
        std::thread{[report, error] { report(error); }}.join();
    }
};

} // namespace

TEST_CASE("an asynchronous listener's rows are delivered when it reports, and no relay thread waits for the reports") {
    scratch_dir dir;
    // One thread in the pool: a relay that waited on it for the reports would stop the bus.
    choreo::bus bus{{.threads = 1, .on_incident = [](const choreo::incident&) {}}};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    outbox_store store{db};
    outbox relay{bus, store, {.poll_interval = std::chrono::milliseconds{5}}};
    handed_log handed;
    relay.subscribe_async<order_paid>(
        [&](const order_paid& e, const choreo::envelope& env, choreo::durable::delivery_report report) {
            CHECK(env.key.view() == "order:" + std::to_string(e.order_id));
            handed.take(e, std::move(report));
        },
        {.name = "to the transport", .retry = {.delayed_retries = 3, .initial_delay = std::chrono::milliseconds{1}}});
    std::atomic<int> bus_ran{0};
    auto other = bus.subscribe<order_cancelled>([&](const order_cancelled&) { ++bus_ran; },
                                                {.mode = choreo::delivery::asynchronous});
    relay.start();
    {
        auto unit = bus.begin(db);
        for (std::int64_t order = 1; order <= 3; ++order) {
            insert_order(db, order, 10 * order);
            unit.publish(order_paid{order, 10 * order, "kim"},
                         choreo::correlation_key{"order:" + std::to_string(order)});
        }
        unit.commit();
    }
    REQUIRE(eventually([&] { return handed.size() == 3; }));
    {
        std::lock_guard lock{handed.mutex};
        CHECK(handed.orders == std::vector<std::int64_t>{1, 2, 3}); // one batch, in the rows' order
    }
    // The pool's only thread is free while the reports are outstanding.
    bus.publish(order_cancelled{9});
    CHECK(eventually([&] { return bus_ran == 1; }));
    CHECK(relay.counts() == choreo::durable::outbox_counts{3, 0, 0});

    handed.report_from_another_thread(0, nullptr);
    handed.report_from_another_thread(1, std::make_exception_ptr(std::runtime_error("broker away")));
    handed.report_from_another_thread(0, std::make_exception_ptr(std::runtime_error("a second report"))); // ignored
    CHECK(relay.counts().delivered == 0); // the batch settles when its last report came
    handed.report_from_another_thread(2, nullptr);
    // Row 2 comes round again; its second hand-over is reported delivered.
    REQUIRE(eventually([&] { return handed.size() == 4; }));
    {
        std::lock_guard lock{handed.mutex};
        CHECK(handed.orders.back() == 2);
    }
    CHECK(relay.counts() == choreo::durable::outbox_counts{1, 2, 0});
    handed.report_from_another_thread(3, nullptr);
    REQUIRE(eventually([&] { return relay.counts() == choreo::durable::outbox_counts{0, 3, 0}; }));
    relay.stop();
}

TEST_CASE("an asynchronous listener may report at once, throw, or never report (retried after the lease)") {
    scratch_dir dir;
    incident_log incidents;
    choreo::bus bus{incidents.bus_options()};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    outbox_store store{db};
    outbox relay{bus, store, {.lease = std::chrono::milliseconds{300}, .poll_interval = std::chrono::milliseconds{5}}};
    handed_log silent; // order 3's first hand-over is never reported
    std::atomic<int> handovers{0};
    relay.subscribe_async<order_paid>(
        [&](const order_paid& e, const choreo::envelope&, choreo::durable::delivery_report report) {
            ++handovers;
            if (e.order_id == 1) return report(nullptr); // delivered before the listener returns
            if (e.order_id == 2) throw choreo::permanent_error("the transport refuses this event");
            if (silent.size() == 0) return silent.take(e, std::move(report));
            report(nullptr);
        },
        {.name = "to the transport", .retry = {.delayed_retries = 2, .initial_delay = std::chrono::milliseconds{1}}});
    relay.start();
    pay(bus, db, 1, 10);
    REQUIRE(eventually([&] { return relay.counts().delivered == 1; }));
    pay(bus, db, 2, 20);
    REQUIRE(eventually([&] { return relay.counts().failed == 1; }));
    CHECK(relay.failed()[0].last_error == "the transport refuses this event");
    pay(bus, db, 3, 30);
    REQUIRE(eventually([&] { return relay.counts().delivered == 2; }));
    CHECK(handovers == 4); // order 3 twice: unreported within the lease, then delivered
    silent.report_from_another_thread(0, std::make_exception_ptr(std::runtime_error("too late"))); // ignored
    CHECK(relay.counts() == choreo::durable::outbox_counts{0, 2, 1});
    std::lock_guard lock{incidents.mutex};
    CHECK(std::any_of(incidents.messages.begin(), incidents.messages.end(), [](const std::string& m) {
        return m.find("no delivery report within the lease (300 ms)") != std::string::npos;
    }));
}

TEST_CASE("relay_once() waits for an asynchronous listener's reports; immediate retries are refused for it") {
    scratch_dir dir;
    choreo::bus bus{quiet_bus()};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    outbox_store store{db};
    outbox relay{bus, store, {.relay = false}};
    std::vector<std::thread> transport;
    relay.subscribe_async<order_paid>(
        [&](const order_paid&, const choreo::envelope&, choreo::durable::delivery_report report) {
            transport.emplace_back([report] {
                std::this_thread::sleep_for(std::chrono::milliseconds{50});
                report(nullptr);
            });
        },
        {.name = "to the transport"});
    CHECK_THROWS_AS(relay.subscribe_async<order_cancelled>(
                        [](const order_cancelled&, const choreo::envelope&, choreo::durable::delivery_report) {},
                        {.name = "eager", .retry = {.immediate_retries = 1}}),
                    choreo::usage_error);
    relay.start();
    pay(bus, db, 1, 10);
    pay(bus, db, 2, 20);
    CHECK(relay.relay_once() == 2);
    CHECK(relay.counts() == choreo::durable::outbox_counts{0, 2, 0});
    CHECK(relay.relay_once() == 0);
    for (auto& t : transport) t.join();
}

TEST_CASE("the tracer sees relay deliveries") {
    scratch_dir dir;
    std::mutex mutex;
    std::vector<std::string> traced;
    choreo::bus bus{{.threads = 2, .tracer = [&](const choreo::dispatch_trace& t) {
                         std::lock_guard lock{mutex};
                         traced.push_back(fmt::format("{} {} {} {}", t.listener, to_string(t.listener_phase),
                                                      to_string(t.outcome), t.attempt));
                     }}};
    database db{dir.file("shop.db")};
    create_orders_table(db);
    outbox_store store{db};
    outbox relay{bus, store};
    relay.subscribe<order_paid>([](const order_paid&) {}, {.name = "send to data platform"});
    relay.start();
    pay(bus, db, 1, 10);
    REQUIRE(eventually([&] {
        std::lock_guard lock{mutex};
        return std::find(traced.begin(), traced.end(), "send to data platform after_commit ok 1") != traced.end();
    }));
}
