#pragma once
// What the benchmarks through Redis and Kafka share: the redis-server they start themselves
// (once per run, on first use, on a free loopback port) and sagas started from four threads.

#include <choreo/redis.hpp>

#include "../tests/support/redis_server.hpp"

#include <fmt/format.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace bench {

// One redis-server and an io_context thread for the whole run.
struct redis_env {
    test_support::redis_server server;
    test_support::io_thread io;
    choreo::redis::connection redis{io.executor(), server.url()};
    std::atomic<int> prefixes{0};

    static redis_env& get() {
        static redis_env env;
        return env;
    }
    // Keys of their own for each benchmark run.
    std::string prefix() { return "bench" + std::to_string(++prefixes) + ":"; }
};

// Redis's own XADD rate on the benchmark's server with one client, one command at a time
// (`redis-benchmark -c 1 -P 1`, beside CHOREO_REDIS_SERVER), per second: what a round trip
// is worth on this machine at this moment, to put a figure of the same run beside.
inline double one_client_xadd_rate() {
    auto& env = redis_env::get();
    auto tool = std::filesystem::path{CHOREO_REDIS_SERVER}.parent_path() / "redis-benchmark";
    auto key = env.prefix() + "xadd";
    auto command =
        fmt::format("'{}' -p {} -c 1 -P 1 -n 50000 -q XADD {} '*' f v 2>&1", tool.string(), env.server.port(), key);
    std::unique_ptr<FILE, int (*)(FILE*)> out{::popen(command.c_str(), "r"), &::pclose};
    if (!out) throw std::runtime_error("cannot run " + tool.string());
    std::string printed;
    char chunk[4096];
    for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, out.get())) > 0;) printed.append(chunk, n);
    // Its last report: "XADD ...: 14001.68 requests per second, p50=0.063 msec".
    auto end = printed.rfind(" requests per second");
    auto start = end == std::string::npos ? end : printed.rfind(' ', end - 1);
    if (start == std::string::npos) throw std::runtime_error("redis-benchmark printed no rate: " + printed);
    (void)env.redis.command({"DEL", key});
    return std::stod(printed.substr(start + 1, end - start - 1));
}

// Calls start(i) for each i of [first, first + count), a quarter of them from each of four
// threads (count a multiple of four); returns once all four are done.
template <class Start>
void from_four_threads(long first, long count, Start start) {
    std::vector<std::thread> starters;
    for (int t = 0; t < 4; ++t)
        starters.emplace_back([&, from = first + t * (count / 4)] {
            for (long i = from; i < from + count / 4; ++i) start(i);
        });
    for (auto& t : starters) t.join();
}

} // namespace bench
