#pragma once
// The point context's front door: users' point balances, the step that spends points on a
// payment, and the commands that charge points and tell a balance.

#include <array>
#include <string_view>

#include "../kernel/context.hpp"
#include "listeners.hpp"
#include "publisher.hpp"
#include "repository.hpp"
#include "service.hpp"

namespace shop::point {

struct module {
    static constexpr std::string_view name = "point";
    using publisher = shop::point::publisher;
    static constexpr std::array<std::string_view, 2> commands{"charge_points", "balance"};

    class instance {
    public:
        explicit instance(kernel::context_host& host) : points_(host.db), service_(host.bus, host.db, points_) {
            points_.create_schema();
            wire(host.wiring, points_, host.reservations);
        }
        void answer(kernel::command_table& table) {
            table.add("charge_points", [this](const boost::json::object& args, kernel::request& request) {
                service_.charge(kernel::integer(args, "user"), kernel::integer(args, "amount"), request);
                return request.answer();
            });
            table.add("balance", [this](const boost::json::object& args) {
                return boost::json::object{{"balance", service_.balance(kernel::integer(args, "user"))}};
            });
        }

    private:
        repository points_;
        service service_;
    };

    // "points": every user's balance with what was charged, used and refunded.
    static void read(kernel::database& db, boost::json::object& out) {
        repository points{db};
        out["points"] = kernel::rows_as_json(
            db, [&] { return points.balances(); },
            [&](const auto& entry) {
                auto t = points.history(entry.first);
                return boost::json::object{{"user", entry.first},
                                           {"balance", entry.second},
                                           {"charged", t.charged},
                                           {"used", t.used},
                                           {"refunded", t.refunded}};
            });
    }
};

} // namespace shop::point
