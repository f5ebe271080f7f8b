#pragma once
// The payment context's table.

#include <optional>
#include <vector>

#include "../kernel/sqlite.hpp"
#include "model.hpp"

namespace shop::payment {

class repository {
public:
    explicit repository(kernel::database& db) : db_(db) {}

    void create_schema() {
        db_.execute("CREATE TABLE IF NOT EXISTS payments (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL UNIQUE, "
                    "amount INTEGER NOT NULL, status TEXT NOT NULL, method TEXT NOT NULL DEFAULT '', "
                    "reference TEXT NOT NULL DEFAULT '')");
    }
    std::int64_t create(std::int64_t order_id, std::int64_t amount) {
        kernel::statement{db_, "INSERT INTO payments (order_id, amount, status) VALUES (?, ?, 'PENDING')"}
            .bind(order_id, amount)
            .run();
        return db_.last_insert_id();
    }
    std::optional<payment> find(std::int64_t id) { return one("WHERE id = ?", id); }
    std::optional<payment> for_order(std::int64_t order_id) { return one("WHERE order_id = ?", order_id); }
    void set_status(std::int64_t id, const char* status, const std::string& method) {
        kernel::statement{db_, "UPDATE payments SET status = ?, method = ? WHERE id = ?"}
            .bind(status, method, id)
            .run();
    }
    void set_reference(std::int64_t id, const std::string& reference) {
        kernel::statement{db_, "UPDATE payments SET reference = ? WHERE id = ?"}.bind(reference, id).run();
    }
    std::vector<payment> all() {
        kernel::statement s{db_, "SELECT id, order_id, amount, status, method, reference FROM payments ORDER BY id"};
        std::vector<payment> found;
        while (s.step()) found.push_back(read(s));
        return found;
    }

private:
    std::optional<payment> one(const char* where, std::int64_t value) {
        kernel::statement s{db_, std::string{"SELECT id, order_id, amount, status, method, reference FROM payments "} +
                                     where};
        s.bind(value);
        if (!s.step()) return std::nullopt;
        return read(s);
    }
    static payment read(const kernel::statement& s) {
        return {s.integer(0), s.integer(1), s.integer(2), s.text(3), s.text(4), s.text(5)};
    }
    kernel::database& db_;
};

} // namespace shop::payment
