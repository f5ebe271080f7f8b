// The serving process's stop watch (stop_watch.hpp).

#include "stop_watch.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <string>

#include <pthread.h>
#include <sqlite3.h>

#include <fmt/format.h>

namespace shop::app {

namespace {

// How many rows of `database`'s outbox wait to be sent, read through a connection of its
// own (read-only, waiting at most half a second for a lock), so that a thread stuck on
// the process's own connection cannot hold the count up.
std::string pending_rows(const std::string& database) {
    sqlite3* db = nullptr;
    std::string text = "unknown (the database could not be read)";
    if (sqlite3_open_v2(database.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
        sqlite3_busy_timeout(db, 500);
        sqlite3_stmt* count = nullptr;
        if (sqlite3_prepare_v2(db, "SELECT count(*) FROM choreo_outbox WHERE state = 0", -1, &count, nullptr) ==
                SQLITE_OK &&
            sqlite3_step(count) == SQLITE_ROW)
            text = std::to_string(sqlite3_column_int64(count, 0));
        sqlite3_finalize(count);
    }
    sqlite3_close(db);
    return text;
}

} // namespace

stop_watch::stop_watch(const serve_options& options, stop_signal& stop) : options_(options), stop_(stop) {
    sigemptyset(&signals_);
    sigaddset(&signals_, SIGTERM);
    sigaddset(&signals_, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
    thread_ = std::thread{[this] { watch(); }};
}

stop_watch::~stop_watch() {
    stopped_ = true;
    thread_.join();
}

// The watch: the only thread that takes SIGTERM and SIGINT (the constructor blocks them in
// every other). The first asks the process to stop; once the grace period has passed, or at
// a second signal, it says what is left undone and ends the process. Everything the process
// has not done is in its database (outbox rows, the saga journal), as after a crash, which
// the next start recovers from: a stop with Redis or Kafka unreachable is bounded and loses
// nothing.
void stop_watch::watch() {
    auto wait_for_signal = [&](std::chrono::milliseconds at_most) {
        auto seconds = std::chrono::duration_cast<std::chrono::seconds>(at_most);
        timespec wait{static_cast<std::time_t>(seconds.count()),
                      static_cast<long>(std::chrono::nanoseconds{at_most - seconds}.count())};
        return sigtimedwait(&signals_, nullptr, &wait) > 0;
    };
    while (!stopped_ && !wait_for_signal(std::chrono::milliseconds{100})) {}
    if (stopped_) return;
    stop_.raise();
    auto deadline = std::chrono::steady_clock::now() + options_.grace;
    bool again = false;
    while (!stopped_ && !again && std::chrono::steady_clock::now() < deadline)
        again = wait_for_signal(std::chrono::milliseconds{100});
    if (stopped_) return;
    auto database = (std::filesystem::path{options_.directory} / (options_.context + ".db")).string();
    fmt::print(stderr,
               "{}: {}; exiting now. Left undone: {} outbox rows not sent, and the sagas in flight; they stay in {} "
               "(outbox and saga journal) and the next start finishes them\n",
               options_.context,
               again ? "a second signal cut the stop short"
                     : fmt::format("the stop took longer than its grace period of {} s (Redis or Kafka unreachable?)",
                                   options_.grace.count()),
               pending_rows(database), database);
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(stopped_short);
}

} // namespace shop::app
