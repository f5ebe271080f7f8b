#pragma once
/// @file
/// @brief A histogram of durations for percentiles: recording is one relaxed atomic
/// increment (any thread, no lock), buckets are log-linear in microseconds (16 per power of
/// two, so a percentile is within 1/16 of the true value), and two histograms with their
/// bucket counts add up, so processes can send theirs to one place to be merged.

#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace choreo {

/// @brief Durations from 0 to about 67 s by microsecond, in 16 buckets per power of two;
/// longer ones count in the last bucket. Thread-safe: record() and the readers from any
/// thread; a reader sees each count as of some moment (the counts are not one snapshot).
class latency_histogram {
public:
    /// @brief Buckets below this hold one microsecond each.
    static constexpr std::size_t linear = 16;
    /// @brief Powers of two above the linear range: 2^4 µs to 2^26 µs (67 s).
    static constexpr std::size_t octaves = 22;
    /// @brief How many buckets there are.
    static constexpr std::size_t bucket_count = linear + octaves * linear;
    /// @brief One count per bucket, as counts() returns and add() takes.
    using counts_type = std::array<std::uint64_t, bucket_count>;

    /// @brief The bucket a duration of `micros` microseconds falls in.
    [[nodiscard]] static constexpr std::size_t bucket_of(std::uint64_t micros) noexcept {
        if (micros < linear) return static_cast<std::size_t>(micros);
        const auto octave = static_cast<std::size_t>(std::bit_width(micros) - 5); // 16..31 is octave 0
        if (octave >= octaves) return bucket_count - 1;
        const auto within = static_cast<std::size_t>((micros >> octave) - linear); // 0..15
        return linear + octave * linear + within;
    }

    /// @brief The longest duration, in microseconds, bucket `bucket` holds (the last holds more).
    [[nodiscard]] static constexpr std::uint64_t upper_bound_of(std::size_t bucket) noexcept {
        if (bucket < linear) return bucket;
        const std::size_t octave = (bucket - linear) / linear;
        const std::uint64_t within = (bucket - linear) % linear;
        return ((linear + within + 1) << octave) - 1;
    }

    /// @brief Counts one duration (negative ones count as zero).
    void record(std::chrono::nanoseconds took) noexcept {
        const auto micros = took.count() <= 0 ? std::uint64_t{0} : static_cast<std::uint64_t>(took.count() / 1000);
        buckets_[bucket_of(micros)].fetch_add(1, std::memory_order_relaxed);
    }

    /// @brief Adds another histogram's counts (one from another process, say).
    void add(const counts_type& counts) noexcept {
        for (std::size_t i = 0; i < bucket_count; ++i)
            if (counts[i]) buckets_[i].fetch_add(counts[i], std::memory_order_relaxed);
    }

    /// @brief The count of each bucket.
    [[nodiscard]] counts_type counts() const noexcept {
        counts_type out{};
        for (std::size_t i = 0; i < bucket_count; ++i) out[i] = buckets_[i].load(std::memory_order_relaxed);
        return out;
    }

    /// @brief How many durations were recorded.
    [[nodiscard]] std::uint64_t total() const noexcept {
        std::uint64_t n = 0;
        for (const auto& b : buckets_) n += b.load(std::memory_order_relaxed);
        return n;
    }

    /// @brief The duration at or below which `percent` of the recorded ones are (the upper
    /// bound of the bucket that holds that rank); zero when nothing was recorded. A
    /// std::invalid_argument for a percent outside 0..100.
    [[nodiscard]] std::chrono::microseconds percentile(double percent) const {
        if (!(percent >= 0.0 && percent <= 100.0))
            throw std::invalid_argument("a percentile is between 0 and 100, not " + std::to_string(percent));
        const auto counts = this->counts();
        std::uint64_t n = 0;
        for (auto c : counts) n += c;
        if (n == 0) return std::chrono::microseconds{0};
        // The rank of the percentile among n sorted durations, 1-based, at least the first;
        // n from this snapshot of the counts, not total(), so the two agree.
        auto rank = static_cast<std::uint64_t>(std::ceil(percent / 100.0 * static_cast<double>(n)));
        if (rank == 0) rank = 1;
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < bucket_count; ++i) {
            seen += counts[i];
            if (seen >= rank) return std::chrono::microseconds{static_cast<std::int64_t>(upper_bound_of(i))};
        }
        return std::chrono::microseconds{static_cast<std::int64_t>(upper_bound_of(bucket_count - 1))};
    }

private:
    std::array<std::atomic<std::uint64_t>, bucket_count> buckets_{};
};

} // namespace choreo
