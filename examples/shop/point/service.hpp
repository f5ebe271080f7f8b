#pragma once
// The point context's own operations: charge points, read a balance.

#include <choreo/core/bus.hpp>

#include "../kernel/requests.hpp"
#include "../kernel/sqlite.hpp"
#include "model.hpp"
#include "repository.hpp"

namespace shop::point {

class service {
public:
    service(choreo::bus& bus, kernel::database& db, repository& points) : bus_(bus), db_(db), points_(points) {}

    void charge(std::int64_t user_id, std::int64_t amount, kernel::request& request) {
        auto unit = bus_.begin(db_);
        check_charge(points_.balance(user_id), amount);
        points_.change(user_id, "CHARGE", amount, 0);
        request.record({});
        unit.commit();
    }
    std::int64_t balance(std::int64_t user_id) {
        return db_.read([&] { return points_.balance(user_id); });
    }

private:
    choreo::bus& bus_;
    kernel::database& db_;
    repository& points_;
};

} // namespace shop::point
