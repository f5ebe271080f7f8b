#pragma once
/// @file
/// @brief Where an event's time goes between two processes: a consumer records, per record
/// it handles, how long each stage of the hop took, from the times the envelope carries
/// (wire_envelope::time, wire_envelope::sent) and its own.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include <choreo/core/latency_histogram.hpp>
#include <choreo/durable/wire.hpp>

namespace choreo::durable {

/// @brief The stages of a hop, in the order an event passes them.
enum class hop_stage : std::uint8_t {
    relay,     ///< from its publication in a unit of work to its hand-over to the transport: the
               ///< rest of that unit of work, its commit, the outbox relay waking and claiming it
    transport, ///< from the hand-over to the consumer's read returning it: the broker's write and the read
    queue,     ///< from the read to its handler starting: records before it in the same batch
    arrival,   ///< from its publication to its handler starting: relay, transport and queue
               ///< together, the hop as a step in the next process sees it
    handle,    ///< its handler, start to end (a saga step: its claim, its local transaction, its commit)
    whole,     ///< from its publication to its handler's end
};

/// @brief The stage's name as reports print it ("relay", "transport", ...).
[[nodiscard]] constexpr std::string_view to_string(hop_stage stage) noexcept {
    constexpr std::array<std::string_view, 6> names{"relay", "transport", "queue", "arrival", "handle", "whole"};
    return names[static_cast<std::size_t>(stage)];
}

/// @brief One histogram per hop_stage. Thread-safe (see latency_histogram). The times of
/// two processes are compared, so the stages are as exact as their clocks agree: exact on
/// one machine, off by the clocks' skew between machines.
class hop_latency {
public:
    /// @brief How many stages there are.
    static constexpr std::size_t stage_count = 6;
    /// @brief Every stage, in order.
    static constexpr std::array<hop_stage, stage_count> stages{hop_stage::relay,  hop_stage::transport,
                                                               hop_stage::queue,  hop_stage::arrival,
                                                               hop_stage::handle, hop_stage::whole};

    /// @brief Records a record's hop: `received` when the read returned it, `started` and
    /// `ended` around its handler. A record without a hand-over time (a sender older than
    /// that field) counts in queue, handle and whole only.
    void record(const wire_envelope& record, std::chrono::system_clock::time_point received,
                std::chrono::system_clock::time_point started, std::chrono::system_clock::time_point ended) noexcept {
        if (record.sent) {
            of(hop_stage::relay).record(*record.sent - record.time);
            of(hop_stage::transport).record(received - *record.sent);
        }
        of(hop_stage::queue).record(started - received);
        of(hop_stage::arrival).record(started - record.time);
        of(hop_stage::handle).record(ended - started);
        of(hop_stage::whole).record(ended - record.time);
    }

    /// @brief The histogram of one stage.
    [[nodiscard]] latency_histogram& of(hop_stage stage) noexcept { return stages_[static_cast<std::size_t>(stage)]; }
    /// @brief The histogram of one stage.
    [[nodiscard]] const latency_histogram& of(hop_stage stage) const noexcept {
        return stages_[static_cast<std::size_t>(stage)];
    }

    /// @brief Adds another recorder's counts, stage by stage.
    void add(const hop_latency& other) noexcept {
        for (auto stage : stages) of(stage).add(other.of(stage).counts());
    }

private:
    std::array<latency_histogram, stage_count> stages_{};
};

} // namespace choreo::durable
