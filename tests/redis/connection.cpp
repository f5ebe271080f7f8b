// The Redis connection against a redis-server of the test's own: commands and replies,
// pipelining from several threads, authentication (password and ACL user), database
// selection, a unix socket, timeouts, an unreachable server, a server restarted mid-run.

#include <choreo/redis/connection.hpp>

#include "../support/fault_log.hpp"
#include "../support/redis_server.hpp"
#include "support.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace choreo::redis;
using namespace std::chrono_literals;
using redis_test::local;
using test_support::io_thread;
using test_support::redis_server;

namespace {

errc code_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const redis_error& e) {
        return e.code();
    }
    FAIL("no redis_error was thrown");
    return errc::closed;
}

} // namespace

TEST_CASE("commands and every kind of reply") {
    redis_server server;
    io_thread io;
    connection redis{io.executor(), local(server)};

    CHECK(redis.command({"PING"}).as_string() == "PONG");
    CHECK(redis.command({"SET", "greeting", std::string_view{"hel\0lo", 6}}).type == reply::kind::status);
    auto value = redis.command({"GET", "greeting"});
    CHECK(value.type == reply::kind::string);
    CHECK(value.text == std::string("hel\0lo", 6)); // binary safe
    CHECK(redis.command({"GET", "missing"}).is_nil());
    CHECK(redis.command({"INCRBY", "counter", "41"}).as_integer() == 41);
    redis.command({"RPUSH", "list", "a", "b", "c"});
    auto list = redis.command({"LRANGE", "list", "0", "-1"});
    REQUIRE(list.type == reply::kind::array);
    REQUIRE(list.elements.size() == 3);
    CHECK(list.elements[2].as_string() == "c");

    // An error reply: thrown by the blocking call, handed over as a reply by the async one.
    CHECK(code_of([&] { redis.command({"INCR", "greeting"}); }) == errc::server_reply);
    std::promise<reply> got;
    redis.async_command({"NOSUCHCOMMAND"}, [&](std::exception_ptr error, reply r) {
        CHECK_FALSE(error);
        got.set_value(std::move(r));
    });
    auto r = got.get_future().get();
    CHECK(r.is_error());
    CHECK(r.text.find("unknown command") != std::string::npos);
    CHECK(code_of([&] { (void)r.as_integer(); }) == errc::server_reply);
    CHECK(redis.connected());
    // No reconnection: the connection's own, and the socket its blocking calls took.
    CHECK(redis.direct_sockets() == 1);
    CHECK(redis.connections() == 2);
}

