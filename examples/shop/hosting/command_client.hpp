#pragma once
// The client's side of the shop as six processes: commands out to a context's stream and
// their replies in, sagas followed through the saga bridge's stream and the saga store.
// `shop load` and the remote shop (the scenarios on six processes) both drive the shop
// through it. Thread-safe: any number of threads may call() at once.

#include <boost/json.hpp>

#include <choreo/saga/status.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace shop::app {

// A command the process refused (a broken business rule) or could not run.
class command_failed : public std::runtime_error {
public:
    // `refusal`: the kernel::refusal as a number when a business rule refused it, else -1.
    // `retry_after`: for code "busy", when to try again.
    command_failed(const std::string& message, int refusal = -1, std::string code = {},
                   std::chrono::milliseconds retry_after = {})
        : std::runtime_error(message), refusal_(refusal), code_(std::move(code)), retry_after_(retry_after) {}
    [[nodiscard]] int refusal() const noexcept { return refusal_; }
    [[nodiscard]] const std::string& code() const noexcept { return code_; }
    [[nodiscard]] std::chrono::milliseconds retry_after() const noexcept { return retry_after_; }

private:
    int refusal_;
    std::string code_;
    std::chrono::milliseconds retry_after_;
};

class command_client {
public:
    // Keys and streams under `prefix`, as `shop serve --prefix` uses them.
    command_client(const std::string& redis_url, std::string prefix);
    ~command_client();
    command_client(const command_client&) = delete;
    command_client& operator=(const command_client&) = delete;

    // Sends `op` to `context` and waits for its answer; throws command_failed when refused,
    // std::runtime_error when no answer came within `timeout`. A command with an effect runs
    // once per `idempotency_key`; without one, once per call (the call's request number).
    boost::json::object call(std::string_view context, std::string op, const boost::json::object& args,
                             std::chrono::milliseconds timeout = std::chrono::seconds{30},
                             const std::string& idempotency_key = {});
    // Sends `op` to the process that answers it: the context whose module lists it
    // (contexts.hpp), or the data platform's.
    boost::json::object call(std::string op, const boost::json::object& args,
                             std::chrono::milliseconds timeout = std::chrono::seconds{30},
                             const std::string& idempotency_key = {});

    // The saga's outcome once it ended; nullopt if it has not by `deadline`. The end is
    // heard from the saga bridge's stream; an end whose broadcast died with its process is
    // found in the store, which is asked once the broadcast is a second late.
    std::optional<choreo::saga::saga_status> wait_ended(const std::string& key,
                                                        std::chrono::steady_clock::time_point deadline);
    // Ends found in the store rather than heard (their broadcast was lost).
    [[nodiscard]] std::uint64_t found_in_store() const noexcept;

    // The saga store, read.
    [[nodiscard]] std::optional<choreo::saga::saga_record> saga(const std::string& key);
    [[nodiscard]] std::optional<std::string> holder(const std::string& marker);

    // The event and saga streams under the prefix whose consumer groups have entries not yet
    // read or not yet acknowledged, each with what is left ("stream: group G has 2 pending,
    // 1 unread"); empty when every entry written has been handled. The command and reply
    // streams are left out: the question itself travels on them.
    [[nodiscard]] std::vector<std::string> unsettled_streams();

    // Stops this client's readers and deletes every key under the prefix (streams, sagas,
    // markers), for a shop that is gone; call() fails afterwards.
    void remove_keys();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace shop::app
