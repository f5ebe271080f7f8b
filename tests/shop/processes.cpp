// The shop as six processes (`shop serve` for each context and the data platform) that
// talk only through a Redis of the test's own, driven by `shop load`, which audits every
// database at the end: under contention, with Redis restarted mid-run, and with context
// processes killed mid-run and restarted.

#include "../support/fault_log.hpp"
#include "../support/redis_server.hpp"
#ifdef SHOP_WITH_KAFKA
#include "../support/kafka_broker.hpp"
#endif

#include "cluster.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef SHOP_PROGRAM
#error "SHOP_PROGRAM must name the shop program"
#endif

using namespace shop_process_test;

namespace {

constexpr std::string_view audited = "every order ended; stock, coupons, points and card charges add up; every saga "
                                     "ended, no marker held; the data platform has each completed order once";

// A few hundred orders contending for four products: every order ends and every invariant holds.
void contend(const test_support::redis_server& redis, const std::string& kafka_url, std::string_view transport) {
    cluster shop{redis, kafka_url};
    auto load = shop.load({"--orders", "300", "--concurrency", "16", "--products", "4", "--users", "20"});
    auto status = finish(*load, 240s);
    bool held = check_run(shop, status);
    test_support::record_fault("shop, six processes", "300 orders contending for 4 products", transport, 300, held,
                               audited);
    // Contention and business failures happened, or the run proved little.
    auto tally = final_tally(shop.load_output());
    REQUIRE_FALSE(tally.empty());
    CHECK(tally.find("cancelled 0,") == std::string::npos);
    CHECK(tally.find("completed 0,") == std::string::npos);
}

// Context processes killed (SIGKILL) at random moments and restarted at once: every saga
// ends, no command runs twice (the audit counts orders against create_order answers) and no
// payment is charged twice (the card gateway's books against the payments). 12 kills in the
// suite; CHOREO_SHOP_KILLS sets more (scripts/kill_run.sh runs 120), with a load long enough.
void kill_and_restart(const test_support::redis_server& redis, const std::string& kafka_url,
                      std::string_view transport) {
    const char* asked = std::getenv("CHOREO_SHOP_KILLS");
    const int planned = asked ? std::max(1, std::atoi(asked)) : 12;
    cluster shop{redis, kafka_url};
    auto orders = std::to_string(std::max(1500, planned * 150));
    auto load = shop.load({"--orders", orders, "--concurrency", "8", "--products", "20", "--users", "40", "--timeout",
                           std::to_string(std::max(120, planned * 6))});
    shop.wait_for_progress();
    // Kills at random points of the run: mid-step, mid-compensation, between a commit and
    // the store, between the store and a broadcast. Each process comes back at once, as a
    // supervisor would bring it back, and settles what it left from its journal.
    std::mt19937 random{20261125};
    std::vector<std::string> victims; // each process in turn, in a random order each round
    while (victims.size() < static_cast<std::size_t>(planned)) {
        std::vector<std::string> round(serving_processes::names.begin(), serving_processes::names.end());
        std::shuffle(round.begin(), round.end(), random);
        victims.insert(victims.end(), round.begin(), round.end());
    }
    victims.resize(static_cast<std::size_t>(planned));
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
    CHECK(kills >= planned / 2); // the run lasted long enough to be interrupted often
    int status =
        load->exited() ? load->exit_status() : finish(*load, std::max(300s, std::chrono::seconds{planned * 6}));
    // A start cut off between the saga store and its commit leaves its key taken; the order
    // context must go on with other keys rather than refuse every order after it.
    CHECK(shop.load_output().find("exists already") == std::string::npos);
    bool held = check_run(shop, status);
    test_support::record_fault("shop, six processes", "a context process SIGKILLed at a random moment, restarted",
                               transport, kills, held, audited);
}

// Every scenario of the one-process shop (business failures, the card gateway and the data
// platform misbehaving, the clock moving on, a failure injected at every step), each on six
// processes of its own through `shop scenario all`, with the same scenario code.
void all_scenarios(const test_support::redis_server& redis, const std::string& kafka_url, std::string_view transport) {
    auto log =
        std::filesystem::temp_directory_path() / ("choreo-shop-scenarios-" + std::to_string(::getpid()) + ".log");
    std::filesystem::remove(log);
    std::vector<std::string> args{"scenario", "all", "--redis", redis.url(), "--json"};
    if (!kafka_url.empty()) args.insert(args.end(), {"--kafka", kafka_url});
    child_process run{SHOP_PROGRAM, args, log};
    int status = finish(run, 600s);
    auto output = read_text_file(log);
    INFO(output);
    CHECK(status == 0);

    child_process list{SHOP_PROGRAM, {"scenarios"}, log.string() + ".names"};
    REQUIRE(list.wait() == 0);
    std::istringstream names{read_text_file(log.string() + ".names")};
    int passed = 0, scenarios = 0;
    for (std::string name; std::getline(names, name);) {
        ++scenarios;
        auto at = output.find("{\"scenario\":\"" + name + "\"");
        CHECK_MESSAGE(at != std::string::npos, "no outcome for " << name);
        if (at == std::string::npos) continue;
        auto line = output.substr(at, output.find('\n', at) - at);
        bool ok = line.find("\"as_expected\":true") != std::string::npos &&
                  line.find("\"invariants_broken\":[]") != std::string::npos &&
                  line.find("\"mode\":\"saga\"") != std::string::npos;
        CHECK_MESSAGE(ok, name << ": " << line.substr(0, 400));
        passed += ok ? 1 : 0;
    }
    CHECK(scenarios >= 25);
    CHECK(passed == scenarios);
    test_support::record_fault(
        "shop, six processes",
        "each shop scenario: business failures, card and data platform faults, a failure at each step", transport,
        scenarios, status == 0 && passed == scenarios, "as expected and every invariant holds, as in one process");
    std::filesystem::remove(log);
    std::filesystem::remove(log.string() + ".names");
}

} // namespace

