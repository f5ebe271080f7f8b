#pragma once
// A simulated external data platform API: it can be up, down, or slow. Like a real API
// that takes an idempotency key, it keeps what it received in its own database with an
// inbox keyed by event id, so a send repeated after a crash is acknowledged but not
// recorded twice. With a directory, its database is a file and survives a restart.

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <choreo/core/envelope.hpp>
#include <choreo/sqlite/database.hpp>
#include <choreo/sqlite/inbox_store.hpp>

namespace shop::outside {

class data_platform_api {
public:
    enum class behaviour { up, down, slow };
    static constexpr std::array<std::string_view, 3> behaviour_names{"up", "down", "slow"};

    // ":memory:" or a file path.
    explicit data_platform_api(const std::string& path) : db_(path), inbox_(db_) {
        db_.execute("CREATE TABLE IF NOT EXISTS received (seq INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, "
                    "price INTEGER NOT NULL)");
    }

    void set(behaviour b, std::chrono::milliseconds delay = std::chrono::milliseconds{300}) {
        std::lock_guard lock{mutex_};
        behaviour_ = b;
        delay_ = delay;
    }
    // `key` is the idempotency key: the id of the event being sent.
    void send(const choreo::event_id& key, std::int64_t order_id, std::int64_t price) {
        behaviour b;
        std::chrono::milliseconds delay;
        {
            std::lock_guard lock{mutex_};
            b = behaviour_;
            delay = delay_;
            ++attempts_;
        }
        if (b == behaviour::down) throw std::runtime_error("data platform unreachable (connection refused)");
        if (b == behaviour::slow) std::this_thread::sleep_for(delay);
        db_.transact([&] {
            if (!inbox_.record("data_platform", key)) return; // a repeat: already recorded
            choreo::sqlite::statement insert{db_, "INSERT INTO received (order_id, price) VALUES (?, ?)"};
            insert.bind(order_id, price).run();
        });
    }
    struct record {
        std::int64_t order_id;
        std::int64_t price;
    };
    std::vector<record> received() {
        return db_.read([&] {
            std::vector<record> out;
            choreo::sqlite::statement all{db_, "SELECT order_id, price FROM received ORDER BY seq"};
            while (all.step()) out.push_back({all.integer(0), all.integer(1)});
            return out;
        });
    }
    unsigned attempts() const {
        std::lock_guard lock{mutex_};
        return attempts_;
    }

private:
    mutable std::mutex mutex_;
    behaviour behaviour_ = behaviour::up;
    std::chrono::milliseconds delay_{300};
    unsigned attempts_ = 0;
    choreo::sqlite::database db_;
    choreo::sqlite::inbox_store inbox_;
};

} // namespace shop::outside
