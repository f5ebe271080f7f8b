#pragma once
// The coupon context's front door: coupons and the ones issued to users, the step that uses
// an order's coupons, and the commands that define, issue and list coupons (and move the
// shop's clock, which decides when a coupon expires).

#include <array>
#include <string_view>

#include "../kernel/context.hpp"
#include "listeners.hpp"
#include "publisher.hpp"
#include "repository.hpp"
#include "service.hpp"

namespace shop::coupon {

[[nodiscard]] inline boost::json::array coupons_view(const std::vector<issued_coupon>& coupons) {
    boost::json::array found;
    for (auto& c : coupons)
        found.push_back(boost::json::object{{"issued_coupon", c.id},
                                            {"coupon", c.coupon_id},
                                            {"type", c.type},
                                            {"amount", c.amount},
                                            {"expires_at", c.expires_at},
                                            {"used_by_order", c.used_by_order}});
    return found;
}

struct module {
    static constexpr std::string_view name = "coupon";
    using publisher = shop::coupon::publisher;
    static constexpr std::array<std::string_view, 4> commands{"define_coupon", "issue_coupon", "coupons_of",
                                                              "advance_clock"};

    class instance {
    public:
        explicit instance(kernel::context_host& host)
            : clock_(host.clock), coupons_(host.db),
              service_(host.bus, host.db, coupons_, [&clock = host.clock] { return clock.now(); }) {
            coupons_.create_schema();
            wire(host.wiring, coupons_, [&clock = host.clock] { return clock.now(); });
        }
        void answer(kernel::command_table& table) {
            table.add("define_coupon", [this](const boost::json::object& args, kernel::request& request) {
                auto today = clock_.now();
                service_.define({0, kernel::text(args, "name"), kernel::text(args, "type"),
                                 kernel::integer(args, "amount"), kernel::integer(args, "stock"), 0, today - 3600,
                                 today + 30 * 86400, kernel::integer(args, "valid_for")},
                                request);
                return request.answer();
            });
            table.add("issue_coupon", [this](const boost::json::object& args, kernel::request& request) {
                service_.issue(kernel::integer(args, "coupon"), kernel::integer(args, "user"), request);
                return request.answer();
            });
            table.add("coupons_of", [this](const boost::json::object& args) {
                return boost::json::object{{"coupons", coupons_view(service_.of_user(kernel::integer(args, "user")))}};
            });
            table.add("advance_clock", [this](const boost::json::object& args) {
                clock_.advance(kernel::integer(args, "seconds"));
                return boost::json::object{{"now", clock_.now()}};
            });
        }

    private:
        kernel::clock& clock_;
        repository coupons_;
        service service_;
    };

    // "coupons": every issued coupon and the order that used it.
    static void read(kernel::database& db, boost::json::object& out) {
        repository coupons{db};
        out["coupons"] = kernel::rows_as_json(
            db, [&] { return coupons.all_issued(); },
            [](const issued_coupon& c) {
                return boost::json::object{{"issued_coupon", c.id},
                                           {"user", c.user_id},
                                           {"type", c.type},
                                           {"amount", c.amount},
                                           {"used_by_order", c.used_by_order}};
            });
    }
};

} // namespace shop::coupon
