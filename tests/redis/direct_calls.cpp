// Blocking calls on sockets of their callers' own (redis::connection's class note, decision
// 0040): they keep each thread's order with its asynchronous commands, survive a socket
// Redis closed while it was idle, and are interrupted by close(); turned off, every command
// goes through the strand.

#include <choreo/redis/connection.hpp>

#include "../support/redis_server.hpp"
#include "support.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

using namespace choreo::redis;
using namespace std::chrono_literals;
using test_support::io_thread;
using test_support::redis_server;

namespace {

connection_options local(const redis_server& server, bool direct = true) {
    auto o = redis_test::local(server);
    o.command_timeout = 10s; // longer than the calls left waiting below
    o.client_name = "direct-test";
    o.direct_blocking_calls = direct;
    return o;
}

// How many clients of that name Redis has now.
std::size_t clients_named(connection& redis, const std::string& name) {
    auto list = redis.command({"CLIENT", "LIST"}).as_string();
    std::size_t count = 0;
    for (std::size_t at = 0; (at = list.find(" name=" + name + " ", at)) != std::string::npos; ++at) ++count;
    return count;
}

} // namespace

TEST_CASE("blocking calls from several threads run on sockets of their own, each thread's commands in order") {
    redis_server server;
    io_thread io;
    connection redis{io.executor(), local(server)};
    REQUIRE(redis.command({"PING"}).as_string() == "PONG");

    constexpr int threads = 4;
    constexpr int rounds = 200;
    std::atomic<int> out_of_order{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < threads; ++t)
        callers.emplace_back([&, t] {
            auto key = "list:" + std::to_string(t);
            for (int i = 1; i <= rounds; ++i) {
                // An asynchronous push, then at once a blocking read: the read must see the push.
                redis.async_command({"RPUSH", key, std::to_string(i)}, [](std::exception_ptr, reply) {});
                if (redis.command({"LLEN", key}).as_integer() != i) ++out_of_order;
                // Blocking calls alone: the second sees the first.
                redis.command({"SET", key + ":last", std::to_string(i)});
                if (redis.command({"GET", key + ":last"}).as_string() != std::to_string(i)) ++out_of_order;
            }
        });
    for (auto& c : callers) c.join();
    CHECK(out_of_order.load() == 0);
    CHECK(redis.direct_sockets() >= 1);
    CHECK(redis.direct_sockets() <= threads + 1);
    // Each socket ran the connection's handshake: it carries the client name.
    CHECK(clients_named(redis, "direct-test") == 1 + redis.direct_sockets());
}

TEST_CASE("a socket Redis closed while it was idle is replaced, and the call succeeds") {
    redis_server server;
    io_thread io;
    connection redis{io.executor(), local(server)};
    REQUIRE(redis.command({"PING"}).as_string() == "PONG");
    REQUIRE(redis.command({"SET", "k", "v"}).type == reply::kind::status);
    REQUIRE(redis.direct_sockets() == 1);

    // Another client ends every connection of this one (as Redis's idle timeout would).
    io_thread other_io;
    auto o = local(server, false);
    o.client_name = "killer";
    connection killer{other_io.executor(), o};
    CHECK(killer.command({"CLIENT", "KILL", "SKIPME", "yes"}).as_integer() >= 2);

    CHECK(redis.command({"GET", "k"}).as_string() == "v");
    CHECK(redis.command({"GET", "k"}).as_string() == "v");
}

TEST_CASE("closing fails a blocking call under way with closed, at once") {
    for (bool direct : {true, false}) {
        CAPTURE(direct);
        redis_server server;
        io_thread io;
        connection redis{io.executor(), local(server, direct)};
        REQUIRE(redis.command({"PING"}).as_string() == "PONG");
        std::promise<void> started;
        auto waiting = std::async(std::launch::async, [&] {
            started.set_value();
            try {
                redis.command({"BLPOP", "nothing-comes", "0"}); // waits for ever
                return std::string{"answered"};
            } catch (const redis_error& e) {
                return std::string{to_string(e.code())};
            }
        });
        started.get_future().get();
        // Closed once Redis has the call (closing before it is sent fails it as well).
        io_thread other_io;
        auto o = local(server, false);
        o.client_name = "watcher";
        connection watcher{other_io.executor(), o};
        for (int i = 0;
             i < 10'000 && watcher.command({"CLIENT", "LIST"}).as_string().find("cmd=blpop") == std::string::npos; ++i)
            std::this_thread::sleep_for(1ms);
        redis.close();
        CHECK(waiting.get() == "closed");
        CHECK_THROWS_AS(redis.command({"PING"}), redis_error);
    }
}

TEST_CASE("with direct blocking calls off, every command goes through the connection's own socket") {
    redis_server server;
    io_thread io;
    connection redis{io.executor(), local(server, false)};
    for (int i = 0; i < 100; ++i) REQUIRE(redis.command({"INCR", "n"}).as_integer() == i + 1);
    auto replies = redis.pipeline({{"INCR", "n"}, {"GET", "n"}});
    CHECK(replies[1].as_string() == "101");
    CHECK(redis.direct_sockets() == 0);
    CHECK(redis.connections() == 1);
    CHECK(clients_named(redis, "direct-test") == 1);
}
