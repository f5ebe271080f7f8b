// The crash-after-commit scenario: a child shop process killed (SIGKILL) right after the
// commit that completes an order, then the shop restarted on its files, twice: the data
// platform receives the order exactly once.

#include "../app/cli.hpp"
#include "../app/one_process.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <fmt/format.h>

#include <csignal>
#include <filesystem>
#include <map>

extern char** environ;

namespace shop::app {

namespace {

std::string received_text(const boost::json::object& state) {
    std::map<std::int64_t, int> times;
    for (auto& id : state.at("data_platform").at("received_orders").as_array()) ++times[id.as_int64()];
    if (times.empty()) return "nothing";
    std::string text;
    for (auto& [id, n] : times)
        text += fmt::format("{}order {} {}", text.empty() ? "" : ", ", id,
                            n == 1 ? "exactly once" : fmt::format("{} times", n));
    return text;
}

std::string outbox_text(const boost::json::object& state) {
    auto& o = state.at("outbox").as_object();
    return fmt::format("{} pending, {} delivered, {} failed", o.at("pending").as_uint64(),
                       o.at("delivered").as_uint64(), o.at("failed").as_uint64());
}

} // namespace

// The child of crash-after-commit: orders an apple, pays, and dies (SIGKILL) right after
// the commit that completes the order.
int crash_child(const arguments& a) {
    auto dir = a.options.find("dir");
    if (dir == a.options.end()) throw usage_error("crash-child needs --dir");
    one_process s{config{.mode = modes_of(a, false).front(), .directory = dir->second}};
    auto apple = s.add_product("apple", 100, 10);
    s.charge_points(1, 1'000);
    auto id = s.create_order(1, {{apple, 1}}, {});
    s.settle();
    // Unreachable until the kill: the relay wakes on its own timer too, and in about one run
    // in fifty it delivered the committed OrderCompleted between the commit and the crash
    // hook, so the order was received before the restart. The row stays pending instead.
    s.set_data_platform(platform_behaviour::down);
    s.crash_after_next_completion();
    s.pay(id, false);
    s.settle();
    fmt::print(stderr, "shop: crash-child was not killed after the commit\n");
    return 3;
}

// Runs a child shop process that is killed right after the commit completing order 1,
// then restarts the shop on the same files twice.
int crash_after_commit(mode m) {
    namespace fs = std::filesystem;
    auto dir = fs::temp_directory_path() / fmt::format("choreo-shop-crash-{}", ::getpid());
    fs::remove_all(dir);
    fmt::print("crash-after-commit, {} mode: the process dies right after a commit, before the data platform is told\n",
               to_string(m));
    std::vector<std::string> args{"shop", "crash-child", "--mode", to_string(m), "--dir", dir.string()};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) != 0)
        throw std::runtime_error("cannot start the child process");
    fmt::print("  run 1 (process {}): ann orders an apple and pays for order 1 by points\n", pid);
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL) {
        fmt::print("  run 1 was not killed (status {}): NOT as expected\n", status);
        return 1;
    }
    fmt::print("  run 1 was killed by SIGKILL right after the commit that completed order 1\n");

    bool met = true;
    {
        one_process s{config{.mode = m, .directory = dir.string(), .reopen = true, .start_relay = false}};
        auto st = s.state();
        auto pending = st.at("outbox").at("pending").as_uint64();
        fmt::print("  on disk after the crash: order 1 is {}; outbox: {}; the data platform has received {}\n",
                   s.order_status(1), outbox_text(st), received_text(st));
        met = met && s.order_status(1) == "COMPLETED" && pending >= 1 && received_text(st) == "nothing";
        s.start_relay();
        s.settle();
        st = s.state();
        fmt::print("  run 2 restarts the shop on the same files; its relay delivers what run 1 left\n");
        fmt::print("  the data platform has received {}; outbox: {}\n", received_text(st), outbox_text(st));
        met = met && received_text(st) == "order 1 exactly once";
    }
    {
        one_process s{config{.mode = m, .directory = dir.string(), .reopen = true}};
        s.settle();
        auto st = s.state();
        fmt::print("  run 3 restarts again: the data platform has received {}\n", received_text(st));
        met = met && received_text(st) == "order 1 exactly once";
    }
    fs::remove_all(dir);
    fmt::print("{}\n", met ? "as expected" : "NOT as expected");
    return met ? 0 : 1;
}

} // namespace shop::app