// SIGTERM to the six processes while their broker is down (`down` takes it away, `up` brings
// it back): each stops within its grace period, cut short with exit 75 and a word on what it
// left undone if it must, and the next start finishes that work (a new load's audit covers
// every order of both runs).
void stop_with_broker_down(const test_support::redis_server& redis, const std::string& kafka_url,
                           const std::function<void()>& down, const std::function<void()>& up,
                           std::string_view transport) {
    cluster shop{redis, kafka_url, {"--grace", "2"}};
    auto load = shop.load({"--orders", "300", "--concurrency", "8", "--products", "20", "--users", "40"});
    shop.wait_for_progress();
    down();
    std::this_thread::sleep_for(300ms);
    // Stopping took ten minutes and more before; a minute bounds a two-second grace with room
    // for a busy machine, and a process still running then is a failure.
    auto statuses = shop.terminate_all(60s);
    load->signal(SIGKILL);
    bool bounded = true;
    for (auto& entry : statuses) {
        // Not a structured binding: Clang 14 does not let INFO's lambda refer to one.
        const std::string& name = entry.first;
        const int status = entry.second;
        INFO(name << " exited with " << status << "\n" << shop.log_of(name));
        CHECK((status == 0 || status == 75));
        if (status == 75) CHECK(shop.log_of(name).find("Left undone:") != std::string::npos);
        bounded = bounded && (status == 0 || status == 75);
    }
    up();
    for (auto name : serving_processes::names) shop.start(std::string{name});
    auto again = shop.load({"--orders", "20", "--concurrency", "4", "--products", "20", "--users", "40"});
    bool held = check_run(shop, finish(*again, 240s));
    test_support::record_fault("shop, six processes", "SIGTERM to every process while the broker is down", transport, 1,
                               bounded && held,
                               "each process stopped within its grace period (exit 0, or 75 saying what it left "
                               "undone); after a restart every order ended and every invariant holds");
}

