// The outbox and inbox store contract, one suite run against SQLite and PostgreSQL: rows
// commit with the business change or not at all, claims hand each row to one relay, oldest
// first, for a lease; settlements, retries, failures, resubmission and purging; the inbox
// recognises a redelivery inside the consumer's transaction; the saga journal keeps one row
// per step, with its markers, committed with the step. And the outbox's relay on each,
// delivering after the commit.

#include "support.hpp"

#include <doctest/doctest.h>

#include <set>
#include <thread>
#include <vector>

using namespace postgresql_test;
using namespace std::chrono_literals;
using choreo::durable::outbox_row;
using choreo::durable::settlement;
using durable_test::order_paid;

namespace {

const auto t0 = std::chrono::system_clock::time_point{std::chrono::seconds{1'800'000'000}};

// Appends a row for order `id` in a unit of work with the order itself; rolled back when
// `commit` is false.
template <class Backend>
void append_order(Backend& b, typename Backend::outbox_store& store, std::int64_t id, bool commit = true) {
    b.db.begin();
    b.insert_order(id, 100 * id);
    choreo::envelope env;
    env.id = choreo::event_id{1, static_cast<std::uint64_t>(id)};
    env.causation_id = choreo::event_id{2, static_cast<std::uint64_t>(id)};
    env.key = choreo::correlation_key{"order:" + std::to_string(id)};
    env.time = t0 + std::chrono::milliseconds{id};
    const std::string payload = R"({"order_id":)" + std::to_string(id) + "}";
    store.append({.event_type = "order_paid", .listener = "ship", .event_envelope = env, .payload = payload});
    if (commit)
        b.db.commit();
    else
        b.db.rollback();
}

settlement settled_as(std::int64_t id, settlement::outcome result, unsigned attempts,
                      std::chrono::system_clock::time_point retry_at = {}, std::string error = {}) {
    return {.id = id, .result = result, .attempts = attempts, .retry_at = retry_at, .error = std::move(error)};
}

std::vector<std::int64_t> ids_of(const std::vector<outbox_row>& rows) {
    std::vector<std::int64_t> ids;
    for (auto& r : rows) ids.push_back(r.id);
    return ids;
}

} // namespace

TEST_CASE_TEMPLATE("outbox store: a row exists only if its transaction committed, and reads back whole", Backend,
                   sqlite_backend, postgresql_backend) {
    Backend b;
    typename Backend::outbox_store store{b.db};
    append_order(b, store, 1);
    append_order(b, store, 2, false);
    CHECK(b.orders() == 1);
    CHECK(store.counts() == choreo::durable::outbox_counts{1, 0, 0});
    auto rows = store.claim("relay-a", 10, t0, 30s);
    REQUIRE(rows.size() == 1);
    auto& row = rows[0];
    CHECK(row.event_type == "order_paid");
    CHECK(row.listener == "ship");
    CHECK(row.event == choreo::event_id{1, 1});
    CHECK(row.causation == choreo::event_id{2, 1});
    CHECK(row.key == "order:1");
    CHECK(row.time == t0 + 1ms);
    CHECK(row.payload == R"({"order_id":1})");
    CHECK(row.attempts == 0);
    CHECK(row.state == choreo::durable::row_state::pending);
    CHECK(row.problem.empty());
}

TEST_CASE_TEMPLATE("outbox store: claims are oldest first, limited, and held for their lease", Backend, sqlite_backend,
                   postgresql_backend) {
    Backend b;
    typename Backend::outbox_store store{b.db};
    for (std::int64_t id = 1; id <= 5; ++id) append_order(b, store, id);
    auto first = store.claim("relay-a", 3, t0, 30s);
    REQUIRE(first.size() == 3);
    CHECK(first[0].id < first[1].id);
    CHECK(first[1].id < first[2].id);
    auto second = store.claim("relay-b", 10, t0, 30s);
    REQUIRE(second.size() == 2); // the others are leased to relay-a
    CHECK(second[0].id > first[2].id);
    CHECK(store.claim("relay-b", 10, t0 + 10s, 30s).empty());
    auto expired = store.claim("relay-b", 10, t0 + 31s, 30s); // both leases ran out
    CHECK(expired.size() == 5);
    CHECK(store.release("relay-b") == 5);
    CHECK(store.claim("relay-c", 10, t0 + 32s, 30s).size() == 5);
}

TEST_CASE_TEMPLATE("outbox store: a row appended claimed is its relay's until the lease ends", Backend, sqlite_backend,
                   postgresql_backend) {
    Backend b;
    typename Backend::outbox_store store{b.db};
    choreo::envelope env;
    env.id = choreo::event_id{9, 9};
    env.key = choreo::correlation_key{"order:9"};
    b.db.begin();
    auto id = store.append_claimed(
        {.event_type = "order_paid", .listener = "ship", .event_envelope = env, .payload = "{}"}, "relay-a", t0 + 30s);
    b.db.commit();
    CHECK(id > 0);
    CHECK(store.claim("relay-b", 10, t0, 30s).empty());
    auto later = store.claim("relay-b", 10, t0 + 31s, 30s);
    REQUIRE(later.size() == 1);
    CHECK(later[0].id == id);
}

TEST_CASE_TEMPLATE("outbox store: settlements deliver, retry later, fail, resubmit and purge", Backend, sqlite_backend,
                   postgresql_backend) {
    Backend b;
    typename Backend::outbox_store store{b.db};
    for (std::int64_t id = 1; id <= 4; ++id) append_order(b, store, id);
    auto rows = store.claim("relay-a", 10, t0, 30s);
    REQUIRE(rows.size() == 4);
    using outcome = settlement::outcome;
    std::vector<settlement> settled{
        settled_as(rows[0].id, outcome::delivered, 1),
        settled_as(rows[1].id, outcome::delivered, 2),
        settled_as(rows[2].id, outcome::retry, 1, t0 + 5s, "busy"),
        settled_as(rows[3].id, outcome::failed, 3, {}, "no such listener"),
    };
    store.settle(settled);
    CHECK(store.counts() == choreo::durable::outbox_counts{1, 2, 1});
    CHECK(store.claim("relay-a", 10, t0 + 1s, 30s).empty()); // the retry is not due yet
    auto retried = store.claim("relay-a", 10, t0 + 5s, 30s);
    REQUIRE(retried.size() == 1);
    CHECK(retried[0].id == rows[2].id);
    CHECK(retried[0].attempts == 1);
    CHECK(retried[0].last_error == "busy");
    auto failed = store.failed(10);
    REQUIRE(failed.size() == 1);
    CHECK(failed[0].id == rows[3].id);
    CHECK(failed[0].state == choreo::durable::row_state::failed);
    CHECK(failed[0].last_error == "no such listener");
    CHECK(failed[0].attempts == 3);
    CHECK(store.resubmit(rows[3].id));
    CHECK_FALSE(store.resubmit(rows[3].id)); // not failed any more
    CHECK_FALSE(store.resubmit(rows[0].id)); // delivered, not failed
    CHECK(store.counts() == choreo::durable::outbox_counts{2, 2, 0});
    store.settle(std::vector<settlement>{settled_as(rows[3].id, outcome::failed, 1, {}, "x")});
    CHECK(store.resubmit_failed() == 1);
    CHECK(store.purge_delivered(std::chrono::system_clock::now() - 1h) == 0);
    CHECK(store.purge_delivered(std::chrono::system_clock::now() + 1h) == 2);
    CHECK(store.counts() == choreo::durable::outbox_counts{2, 0, 0});
}

TEST_CASE_TEMPLATE("outbox store: relays claiming at once on their own connections never share a row", Backend,
                   sqlite_backend, postgresql_backend) {
    Backend b;
    typename Backend::outbox_store store{b.db};
    constexpr std::int64_t rows = 200;
    for (std::int64_t id = 1; id <= rows; ++id) append_order(b, store, id);
    std::vector<std::vector<std::int64_t>> claimed(3);
    {
        std::vector<std::jthread> relays;
        for (std::size_t r = 0; r < claimed.size(); ++r)
            relays.emplace_back([&, r] {
                auto connection = b.connect();
                typename Backend::outbox_store own{*connection};
                const auto name = "relay-" + std::to_string(r);
                for (int round = 0; round < rows; ++round) { // bounded: a store that hands rows out twice
                    auto batch = own.claim(name, 7, t0, 30s);
                    if (batch.empty()) return;
                    for (auto id : ids_of(batch)) claimed[r].push_back(id);
                }
            });
    }
    std::set<std::int64_t> all;
    std::size_t total = 0;
    for (auto& ids : claimed) {
        total += ids.size();
        all.insert(ids.begin(), ids.end());
    }
    CHECK(total == static_cast<std::size_t>(rows));
    CHECK(all.size() == static_cast<std::size_t>(rows));
}

TEST_CASE_TEMPLATE("inbox store: a redelivered event is recognised inside the consumer's transaction", Backend,
                   sqlite_backend, postgresql_backend) {
    Backend b;
    typename Backend::inbox_store inbox{b.db};
    const choreo::event_id event{4, 2};
    b.db.begin();
    CHECK(inbox.record("shipping", event));
    CHECK_FALSE(inbox.record("shipping", event)); // the transaction goes on after a repeat
    CHECK(inbox.record("billing", event));        // another consumer's record
    b.insert_order(1, 100);
    b.db.commit();
    CHECK(b.orders() == 1);
    CHECK(inbox.seen("shipping", event));
    CHECK_FALSE(inbox.seen("shipping", choreo::event_id{4, 3}));
    b.db.begin();
    CHECK(inbox.record("shipping", choreo::event_id{4, 3}));
    b.db.rollback();
    CHECK_FALSE(inbox.seen("shipping", choreo::event_id{4, 3})); // rolled back with its effect
    CHECK_THROWS_AS(inbox.record("shipping", choreo::event_id{4, 4}), choreo::usage_error);
    CHECK(inbox.purge(std::chrono::system_clock::now() - 1h) == 0);
    CHECK(inbox.purge(std::chrono::system_clock::now() + 1h) == 2);
    CHECK_FALSE(inbox.seen("shipping", event));
}

TEST_CASE_TEMPLATE("outbox: the relay delivers a committed event after the commit, and nothing rolled back", Backend,
                   sqlite_backend, postgresql_backend) {
    Backend b;
    choreo::bus bus{durable_test::quiet_bus()};
    typename Backend::outbox_store store{b.db};
    choreo::durable::outbox relay{bus, store};
    durable_test::received got;
    relay.template subscribe<order_paid>([&](const order_paid& e, const choreo::envelope& env) { got.add(e, env); },
                                         {.name = "ship"});
    relay.start();
    {
        auto unit = bus.begin(b.db);
        b.insert_order(1, 300);
        unit.publish(order_paid{1, 300, "kim"}, choreo::correlation_key{"order:1"});
        unit.commit();
    }
    {
        auto unit = bus.begin(b.db);
        b.insert_order(2, 400);
        unit.publish(order_paid{2, 400, "lee"});
        unit.rollback();
    }
    REQUIRE(durable_test::eventually([&] { return relay.counts().delivered == 1; }));
    REQUIRE(got.size() == 1);
    CHECK(got.events[0].order_id == 1);
    CHECK(got.envelopes[0].key.view() == "order:1");
    CHECK(relay.counts() == choreo::durable::outbox_counts{0, 1, 0});
    CHECK(b.orders() == 1);
}

TEST_CASE_TEMPLATE("saga journal: one row per step, committed with the step, forgotten but for abandonments", Backend,
                   sqlite_backend, postgresql_backend) {
    using state = decltype(choreo::saga::journal_entry::state);
    Backend b;
    typename Backend::saga_journal journal{b.db};
    b.db.begin();
    CHECK(journal.record("order:1", "reserve", R"({"n":1})", false, {"product:7", "coupon:3"}));
    CHECK_FALSE(journal.record("order:1", "reserve", "{}", false, {})); // a duplicate delivery: the caller rolls back
    CHECK(journal.record("order:1", "pay", "{}", true, {}));
    b.insert_order(1, 100); // the transaction goes on after the duplicate
    b.db.commit();
    b.db.begin();
    CHECK(journal.record("order:2", "reserve", "{}", false, {}));
    b.db.rollback();
    CHECK_FALSE(journal.find("order:2", "reserve"));
    auto reserve = journal.find("order:1", "reserve");
    REQUIRE(reserve);
    CHECK(reserve->state == state::done);
    CHECK(reserve->payload == R"({"n":1})");
    CHECK(reserve->markers == std::vector<std::string>{"product:7", "coupon:3"});
    CHECK_FALSE(reserve->completes);
    auto entries = journal.entries("order:1");
    REQUIRE(entries.size() == 2);
    CHECK(entries[0].step == "reserve");
    CHECK(entries[1].step == "pay");
    CHECK(entries[1].completes);
    CHECK(entries[0].sequence < entries[1].sequence);

    b.db.begin();
    CHECK(journal.mark_compensated("order:1", "reserve"));
    CHECK_FALSE(journal.mark_compensated("order:1", "reserve"));
    CHECK(journal.abandon("order:3", "reserve"));
    CHECK_FALSE(journal.abandon("order:1", "pay")); // it committed
    b.db.commit();
    CHECK(journal.find("order:1", "reserve")->state == state::compensated);
    CHECK(journal.find("order:3", "reserve")->state == state::abandoned);
    CHECK(journal.sagas() == std::vector<std::string>{"order:1"}); // abandonments are not sagas to recover
    CHECK_THROWS_AS(journal.record("order:4", "reserve", "{}", false, {}), choreo::usage_error);
    CHECK_THROWS_AS(journal.abandon("order:4", "reserve"), choreo::usage_error);
    journal.forget("order:1");
    journal.forget("order:3");
    CHECK(journal.entries("order:1").empty());
    CHECK(journal.size() == 1); // the abandonment stays, so that step can never commit
    b.db.begin();
    CHECK_FALSE(journal.record("order:3", "reserve", "{}", false, {}));
    b.db.rollback();
}
