#pragma once
// A simulated external card gateway, as the payment context's client sees it: it can
// approve, decline, or time out. It keeps its own books (SQLite), so tests can check that
// every charge that does not stand was refunded.

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "../kernel/errors.hpp"
#include "../kernel/sqlite.hpp"

namespace shop::outside {

class card_declined : public kernel::domain_error {
public:
    explicit card_declined(const std::string& message)
        : kernel::domain_error(kernel::refusal::rule_violated, "card_declined", message) {}
};
class gateway_timeout : public kernel::outside_unavailable {
public:
    explicit gateway_timeout(const std::string& message)
        : kernel::outside_unavailable("card_gateway_unavailable", message) {}
};

class card_gateway {
public:
    enum class behaviour { approve, decline, time_out };
    static constexpr std::array<std::string_view, 3> behaviour_names{"approve", "decline", "time_out"};

    // ":memory:", or a file that another process (the load driver's check) can read and
    // that survives a restart of the payment process, as a real gateway's books would.
    explicit card_gateway(const std::string& path = ":memory:") : books_(path) {
        books_.execute("CREATE TABLE IF NOT EXISTS charges (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL, "
                       "amount INTEGER NOT NULL, refunded INTEGER NOT NULL DEFAULT 0)");
    }

    void set(behaviour b, std::chrono::milliseconds timeout = std::chrono::milliseconds{50}) {
        std::lock_guard lock{mutex_};
        behaviour_ = b;
        timeout_ = timeout;
    }

    // Returns the charge's reference.
    std::string charge(std::int64_t order_id, std::int64_t amount) {
        behaviour b;
        std::chrono::milliseconds wait;
        {
            std::lock_guard lock{mutex_};
            b = behaviour_;
            wait = timeout_;
        }
        if (b == behaviour::decline) throw card_declined(fmt::format("card declined for order {}", order_id));
        if (b == behaviour::time_out) {
            std::this_thread::sleep_for(wait); // the caller's timeout, simulated
            throw gateway_timeout(fmt::format("card gateway did not answer within {} ms", wait.count()));
        }
        return books_.transact([&] {
            kernel::statement insert{books_, "INSERT INTO charges (order_id, amount) VALUES (?, ?)"};
            insert.bind(order_id, amount).run();
            return fmt::format("ch_{}", books_.last_insert_id());
        });
    }

    void refund(const std::string& reference) {
        std::int64_t id = 0;
        auto [end, ec] = std::from_chars(reference.data() + std::min<std::size_t>(3, reference.size()),
                                         reference.data() + reference.size(), id);
        if (!reference.starts_with("ch_") || ec != std::errc{} || end != reference.data() + reference.size())
            throw std::runtime_error("unknown charge " + reference);
        books_.transact([&] {
            kernel::statement mark{books_, "UPDATE charges SET refunded = 1 WHERE id = ?"};
            mark.bind(id).run(); // idempotent, as real gateways make refunds by reference
            if (books_.changes() == 0) {
                kernel::statement known{books_, "SELECT 1 FROM charges WHERE id = ?"};
                if (!known.bind(id).step()) throw std::runtime_error("unknown charge " + reference);
            }
        });
    }

    // Net amount charged for an order: charges minus refunds.
    std::int64_t net_charged(std::int64_t order_id) {
        return books_.read([&] {
            kernel::statement sum{books_,
                                  "SELECT COALESCE(SUM(amount), 0) FROM charges WHERE refunded = 0 AND order_id = ?"};
            return sum.bind(order_id).step() ? sum.integer(0) : 0;
        });
    }
    struct charge_record {
        std::string reference;
        std::int64_t order_id;
        std::int64_t amount;
    };
    // The charges that stand (not refunded), for reconciliation.
    std::vector<charge_record> standing() {
        return books_.read([&] {
            kernel::statement q{books_, "SELECT id, order_id, amount FROM charges WHERE refunded = 0 ORDER BY id"};
            std::vector<charge_record> out;
            while (q.step()) out.push_back({fmt::format("ch_{}", q.integer(0)), q.integer(1), q.integer(2)});
            return out;
        });
    }
    std::size_t charges() { return count("SELECT COUNT(*) FROM charges"); }
    std::size_t refunds() { return count("SELECT COUNT(*) FROM charges WHERE refunded = 1"); }

private:
    std::size_t count(std::string_view sql) {
        return books_.read([&] {
            kernel::statement q{books_, sql};
            return q.step() ? static_cast<std::size_t>(q.integer(0)) : std::size_t{0};
        });
    }

    std::mutex mutex_;
    behaviour behaviour_ = behaviour::approve;
    std::chrono::milliseconds timeout_{50};
    kernel::database books_;
};

} // namespace shop::outside
