#pragma once
// The contexts' operations of storefront as commands (kernel/context.hpp): the shop in one
// process answers them from its contexts' command tables, the client of the six processes
// sends each to the process that answers it. Written once here, so the two cannot drift.
// Thread-safe.

#include "storefront.hpp"

#include <choreo/saga/status.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace shop::app {

class command_storefront : public storefront {
public:
    std::int64_t add_product(const std::string& name, std::int64_t price, std::int64_t stock,
                             const std::string& idempotency_key = {}) override;
    std::int64_t define_coupon(const std::string& name, const std::string& type, std::int64_t amount,
                               std::int64_t stock, std::chrono::seconds valid_for,
                               const std::string& idempotency_key = {}) override;
    std::int64_t issue_coupon(std::int64_t coupon_id, std::int64_t user_id,
                              const std::string& idempotency_key = {}) override;
    void charge_points(std::int64_t user_id, std::int64_t amount, const std::string& idempotency_key = {}) override;
    std::int64_t balance(std::int64_t user_id) override;
    boost::json::array search_products(const std::string& name_part, std::int64_t min_price,
                                       std::int64_t max_price) override;
    boost::json::array coupons_of(std::int64_t user_id) override;
    std::int64_t create_order(std::int64_t user_id, const std::vector<std::pair<std::int64_t, std::int64_t>>& lines,
                              const std::vector<std::int64_t>& issued_coupon_ids,
                              const std::string& idempotency_key = {}) override;
    void pay(std::int64_t order_id, bool by_card, const std::string& idempotency_key = {}) override;
    void advance_clock(std::chrono::seconds by) override;
    void set_card(card_behaviour b) override;
    void set_data_platform(platform_behaviour b) override;
    [[nodiscard]] std::string order_status(std::int64_t order_id) override;
    [[nodiscard]] std::string saga_outcome(std::int64_t order_id) override;
    [[nodiscard]] std::optional<boost::json::object> order(std::int64_t order_id) override;
    [[nodiscard]] std::optional<boost::json::object> saga(const std::string& key) override;

protected:
    command_storefront() = default;

    // Runs command `op` where it is answered; a broken business rule throws kernel::domain_error.
    // A command with an effect runs once per non-empty `idempotency_key`.
    virtual boost::json::object call(std::string op, const boost::json::object& args,
                                     const std::string& idempotency_key = {}) = 0;
    // Saga mode: the saga's record; nullopt when there is none (and in transactional mode).
    virtual std::optional<choreo::saga::saga_record> saga_record(const std::string& key) = 0;

    // The stock each product was added with through this shop.
    [[nodiscard]] std::map<std::int64_t, std::int64_t> initial_stock() const;
    // The keys of the sagas the flows started through this shop (saga mode).
    [[nodiscard]] std::vector<std::string> sagas_started() const;

private:
    mutable std::mutex mutex_;
    std::map<std::int64_t, std::int64_t> initial_stock_;
    std::vector<std::string> sagas_started_;
};

} // namespace shop::app
