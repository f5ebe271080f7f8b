#pragma once
// The coupon context's own operations: define coupons, issue them first come first
// served, list a user's coupons.

#include <functional>
#include <vector>

#include <choreo/core/bus.hpp>

#include "../kernel/checked.hpp"
#include "../kernel/sqlite.hpp"
#include "model.hpp"
#include "repository.hpp"

namespace shop::coupon {

class service {
public:
    service(choreo::bus& bus, kernel::database& db, repository& coupons, std::function<std::int64_t()> now)
        : bus_(bus), db_(db), coupons_(coupons), now_(std::move(now)) {}

    std::int64_t define(const coupon& c, kernel::request& request) {
        check_definition(c.type, c.amount);
        if (c.stock < 0 || c.valid_for <= 0 || c.issue_from >= c.issue_until)
            throw kernel::domain_error(kernel::refusal::invalid_input, "invalid_coupon",
                                       "a coupon needs a stock, a validity and an issue window");
        // The latest expiry a coupon issued in its window can have must be a time.
        (void)kernel::checked_add(c.issue_until, c.valid_for,
                                  "the coupon's latest expiry (end of its issue window + valid_for_seconds)");
        auto unit = bus_.begin(db_);
        auto id = coupons_.add(c);
        request.record({{"coupon", id}});
        unit.commit();
        return id;
    }
    // First come, first served: the transaction holds the database, so the last coupon goes once.
    std::int64_t issue(std::int64_t coupon_id, std::int64_t user_id, kernel::request& request) {
        auto unit = bus_.begin(db_);
        auto c = coupons_.find(coupon_id);
        if (!c)
            throw kernel::domain_error(kernel::refusal::not_found, "coupon_not_found",
                                       fmt::format("no coupon {}", coupon_id));
        check_issue(*c, now_());
        auto id = coupons_.issue(*c, user_id, now_());
        request.record({{"issued_coupon", id}});
        unit.commit();
        return id;
    }
    std::vector<issued_coupon> of_user(std::int64_t user_id) {
        return db_.read([&] { return coupons_.issued_to(user_id); });
    }

private:
    choreo::bus& bus_;
    kernel::database& db_;
    repository& coupons_;
    std::function<std::int64_t()> now_;
};

} // namespace shop::coupon
