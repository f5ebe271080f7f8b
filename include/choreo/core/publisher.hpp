#pragma once
/// @file
/// @brief A publisher restricted at compile time to the events a context owns.

#include <array>
#include <concepts>
#include <string_view>
#include <type_traits>
#include <utility>

#include <choreo/core/bus.hpp>
#include <choreo/core/type_name.hpp>

namespace choreo {

/// @brief True when E is one of Events (after removing references and cv-qualifiers).
template <class E, class... Events>
concept one_of_events = (std::same_as<std::remove_cvref_t<E>, Events> || ...);

/// @brief Publishes only the listed events: a context holding `publisher<OrderCreated, OrderPaid>`
/// cannot publish another context's events (it does not compile).
template <class... Events>
class publisher {
public:
    /// @brief A publisher on `target`, which must outlive it.
    explicit publisher(bus& target) noexcept : bus_(&target) {}

    /// @brief As bus::publish.
    template <one_of_events<Events...> E>
    void publish(E&& event) const {
        bus_->publish(std::forward<E>(event));
    }
    /// @brief As bus::publish with a correlation key.
    template <one_of_events<Events...> E>
    void publish(E&& event, const correlation_key& key) const {
        bus_->publish(std::forward<E>(event), key);
    }
    /// @brief Publishes into an explicit unit of work.
    template <one_of_events<Events...> E>
    void publish(unit_of_work& unit, E&& event) const {
        unit.publish(std::forward<E>(event));
    }

    /// @brief The names of the events it may publish (for diagrams of the wiring).
    [[nodiscard]] static constexpr std::array<std::string_view, sizeof...(Events)> event_names() noexcept {
        return {event_type_name<Events>()...};
    }

    /// @brief The bus it publishes on.
    [[nodiscard]] bus& target() const noexcept { return *bus_; }

private:
    bus* bus_;
};

} // namespace choreo
