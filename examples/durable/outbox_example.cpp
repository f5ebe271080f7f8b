// An order service whose "tell the data platform" survives a crash: the event is stored
// in the order's own transaction and relayed after the commit. The platform side
// records each event id in its inbox, so a redelivery changes nothing.
#include <choreo/durable.hpp>
#include <choreo/sqlite.hpp>

#include <boost/describe/class.hpp>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <future>

struct order_paid {
    std::int64_t order_id = 0;
    std::int64_t amount = 0;
};
BOOST_DESCRIBE_STRUCT(order_paid, (), (order_id, amount)) // all the JSON codec needs

int main() {
    auto dir = std::filesystem::temp_directory_path() / "choreo-outbox-example";
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);

    choreo::bus bus;
    choreo::sqlite::database orders{(dir / "orders.db").string()};
    choreo::sqlite::database platform{(dir / "platform.db").string()};
    orders.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount INTEGER)");
    platform.execute("CREATE TABLE received (order_id INTEGER, amount INTEGER)");

    choreo::sqlite::outbox_store store{orders};  // table choreo_outbox, created on first use
    choreo::sqlite::inbox_store inbox{platform}; // table choreo_inbox
    choreo::durable::outbox outbox{bus, store};
    std::promise<void> both_received; // the two committed orders reached the platform
    std::atomic<int> received{0};

    outbox.subscribe<order_paid>(
        [&](const order_paid& e, const choreo::envelope& env) {
            auto unit = bus.begin(platform);
            if (!inbox.record("data platform", env.id)) return; // seen before: skip
            choreo::sqlite::statement insert{platform, "INSERT INTO received VALUES (?, ?)"};
            insert.bind(e.order_id, e.amount).run();
            unit.commit();
            std::printf("data platform got order %lld (%lld)\n", static_cast<long long>(e.order_id),
                        static_cast<long long>(e.amount));
            if (++received == 2) both_received.set_value();
        },
        {.name = "send to data platform"});
    outbox.start(); // first relays whatever an earlier run left undelivered

    auto pay = [&](std::int64_t id, std::int64_t amount, bool commit) {
        auto unit = bus.begin(orders);
        choreo::sqlite::statement insert{orders, "INSERT INTO orders VALUES (?, ?)"};
        insert.bind(id, amount).run();
        unit.publish(order_paid{id, amount}); // the outbox row joins this transaction
        if (commit) unit.commit();            // else: rolled back, and so is the row
    };
    pay(1, 300, true);
    pay(2, 500, false);
    pay(3, 700, true);

    both_received.get_future().wait();
    outbox.stop(); // waits for the pass in flight, which records the deliveries
    auto counts = outbox.counts();
    std::printf("outbox: %llu pending, %llu delivered, %llu failed\n", static_cast<unsigned long long>(counts.pending),
                static_cast<unsigned long long>(counts.delivered), static_cast<unsigned long long>(counts.failed));
}
