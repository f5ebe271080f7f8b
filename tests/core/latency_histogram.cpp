// The latency histogram: its buckets, its percentiles, and counts that add up.
#include <choreo/core/latency_histogram.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

using choreo::latency_histogram;
using namespace std::chrono_literals;

TEST_CASE("every microsecond falls in the bucket whose bounds hold it, within 1/16") {
    std::uint64_t lower = 0;
    for (std::size_t b = 0; b < latency_histogram::bucket_count; ++b) {
        auto upper = latency_histogram::upper_bound_of(b);
        CAPTURE(b);
        REQUIRE(upper >= lower);
        CHECK(latency_histogram::bucket_of(lower) == b);
        CHECK(latency_histogram::bucket_of(upper) == b);
        CHECK(static_cast<double>(upper - lower) <= static_cast<double>(upper) / 16.0 + 0.5);
        lower = upper + 1;
    }
    CHECK(lower == std::uint64_t{1} << 26); // 67 s; longer counts in the last bucket
    CHECK(latency_histogram::bucket_of(std::uint64_t{1} << 40) == latency_histogram::bucket_count - 1);
}

TEST_CASE("percentiles of recorded durations") {
    latency_histogram h;
    CHECK(h.percentile(50) == 0us);
    for (int i = 1; i <= 100; ++i) h.record(std::chrono::microseconds{i * 100}); // 0.1 ms .. 10 ms
    CHECK(h.total() == 100);
    auto near = [](std::chrono::microseconds got, std::int64_t want) {
        return got.count() >= want && static_cast<double>(got.count()) <= static_cast<double>(want) * 1.0625;
    };
    CHECK(near(h.percentile(50), 5'000));
    CHECK(near(h.percentile(90), 9'000));
    CHECK(near(h.percentile(99), 9'900));
    CHECK(near(h.percentile(100), 10'000));
    CHECK(near(h.percentile(0), 100));
    h.record(-5ms); // a clock stepped back: counts as nothing, not as a wrapped number
    CHECK(h.percentile(0) == 0us);
    CHECK_THROWS_AS((void)h.percentile(100.5), std::invalid_argument);
    CHECK_THROWS_AS((void)h.percentile(-1), std::invalid_argument);
}

TEST_CASE("histograms add up, and record from many threads") {
    latency_histogram a, b;
    std::vector<std::jthread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&a] {
            for (int i = 0; i < 10'000; ++i) a.record(std::chrono::microseconds{i % 100});
        });
    threads.clear();
    CHECK(a.total() == 40'000);
    b.record(1s);
    b.add(a.counts());
    CHECK(b.total() == 40'001);
    CHECK(b.percentile(100).count() >= 1'000'000);
    CHECK(b.percentile(50) < 100us);
}
