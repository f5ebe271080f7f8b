#pragma once
// How the database journals keep a step's row, so that every database stores it alike: its
// state as a word (done, compensated, abandoned), its markers in one text column, the names
// joined by newlines (a name with a newline is refused).

#include <string>
#include <string_view>
#include <vector>

#include <choreo/core/errors.hpp>
#include <choreo/saga/journal.hpp>

namespace choreo::saga::detail {

[[nodiscard]] inline decltype(journal_entry::state) journal_state_of(std::string_view word) noexcept {
    using state = decltype(journal_entry::state);
    return word == "done" ? state::done : word == "compensated" ? state::compensated : state::abandoned;
}

[[nodiscard]] inline std::string join_markers(const std::vector<std::string>& markers) {
    std::string out;
    for (const auto& m : markers) {
        if (m.find('\n') != std::string::npos) throw usage_error("a marker name may not contain a newline");
        if (!out.empty()) out += '\n';
        out += m;
    }
    return out;
}

[[nodiscard]] inline std::vector<std::string> split_markers(const std::string& joined) {
    std::vector<std::string> markers;
    for (std::size_t from = 0; from < joined.size();) {
        auto end = joined.find('\n', from);
        if (end == std::string::npos) end = joined.size();
        if (end > from) markers.push_back(joined.substr(from, end - from));
        from = end + 1;
    }
    return markers;
}

} // namespace choreo::saga::detail
