#pragma once
// The shop: the five bounded contexts and the data platform sender, composed in one
// process in either mode. This is the composition root: the only code that sees every
// context. Its interface hides choreo and SQLite, so the program's other translation
// units compile quickly.

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace shop::app {

enum class mode { transactional, saga };

[[nodiscard]] inline const char* to_string(mode m) noexcept { return m == mode::transactional ? "transactional" : "saga"; }

struct config {
    app::mode mode = mode::transactional;
    std::string directory;         // empty: every database in memory; else SQLite files there
    bool record_timeline = false;  // keep every dispatch for timeline()
    bool reopen = false;           // with a directory: keep the databases found there (a restart)
    bool start_relay = true;       // false: the outbox relay waits for start_relay()
};

// One dispatch, as the timeline shows it.
struct timeline_entry {
    std::string event, phase, context, listener, thread, outcome;
};

// One arrow of the wiring: `from` publishes `event`, which a listener of `to` handles.
struct edge {
    std::string from, to, event, listener;
    bool synchronous; // a before_commit listener in the same transaction (solid), else after commit (dashed)
};

enum class card_behaviour { approve, decline, time_out };
enum class platform_behaviour { up, down, slow };

class shop {
public:
    explicit shop(config c);
    ~shop();
    shop(const shop&) = delete;
    shop& operator=(const shop&) = delete;

    // The contexts' own operations. Broken business rules throw std::runtime_error.
    std::int64_t add_product(const std::string& name, std::int64_t price, std::int64_t stock);
    boost::json::array search_products(const std::string& name_part, std::int64_t min_price, std::int64_t max_price);
    std::int64_t define_coupon(const std::string& name, const std::string& type, std::int64_t amount, std::int64_t stock,
                               std::chrono::seconds valid_for);
    std::int64_t issue_coupon(std::int64_t coupon_id, std::int64_t user_id);
    boost::json::array coupons_of(std::int64_t user_id);
    void charge_points(std::int64_t user_id, std::int64_t amount);
    std::int64_t balance(std::int64_t user_id);

    // The two flows. Transactional: done when they return (or thrown, all rolled back).
    // Saga: the first step is committed when they return; settle() waits for the rest.
    std::int64_t create_order(std::int64_t user_id, const std::vector<std::pair<std::int64_t, std::int64_t>>& lines,
                              const std::vector<std::int64_t>& issued_coupon_ids);
    void pay(std::int64_t order_id, bool by_card);
    void settle();

    // The world around the shop.
    void advance_clock(std::chrono::seconds by);
    void fail_step(const std::string& step); // the step's next call throws
    void set_card(card_behaviour b);
    void set_data_platform(platform_behaviour b);
    // Kills this process (SIGKILL) right after the next commit that completes an order,
    // before anything else runs: the crash-after-commit scenario's child.
    void crash_after_next_completion();
    // Starts the outbox relay when config::start_relay was false.
    void start_relay();

    // Views.
    [[nodiscard]] app::mode mode() const noexcept;
    [[nodiscard]] std::string order_status(std::int64_t order_id); // "NONE" when it does not exist
    [[nodiscard]] std::string saga_outcome(std::int64_t order_id);   // saga mode: the create and pay sagas' states
    [[nodiscard]] boost::json::object state();
    [[nodiscard]] std::vector<std::string> check_invariants(); // empty when every invariant holds
    [[nodiscard]] std::vector<timeline_entry> timeline();
    [[nodiscard]] std::vector<std::string> incidents();
    [[nodiscard]] std::vector<edge> wiring();

    // Every step of both flows, "context/step", the same in both modes.
    [[nodiscard]] static const std::vector<std::string>& steps();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace shop::app
