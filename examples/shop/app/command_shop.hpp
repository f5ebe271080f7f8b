#pragma once
// The shop as six processes, seen from a client: the scenarios' interface implemented with
// commands sent through Redis to the `shop serve` processes, their databases read beside
// them (same machine) and the saga store read in Redis. The remote shop (the scenarios on
// six processes) and the order process's web API both use it. Thread-safe.

#include "shop_api.hpp"

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace shop::app {

class shop_client;

struct command_shop_options {
    std::string redis_url;
    std::string prefix;              // the processes' --prefix
    std::filesystem::path databases; // the processes' --dir
    std::chrono::seconds settle_timeout{60};
};

class command_shop : public shop_api {
public:
    explicit command_shop(command_shop_options o);
    ~command_shop() override;
    command_shop(const command_shop&) = delete;
    command_shop& operator=(const command_shop&) = delete;

    // Waits until each of the six processes answers; throws std::runtime_error naming the
    // first that did not within `limit`.
    void wait_for_processes(std::chrono::seconds limit);
    // Deletes every key under the prefix (the shop is gone); the shop is unusable afterwards.
    void remove_keys();

    // shop_api: see there. settle() throws std::runtime_error, naming what is still moving,
    // when the processes have not settled within the options' settle_timeout.
    std::int64_t add_product(const std::string& name, std::int64_t price, std::int64_t stock) override;
    std::int64_t define_coupon(const std::string& name, const std::string& type, std::int64_t amount, std::int64_t stock,
                               std::chrono::seconds valid_for) override;
    std::int64_t issue_coupon(std::int64_t coupon_id, std::int64_t user_id) override;
    void charge_points(std::int64_t user_id, std::int64_t amount) override;
    std::int64_t balance(std::int64_t user_id) override;
    boost::json::array search_products(const std::string& name_part, std::int64_t min_price,
                                       std::int64_t max_price) override;
    boost::json::array coupons_of(std::int64_t user_id) override;
    std::int64_t create_order(std::int64_t user_id, const std::vector<std::pair<std::int64_t, std::int64_t>>& lines,
                              const std::vector<std::int64_t>& issued_coupon_ids) override;
    void pay(std::int64_t order_id, bool by_card) override;
    void settle() override;
    void advance_clock(std::chrono::seconds by) override;
    void fail_step(const std::string& step) override;
    void set_card(card_behaviour b) override;
    void set_data_platform(platform_behaviour b) override;
    [[nodiscard]] app::mode mode() const noexcept override { return mode::saga; }
    [[nodiscard]] std::string order_status(std::int64_t order_id) override;
    [[nodiscard]] std::string saga_outcome(std::int64_t order_id) override;
    [[nodiscard]] std::optional<boost::json::object> order(std::int64_t order_id) override;
    [[nodiscard]] std::optional<boost::json::object> saga(const std::string& key) override;
    [[nodiscard]] boost::json::object state() override;
    // Products added elsewhere (before a restart, by another client) count as added with
    // what they hold plus what they sold.
    [[nodiscard]] std::vector<std::string> check_invariants() override;
    [[nodiscard]] std::vector<timeline_entry> timeline() override { return {}; } // not traced across processes
    [[nodiscard]] std::vector<std::string> incidents() override { return {}; }

private:
    // client_->call(), with a business rule's refusal thrown as the platform::domain_error it was.
    boost::json::object call(std::string_view context, std::string op, const boost::json::object& args,
                             std::chrono::milliseconds timeout = std::chrono::seconds{30});
    boost::json::object activity_of_all(std::vector<std::string>* unsettled);

    command_shop_options options_;
    std::unique_ptr<shop_client> client_;
    std::mutex mutex_;
    std::map<std::int64_t, std::int64_t> initial_stock_;
    std::vector<std::string> sagas_started_; // keys of the sagas the flows started
};

} // namespace shop::app