TEST_CASE("six processes through Redis: a few hundred orders contending for four products, every invariant holds") {
    test_support::redis_server redis;
    contend(redis, {}, "saga, Redis");
}

// The order process takes a create_order, commits the order and dies (SIGKILL) before it
// answers; restarted, it is handed the command again and answers with the order it made
// instead of making a second one (the load's audit counts the orders against its answers).
TEST_CASE("six processes through Redis: a command whose process died before answering runs once") {
    test_support::redis_server redis;
    cluster shop{redis};
    shop.kill("order");
    shop.start("order", {"--die-before-reply", "create_order"});
    auto load = shop.load({"--orders", "20", "--concurrency", "4", "--products", "50", "--users", "10"});
    int died = shop.wait_for_exit("order", 120s);
    INFO(shop.log_of("order"));
    REQUIRE(died == 128 + SIGKILL);
    shop.start("order");
    bool held = check_run(shop, finish(*load, 240s));
    test_support::record_fault("shop, six processes",
                               "the order process SIGKILLed after running a command, before answering", "saga, Redis",
                               1, held, "the command ran once: one order per answered create_order");
}

TEST_CASE("six processes through Redis: Redis killed mid-run and restarted, the processes reconnect and finish") {
    // Redis keeps what it acknowledged across the restart (fsync on every write).
    test_support::redis_server redis{{"--appendonly", "yes", "--appendfsync", "always"}};
    cluster shop{redis};
    auto load = shop.load({"--orders", "300", "--concurrency", "8", "--products", "20", "--users", "40"});
    // Once orders flow, Redis dies as abruptly as a crash, stays away a moment, and returns.
    shop.wait_for_progress();
    redis.stop();
    std::this_thread::sleep_for(700ms);
    redis.start();
    bool held = check_run(shop, finish(*load, 240s));
    test_support::record_fault("shop, six processes on Redis", "Redis SIGKILLed mid-run, restarted from its AOF",
                               "saga, Redis", 1, held, audited);
}

TEST_CASE("six processes through Redis: SIGTERM with Redis down stops each within its grace period, losing nothing") {
    // Redis keeps what it acknowledged across the restart (fsync on every write).
    test_support::redis_server redis{{"--appendonly", "yes", "--appendfsync", "always"}};
    stop_with_broker_down(
        redis, {}, [&] { redis.stop(); }, [&] { redis.start(); }, "saga, Redis");
}

TEST_CASE("six processes through Redis: contexts killed (SIGKILL) at random moments and restarted, every saga ends") {
    test_support::redis_server redis;
    kill_and_restart(redis, {}, "saga, Redis");
}

TEST_CASE("six processes through Redis: every scenario of the one-process shop passes on them too") {
    test_support::redis_server redis;
    all_scenarios(redis, {}, "saga, Redis");
}

