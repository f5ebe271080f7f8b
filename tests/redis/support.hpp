#pragma once
// What the Redis tests share: connection options for a server of the test's own that fail
// and reconnect quickly.

#include <choreo/redis/options.hpp>

#include "../support/redis_server.hpp"

#include <chrono>

namespace redis_test {

inline choreo::redis::connection_options local(const test_support::redis_server& server) {
    using namespace std::chrono_literals;
    choreo::redis::connection_options o;
    o.port = server.port();
    o.connect_timeout = 1s;
    o.command_timeout = 2s;
    o.wait_for_server = 5s;
    o.reconnect_initial_delay = 10ms;
    o.reconnect_max_delay = 100ms;
    return o;
}

} // namespace redis_test
