#pragma once
// What each context publishes, walked at compile time: `shop serve` wires a stream (or a
// topic) per event type a context publishes, and a consumer per type it takes from others.

#include <choreo/core/publisher.hpp>

#include <type_traits>

#include "../contexts.hpp"

namespace shop::app {

// The event types of a context's publisher, one call of `f(std::type_identity<E>{})` each.
template <class Publisher>
struct events_of;
template <class... Events>
struct events_of<choreo::publisher<Events...>> {
    template <class F>
    static void each(F&& f) {
        (f(std::type_identity<Events>{}), ...);
    }
};

// Each context's name with its publisher, one call of `f(name, std::type_identity<publisher>{})` each.
template <class F>
void for_each_publisher(F&& f) {
    contexts::each([&](auto m) {
        using module = typename decltype(m)::type;
        f(module::name, std::type_identity<typename module::publisher>{});
    });
}

} // namespace shop::app
