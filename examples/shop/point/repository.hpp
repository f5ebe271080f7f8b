#pragma once
// The point context's tables: balances, and a history of every change to them.

#include <string>

#include "../kernel/sqlite.hpp"
#include "model.hpp"

namespace shop::point {

struct totals {
    std::int64_t charged = 0, used = 0, refunded = 0;
};

class repository {
public:
    explicit repository(kernel::database& db) : db_(db) {}

    void create_schema() {
        db_.execute("CREATE TABLE IF NOT EXISTS points (user_id INTEGER PRIMARY KEY, balance INTEGER NOT NULL "
                    "CHECK (balance >= 0 AND balance <= 100000000))");
        db_.execute("CREATE TABLE IF NOT EXISTS point_history (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, "
                    "kind TEXT NOT NULL, amount INTEGER NOT NULL, order_id INTEGER NOT NULL DEFAULT 0)");
        db_.execute("CREATE INDEX IF NOT EXISTS point_history_by_user ON point_history(user_id)");
    }
    std::int64_t balance(std::int64_t user_id) {
        kernel::statement s{db_, "SELECT balance FROM points WHERE user_id = ?"};
        s.bind(user_id);
        return s.step() ? s.integer(0) : 0;
    }
    // kind: CHARGE, USE or REFUND; USE subtracts.
    void change(std::int64_t user_id, const char* kind, std::int64_t amount, std::int64_t order_id) {
        std::int64_t delta = std::string_view{kind} == "USE" ? -amount : amount;
        kernel::statement{db_, "UPDATE points SET balance = balance + ? WHERE user_id = ?"}.bind(delta, user_id).run();
        if (db_.changes() == 0)
            kernel::statement{db_, "INSERT INTO points (user_id, balance) VALUES (?, ?)"}.bind(user_id, delta).run();
        kernel::statement{db_, "INSERT INTO point_history (user_id, kind, amount, order_id) VALUES (?, ?, ?, ?)"}
            .bind(user_id, kind, amount, order_id)
            .run();
    }
    totals history(std::int64_t user_id) {
        kernel::statement s{db_, "SELECT kind, SUM(amount) FROM point_history WHERE user_id = ? GROUP BY kind"};
        s.bind(user_id);
        totals t;
        while (s.step()) {
            auto kind = s.text(0);
            (kind == "CHARGE" ? t.charged : kind == "USE" ? t.used : t.refunded) = s.integer(1);
        }
        return t;
    }
    std::vector<std::pair<std::int64_t, std::int64_t>> balances() {
        kernel::statement s{db_, "SELECT user_id, balance FROM points ORDER BY user_id"};
        std::vector<std::pair<std::int64_t, std::int64_t>> all;
        while (s.step()) all.emplace_back(s.integer(0), s.integer(1));
        return all;
    }

private:
    kernel::database& db_;
};

} // namespace shop::point
