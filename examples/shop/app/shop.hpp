#pragma once
// The shop: the five bounded contexts and the data platform sender, composed in one
// process in either mode. This is the composition root: the only code that sees every
// context. Its interface hides choreo and SQLite, so the program's other translation
// units compile quickly.

#include "shop_api.hpp"

#include <choreo/viz/flowchart.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace shop::app {

struct config {
    app::mode mode = mode::transactional;
    std::string directory;         // empty: every database in memory; else SQLite files there
    bool record_timeline = false;  // keep every dispatch for timeline()
    bool reopen = false;           // with a directory: keep the databases found there (a restart)
    bool start_relay = true;       // false: the outbox relay waits for start_relay()
};

class shop final : public shop_api {
public:
    explicit shop(config c);
    ~shop() override;
    shop(const shop&) = delete;
    shop& operator=(const shop&) = delete;

    // shop_api: see there.
    std::int64_t add_product(const std::string& name, std::int64_t price, std::int64_t stock) override;
    std::int64_t define_coupon(const std::string& name, const std::string& type, std::int64_t amount, std::int64_t stock,
                               std::chrono::seconds valid_for) override;
    std::int64_t issue_coupon(std::int64_t coupon_id, std::int64_t user_id) override;
    void charge_points(std::int64_t user_id, std::int64_t amount) override;
    std::int64_t balance(std::int64_t user_id) override;
    std::int64_t create_order(std::int64_t user_id, const std::vector<std::pair<std::int64_t, std::int64_t>>& lines,
                              const std::vector<std::int64_t>& issued_coupon_ids) override;
    void pay(std::int64_t order_id, bool by_card) override;
    void settle() override;
    void advance_clock(std::chrono::seconds by) override;
    void fail_step(const std::string& step) override;
    void set_card(card_behaviour b) override;
    void set_data_platform(platform_behaviour b) override;
    [[nodiscard]] app::mode mode() const noexcept override;
    [[nodiscard]] std::string order_status(std::int64_t order_id) override;
    [[nodiscard]] std::string saga_outcome(std::int64_t order_id) override;
    [[nodiscard]] boost::json::object state() override;
    [[nodiscard]] std::vector<std::string> check_invariants() override;
    [[nodiscard]] std::vector<timeline_entry> timeline() override;
    [[nodiscard]] std::vector<std::string> incidents() override;

    boost::json::array search_products(const std::string& name_part, std::int64_t min_price,
                                                     std::int64_t max_price) override;
    boost::json::array coupons_of(std::int64_t user_id) override;
    [[nodiscard]] std::optional<boost::json::object> order(std::int64_t order_id) override;
    [[nodiscard]] std::optional<boost::json::object> saga(const std::string& key) override;

    // The one-process shop's own.
    // Kills this process (SIGKILL) right after the next commit that completes an order,
    // before anything else runs: the crash-after-commit scenario's child.
    void crash_after_next_completion();
    // Starts the outbox relay when config::start_relay was false.
    void start_relay();
    // The arrows of the wiring as registered, `events` only and in their order (all when
    // empty), for choreo::viz to draw.
    [[nodiscard]] std::vector<choreo::viz::arrow> wiring(const std::vector<std::string>& events = {});

    // Every step of both flows, "context/step", the same in both modes.
    [[nodiscard]] static const std::vector<std::string>& steps();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace shop::app
