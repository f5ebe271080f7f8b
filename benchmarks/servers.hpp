#pragma once
// What the benchmarks through Redis and Kafka share: the redis-server they start themselves
// (once per run, on first use, on a free loopback port) and sagas started from four threads.

#include <choreo/redis.hpp>

#include "../tests/support/redis_server.hpp"

#include <atomic>
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
