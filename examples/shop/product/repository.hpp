#pragma once
// The product context's table, on whatever database the context is given.

#include <optional>
#include <string>
#include <vector>

#include "../kernel/sqlite.hpp"
#include "model.hpp"

namespace shop::product {

class repository {
public:
    explicit repository(kernel::database& db) : db_(db) {}

    void create_schema() {
        db_.execute("CREATE TABLE IF NOT EXISTS products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                    "price INTEGER NOT NULL CHECK (price >= 0), stock INTEGER NOT NULL CHECK (stock >= 0), "
                    "sold INTEGER NOT NULL DEFAULT 0)");
    }
    std::int64_t add(const std::string& name, std::int64_t price, std::int64_t stock) {
        kernel::statement{db_, "INSERT INTO products (name, price, stock) VALUES (?, ?, ?)"}
            .bind(name, price, stock)
            .run();
        return db_.last_insert_id();
    }
    std::optional<product> find(std::int64_t id) {
        kernel::statement s{db_, "SELECT id, name, price, stock, sold FROM products WHERE id = ?"};
        s.bind(id);
        if (!s.step()) return std::nullopt;
        return read(s);
    }
    void deduct(std::int64_t id, std::int64_t quantity) {
        kernel::statement{db_, "UPDATE products SET stock = stock - ?, sold = sold + ? WHERE id = ?"}
            .bind(quantity, quantity, id)
            .run();
    }
    void restock(std::int64_t id, std::int64_t quantity) { deduct(id, -quantity); }
    // By part of the name and a price range (inclusive), cheapest first.
    std::vector<product> search(const std::string& name_part, std::int64_t min_price, std::int64_t max_price) {
        kernel::statement s{db_, "SELECT id, name, price, stock, sold FROM products WHERE name LIKE ? AND price "
                                 "BETWEEN ? AND ? ORDER BY price, id"};
        s.bind("%" + name_part + "%", min_price, max_price);
        std::vector<product> found;
        while (s.step()) found.push_back(read(s));
        return found;
    }
    std::vector<product> all() { return search("", 0, INT64_MAX); }

private:
    static product read(const kernel::statement& s) {
        return {s.integer(0), s.text(1), s.integer(2), s.integer(3), s.integer(4)};
    }
    kernel::database& db_;
};

} // namespace shop::product
