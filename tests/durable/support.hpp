#pragma once
// Events and helpers shared by the durable tests: described structs (so the JSON codec
// needs nothing more), a temporary directory per test, a wait with a deadline, and the
// outbox tests' recorders and payment.

#include <choreo/durable.hpp>
#include <choreo/sqlite.hpp>

#include <boost/describe/class.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace durable_test {

struct order_paid {
    std::int64_t order_id = 0;
    std::int64_t amount = 0;
    std::string customer;
};
BOOST_DESCRIBE_STRUCT(order_paid, (), (order_id, amount, customer))

struct order_cancelled {
    std::int64_t order_id = 0;
};
BOOST_DESCRIBE_STRUCT(order_cancelled, (), (order_id))

// A directory removed at the end of the test.
class scratch_dir {
public:
    scratch_dir() {
        std::random_device random;
        path_ = std::filesystem::temp_directory_path() /
                ("choreo-durable-" + std::to_string(random()) + "-" + std::to_string(random()));
        std::filesystem::create_directories(path_);
    }
    ~scratch_dir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
    [[nodiscard]] std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

// Polls `done` until it holds or 20 s pass (the relay runs on other threads).
inline bool eventually(const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
    while (std::chrono::steady_clock::now() < deadline) {
        if (done()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds{2});
    }
    return done();
}

// The business table of the tests: orders written in the same transaction as the event.
inline void create_orders_table(choreo::sqlite::database& db) {
    db.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL)");
}

inline void insert_order(choreo::sqlite::database& db, std::int64_t id, std::int64_t amount) {
    choreo::sqlite::statement insert{db, "INSERT INTO orders (id, amount) VALUES (?, ?)"};
    insert.bind(id, amount).run();
}

inline std::int64_t count_rows(choreo::sqlite::database& db, const std::string& sql) {
    return db.read([&] {
        choreo::sqlite::statement query{db, sql};
        return query.step() ? query.integer(0) : std::int64_t{-1};
    });
}

// What a durable listener of order_paid received, with the envelopes.
struct received {
    std::mutex mutex;
    std::vector<order_paid> events;
    std::vector<choreo::envelope> envelopes;

    void add(const order_paid& e, const choreo::envelope& env) {
        std::lock_guard lock{mutex};
        events.push_back(e);
        envelopes.push_back(env);
    }
    std::size_t size() {
        std::lock_guard lock{mutex};
        return events.size();
    }
};

// A bus that keeps its incidents to itself (the tests provoke them).
inline choreo::bus_options quiet_bus() {
    return {.threads = 2, .on_incident = [](const choreo::incident&) {}};
}

// The incidents a bus reports: their kinds and messages, in order.
struct incident_log {
    std::mutex mutex;
    std::vector<choreo::incident_kind> kinds;
    std::vector<std::string> messages;

    choreo::bus_options bus_options() {
        return {.threads = 2, .on_incident = [this](const choreo::incident& i) {
                    std::lock_guard lock{mutex};
                    kinds.push_back(i.kind);
                    messages.emplace_back(i.message);
                }};
    }
};

// Commits one paid order and its event in one unit of work.
inline void pay(choreo::bus& bus, choreo::sqlite::database& db, std::int64_t order, std::int64_t amount) {
    auto unit = bus.begin(db);
    insert_order(db, order, amount);
    unit.publish(order_paid{order, amount, "kim"});
    unit.commit();
}

} // namespace durable_test
