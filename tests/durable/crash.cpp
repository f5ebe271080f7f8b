// Kill a process that writes and relays events with SIGKILL at random points, restart
// it, and check that every committed event was delivered and no effect happened twice.

#include "support.hpp"

#include "../support/fault_log.hpp"

#include <doctest/doctest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <map>
#include <random>
#include <string>
#include <vector>

extern char** environ;

using namespace durable_test;

namespace {

// Runs the child; after `kill_after` (when set) sends it SIGKILL. True when it was killed.
bool run_child(const std::vector<std::string>& args, std::optional<std::chrono::microseconds> kill_after,
               int& exit_code) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0)
        throw std::runtime_error("cannot start " + args[0]);
    if (kill_after) {
        std::this_thread::sleep_for(*kill_after);
        kill(pid, SIGKILL);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

} // namespace

TEST_CASE("killed at random points and restarted, every committed event is delivered once") {
    scratch_dir dir;
    const auto db_path = dir.file("crash.db");
    const std::string child = CHOREO_CRASH_CHILD;
    std::mt19937 random{20261125};
    constexpr std::array<const char*, 4> points{"timing", "before_commit", "after_commit", "after_effect"};
    std::map<std::string, int> killed;
    constexpr int iterations = 120;
    constexpr int orders_per_run = 12;
    std::int64_t next_order = 1;

    for (int i = 0; i < iterations; ++i) {
        const std::string point = points[random() % points.size()];
        const std::int64_t victim = next_order + static_cast<std::int64_t>(random() % orders_per_run);
        std::optional<std::chrono::microseconds> kill_after;
        if (point == "timing") kill_after = std::chrono::microseconds{random() % 40'000};
        int exit_code = 0;
        bool was_killed = run_child({child, db_path, std::to_string(next_order), std::to_string(orders_per_run),
                                     point == "timing" ? "none" : point, std::to_string(victim)},
                                    kill_after, exit_code);
        if (was_killed)
            ++killed[point];
        else
            REQUIRE_MESSAGE(exit_code == 0, "the child failed on its own at iteration " << i << " (" << point << ")");
        next_order += orders_per_run;
    }
    // A last run with nothing to write relays whatever the killed runs left.
    int exit_code = 0;
    REQUIRE_FALSE(run_child({child, db_path, "0", "0", "none", "0"}, std::nullopt, exit_code));
    REQUIRE(exit_code == 0);

    choreo::sqlite::database db{db_path};
    auto orders = count_rows(db, "SELECT count(*) FROM orders");
    MESSAGE("iterations " << iterations << ", orders committed " << orders << ", killed: timing " << killed["timing"]
                          << ", before_commit " << killed["before_commit"] << ", after_commit "
                          << killed["after_commit"] << ", after_effect " << killed["after_effect"]);
    CHECK(killed["before_commit"] > 0);
    CHECK(killed["after_commit"] > 0);
    CHECK(killed["after_effect"] > 0);
    CHECK(orders > 0);
    // Every committed order has exactly one effect, and nothing else has one.
    CHECK(count_rows(db, "SELECT count(*) FROM orders o WHERE (SELECT count(*) FROM effects e "
                         "WHERE e.order_id = o.id) != 1") == 0);
    CHECK(count_rows(db, "SELECT count(*) FROM effects WHERE order_id NOT IN (SELECT id FROM orders)") == 0);
    CHECK(count_rows(db, "SELECT count(*) FROM effects") == orders);
    // Each committed order has its outbox row, delivered; rolled-back ones have none.
    CHECK(count_rows(db, "SELECT count(*) FROM choreo_outbox") == orders);
    CHECK(count_rows(db, "SELECT count(*) FROM choreo_outbox WHERE state != 1") == 0);
    bool held = count_rows(db, "SELECT count(*) FROM orders o WHERE (SELECT count(*) FROM effects e "
                               "WHERE e.order_id = o.id) != 1") == 0 &&
                count_rows(db, "SELECT count(*) FROM choreo_outbox WHERE state != 1") == 0;
    test_support::record_fault(
        "outbox, relay and inbox (SQLite)", "writer and relay SIGKILLed at random moments and at the commit boundaries",
        "one process", iterations, held, "every committed event delivered and applied exactly once");
}
