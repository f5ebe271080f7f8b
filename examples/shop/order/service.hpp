#pragma once
// The order context's commands: create an order and pay it. In transactional mode the
// whole flow commits in the command's one transaction; in saga mode the command commits
// the order's first change and starts the saga that carries the rest.

#include <string>
#include <vector>

#include "../events/events.hpp"
#include "../kernel/requests.hpp"
#include "../kernel/sqlite.hpp"
#include "../kernel/wiring.hpp"
#include "model.hpp"
#include "publisher.hpp"
#include "repository.hpp"

namespace shop::order {

class service {
public:
    service(kernel::wiring& w, kernel::database& db, repository& orders)
        : w_(w), db_(db), orders_(orders), out_(w.bus()) {}

    std::int64_t create(std::int64_t user_id, const std::vector<events::order_line>& lines,
                        const std::vector<std::int64_t>& issued_coupon_ids, kernel::request& request) {
        if (lines.empty())
            throw kernel::domain_error(kernel::refusal::invalid_input, "empty_order",
                                       "an order needs at least one product");
        for (auto& l : lines)
            if (l.quantity < 1)
                throw kernel::domain_error(
                    kernel::refusal::invalid_input, "invalid_quantity",
                    fmt::format("quantity must be at least 1 (product {}: {})", l.product_id, l.quantity));
        auto unit = w_.bus().begin(db_);
        auto id = orders_.create(user_id);
        if (auto* p = w_.participant()) {
            // The key of a start that never committed (its process died between the saga
            // store and the commit; the order's row went with the transaction) stays taken:
            // the order takes the next number rather than refusing every order from then on.
            for (int burnt = 0;; ++burnt) {
                try {
                    p->start(unit, events::OrderCreateStart{id, user_id, lines, issued_coupon_ids}, std::to_string(id));
                    break;
                } catch (const choreo::saga::saga_exists_error&) {
                    if (burnt == max_burnt_keys) throw;
                    id = orders_.renumber(id);
                }
            }
        } else {
            events::OrderCreateStart start{id, user_id, lines, issued_coupon_ids};
            out_.publish(unit, std::move(start));
            w_.check_fault("order/create order");
            w_.ran("create order", "in the command");
        }
        request.record({{"order", id}});
        unit.commit();
        return id;
    }

    // Returns the attempt's number: the payment saga's key is PayStart:{order_id}#{attempt}.
    std::int64_t pay(std::int64_t order_id, events::payment_method method, kernel::request& request) {
        auto unit = w_.bus().begin(db_);
        auto o = orders_.find(order_id);
        if (!o)
            throw kernel::domain_error(kernel::refusal::not_found, "order_not_found",
                                       fmt::format("no order {}", order_id));
        check_payable(*o);
        auto attempt = orders_.next_pay_attempt(order_id);
        events::PayStart start{o->id, o->user_id, o->payment_id, o->price, method};
        if (auto* p = w_.participant()) {
            // As in create(): an attempt whose start never committed left its key taken.
            for (int burnt = 0;; ++burnt) {
                try {
                    p->start(unit, start, fmt::format("{}#{}", order_id, attempt));
                    break;
                } catch (const choreo::saga::saga_exists_error&) {
                    if (burnt == max_burnt_keys) throw;
                    attempt = orders_.next_pay_attempt(order_id);
                }
            }
        } else {
            out_.publish(unit, std::move(start));
            w_.check_fault("order/start payment");
        }
        request.record({{"attempt", attempt}});
        unit.commit();
        return attempt;
    }

private:
    // Each key burnt takes a crash at the wrong moment; more in a row means the store is not
    // the one the keys came from, and the refusal says so.
    static constexpr int max_burnt_keys = 100;

    kernel::wiring& w_;
    kernel::database& db_;
    repository& orders_;
    publisher out_;
};

} // namespace shop::order
