#pragma once
/// @file
/// @brief One saga as a sequence diagram across its participants: its start, each step
/// (crossed where it failed, with the reason), and each compensation (dashed, going back),
/// from what the saga runtime's tracer reported, as Mermaid text.

#include <choreo/saga/observe.hpp>
#include <choreo/viz/flowchart.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace choreo::viz {

/// @brief One piece of a saga's work, as the runtime's tracer reported it.
struct saga_entry {
    std::string step;                             ///< "participant/step"
    saga::saga_work work = saga::saga_work::step; ///< a start, a step, a fan-in or a compensation
    bool succeeded = true;                        ///< its local transaction committed
    std::string error;                            ///< why it failed
};

/// @brief Keeps what a saga runtime's tracer reports, per saga, to draw it later: give it
/// as runtime_options::tracer, or call it from a tracer of your own. It forgets the oldest
/// saga past `max_sagas`. Thread-safe.
class saga_recorder {
public:
    /// @brief A recorder that keeps the last `max_sagas` sagas (at least one).
    explicit saga_recorder(std::size_t max_sagas = 10'000) : max_sagas_(std::max<std::size_t>(max_sagas, 1)) {}

    /// @brief Records one trace (the runtime's tracer calls it, from any thread).
    void operator()(const saga::saga_trace& t) {
        std::lock_guard lock{mutex_};
        auto [it, inserted] = sagas_.try_emplace(std::string{t.saga});
        if (inserted) {
            order_.push_back(it->first);
            if (order_.size() > max_sagas_) {
                sagas_.erase(order_.front());
                order_.pop_front();
            }
        }
        it->second.push_back({std::string{t.step}, t.work, t.succeeded, std::string{t.error}});
    }

    /// @brief What was recorded of saga `key`, in the order it was reported.
    [[nodiscard]] std::vector<saga_entry> entries(std::string_view key) const {
        std::lock_guard lock{mutex_};
        auto it = sagas_.find(std::string{key});
        return it == sagas_.end() ? std::vector<saga_entry>{} : it->second;
    }

private:
    std::size_t max_sagas_;
    mutable std::mutex mutex_;
    std::map<std::string, std::vector<saga_entry>> sagas_;
    std::deque<std::string> order_;
};

namespace detail {
// Mermaid's sequence text ends at ';' and reads '#' as the start of an entity.
inline std::string sequence_text(std::string_view text) {
    std::string out;
    for (char c : text) {
        if (c == ';')
            out += ',';
        else if (c == '#')
            out += "#35;";
        else if (c == '\n')
            out += ' ';
        else
            out += c;
    }
    return out;
}
} // namespace detail

/// @brief Saga `key` as a Mermaid sequence diagram: a participant per node (the step names'
/// part before '/', in order of appearance); an arrow per step from the node of the step
/// before it, crossed (-x) where the step failed; a dashed arrow back per compensation;
/// `outcome` (its status and reason, say) as a closing note.
[[nodiscard]] inline std::string to_mermaid_sequence(std::string_view key, const std::vector<saga_entry>& entries,
                                                     std::string_view outcome = {}) {
    std::vector<std::string> nodes;
    for (const auto& e : entries) {
        auto n = node_of_listener(e.step);
        if (std::find(nodes.begin(), nodes.end(), n) == nodes.end()) nodes.push_back(n);
    }
    std::string out = fmt::format("sequenceDiagram\n    title saga {}\n", detail::sequence_text(key));
    for (const auto& n : nodes) out += fmt::format("    participant {}\n", detail::mermaid_id(n));
    std::string last;      // the node whose committed work the next step follows
    std::string failed_at; // where the saga first failed: its compensations are drawn from there
    for (const auto& e : entries) {
        auto node = detail::mermaid_id(node_of_listener(e.step));
        auto name = std::string_view{e.step}.substr(std::min(e.step.find('/') + 1, e.step.size()));
        auto failed = e.succeeded ? std::string{} : fmt::format(" failed: {}", detail::sequence_text(e.error));
        auto from = last.empty() ? node : last;
        if (e.work == saga::saga_work::compensation && !failed_at.empty()) from = failed_at;
        switch (e.work) {
        case saga::saga_work::start:
            out += fmt::format("    Note over {}: starts with {}{}\n", node, detail::sequence_text(name), failed);
            break;
        case saga::saga_work::step:
        case saga::saga_work::join:
            out += fmt::format("    {}{}{}: {}{}{}\n", from, e.succeeded ? "->>" : "-x", node,
                               detail::sequence_text(name), e.work == saga::saga_work::join ? " (fan-in)" : "", failed);
            break;
        case saga::saga_work::compensation:
            out += fmt::format("    {}-->>{}: undo {}{}\n", from, node, detail::sequence_text(name), failed);
            break;
        }
        if (e.succeeded)
            last = node;
        else if (failed_at.empty())
            failed_at = node;
    }
    if (!outcome.empty() && !nodes.empty())
        out += fmt::format("    Note over {},{}: {}\n", detail::mermaid_id(nodes.front()),
                           detail::mermaid_id(nodes.back()), detail::sequence_text(outcome));
    return out;
}

} // namespace choreo::viz
