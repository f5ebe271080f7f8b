#pragma once
// The six serving processes of a process test, on a Redis (and a Kafka broker) of the test's
// own, with `shop load` beside them, and how a test reads a load's outcome.

#include "../support/redis_server.hpp"

#include <hosting/child_processes.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#ifndef SHOP_PROGRAM
#error "SHOP_PROGRAM must name the shop program"
#endif

namespace shop_process_test {

using namespace std::chrono_literals;
using shop::app::child_process;
using shop::app::read_text_file;
using shop::app::serving_processes;

// The six serving processes on a directory of their own, and `shop load` beside them. With a
// Kafka URL, the events between the processes go over Kafka (each cluster has topics of its
// own: its key prefix names them).
class cluster {
public:
    // `arguments` go to every serving process's command line.
    explicit cluster(const test_support::redis_server& redis, const std::string& kafka_url = {},
                     std::vector<std::string> arguments = {})
        : number_(++count_),
          processes_(SHOP_PROGRAM, redis.url(),
                     std::filesystem::temp_directory_path() /
                         ("choreo-shop-" + std::to_string(::getpid()) + "-" + std::to_string(number_)),
                     "shop" + std::to_string(number_) + ":", {}, with_kafka(kafka_url, std::move(arguments))) {}
    ~cluster() {
        (void)processes_.stop();
        if (!failed_) {
            std::error_code ignored;
            std::filesystem::remove_all(processes_.directory(), ignored);
        }
    }
    cluster(const cluster&) = delete;
    cluster& operator=(const cluster&) = delete;

    void start(const std::string& name, const std::vector<std::string>& extra = {}) { processes_.start(name, extra); }
    int wait_for_exit(const std::string& name, std::chrono::seconds limit) {
        return processes_.wait_for_exit(name, limit);
    }
    std::map<std::string, int> terminate_all(std::chrono::seconds limit) { return processes_.terminate_all(limit); }
    // Each process exits 0 on SIGTERM: no crash, and no sanitizer report at exit.
    std::vector<std::string> stop() { return processes_.stop(); }
    void kill(const std::string& name) { processes_.kill(name); }
    int terminate(const std::string& name) { return processes_.terminate(name); }
    [[nodiscard]] bool ready(const std::string& name) const { return processes_.ready(name); }
    [[nodiscard]] std::string log_of(const std::string& name) const {
        return read_text_file(processes_.directory() / (name + ".log"));
    }

    std::unique_ptr<child_process> load(const std::vector<std::string>& args) {
        std::vector<std::string> all{
            "load",     "--redis",          processes_.redis_url(), "--dir", processes_.databases().string(),
            "--prefix", processes_.prefix()};
        all.insert(all.end(), args.begin(), args.end());
        std::filesystem::remove(log_of_load());
        return std::make_unique<child_process>(SHOP_PROGRAM, all, log_of_load());
    }
    [[nodiscard]] std::string load_output() const { return read_text_file(log_of_load()); }
    // Until the load reports progress (its processes answered and orders flow), up to a minute.
    void wait_for_progress() const {
        for (auto deadline = std::chrono::steady_clock::now() + 60s;
             load_output().find("ended:") == std::string::npos && std::chrono::steady_clock::now() < deadline;)
            std::this_thread::sleep_for(20ms);
    }
    // Everything the processes said, for a failing test's message; the directory is kept.
    std::string logs() {
        failed_ = true;
        return "(kept in " + processes_.directory().string() + ")\n" + processes_.logs();
    }

private:
    [[nodiscard]] std::filesystem::path log_of_load() const { return processes_.directory() / "load.log"; }
    static std::vector<std::string> with_kafka(const std::string& kafka_url, std::vector<std::string> arguments) {
        if (!kafka_url.empty()) arguments.insert(arguments.begin(), {"--kafka", kafka_url});
        return arguments;
    }

    static inline int count_ = 0;
    int number_;
    serving_processes processes_;
    bool failed_ = false;
};

// Waits for `load` to end, up to `limit`; -1 if it did not.
inline int finish(child_process& load, std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!load.exited()) {
        if (std::chrono::steady_clock::now() > deadline) {
            load.signal(SIGKILL);
            return -1;
        }
        std::this_thread::sleep_for(50ms);
    }
    return load.exit_status();
}

// The last progress line: "[  4.9 s]   300/300 ended: completed 183, cancelled 98, ...".
inline std::string final_tally(const std::string& output) {
    auto at = output.rfind("ended:");
    if (at == std::string::npos) return {};
    auto end = output.find('\n', at);
    return output.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

// The run ended by itself, every order ended one way or the other, and the audit passed.
inline bool check_run(cluster& shop, int status) {
    auto output = shop.load_output();
    INFO(output);
    // The processes' own words, when the run failed (INFO lasts to the end of this scope).
    auto logs = status != 0 ? shop.logs() : std::string{};
    INFO(logs);
    CHECK(status == 0);
    auto unclean = shop.stop();
    for (auto& u : unclean) FAIL_CHECK(u << "\n" << shop.logs());
    if (!unclean.empty()) return false;
    bool held = output.find("invariants: all hold") != std::string::npos;
    bool ended = final_tally(output).find("unfinished 0;") != std::string::npos;
    CHECK(held);
    CHECK(ended);
    return status == 0 && held && ended;
}

} // namespace shop_process_test
