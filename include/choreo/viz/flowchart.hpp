#pragma once
/// @file
/// @brief Arrows between nodes as a flowchart, in Mermaid or Graphviz DOT text: solid for a
/// listener in the publisher's transaction, dashed for one after commit. Needs only fmt;
/// viz/wiring.hpp finds the arrows of a bus.

#include <fmt/format.h>

#include <cctype>
#include <string>
#include <string_view>
#include <vector>

namespace choreo::viz {

/// @brief One arrow: `from` publishes `event`, which `listener`, drawn in node `to`, takes.
struct arrow {
    std::string from;         ///< the publishing node
    std::string to;           ///< the node the listener is drawn in
    std::string event;        ///< the event's type name
    std::string listener;     ///< the listener's name
    bool synchronous = false; ///< a before_commit listener in the publisher's transaction
};

/// @brief The node a listener named `listener` is drawn in by default.
[[nodiscard]] inline std::string node_of_listener(std::string_view listener) {
    return std::string{listener.substr(0, listener.find_first_of("/:"))};
}

namespace detail {
// Mermaid node ids are letters, digits and '_'; the label keeps the name as it is.
inline std::string mermaid_id(std::string_view name) {
    std::string id;
    for (char c : name) id += (std::isalnum(static_cast<unsigned char>(c)) || c == '_') ? c : '_';
    return id.empty() ? std::string{"_"} : id;
}
// Quotes for DOT and Mermaid labels: a double quote becomes a single one.
inline std::string quoted(std::string_view text) {
    std::string out;
    for (char c : text) out += c == '"' ? '\'' : c;
    return out;
}
} // namespace detail

/// @brief The arrows as a Mermaid flowchart (left to right).
[[nodiscard]] inline std::string to_mermaid(const std::vector<arrow>& arrows, std::string_view title = {}) {
    std::string out;
    if (!title.empty()) out += fmt::format("---\ntitle: {}\n---\n", detail::quoted(title));
    out += "flowchart LR\n";
    for (const auto& a : arrows)
        out += fmt::format("    {}[\"{}\"] {} \"{}\" {} {}[\"{}\"]\n", detail::mermaid_id(a.from),
                           detail::quoted(a.from), a.synchronous ? "--" : "-.", detail::quoted(a.event),
                           a.synchronous ? "-->" : ".->", detail::mermaid_id(a.to), detail::quoted(a.to));
    return out;
}

/// @brief The arrows as a Graphviz digraph (left to right; dashed: after commit).
[[nodiscard]] inline std::string to_dot(const std::vector<arrow>& arrows, std::string_view title = {}) {
    std::string out = "digraph wiring {\n";
    out +=
        fmt::format("    label=\"{}{}solid: before_commit, same transaction; dashed: after_commit, asynchronous\";\n",
                    detail::quoted(title), title.empty() ? "" : "\\n");
    out += "    labelloc=t;\n    rankdir=LR;\n    node [shape=box, style=rounded, fontname=Helvetica];\n"
           "    edge [fontname=Helvetica, fontsize=10];\n";
    for (const auto& a : arrows)
        out += fmt::format("    \"{}\" -> \"{}\" [label=\"{}\"{}];\n", detail::quoted(a.from), detail::quoted(a.to),
                           detail::quoted(a.event), a.synchronous ? "" : ", style=dashed");
    out += "}\n";
    return out;
}

} // namespace choreo::viz
