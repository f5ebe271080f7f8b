#pragma once
// A redis-server of the test's own, on a free loopback port (and a unix socket), started
// with the test and stopped after it: no test relies on a system-wide Redis. Also used by
// the benchmarks.

#include <hiredis/hiredis.h>

#include "server_process.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef CHOREO_REDIS_SERVER
#error "CHOREO_REDIS_SERVER must name the redis-server program"
#endif

namespace test_support {

// An io_context running on a thread of its own until destroyed: what Redis connections run on.
struct io_thread {
    boost::asio::io_context io;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work{io.get_executor()};
    std::thread runner{[this] { io.run(); }};

    io_thread() = default;
    io_thread(const io_thread&) = delete;
    io_thread& operator=(const io_thread&) = delete;
    ~io_thread() {
        work.reset();
        io.stop();
        runner.join();
    }
    auto executor() { return io.get_executor(); }
};

class redis_server {
public:
    // Extra arguments go on redis-server's command line ("--requirepass", "secret").
    explicit redis_server(std::vector<std::string> extra = {}) : extra_(std::move(extra)) {
        static int count = 0;
        dir_ = std::filesystem::temp_directory_path() /
               ("choreo-redis-" + std::to_string(::getpid()) + "-" + std::to_string(++count));
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        port_ = free_port();
        start();
    }
    ~redis_server() {
        stop();
        std::error_code ignored;
        std::filesystem::remove_all(dir_, ignored);
    }
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;

    [[nodiscard]] unsigned short port() const noexcept { return port_; }
    [[nodiscard]] std::string socket_path() const { return (dir_ / "redis.sock").string(); }
    [[nodiscard]] std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
    [[nodiscard]] bool running() const noexcept { return pid_ > 0; }

    // Starts it (again, on the same port) and waits until it answers.
    void start() {
        if (pid_ > 0) return;
        std::vector<std::string> args{CHOREO_REDIS_SERVER,
                                      "--port",
                                      std::to_string(port_),
                                      "--bind",
                                      "127.0.0.1",
                                      "--unixsocket",
                                      socket_path(),
                                      "--unixsocketperm",
                                      "700",
                                      "--save",
                                      "",
                                      "--appendonly",
                                      "no",
                                      "--dir",
                                      dir_.string(),
                                      "--daemonize",
                                      "no",
                                      "--enable-debug-command",
                                      "yes",
                                      "--loglevel",
                                      "warning",
                                      "--logfile",
                                      (dir_ / "redis.log").string()};
        args.insert(args.end(), extra_.begin(), extra_.end());
        pid_ = ::fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            std::vector<char*> argv;
            for (auto& a : args) argv.push_back(a.data());
            argv.push_back(nullptr);
            ::execv(argv[0], argv.data());
            ::_exit(127);
        }
        wait_until_it_answers(
            pid_, "redis-server", std::chrono::seconds{10}, std::chrono::milliseconds{10}, [this] { return answers(); },
            [this] { return log(); });
    }

    // Stops it (SIGKILL: as abrupt as a crash) and waits for it to be gone.
    void stop() { stop_server(pid_); }

    [[nodiscard]] std::string log() const { return tail_of((dir_ / "redis.log").string()); }

private:
    static unsigned short free_port() {
        boost::asio::io_context io;
        boost::asio::ip::tcp::acceptor probe{io, {boost::asio::ip::make_address("127.0.0.1"), 0}};
        return probe.local_endpoint().port();
    }

    // Any reply to PING (PONG, or NOAUTH when a password is set) means it is up.
    bool answers() const {
        timeval timeout{0, 200'000};
        redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, timeout);
        bool up = false;
        if (c && !c->err) {
            auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
            up = r != nullptr;
            if (r) freeReplyObject(r);
        }
        if (c) redisFree(c);
        return up;
    }

    std::vector<std::string> extra_;
    std::filesystem::path dir_;
    unsigned short port_ = 0;
    pid_t pid_ = -1;
};

} // namespace test_support
