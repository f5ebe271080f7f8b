// The shop as six processes (`shop serve` for each context and the data platform) that
// talk only through a Redis of the test's own, driven by `shop load`, which audits every
// database at the end: under contention, with Redis restarted mid-run, and with context
// processes killed mid-run and restarted.

#include "../support/fault_log.hpp"
#include "../support/redis_server.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef SHOP_PROGRAM
#error "SHOP_PROGRAM must name the shop program"
#endif

extern char** environ;

namespace {

using namespace std::chrono_literals;

std::string read_file(const std::filesystem::path& path) {
    std::ifstream in{path};
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

// A child process running the shop program, its output appended to a log file.
class child {
public:
    child(const std::vector<std::string>& args, const std::filesystem::path& log) {
        std::vector<std::string> all{SHOP_PROGRAM};
        all.insert(all.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : all) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t files;
        posix_spawn_file_actions_init(&files);
        posix_spawn_file_actions_addopen(&files, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&files, STDOUT_FILENO, STDERR_FILENO);
        int rc = posix_spawn(&pid_, SHOP_PROGRAM, &files, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&files);
        if (rc != 0) throw std::runtime_error("cannot start " + std::string{SHOP_PROGRAM});
    }
    ~child() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            (void)wait();
        }
    }
    child(const child&) = delete;
    child& operator=(const child&) = delete;

    void signal(int sig) const { ::kill(pid_, sig); }
    // The exit status (128 + signal when killed).
    int wait() {
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    bool exited() {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) != pid_) return false;
        exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        pid_ = -1;
        return true;
    }
    [[nodiscard]] int exit_status() const noexcept { return exit_status_; }

private:
    pid_t pid_ = -1;
    int exit_status_ = -1;
};

constexpr std::array<const char*, 6> process_names{"order", "product", "coupon", "point", "payment", "data_platform"};

// The six serving processes on one directory and one Redis.
class cluster {
public:
    explicit cluster(const test_support::redis_server& redis)
        : url_(redis.url()), dir_(std::filesystem::temp_directory_path() /
                                  ("choreo-shop-" + std::to_string(::getpid()) + "-" + std::to_string(++count_))) {
        std::filesystem::remove_all(dir_);
        std::filesystem::create_directories(dir_);
        for (auto name : process_names) start(name);
    }
    ~cluster() {
        for (auto& [name, process] : processes_) process->signal(SIGTERM);
        for (auto& [name, process] : processes_) process->wait();
        processes_.clear();
        if (!failed_) {
            std::error_code ignored;
            std::filesystem::remove_all(dir_, ignored);
        }
    }
    cluster(const cluster&) = delete;
    cluster& operator=(const cluster&) = delete;

    void start(const std::string& name) {
        processes_[name] = std::make_unique<child>(
            std::vector<std::string>{"serve", "--context", name, "--redis", url_, "--dir", (dir_ / "db").string()},
            dir_ / (name + ".log"));
    }
    // As abrupt as a crash: no destructor runs, nothing is flushed.
    void kill(const std::string& name) {
        processes_[name]->signal(SIGKILL);
        processes_[name]->wait();
    }

    std::unique_ptr<child> load(const std::vector<std::string>& args) {
        std::vector<std::string> all{"load", "--redis", url_, "--dir", (dir_ / "db").string()};
        all.insert(all.end(), args.begin(), args.end());
        std::filesystem::remove(dir_ / "load.log");
        return std::make_unique<child>(all, dir_ / "load.log");
    }
    [[nodiscard]] std::string load_output() const { return read_file(dir_ / "load.log"); }
    // Everything the processes said, for a failing test's message; the directory is kept.
    std::string logs() {
        failed_ = true;
        std::string all = "(kept in " + dir_.string() + ")\n";
        for (auto name : process_names) {
            auto text = read_file(dir_ / (std::string{name} + ".log"));
            if (text.size() > 4000) text = "..." + text.substr(text.size() - 4000);
            all += "--- " + std::string{name} + "\n" + text;
        }
        return all;
    }

private:
    static inline int count_ = 0;
    std::string url_;
    std::filesystem::path dir_;
    std::map<std::string, std::unique_ptr<child>> processes_;
    bool failed_ = false;
};

