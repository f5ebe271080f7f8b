#pragma once
/// @file
/// @brief Compile-time names and indices of event types.

#include <atomic>
#include <concepts>
#include <cstddef>
#include <string_view>
#include <type_traits>

namespace choreo {

namespace detail {

template <class T>
constexpr std::string_view raw_type_name() noexcept {
#if defined(__clang__) || defined(__GNUC__)
    return __PRETTY_FUNCTION__;
#else
    return __FUNCSIG__;
#endif
}

template <class T>
constexpr std::string_view parse_type_name() noexcept {
    std::string_view full = raw_type_name<T>();
#if defined(__clang__) || defined(__GNUC__)
    constexpr std::string_view marker = "T = ";
    auto begin = full.find(marker);
    if (begin == std::string_view::npos) return full;
    begin += marker.size();
    auto end = full.find_first_of(";]", begin);
    return full.substr(begin, end - begin);
#else
    auto begin = full.find("raw_type_name<");
    begin += 14;
    auto end = full.rfind(">(void)");
    auto name = full.substr(begin, end - begin);
    for (std::string_view prefix : {"struct ", "class "})
        if (name.starts_with(prefix)) name.remove_prefix(prefix.size());
    return name;
#endif
}

template <class T>
concept has_event_name = requires {
    { T::choreo_event_name } -> std::convertible_to<std::string_view>;
};

// One index per event type in the process, handed out on first use, so looking up a
// type's channel at publish is an array index, not a hash. A function-local static
// (rather than an inline variable) keeps it right even when used during static
// initialisation of another translation unit.
inline std::size_t next_event_index() noexcept {
    static std::atomic<std::size_t> next{0};
    return next.fetch_add(1, std::memory_order_relaxed);
}

template <class E>
std::size_t event_index() noexcept {
    static const std::size_t index = next_event_index();
    return index;
}

template <class E>
constexpr std::string_view compute_event_type_name() noexcept {
    if constexpr (has_event_name<E>)
        return std::string_view{E::choreo_event_name};
    else
        return parse_type_name<E>();
}
// A constant, so the name is computed by the compiler, never at publish.
template <class E>
inline constexpr std::string_view event_type_name_v = compute_event_type_name<E>();
} // namespace detail

/// @brief The name of an event type: `E::choreo_event_name` if the struct has one,
/// else the qualified C++ name. Used in errors, traces, diagrams and saga keys.
template <class E>
[[nodiscard]] constexpr std::string_view event_type_name() noexcept {
    return detail::event_type_name_v<E>;
}

/// @brief The requirements on an event: a plain object type that can be copied or moved into a buffer.
template <class E>
concept event = std::is_object_v<E> && !std::is_const_v<E> && !std::is_volatile_v<E> && !std::is_array_v<E> &&
                std::is_move_constructible_v<E> && std::is_destructible_v<E>;

} // namespace choreo
