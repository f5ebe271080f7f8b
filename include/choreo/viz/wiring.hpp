#pragma once
/// @file
/// @brief The wiring of a bus as arrows to draw (viz/flowchart.hpp): which node publishes
/// each event and which node's listener takes it, solid for a before_commit listener in the
/// publisher's transaction, dashed after commit or asynchronous.
///
/// The arrows come from bus::wiring() (and durable::outbox::wiring()): what is registered
/// at run time, not what a document claims. A node is what a listener's name starts with,
/// up to its first '/' or ':' ("payment/charge card" is drawn in "payment").

#include <choreo/core/bus.hpp>
#include <choreo/core/phase.hpp>
#include <choreo/viz/flowchart.hpp>

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace choreo::viz {

/// @brief What to draw, and how to name the nodes.
struct wiring_options {
    /// Event type name -> the nodes that publish it. An event no node publishes is drawn
    /// from a node named after nobody: "?".
    std::map<std::string, std::vector<std::string>, std::less<>> publishers{};
    /// Only these event types, in this order (empty: every event, sorted by name).
    std::vector<std::string> events{};
    /// The node a listener is drawn in; the name up to its first '/' or ':' when empty.
    std::function<std::string(std::string_view listener)> node_of{};
};

/// @brief The arrows of `registrations`, one per publisher, node and event (several
/// listeners of one node on one event make one arrow, the first one's). The library's own
/// events and listeners (named "choreo.") and before/after-rollback listeners are left out.
[[nodiscard]] inline std::vector<arrow> arrows_of(const std::vector<registration>& registrations,
                                                  const wiring_options& options) {
    auto node = [&](std::string_view listener) {
        return options.node_of ? options.node_of(listener) : node_of_listener(listener);
    };
    auto rank = [&](std::string_view event) {
        auto it = std::find(options.events.begin(), options.events.end(), event);
        return static_cast<std::size_t>(it - options.events.begin());
    };
    std::vector<arrow> arrows;
    std::set<std::tuple<std::string, std::string, std::string>> seen;
    for (const auto& r : registrations) {
        if (r.event_type.starts_with("choreo.") || r.listener.starts_with("choreo.")) continue;
        if (r.when != phase::before_commit && r.when != phase::after_commit) continue;
        if (!options.events.empty() && rank(r.event_type) == options.events.size()) continue;
        static const std::vector<std::string> nobody{"?"};
        auto it = options.publishers.find(r.event_type);
        const auto& from = it == options.publishers.end() ? nobody : it->second;
        auto to = node(r.listener);
        for (const auto& publisher : from) {
            if (!seen.insert({publisher, to, r.event_type}).second) continue;
            bool synchronous = r.when == phase::before_commit && r.mode == delivery::synchronous;
            arrows.push_back({publisher, to, r.event_type, r.listener, synchronous});
        }
    }
    std::stable_sort(arrows.begin(), arrows.end(), [&](const arrow& x, const arrow& y) {
        if (options.events.empty()) return x.event < y.event;
        return rank(x.event) < rank(y.event);
    });
    return arrows;
}

} // namespace choreo::viz
