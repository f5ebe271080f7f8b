// The process the crash test kills. It writes orders, each with an order_placed event
// through the outbox, and relays them to a consumer that records an effect per order
// behind an inbox, all in one SQLite file. It can kill itself with SIGKILL at a chosen
// point, so the test lands between commit and delivery on purpose, not only by luck.
//
//   choreo_durable_crash_child DB FIRST_ORDER COUNT POINT VICTIM
//   POINT: none | before_commit | after_commit | after_effect
//   VICTIM: the order at which POINT kills the process

#include "support.hpp"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace durable_test;

namespace {

struct order_placed {
    std::int64_t order_id = 0;
};
BOOST_DESCRIBE_STRUCT(order_placed, (), (order_id))

[[noreturn]] void die() {
    std::raise(SIGKILL);
    std::abort();
}

} // namespace

int main(int argc, char** argv) try {
    if (argc != 6) {
        std::fputs("usage: choreo_durable_crash_child DB FIRST_ORDER COUNT POINT VICTIM\n", stderr);
        return 2;
    }
    const std::string path = argv[1];
    const std::int64_t first = std::stoll(argv[2]);
    const std::int64_t count = std::stoll(argv[3]);
    const std::string_view point = argv[4];
    const std::int64_t victim = std::stoll(argv[5]);

    choreo::bus bus{{.threads = 2}};
    choreo::sqlite::database db{path};
    db.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY);"
               "CREATE TABLE IF NOT EXISTS effects (seq INTEGER PRIMARY KEY, order_id INTEGER NOT NULL)");
    choreo::sqlite::outbox_store store{db};
    choreo::sqlite::inbox_store inbox{db};
    choreo::durable::outbox relay{
        bus, store, {.relay_name = "relay", .batch_size = 8, .poll_interval = std::chrono::milliseconds{5}}};
    relay.subscribe<order_placed>(
        [&](const order_placed& e, const choreo::envelope& env) {
            {
                auto unit = bus.begin(db);
                if (!inbox.record("effects", env.id)) return;
                choreo::sqlite::statement insert{db, "INSERT INTO effects (order_id) VALUES (?)"};
                insert.bind(e.order_id).run();
                unit.commit();
            }
            if (point == "after_effect" && e.order_id == victim) die(); // effect done, delivery not yet recorded
        },
        {.name = "record effect"});
    auto killer = bus.subscribe<order_placed>(
        [&](const order_placed& e) {
            if (point == "before_commit" && e.order_id == victim) die(); // the outbox row is written, not committed
        },
        {.when = choreo::phase::before_commit, .order = std::numeric_limits<int>::max()});
    relay.start();

    for (std::int64_t id = first; id < first + count; ++id) {
        auto unit = bus.begin(db);
        choreo::sqlite::statement insert{db, "INSERT INTO orders (id) VALUES (?)"};
        insert.bind(id).run();
        unit.publish(order_placed{id});
        unit.commit();
        if (point == "after_commit" && id == victim) die(); // committed, not yet delivered
    }
    if (!eventually([&] { return relay.counts().pending == 0; })) {
        std::fputs("rows still pending after 20 s\n", stderr);
        return 1;
    }
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "crash child: %s\n", e.what());
    return 1;
}
