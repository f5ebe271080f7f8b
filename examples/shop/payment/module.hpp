#pragma once
// The payment context's front door: payments, the steps that create a payment, charge a
// card and complete a payment, and the commands that show a payment and (for the
// scenarios) set how the card gateway behaves. Before it takes any event it reconciles with
// the gateway: a charge no committed payment refers to is refunded (payment/reconcile.hpp).

#include <array>
#include <optional>
#include <string_view>

#include <fmt/format.h>

#include "../kernel/context.hpp"
#include "listeners.hpp"
#include "publisher.hpp"
#include "reconcile.hpp"
#include "repository.hpp"

namespace shop::payment {

// null when there is no payment (yet)
[[nodiscard]] inline boost::json::value payment_view(const std::optional<payment>& p) {
    if (!p) return nullptr;
    return boost::json::object{{"id", p->id}, {"amount", p->amount}, {"status", p->status}, {"method", p->method}};
}

struct module {
    static constexpr std::string_view name = "payment";
    using publisher = shop::payment::publisher;
    static constexpr std::array<std::string_view, 2> commands{"payment", "set_card"};

    class instance {
    public:
        explicit instance(kernel::context_host& host)
            : db_(host.db), payments_(host.db), gateway_(host.outside.card_gateway()) {
            payments_.create_schema();
            wire(host.wiring, payments_, gateway_);
            if (auto n = reconcile(gateway_, payments_, db_))
                fmt::print("payment: refunded {} charges no payment refers to\n", n);
        }
        void answer(kernel::command_table& table) {
            table.add("payment", [this](const boost::json::object& args) {
                auto id = kernel::integer(args, "payment");
                return boost::json::object{{"payment", payment_view(db_.read([&] { return payments_.find(id); }))}};
            });
            table.add("set_card", [this](const boost::json::object& args) {
                using behaviour = outside::card_gateway::behaviour;
                gateway_.set(kernel::behaviour_in<behaviour>(args, outside::card_gateway::behaviour_names));
                return boost::json::object{};
            });
        }

    private:
        kernel::database& db_;
        repository payments_;
        outside::card_gateway& gateway_;
    };

    // "payments": every payment with its order, amount, status and method.
    static void read(kernel::database& db, boost::json::object& out) {
        repository payments{db};
        out["payments"] = kernel::rows_as_json(
            db, [&] { return payments.all(); },
            [](const payment& p) {
                return boost::json::object{{"id", p.id},
                                           {"order", p.order_id},
                                           {"amount", p.amount},
                                           {"status", p.status},
                                           {"method", p.method}};
            });
    }
};

} // namespace shop::payment
