#pragma once
// The shop as six processes behind the scenarios' interface: it starts the six `shop serve`
// processes on a directory and a key prefix of its own, drives them with commands through
// Redis, and reads their databases and the saga store for its views. A scenario run on it
// is the same code as on the one-process shop (always in saga mode).

#include "shop_api.hpp"

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace shop::app {

class shop_client;
class serving_processes;

struct remote_options {
    std::string program;             // the shop program, run as `program serve ...`
    std::string redis_url;
    std::string prefix;              // before every Redis key; removed when the shop is
    std::filesystem::path directory; // the processes' databases and logs; removed unless kept
    std::chrono::seconds settle_timeout{60};
};

class remote_shop final : public shop_api {
public:
    // Starts the six processes and waits until each answers.
    explicit remote_shop(remote_options o);
    // Stops the processes, deletes the keys under the prefix, and the directory unless kept.
    ~remote_shop() override;
    remote_shop(const remote_shop&) = delete;
    remote_shop& operator=(const remote_shop&) = delete;

    // shop_api: see there. settle() throws std::runtime_error, naming what is still moving,
    // when the processes have not settled within the options' settle_timeout.
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
    [[nodiscard]] app::mode mode() const noexcept override { return mode::saga; }
    [[nodiscard]] std::string order_status(std::int64_t order_id) override;
    [[nodiscard]] std::string saga_outcome(std::int64_t order_id) override;
    [[nodiscard]] boost::json::object state() override;
    [[nodiscard]] std::vector<std::string> check_invariants() override;
    [[nodiscard]] std::vector<timeline_entry> timeline() override { return {}; } // not traced across processes
    // What the processes reported on their error output (incidents, dead letters).
    [[nodiscard]] std::vector<std::string> incidents() override;

    // Stops the processes (SIGTERM); returns those that did not exit cleanly.
    std::vector<std::string> stop();
    // Keeps the directory (databases and logs) when the shop is destroyed, and says where.
    std::string keep_files();
    // Every process's output, the end of each, for a failure's report.
    [[nodiscard]] std::string logs() const;

private:
    boost::json::object activity_of_all(std::vector<std::string>* unsettled);

    remote_options options_;
    std::unique_ptr<serving_processes> processes_;
    std::unique_ptr<shop_client> client_;
    bool keep_ = false;
    std::mutex mutex_;
    std::map<std::int64_t, std::int64_t> initial_stock_;
    std::vector<std::string> sagas_started_; // keys of the sagas the flows started
};

} // namespace shop::app