// Waits for `load` to end, up to `limit`; -1 if it did not.
int finish(child& load, std::chrono::seconds limit) {
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
std::string final_tally(const std::string& output) {
    auto at = output.rfind("ended:");
    if (at == std::string::npos) return {};
    auto end = output.find('\n', at);
    return output.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

// The run ended by itself, every order ended one way or the other, and the audit passed.
bool check_run(cluster& shop, int status) {
    auto output = shop.load_output();
    INFO(output);
    if (status != 0) INFO(shop.logs());
    CHECK(status == 0);
    bool held = output.find("invariants: all hold") != std::string::npos;
    bool ended = final_tally(output).find("unfinished 0;") != std::string::npos;
    CHECK(held);
    CHECK(ended);
    return status == 0 && held && ended;
}

constexpr std::string_view audited = "every order ended; stock, coupons, points and card charges add up; every saga "
                                     "ended, no marker held; the data platform has each completed order once";

} // namespace

TEST_CASE("six processes through Redis: a few hundred orders contending for four products, every invariant holds") {
    test_support::redis_server redis;
    cluster shop{redis};
    auto load = shop.load({"--orders", "300", "--concurrency", "16", "--products", "4", "--users", "20"});
    auto status = finish(*load, 240s);
    bool held = check_run(shop, status);
    test_support::record_fault("shop, six processes on Redis", "300 orders contending for 4 products", "saga, Redis", 300,
                               held, audited);
    // Contention and business failures happened, or the run proved little.
    auto tally = final_tally(shop.load_output());
    REQUIRE_FALSE(tally.empty());
    CHECK(tally.find("cancelled 0,") == std::string::npos);
    CHECK(tally.find("completed 0,") == std::string::npos);
}

TEST_CASE("six processes through Redis: Redis killed mid-run and restarted, the processes reconnect and finish") {
    // Redis keeps what it acknowledged across the restart (fsync on every write).
    test_support::redis_server redis{{"--appendonly", "yes", "--appendfsync", "always"}};
    cluster shop{redis};
    auto load = shop.load({"--orders", "300", "--concurrency", "8", "--products", "20", "--users", "40"});
    // Once orders flow, Redis dies as abruptly as a crash, stays away a moment, and returns.
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (shop.load_output().find("ended:") == std::string::npos && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(20ms);
    redis.stop();
    std::this_thread::sleep_for(700ms);
    redis.start();
    bool held = check_run(shop, finish(*load, 240s));
    test_support::record_fault("shop, six processes on Redis", "Redis SIGKILLed mid-run, restarted from its AOF",
                               "saga, Redis", 1, held, audited);
}

TEST_CASE("six processes through Redis: contexts killed (SIGKILL) at random moments and restarted, every saga ends") {
    test_support::redis_server redis;
    cluster shop{redis};
    auto load = shop.load({"--orders", "1500", "--concurrency", "8", "--products", "20", "--users", "40"});
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (shop.load_output().find("ended:") == std::string::npos && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(20ms);
    // Kills at random points of the run: mid-step, mid-compensation, between a commit and
    // the store, between the store and a broadcast. Each process comes back at once, as a
    // supervisor would bring it back, and settles what it left from its journal.
    std::mt19937 random{20261125};
    std::vector<std::string> victims; // each process twice, in a random order
    for (int round = 0; round < 2; ++round) victims.insert(victims.end(), process_names.begin(), process_names.end());
    std::shuffle(victims.begin(), victims.end(), random);
    int kills = 0;
    std::map<std::string, int> killed;
    for (auto& victim : victims) {
        if (load->exited()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds{200 + random() % 500});
        shop.kill(victim);
        shop.start(victim);
        ++kills;
        ++killed[victim];
    }
    std::string summary;
    for (auto& [name, n] : killed) summary += name + " " + std::to_string(n) + " ";
    MESSAGE("killed: " << summary);
    CHECK(kills >= 6); // the run lasted long enough to be interrupted often
    int status = load->exited() ? load->exit_status() : finish(*load, 300s);
    bool held = check_run(shop, status);
    test_support::record_fault("shop, six processes on Redis", "a context process SIGKILLed at a random moment, restarted",
                               "saga, Redis", kills, held, audited);
}
