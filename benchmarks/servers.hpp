#pragma once
// The servers the benchmarks start themselves, once per run and on first use: a redis-server
// and, where the Kafka tests' broker jars are configured, a single-node Kafka broker, each on
// free loopback ports.

#include <choreo/redis.hpp>

#include "../tests/support/redis_server.hpp"

#include <atomic>
#include <string>

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

} // namespace bench
