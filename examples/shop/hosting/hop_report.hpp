#pragma once
// Where an event's time goes between the serving processes: each process's consumers
// record the stages of the hops they take (choreo::durable::hop_latency); `shop serve`
// answers them as bucket counts, and `shop load` adds every process's up and prints the
// percentiles per stage.

#include <choreo/durable/hop_latency.hpp>

#include <boost/json.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace shop::app {

// {"relay": [[bucket, count], ...], ...}: only the buckets that counted something.
inline boost::json::object hops_to_json(const choreo::durable::hop_latency& hops) {
    boost::json::object out;
    for (auto stage : choreo::durable::hop_latency::stages) {
        boost::json::array buckets;
        auto counts = hops.of(stage).counts();
        for (std::size_t b = 0; b < counts.size(); ++b)
            if (counts[b]) buckets.push_back(boost::json::array{b, counts[b]});
        out[std::string{choreo::durable::to_string(stage)}] = std::move(buckets);
    }
    return out;
}

// Adds what hops_to_json() wrote; a bucket out of range is refused, not wrapped.
inline void add_hops_json(choreo::durable::hop_latency& hops, const boost::json::object& json) {
    for (auto stage : choreo::durable::hop_latency::stages) {
        const auto* buckets = json.if_contains(choreo::durable::to_string(stage));
        if (!buckets) continue;
        choreo::latency_histogram::counts_type counts{};
        for (const auto& pair : buckets->as_array()) {
            auto bucket = pair.as_array().at(0).to_number<std::uint64_t>();
            if (bucket >= counts.size()) throw std::out_of_range(fmt::format("no hop bucket {}", bucket));
            counts[bucket] += pair.as_array().at(1).to_number<std::uint64_t>();
        }
        hops.of(stage).add(counts);
    }
}

// One line per stage: how many hops and their p50, p90 and p99 in milliseconds.
inline void print_hops(const choreo::durable::hop_latency& hops) {
    using choreo::durable::hop_stage;
    auto total = hops.of(hop_stage::whole).total();
    if (total == 0) return;
    fmt::print("a hop between processes ({} events handled), by stage, in ms:\n", total);
    fmt::print("  {:<10} {:>8} {:>8} {:>8}\n", "stage", "p50", "p90", "p99");
    auto ms = [](std::chrono::microseconds d) { return static_cast<double>(d.count()) / 1000.0; };
    for (auto stage : choreo::durable::hop_latency::stages) {
        const auto& h = hops.of(stage);
        if (h.total() == 0) continue;
        fmt::print("  {:<10} {:>8.2f} {:>8.2f} {:>8.2f}\n", choreo::durable::to_string(stage), ms(h.percentile(50)),
                   ms(h.percentile(90)), ms(h.percentile(99)));
    }
    fmt::print("  (relay: publication to hand-over, the step's commit and the outbox relay; transport: hand-over to "
               "the consumer's read; queue: waiting in the read's batch; arrival: publication to the step's start, "
               "the three above; handle: the step itself)\n");
}

} // namespace shop::app
