// The lanes of a consumer's batch run side by side: each lane once, on threads at once, the
// first failure rethrown after every lane is through, more lanes than threads still all run.

#include <choreo/durable/detail/lane_pool.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <vector>

using choreo::durable::detail::lane_of;
using choreo::durable::detail::lane_pool;

TEST_CASE("a lane pool runs each lane once, side by side") {
    lane_pool pool{3};
    CHECK(pool.width() == 3);
    std::mutex m;
    std::condition_variable changed;
    int running = 0;
    int most = 0;
    std::vector<int> runs(3, 0);
    for (int batch = 0; batch < 20; ++batch)
        pool.run({0, 1, 2}, [&](std::size_t lane) {
            std::unique_lock lock{m};
            ++runs[lane];
            most = std::max(most, ++running);
            changed.notify_all();
            // Waits for the other lanes of the batch: run one after the other, it would not see them.
            changed.wait_for(lock, std::chrono::seconds{2}, [&] { return running == 3 || most == 3; });
            --running;
        });
    CHECK(most == 3);
    CHECK(runs == std::vector<int>{20, 20, 20});
}

TEST_CASE("a lane pool rethrows the first failure once every lane is through") {
    lane_pool pool{2};
    std::atomic<int> through{0};
    CHECK_THROWS_WITH_AS(pool.run({0, 1},
                                  [&](std::size_t lane) {
                                      ++through;
                                      if (lane == 1) throw std::runtime_error("lane 1 failed");
                                  }),
                         "lane 1 failed", std::runtime_error);
    CHECK(through == 2);
    // The pool goes on after a failure, and an empty batch runs nothing.
    pool.run({}, [&](std::size_t) { ++through; });
    pool.run({1}, [&](std::size_t) { ++through; });
    CHECK(through == 3);
}

TEST_CASE("a lane pool narrower than the batch runs every lane") {
    lane_pool pool{2};
    std::mutex m;
    std::vector<std::size_t> ran;
    pool.run({4, 7, 9, 12}, [&](std::size_t lane) {
        std::lock_guard lock{m};
        ran.push_back(lane);
    });
    std::sort(ran.begin(), ran.end());
    CHECK(ran == std::vector<std::size_t>{4, 7, 9, 12});
    lane_pool alone{1};
    alone.run({0, 1}, [&](std::size_t lane) { ran.push_back(lane); });
    CHECK(ran.size() == 6);
}

TEST_CASE("one key always has the same lane, within the width") {
    for (std::size_t width : {1U, 3U, 8U}) {
        CHECK(lane_of("order:7", width) == lane_of("order:7", width));
        CHECK(lane_of("order:7", width) < width);
    }
}
