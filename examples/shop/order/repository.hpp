#pragma once
// The order context's tables.

#include <algorithm>
#include <optional>
#include <vector>

#include "../kernel/sqlite.hpp"
#include "model.hpp"

namespace shop::order {

class repository {
public:
    explicit repository(kernel::database& db) : db_(db) {}

    void create_schema() {
        db_.execute(
            "CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, user_id INTEGER NOT NULL, "
            "status TEXT NOT NULL, price INTEGER NOT NULL DEFAULT 0, product_status INTEGER NOT NULL DEFAULT 0, "
            "coupon_status INTEGER NOT NULL DEFAULT 0, payment_id INTEGER NOT NULL DEFAULT 0, "
            "pay_attempts INTEGER NOT NULL DEFAULT 0, "
            // Payable whenever it reads CREATED: the status and the payment come in one step.
            "CHECK (status <> 'CREATED' OR payment_id <> 0))");
        db_.execute(
            "CREATE TABLE IF NOT EXISTS order_items (order_id INTEGER NOT NULL REFERENCES orders(id), "
            "product_id INTEGER NOT NULL, name TEXT NOT NULL, unit_price INTEGER NOT NULL, quantity INTEGER NOT NULL)");
        db_.execute("CREATE TABLE IF NOT EXISTS order_coupons (order_id INTEGER NOT NULL REFERENCES orders(id), "
                    "issued_coupon_id INTEGER NOT NULL, type TEXT NOT NULL, amount INTEGER NOT NULL, "
                    "position INTEGER NOT NULL)");
        db_.execute("CREATE INDEX IF NOT EXISTS order_items_by_order ON order_items(order_id)");
        db_.execute("CREATE INDEX IF NOT EXISTS order_coupons_by_order ON order_coupons(order_id)");
    }
    std::int64_t create(std::int64_t user_id) {
        kernel::statement{db_, "INSERT INTO orders (user_id, status) VALUES (?, ?)"}
            .bind(user_id, create_pending)
            .run();
        return db_.last_insert_id();
    }
    // Gives order `id` (with nothing attached yet) a number above every order's; returns it.
    std::int64_t renumber(std::int64_t id) {
        kernel::statement highest{db_, "SELECT MAX(id) FROM orders"};
        std::int64_t next = std::max(highest.step() ? highest.integer(0) : 0, id) + 1;
        kernel::statement{db_, "UPDATE orders SET id = ? WHERE id = ?"}.bind(next, id).run();
        return next;
    }
    std::optional<order> find(std::int64_t id) {
        kernel::statement s{db_, "SELECT id, user_id, status, price, product_status, coupon_status, payment_id FROM "
                                 "orders WHERE id = ?"};
        s.bind(id);
        if (!s.step()) return std::nullopt;
        order o{s.integer(0), s.integer(1), s.text(2), s.integer(3), s.integer(4) != 0, s.integer(5) != 0,
                s.integer(6), {},           {}};
        kernel::statement items{db_,
                                "SELECT product_id, name, unit_price, quantity FROM order_items WHERE order_id = ? "
                                "ORDER BY rowid"};
        items.bind(id);
        while (items.step()) o.items.push_back({items.integer(0), items.text(1), items.integer(2), items.integer(3)});
        kernel::statement coupons{db_, "SELECT issued_coupon_id, type, amount FROM order_coupons WHERE order_id = ? "
                                       "ORDER BY position"};
        coupons.bind(id);
        while (coupons.step()) o.coupons.push_back({coupons.integer(0), coupons.text(1), coupons.integer(2)});
        return o;
    }
    std::vector<std::int64_t> ids() {
        kernel::statement s{db_, "SELECT id FROM orders ORDER BY id"};
        std::vector<std::int64_t> all;
        while (s.step()) all.push_back(s.integer(0));
        return all;
    }
    void add_items(std::int64_t id, const std::vector<item>& items) {
        for (auto& i : items)
            kernel::statement{db_, "INSERT INTO order_items VALUES (?, ?, ?, ?, ?)"}
                .bind(id, i.product_id, i.name, i.unit_price, i.quantity)
                .run();
        kernel::statement{db_, "UPDATE orders SET product_status = 1 WHERE id = ?"}.bind(id).run();
    }
    void remove_items(std::int64_t id) {
        kernel::statement{db_, "DELETE FROM order_items WHERE order_id = ?"}.bind(id).run();
        kernel::statement{db_, "UPDATE orders SET product_status = 0 WHERE id = ?"}.bind(id).run();
    }
    void add_coupons(std::int64_t id, const std::vector<used_coupon>& coupons) {
        std::int64_t position = 0;
        for (auto& c : coupons)
            kernel::statement{db_, "INSERT INTO order_coupons VALUES (?, ?, ?, ?, ?)"}
                .bind(id, c.issued_coupon_id, c.type, c.amount, position++)
                .run();
        kernel::statement{db_, "UPDATE orders SET coupon_status = 1 WHERE id = ?"}.bind(id).run();
    }
    void remove_coupons(std::int64_t id) {
        kernel::statement{db_, "DELETE FROM order_coupons WHERE order_id = ?"}.bind(id).run();
        kernel::statement{db_, "UPDATE orders SET coupon_status = 0 WHERE id = ?"}.bind(id).run();
    }
    void set_status(std::int64_t id, const char* status) {
        kernel::statement{db_, "UPDATE orders SET status = ? WHERE id = ?"}.bind(status, id).run();
    }
    void set_price(std::int64_t id, std::int64_t price) {
        kernel::statement{db_, "UPDATE orders SET price = ? WHERE id = ?"}.bind(price, id).run();
    }
    // Counts a payment attempt and returns its number (each attempt is its own saga).
    std::int64_t next_pay_attempt(std::int64_t id) {
        kernel::statement{db_, "UPDATE orders SET pay_attempts = pay_attempts + 1 WHERE id = ?"}.bind(id).run();
        kernel::statement s{db_, "SELECT pay_attempts FROM orders WHERE id = ?"};
        s.bind(id);
        return s.step() ? s.integer(0) : 0;
    }
    void set_payment(std::int64_t id, std::int64_t payment_id) {
        kernel::statement{db_, "UPDATE orders SET payment_id = ? WHERE id = ?"}.bind(payment_id, id).run();
    }

private:
    kernel::database& db_;
};

} // namespace shop::order
