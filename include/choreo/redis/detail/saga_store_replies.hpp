#pragma once
// What the saga store's scripts answer, read back into the saga layer's types. Not part of
// the API.

#include <choreo/redis/errors.hpp>
#include <choreo/redis/reply.hpp>
#include <choreo/saga/status.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace choreo::redis::detail {

// The integer at `i` of a script's array answer.
inline std::int64_t script_element(const reply& r, std::size_t i) {
    if (r.type != reply::kind::array || r.elements.size() <= i)
        throw redis_error(errc::protocol, "the saga store's script answered with an unexpected shape");
    return r.elements[i].as_integer();
}

// {found, changed, ended_now, status} from `at` on.
inline saga::transition transition_from(const reply& r, std::size_t at = 0) {
    return {.found = script_element(r, at) == 1,
            .changed = script_element(r, at + 1) == 1,
            .ended_now = script_element(r, at + 2) == 1,
            .status = static_cast<saga::saga_status>(script_element(r, at + 3)),
            .steps = {}};
}

// A transition that may have rolled the saga back; if it did, a fifth element names the
// saga's steps, newline-separated.
inline saga::transition rollback_from(const reply& r) {
    auto t = transition_from(r);
    if (!t.changed || r.elements.size() < 5) return t;
    std::string_view list = r.elements[4].as_string();
    while (!list.empty()) {
        auto cut = list.find('\n');
        if (cut != 0) t.steps.emplace_back(list.substr(0, cut));
        if (cut == std::string_view::npos) break;
        list.remove_prefix(cut + 1);
    }
    return t;
}

} // namespace choreo::redis::detail
