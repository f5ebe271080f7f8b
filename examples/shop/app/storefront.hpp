#pragma once
// What the scenarios need of a shop: its operations, the world around it, and views of its
// state. The one-process shop (shop.hpp) implements it directly; the shop as six processes
// implements it over commands sent through Redis (scenario_processes.hpp). A scenario written once
// therefore runs against both.

#include <boost/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace shop::app {

enum class mode { transactional, saga };

[[nodiscard]] inline const char* to_string(mode m) noexcept {
    return m == mode::transactional ? "transactional" : "saga";
}

// One dispatch, as the timeline shows it.
struct timeline_entry {
    std::string event, phase, context, listener, thread, outcome;
    std::string saga; // the saga key the work belongs to (saga mode), else empty
};

enum class card_behaviour { approve, decline, time_out };
enum class platform_behaviour { up, down, slow };
// Their names, in the order of the enumerators (commands and the web API use them).
inline constexpr std::array<std::string_view, 3> card_behaviour_names{"approve", "decline", "time_out"};
inline constexpr std::array<std::string_view, 3> platform_behaviour_names{"up", "down", "slow"};

// The behaviour called `name` in `names`; nullopt when none is.
template <class Behaviour, std::size_t N>
[[nodiscard]] std::optional<Behaviour> behaviour_named(const std::array<std::string_view, N>& names,
                                                       std::string_view name) {
    for (std::size_t i = 0; i < N; ++i)
        if (names[i] == name) return static_cast<Behaviour>(i);
    return std::nullopt;
}

class storefront {
public:
    virtual ~storefront() = default;

    // The contexts' own operations. Broken business rules throw std::runtime_error. Those that
    // change something take an idempotency key (an HTTP request's Idempotency-Key): called
    // again with the same key, they answer as the first call did and change nothing more.
    virtual std::int64_t add_product(const std::string& name, std::int64_t price, std::int64_t stock,
                                     const std::string& idempotency_key = {}) = 0;
    virtual std::int64_t define_coupon(const std::string& name, const std::string& type, std::int64_t amount,
                                       std::int64_t stock, std::chrono::seconds valid_for,
                                       const std::string& idempotency_key = {}) = 0;
    virtual std::int64_t issue_coupon(std::int64_t coupon_id, std::int64_t user_id,
                                      const std::string& idempotency_key = {}) = 0;
    virtual void charge_points(std::int64_t user_id, std::int64_t amount, const std::string& idempotency_key = {}) = 0;
    virtual std::int64_t balance(std::int64_t user_id) = 0;
    virtual boost::json::array search_products(const std::string& name_part, std::int64_t min_price,
                                               std::int64_t max_price) = 0;
    virtual boost::json::array coupons_of(std::int64_t user_id) = 0; // the user's issued coupons

    // The two flows. Transactional: done when they return (or thrown, all rolled back).
    // Saga: the first step is committed when they return; settle() waits for the rest.
    // Safe to call from several threads at once.
    virtual std::int64_t create_order(std::int64_t user_id,
                                      const std::vector<std::pair<std::int64_t, std::int64_t>>& lines,
                                      const std::vector<std::int64_t>& issued_coupon_ids,
                                      const std::string& idempotency_key = {}) = 0;
    virtual void pay(std::int64_t order_id, bool by_card, const std::string& idempotency_key = {}) = 0;
    // Waits until every flow started has ended and nothing is left to deliver.
    virtual void settle() = 0;

    // The world around the shop.
    virtual void advance_clock(std::chrono::seconds by) = 0;
    virtual void fail_step(const std::string& step) = 0; // the step's next call throws
    virtual void set_card(card_behaviour b) = 0;
    virtual void set_data_platform(platform_behaviour b) = 0;

    // Views.
    [[nodiscard]] virtual app::mode mode() const noexcept = 0;
    [[nodiscard]] virtual std::string order_status(std::int64_t order_id) = 0; // "NONE" when it does not exist
    [[nodiscard]] virtual std::string saga_outcome(std::int64_t order_id) = 0; // saga mode: the sagas' states
    // One order with its items, coupons and payment (app/views.hpp's shape); nullopt when none.
    [[nodiscard]] virtual std::optional<boost::json::object> order(std::int64_t order_id) = 0;
    // Saga mode: a saga's state and its steps in the order they started; nullopt when none.
    [[nodiscard]] virtual std::optional<boost::json::object> saga(const std::string& key) = 0;
    [[nodiscard]] virtual boost::json::object state() = 0;
    [[nodiscard]] virtual std::vector<std::string> check_invariants() = 0; // empty when every invariant holds

protected:
    storefront() = default;
    storefront(const storefront&) = default;
    storefront& operator=(const storefront&) = default;
};

} // namespace shop::app
