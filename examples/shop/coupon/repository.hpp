#pragma once
// The coupon context's tables.

#include <optional>
#include <string>
#include <vector>

#include "../kernel/checked.hpp"
#include "../kernel/sqlite.hpp"
#include "model.hpp"

namespace shop::coupon {

class repository {
public:
    explicit repository(kernel::database& db) : db_(db) {}

    void create_schema() {
        db_.execute(
            "CREATE TABLE IF NOT EXISTS coupons (id INTEGER PRIMARY KEY, name TEXT NOT NULL, type TEXT NOT NULL, "
            "amount INTEGER NOT NULL, stock INTEGER NOT NULL, issued INTEGER NOT NULL DEFAULT 0 "
            "CHECK (issued <= stock), issue_from INTEGER NOT NULL, issue_until INTEGER NOT NULL, "
            "valid_for INTEGER NOT NULL)");
        db_.execute("CREATE TABLE IF NOT EXISTS issued_coupons (id INTEGER PRIMARY KEY, coupon_id INTEGER NOT NULL "
                    "REFERENCES coupons(id), user_id INTEGER NOT NULL, expires_at INTEGER NOT NULL, "
                    "used_by_order INTEGER NOT NULL DEFAULT 0)");
        db_.execute("CREATE INDEX IF NOT EXISTS issued_coupons_by_user ON issued_coupons(user_id)");
    }
    std::int64_t add(const coupon& c) {
        kernel::statement{db_, "INSERT INTO coupons (name, type, amount, stock, issue_from, issue_until, valid_for) "
                               "VALUES (?, ?, ?, ?, ?, ?, ?)"}
            .bind(c.name, c.type, c.amount, c.stock, c.issue_from, c.issue_until, c.valid_for)
            .run();
        return db_.last_insert_id();
    }
    std::optional<coupon> find(std::int64_t id) {
        kernel::statement s{db_, "SELECT id, name, type, amount, stock, issued, issue_from, issue_until, valid_for "
                                 "FROM coupons WHERE id = ?"};
        s.bind(id);
        if (!s.step()) return std::nullopt;
        return coupon{s.integer(0), s.text(1),    s.text(2),    s.integer(3), s.integer(4),
                      s.integer(5), s.integer(6), s.integer(7), s.integer(8)};
    }
    std::int64_t issue(const coupon& c, std::int64_t user_id, std::int64_t now) {
        kernel::statement{db_, "UPDATE coupons SET issued = issued + 1 WHERE id = ?"}.bind(c.id).run();
        kernel::statement{db_, "INSERT INTO issued_coupons (coupon_id, user_id, expires_at) VALUES (?, ?, ?)"}
            .bind(c.id, user_id, kernel::checked_add(now, c.valid_for, "the coupon's expiry (now + valid_for_seconds)"))
            .run();
        return db_.last_insert_id();
    }
    std::optional<issued_coupon> find_issued(std::int64_t id) {
        auto found = select("WHERE i.id = ?", id);
        if (found.empty()) return std::nullopt;
        return found.front();
    }
    std::vector<issued_coupon> issued_to(std::int64_t user_id) { return select("WHERE i.user_id = ?", user_id); }
    std::vector<issued_coupon> all_issued() { return select("WHERE ? = 0", 0); }
    void mark_used(std::int64_t issued_id, std::int64_t order_id) {
        kernel::statement{db_, "UPDATE issued_coupons SET used_by_order = ? WHERE id = ?"}
            .bind(order_id, issued_id)
            .run();
    }
    // Undoes mark_used, only for the order that used it.
    void mark_unused(std::int64_t issued_id, std::int64_t order_id) {
        kernel::statement{db_, "UPDATE issued_coupons SET used_by_order = 0 WHERE id = ? AND used_by_order = ?"}
            .bind(issued_id, order_id)
            .run();
    }

private:
    std::vector<issued_coupon> select(const char* where, std::int64_t value) {
        kernel::statement s{db_, std::string{"SELECT i.id, i.coupon_id, i.user_id, i.expires_at, i.used_by_order, "
                                             "c.type, c.amount FROM issued_coupons i JOIN coupons c ON c.id = "
                                             "i.coupon_id "} +
                                     where + " ORDER BY i.id"};
        s.bind(value);
        std::vector<issued_coupon> found;
        while (s.step())
            found.push_back(
                {s.integer(0), s.integer(1), s.integer(2), s.integer(3), s.integer(4), s.text(5), s.integer(6)});
        return found;
    }
    kernel::database& db_;
};

} // namespace shop::coupon
