#pragma once
// The shop in one process: the five bounded contexts (contexts.hpp) and the data platform
// sender, in either mode. This is the one-process composition root; it goes over the list of
// contexts and names none. Its interface hides choreo and SQLite, so the program's other
// translation units compile quickly.

#include "command_storefront.hpp"

#include <choreo/viz/flowchart.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace shop::app {

struct config {
    app::mode mode = mode::transactional;
    std::string directory{};      // empty: every database in memory; else SQLite files there
    bool record_timeline = false; // keep every dispatch for timeline()
    bool reopen = false;          // with a directory: keep the databases found there (a restart)
    bool start_relay = true;      // false: the outbox relay waits for start_relay()
    // Saga mode: a saga still running this long after it started is rolled back.
    std::chrono::seconds saga_timeout{10};
    // Saga mode: the most sagas running at once; a flow that would start one more is refused
    // with choreo::saga::saga_overloaded_error (HTTP 503 with Retry-After). Zero: no limit.
    std::size_t max_running = 0;
};

class one_process final : public command_storefront {
public:
    explicit one_process(config c);
    ~one_process() override;
    one_process(const one_process&) = delete;
    one_process& operator=(const one_process&) = delete;

    // storefront, beyond command_storefront's: see there.
    void settle() override;
    void fail_step(const std::string& step) override;
    [[nodiscard]] app::mode mode() const noexcept override;
    [[nodiscard]] boost::json::object state() override;
    [[nodiscard]] std::vector<std::string> check_invariants() override;

    // What it traced (with config::record_timeline) and the incidents it met.
    [[nodiscard]] std::vector<timeline_entry> timeline();
    [[nodiscard]] std::vector<std::string> incidents();

    // Kills this process (SIGKILL) right after the next commit that completes an order,
    // before anything else runs: the crash-after-commit scenario's child.
    void crash_after_next_completion();
    // Starts the outbox relay when config::start_relay was false.
    void start_relay();
    // The arrows of the wiring as registered, `events` only and in their order (all when
    // empty), for choreo::viz to draw.
    [[nodiscard]] std::vector<choreo::viz::arrow> wiring(const std::vector<std::string>& events = {});

    // Every saga step of both flows, "context/step", in the order the contexts registered them.
    [[nodiscard]] static const std::vector<std::string>& steps();

protected:
    boost::json::object call(std::string op, const boost::json::object& args,
                             const std::string& idempotency_key = {}) override;
    std::optional<choreo::saga::saga_record> saga_record(const std::string& key) override;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace shop::app
