#pragma once
// The shop as six processes, seen from a client: the scenarios' interface implemented with
// commands sent through Redis to the `shop serve` processes, their databases read beside
// them (same machine) and the saga store read in Redis. The remote shop (the scenarios on
// six processes) and the order process's web API both use it. Thread-safe.

#include "../app/command_storefront.hpp"

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace shop::app {

class command_client;

struct six_processes_options {
    std::string redis_url;
    std::string prefix;              // the processes' --prefix
    std::filesystem::path databases; // the processes' --dir
    std::chrono::seconds settle_timeout{60};
};

class six_processes : public command_storefront {
public:
    explicit six_processes(six_processes_options o);
    ~six_processes() override;
    six_processes(const six_processes&) = delete;
    six_processes& operator=(const six_processes&) = delete;

    // Waits until each of the six processes answers; throws std::runtime_error naming the
    // first that did not within `limit`.
    void wait_for_processes(std::chrono::seconds limit);
    // Deletes every key under the prefix (the shop is gone); the shop is unusable afterwards.
    void remove_keys();

    // storefront, beyond command_storefront's: see there. settle() throws std::runtime_error,
    // naming what is still moving, when the processes have not settled within the
    // options' settle_timeout.
    void settle() override;
    void fail_step(const std::string& step) override;
    [[nodiscard]] app::mode mode() const noexcept override { return mode::saga; }
    [[nodiscard]] boost::json::object state() override;
    // Products added elsewhere (before a restart, by another client) count as added with
    // what they hold plus what they sold.
    [[nodiscard]] std::vector<std::string> check_invariants() override;

protected:
    // To the process that answers `op`, with a business rule's refusal thrown as the
    // kernel::domain_error it was.
    boost::json::object call(std::string op, const boost::json::object& args,
                             const std::string& idempotency_key = {}) override;
    std::optional<choreo::saga::saga_record> saga_record(const std::string& key) override;

private:
    // To process `process` (ping, activity, fail_step), likewise.
    boost::json::object call_process(std::string_view process, std::string op, const boost::json::object& args,
                                     std::chrono::milliseconds timeout = std::chrono::seconds{30});
    boost::json::object activity_of_all(std::vector<std::string>* unsettled);

    six_processes_options options_;
    std::unique_ptr<command_client> client_;
};

} // namespace shop::app
