#pragma once
// The shape of the seed's order creation, as a saga over five participants with a
// fan-out (stock and coupons both react to the start) and a fan-in (the order is
// confirmed when both branches have arrived), on in-memory transactional tables.

#include <choreo/choreo.hpp>
#include <choreo/saga/testing.hpp>

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace saga_test {

// A table with real transactions: begin() takes the table's lock and a snapshot,
// rollback() restores it. One writer at a time, as in SQLite.
class table {
public:
    void begin() {
        mutex_.lock();
        saved_ = rows_;
    }
    void commit() { mutex_.unlock(); }
    void rollback() {
        rows_ = saved_;
        mutex_.unlock();
    }
    // Inside a transaction only.
    long& operator[](const std::string& row) { return rows_[row]; }
    [[nodiscard]] long at(const std::string& row) const {
        auto it = rows_.find(row);
        return it == rows_.end() ? 0 : it->second;
    }
    // Outside transactions (setup and assertions).
    [[nodiscard]] std::map<std::string, long> rows() const {
        std::lock_guard lock{mutex_};
        return rows_;
    }
    [[nodiscard]] long read(const std::string& row) const {
        std::lock_guard lock{mutex_};
        return at(row);
    }
    void write(const std::string& row, long value) {
        std::lock_guard lock{mutex_};
        rows_[row] = value;
    }

private:
    mutable std::mutex mutex_;
    std::map<std::string, long> rows_;
    std::map<std::string, long> saved_;
};

struct line {
    std::string product;
    long quantity = 0;
};

struct order_create_start {
    static constexpr std::string_view choreo_event_name = "OrderCreateStart";
    std::string order;
    std::vector<line> lines;
    std::string coupon; // empty: none
    std::string user;
};
struct stock_deducted {
    std::string order;
    long price = 0;
};
struct coupon_used {
    std::string order;
    long discount = 0;
};
struct order_created {
    std::string order;
    std::string user;
    long amount = 0;
};
struct points_used {
    std::string order;
    long amount = 0;
};
struct payment_created {
    std::string order;
    std::string payment;
};

// Order status values kept in the order table.
enum status : long { create_pending = 1, created = 2, completed = 3, cancelled = 4 };

class stock_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The five contexts' data and their participants.
struct shop {
    table orders, products, coupons, points, payments;
    choreo::saga::participant order, product, coupon, point, payment;

    explicit shop(choreo::saga::runtime& sagas)
        : order(sagas, "order", orders), product(sagas, "product", products), coupon(sagas, "coupon", coupons),
          point(sagas, "point", points), payment(sagas, "payment", payments) {
        using choreo::saga::step_context;
        order.starts<order_create_start>("create order", [this](const order_create_start& e, step_context&) {
            orders[e.order + ".status"] = cancelled;
        });

        product.step<order_create_start>(
            "deduct stock",
            [this](const order_create_start& e, step_context& ctx) {
                long price = 0;
                for (auto& l : e.lines) {
                    ctx.hold("product:" + l.product);
                    long& stock = products[l.product + ".stock"];
                    if (l.quantity < 1 || l.quantity > stock) throw stock_error("out of stock: " + l.product);
                    stock -= l.quantity;
                    price += l.quantity * products.at(l.product + ".price");
                }
                ctx.publish(stock_deducted{e.order, price});
            },
            [this](const order_create_start& e, step_context&) {
                for (auto& l : e.lines) products[l.product + ".stock"] += l.quantity;
            });

        coupon.step<order_create_start>(
            "use coupon",
            [this](const order_create_start& e, step_context& ctx) {
                long discount = 0;
                if (!e.coupon.empty()) {
                    long& used = coupons[e.coupon + ".used"];
                    if (used) throw std::runtime_error("coupon already used: " + e.coupon);
                    used = 1;
                    discount = coupons.at(e.coupon + ".amount");
                }
                ctx.publish(coupon_used{e.order, discount});
            },
            [this](const order_create_start& e, step_context&) {
                if (!e.coupon.empty()) coupons[e.coupon + ".used"] = 0;
            });

        order.step<stock_deducted>(
            "add items", [this](const stock_deducted& e, step_context&) { orders[e.order + ".price"] = e.price; },
            [this](const stock_deducted& e, step_context&) { orders[e.order + ".price"] = 0; });
        order.step<coupon_used>(
            "add coupons", [this](const coupon_used& e, step_context&) { orders[e.order + ".discount"] = e.discount; },
            [this](const coupon_used& e, step_context&) { orders[e.order + ".discount"] = 0; });
        order.join(
            "confirm order", {"add items", "add coupons"},
            [this](step_context& ctx) {
                auto id = order_of(ctx);
                orders[id + ".status"] = created;
                long amount = std::max(0L, orders.at(id + ".price") - orders.at(id + ".discount"));
                ctx.publish(order_created{id, "ann", amount});
            },
            [this](step_context& ctx) { orders[order_of(ctx) + ".status"] = create_pending; });

        point.step<order_created>(
            "use points",
            [this](const order_created& e, step_context& ctx) {
                long& balance = points[e.user];
                if (balance < e.amount) throw std::runtime_error("insufficient points");
                balance -= e.amount;
                ctx.publish(points_used{e.order, e.amount});
            },
            [this](const order_created& e, step_context&) { points[e.user] += e.amount; });

        payment.step<points_used>(
            "create payment",
            [this](const points_used& e, step_context& ctx) {
                payments[e.order + ".paid"] = e.amount;
                ctx.publish(payment_created{e.order, "pay-" + e.order});
            },
            [this](const points_used& e, step_context&) { payments[e.order + ".paid"] = 0; });

        order.step<payment_created>(
            "record payment",
            [this](const payment_created& e, step_context& ctx) {
                orders[e.order + ".status"] = completed;
                ctx.complete_saga();
            },
            [this](const payment_created& e, step_context&) { orders[e.order + ".status"] = created; });
    }

    // The order id is the saga key's aggregate part: "OrderCreateStart:<id>".
    static std::string order_of(const choreo::saga::step_context& ctx) {
        auto key = ctx.saga().view();
        return std::string{key.substr(key.find(':') + 1)};
    }

    void seed() {
        products.write("apple.stock", 10);
        products.write("apple.price", 300);
        products.write("pear.stock", 5);
        products.write("pear.price", 500);
        coupons.write("welcome.amount", 400);
        coupons.write("welcome.used", 0);
        points.write("ann", 100'000);
    }

    static order_create_start sample_order(const std::string& id, std::string coupon = "welcome") {
        return {id, {{"apple", 2}, {"pear", 1}}, std::move(coupon), "ann"};
    }

    // Creates the order in CREATE_PENDING and starts its saga in one local transaction.
    choreo::correlation_key create_order(choreo::bus& events, const order_create_start& e) {
        auto unit = events.begin(orders);
        orders[e.order + ".status"] = create_pending;
        auto key = order.start(unit, e, e.order);
        unit.commit();
        return key;
    }
};

} // namespace saga_test