#ifdef SHOP_WITH_KAFKA
namespace {

// One broker for the binary's Kafka cases (a JVM takes seconds to start); each cluster has
// topics of its own. A fresh broker sets up its group coordinator (the __consumer_offsets
// topic) on the first group that joins, which can take longer than a load waits for its
// processes on a busy machine: one serving process is started first, until it serves.
test_support::kafka_broker& kafka() {
    static test_support::kafka_broker broker;
    static bool warm = [] {
        test_support::redis_server redis;
        auto dir = std::filesystem::temp_directory_path() / ("choreo-shop-warmup-" + std::to_string(::getpid()));
        std::filesystem::create_directories(dir);
        child_process platform{SHOP_PROGRAM,
                               {"serve", "--context", "data_platform", "--redis", redis.url(), "--dir", dir.string(),
                                "--prefix", "warmup:", "--kafka", broker.url()},
                               dir / "serve.log"};
        auto deadline = std::chrono::steady_clock::now() + 180s;
        while (read_text_file(dir / "serve.log").find("serving (pid") == std::string::npos && !platform.exited() &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(50ms);
        platform.signal(SIGTERM);
        (void)platform.wait();
        std::error_code ignored;
        std::filesystem::remove_all(dir, ignored);
        return true;
    }();
    (void)warm;
    return broker;
}

} // namespace

TEST_CASE(
    "six processes, events over Kafka: a few hundred orders contending for four products, every invariant holds") {
    test_support::redis_server redis;
    contend(redis, kafka().url(), "saga, Kafka");
}

TEST_CASE(
    "six processes, events over Kafka: contexts killed (SIGKILL) at random moments and restarted, every saga ends") {
    test_support::redis_server redis;
    kill_and_restart(redis, kafka().url(), "saga, Kafka");
}

TEST_CASE("six processes, events over Kafka: every scenario of the one-process shop passes on them too") {
    test_support::redis_server redis;
    all_scenarios(redis, kafka().url(), "saga, Kafka");
}

TEST_CASE(
    "six processes, events over Kafka: a second data platform joins mid-run and leaves, each order arrives once") {
    test_support::redis_server redis;
    cluster shop{redis, kafka().url()};
    auto load = shop.load({"--orders", "600", "--concurrency", "8", "--products", "20", "--users", "40"});
    shop.wait_for_progress();
    // The second instance joins the data platform's consumer group (a rebalance gives it
    // some of the partitions of OrderCompleted), works a while beside the first, and is
    // stopped as a deployment scales down (a second rebalance hands its partitions back).
    shop.start("data_platform.2");
    auto deadline = std::chrono::steady_clock::now() + 120s;
    while (!shop.ready("data_platform.2") && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(20ms);
    REQUIRE_MESSAGE(shop.ready("data_platform.2"), shop.logs());
    std::this_thread::sleep_for(4s);
    int second = shop.terminate("data_platform.2");
    auto said = shop.log_of("data_platform.2");
    INFO(said);
    CHECK(second == 0);
    // It took a share of the orders: the group did give it partitions.
    auto at = said.find("data_platform: stopping, ");
    REQUIRE(at != std::string::npos);
    auto taken = std::stoll(said.substr(at + std::string_view{"data_platform: stopping, "}.size()));
    MESSAGE("the second data platform took " << taken << " completed orders");
    CHECK(taken > 0);
    // Every completed order reached the data platform once: the audit of check_run.
    bool held = check_run(shop, finish(*load, 240s));
    test_support::record_fault("shop, six processes over Kafka",
                               "a second data platform instance joined mid-run and left (two rebalances of its group)",
                               "saga, Kafka", 2, held && taken > 0, audited);
}

TEST_CASE("six processes, events over Kafka: SIGTERM with the broker down stops each within its grace period, losing "
          "nothing") {
    test_support::redis_server redis;
    stop_with_broker_down(
        redis, kafka().url(), [] { kafka().stop(); }, [] { kafka().start(); }, "saga, Kafka");
}

TEST_CASE("six processes, events over Kafka: the broker killed (SIGKILL) mid-run and restarted, every saga ends") {
    test_support::redis_server redis;
    cluster shop{redis, kafka().url()};
    auto load = shop.load({"--orders", "300", "--concurrency", "8", "--products", "20", "--users", "40"});
    shop.wait_for_progress();
    // Records the broker acknowledged survive (it flushes each); those in flight fail their
    // delivery and stay in their outbox row, which the relay sends again.
    kafka().stop();
    std::this_thread::sleep_for(700ms);
    kafka().start();
    bool held = check_run(shop, finish(*load, 240s));
    test_support::record_fault("shop, six processes over Kafka", "the Kafka broker SIGKILLed mid-run, restarted",
                               "saga, Kafka", 1, held, audited);
}
#endif // SHOP_WITH_KAFKA