TEST_CASE("pipelined commands from several threads each get their own reply, in order") {
    redis_server server;
    io_thread io;
    connection redis{io.executor(), local(server)};
    constexpr int threads = 4;
    constexpr int per_thread = 5'000;
    std::vector<std::vector<std::int64_t>> seen(threads);
    std::atomic<int> left{threads * per_thread};
    std::promise<void> all_done;
    std::vector<std::thread> writers;
    for (int t = 0; t < threads; ++t)
        writers.emplace_back([&, t] {
            for (int i = 0; i < per_thread; ++i)
                redis.async_command({"INCR", "hits"}, [&, t](std::exception_ptr error, reply r) {
                    if (!error) seen[static_cast<std::size_t>(t)].push_back(r.as_integer());
                    if (--left == 0) all_done.set_value();
                });
        });
    for (auto& w : writers) w.join();
    all_done.get_future().get();
    std::set<std::int64_t> all;
    for (auto& s : seen) {
        CHECK(s.size() == per_thread);
        CHECK(std::is_sorted(s.begin(), s.end())); // a thread's commands are answered in its order
        all.insert(s.begin(), s.end());
    }
    CHECK(all.size() == threads * per_thread); // every INCR got its own value
    CHECK(*all.rbegin() == threads * per_thread);

    // Pipelines from two threads while a third sends single commands: each pipeline's
    // replies are its own, in its order.
    std::atomic<int> wrong{0};
    std::atomic<int> pipelines_left{2 * 1'000};
    std::promise<void> pipelines_done;
    std::vector<std::thread> mixed;
    for (int t = 0; t < 2; ++t)
        mixed.emplace_back([&, t] {
            for (int i = 0; i < 1'000; ++i) {
                auto key = "k" + std::to_string(t) + ":" + std::to_string(i);
                redis.async_pipeline({{"SET", key, key}, {"GET", key}, {"STRLEN", key}},
                                     [&, key](std::exception_ptr error, std::vector<reply> r) {
                                         if (error || r.size() != 3 || r[1].text != key ||
                                             r[2].integer != static_cast<std::int64_t>(key.size()))
                                             ++wrong;
                                         if (--pipelines_left == 0) pipelines_done.set_value();
                                     });
            }
        });
    mixed.emplace_back([&] {
        for (int i = 0; i < 2'000; ++i) redis.async_command({"INCR", "noise"}, [](std::exception_ptr, reply) {});
    });
    for (auto& m : mixed) m.join();
    pipelines_done.get_future().get();
    CHECK(wrong == 0);

    auto replies = redis.pipeline({{"SET", "a", "1"}, {"INCR", "a"}, {"GET", "a"}, {"INCR", "nope", "extra"}});
    REQUIRE(replies.size() == 4);
    CHECK(replies[1].as_integer() == 2);
    CHECK(replies[2].as_string() == "2");
    CHECK(replies[3].is_error());
}

TEST_CASE("a password, an ACL user limited to a key prefix, and wrong credentials") {
    redis_server server{{"--requirepass", "s3cret"}};
    io_thread io;
    {
        auto o = local(server);
        o.password = "s3cret";
        connection redis{io.executor(), o};
        CHECK(redis.command({"PING"}).as_string() == "PONG");
        redis.command({"ACL", "SETUSER", "shop", "on", ">shop-pass", "~shop:*", "+@all"});
    }
    {
        connection redis{io.executor(), "redis://shop:shop-pass@127.0.0.1:" + std::to_string(server.port())};
        CHECK(redis.command({"SET", "shop:order:1", "x"}).as_string() == "OK");
        auto refused = redis.pipeline({{"SET", "other:1", "x"}});
        REQUIRE(refused[0].is_error());
        CHECK(refused[0].text.starts_with("NOPERM"));
    }
    {
        auto o = local(server);
        o.password = "wrong";
        connection redis{io.executor(), o};
        try {
            redis.command({"PING"});
            FAIL("a wrong password was accepted");
        } catch (const redis_error& e) {
            CHECK(e.code() == errc::auth_failed);
            CHECK(std::string{e.what()}.find("refused AUTH") != std::string::npos);
        }
        CHECK(code_of([&] { redis.command({"PING"}); }) == errc::auth_failed); // not retried: stays failed
    }
    {
        connection redis{io.executor(), local(server)}; // no password at all
        CHECK(code_of([&] { redis.command({"GET", "x"}); }) == errc::auth_failed);
    }
}

TEST_CASE("the database index and the unix socket") {
    redis_server server;
    io_thread io;
    connection db3{io.executor(), "redis://127.0.0.1:" + std::to_string(server.port()) + "/3"};
    db3.command({"SET", "where", "three"});
    connection db0{io.executor(), local(server)};
    CHECK(db0.command({"GET", "where"}).is_nil());
    connection by_socket{io.executor(), "unix://" + server.socket_path() + "?db=3"};
    CHECK(by_socket.command({"GET", "where"}).as_string() == "three");

    auto o = local(server);
    o.database = 100'000; // past the server's 16 databases
    connection bad{io.executor(), o};
    CHECK(code_of([&] { bad.command({"PING"}); }) == errc::server_reply);
}

TEST_CASE("an unreachable server fails commands clearly after wait_for_server") {
    redis_server server;
    auto o = local(server);
    server.stop();
    o.wait_for_server = 300ms;
    io_thread io;
    connection redis{io.executor(), o};
    try {
        redis.command({"PING"});
        FAIL("a command succeeded with no server");
    } catch (const redis_error& e) {
        CHECK(e.code() == errc::unreachable);
        CHECK(std::string{e.what()}.find("127.0.0.1:" + std::to_string(o.port)) != std::string::npos);
    }
    CHECK_FALSE(redis.connected());
}

TEST_CASE("a server still loading its data after a restart is waited for, not taken for a refusal") {
    // A stand-in for a Redis that answers LOADING to its first two connections (as one
    // reading a large AOF does), then answers like a ready server.
    boost::asio::io_context fake_io;
    boost::asio::ip::tcp::acceptor acceptor{fake_io, {boost::asio::ip::make_address("127.0.0.1"), 0}};
    auto port = acceptor.local_endpoint().port();
    std::atomic<int> accepted{0};
    std::thread fake{[&] {
        for (int n = 1; n <= 3; ++n) {
            boost::asio::ip::tcp::socket peer{fake_io};
            acceptor.accept(peer);
            ++accepted;
            boost::system::error_code ec;
            std::string pending;
            int answered = 0;
            while (!ec) {
                char buffer[4096];
                auto got = peer.read_some(boost::asio::buffer(buffer), ec);
                pending.append(buffer, got);
                // One answer per command: each starts with '*' at the start of a line.
                std::string answers;
                for (std::size_t at = 0; (at = pending.find('*', at)) != std::string::npos; ++at) {
                    if (at != 0 && pending.compare(at - 2, 2, "\r\n") != 0) continue;
                    ++answered;
                    if (n < 3)
                        answers += "-LOADING Redis is loading the dataset in memory\r\n";
                    else
                        answers += answered == 1 ? "+OK\r\n" : "+PONG\r\n"; // CLIENT SETNAME, then PINGs
                }
                pending.clear();
                if (!answers.empty()) boost::asio::write(peer, boost::asio::buffer(answers), ec);
                if (n < 3 && answered > 0) break; // the client drops this connection anyway
            }
        }
    }};
    connection_options o;
    o.port = port;
    o.reconnect_initial_delay = 10ms;
    {
        io_thread io;
        connection redis{io.executor(), o};
        auto pong = redis.command({"PING"});
        CHECK(pong.as_string() == "PONG");
        CHECK(accepted.load() == 3);
        test_support::record_fault("Redis connection", "server answering LOADING while it reloads after a restart",
                                   "Redis", 2, pong.as_string() == "PONG" && accepted.load() == 3,
                                   "waited for with backoff, then the command completed");
    } // closing ends the stand-in's last connection
    fake.join();
}

TEST_CASE("a server restarted mid-run: commands sent meanwhile wait, then all complete in order") {
    redis_server server;
    io_thread io;
    connection redis{io.executor(), local(server)};
    CHECK(redis.command({"RPUSH", "log", "before"}).as_integer() == 1);
    server.stop();
    // Commands already written when the server died fail (connection_lost: they may have
    // run); the ones below are sent once the connection knows Redis is away.
    for (int i = 0; i < 5'000 && redis.connected(); ++i) std::this_thread::sleep_for(1ms);
    REQUIRE_FALSE(redis.connected());
    // Sent while Redis is away: nothing is lost, nothing reordered.
    std::vector<std::future<reply>> answers;
    for (int i = 0; i < 50; ++i) {
        auto promise = std::make_shared<std::promise<reply>>();
        answers.push_back(promise->get_future());
        redis.async_command({"RPUSH", "log", std::to_string(i)}, [promise](std::exception_ptr error, reply r) {
            if (error)
                promise->set_exception(error);
            else
                promise->set_value(std::move(r));
        });
    }
    std::this_thread::sleep_for(200ms); // let it fail to reconnect a few times
    server.start();                     // an empty server: it kept no data (--save "")
    for (int i = 0; i < 50; ++i) CHECK(answers[static_cast<std::size_t>(i)].get().as_integer() == i + 1);
    CHECK(redis.connections() >= 2);
    auto log = redis.command({"LRANGE", "log", "0", "-1"});
    REQUIRE(log.elements.size() == 50);
    CHECK(log.elements.front().as_string() == "0");
    CHECK(log.elements.back().as_string() == "49");
    test_support::record_fault("Redis connection", "server SIGKILLed and restarted with 50 commands waiting", "Redis",
                               50, log.elements.front().as_string() == "0" && log.elements.back().as_string() == "49",
                               "all 50 commands completed once the server was back, in order");
}

TEST_CASE("a command past command_timeout fails with timeout, and the connection recovers") {
    redis_server server;
    io_thread io;
    auto o = local(server);
    o.command_timeout = 200ms;
    connection redis{io.executor(), o};
    CHECK(code_of([&] { redis.command({"DEBUG", "SLEEP", "1"}); }) == errc::timeout);
    CHECK(redis.command({"PING"}).as_string() == "PONG"); // on a new connection
    CHECK(redis.connections() >= 2);
}

TEST_CASE("closing fails what is waiting, and everything after") {
    redis_server server;
    auto o = local(server);
    server.stop();
    io_thread io;
    connection redis{io.executor(), o};
    std::promise<errc> got;
    redis.async_command({"PING"}, [&](std::exception_ptr error, reply) {
        try {
            std::rethrow_exception(error);
        } catch (const redis_error& e) {
            got.set_value(e.code());
        }
    });
    redis.close();
    CHECK(got.get_future().get() == errc::closed);
    CHECK(code_of([&] { redis.command({"PING"}); }) == errc::closed);
}

TEST_CASE("a blocking call from a completion is refused instead of waiting for ever") {
    redis_server server;
    io_thread io;
    connection redis{io.executor(), local(server)};
    std::promise<bool> refused;
    redis.async_command({"PING"}, [&](std::exception_ptr, reply) {
        try {
            redis.command({"PING"});
            refused.set_value(false);
        } catch (const choreo::usage_error&) {
            refused.set_value(true);
        }
    });
    CHECK(refused.get_future().get());
}

TEST_CASE("URLs: every form, and clear errors for bad ones") {
    auto o = parse_url("redis://app:p%40ss@cache.internal:6380/2");
    CHECK(o.host == "cache.internal");
    CHECK(o.port == 6380);
    CHECK(o.username == "app");
    CHECK(o.password == "p@ss");
    CHECK(o.database == 2);
    auto p = parse_url("redis://secret@localhost");
    CHECK(p.password == "secret");
    CHECK(p.username.empty());
    CHECK(p.port == 6379);
    auto v6 = parse_url("redis://[::1]:7000");
    CHECK(v6.host == "::1");
    CHECK(v6.port == 7000);
    auto u = parse_url("unix://:pw@/run/redis/redis.sock?db=5");
    CHECK(u.unix_socket == "/run/redis/redis.sock");
    CHECK(u.password == "pw");
    CHECK(u.database == 5);
    for (const char* bad :
         {"http://host", "redis://", "redis://host:0", "redis://host:70000", "redis://host:port", "redis://host/x",
          "unix://relative.sock", "unix:///s.sock?timeout=1", "redis://a%4@host", "redis://[::1"}) {
        CAPTURE(bad);
        CHECK(code_of([&] { (void)parse_url(bad); }) == errc::bad_url);
    }
}
