#pragma once
// The shop's bounded contexts: the one list. The one-process shop, `shop serve`, the audit
// and the clients go over it and name no context themselves; a sixth context is its own
// folder with a module.hpp (kernel/context.hpp says what it holds) and a line here.

#include <string_view>
#include <type_traits>

#include "coupon/module.hpp"
#include "order/module.hpp"
#include "payment/module.hpp"
#include "point/module.hpp"
#include "product/module.hpp"

namespace shop {

template <class... Modules>
struct context_list {
    // Calls f(std::type_identity<Module>{}) for each context, in the list's order.
    template <class F>
    static constexpr void each(F&& f) {
        (f(std::type_identity<Modules>{}), ...);
    }
    // The context that answers command `op`, or empty.
    [[nodiscard]] static std::string_view owner_of(std::string_view op) {
        std::string_view owner;
        each([&](auto m) {
            using module = typename decltype(m)::type;
            for (auto c : module::commands)
                if (c == op) owner = module::name;
        });
        return owner;
    }
    [[nodiscard]] static bool known(std::string_view name) {
        bool found = false;
        each([&](auto m) { found = found || decltype(m)::type::name == name; });
        return found;
    }
};

using contexts = context_list<order::module, product::module, coupon::module, point::module, payment::module>;

} // namespace shop
