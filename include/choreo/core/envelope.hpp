#pragma once
/// @file
/// @brief What the bus knows about an event besides its own fields: identity,
/// correlation key, causation and time.

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace choreo {

/// @brief A 128-bit event id: 64 random bits chosen per bus, then a per-bus sequence number.
/// {fmt} formats it as 32 hexadecimal digits, which event_id::parse reads back.
struct event_id {
    std::uint64_t high = 0; ///< random per bus, so ids of two processes do not collide
    std::uint64_t low = 0;  ///< sequence number within the bus

    /// @brief True for the id of no event (the causation id of a first event).
    [[nodiscard]] constexpr bool is_nil() const noexcept { return high == 0 && low == 0; }
    /// @brief 32 lowercase hex digits.
    [[nodiscard]] std::string to_string() const { return fmt::format("{:016x}{:016x}", high, low); }
    /// @brief Reads back what to_string() wrote; nullopt for anything else.
    [[nodiscard]] static constexpr std::optional<event_id> parse(std::string_view text) noexcept {
        if (text.size() != 32) return std::nullopt;
        event_id id;
        for (std::size_t i = 0; i < 32; ++i) {
            char c = text[i];
            std::uint64_t digit = 0;
            if (c >= '0' && c <= '9')
                digit = static_cast<std::uint64_t>(c - '0');
            else if (c >= 'a' && c <= 'f')
                digit = static_cast<std::uint64_t>(c - 'a' + 10);
            else
                return std::nullopt;
            auto& half = i < 16 ? id.high : id.low;
            half = (half << 4) | digit;
        }
        return id;
    }
    /// @brief Ids are equal when both halves are.
    friend constexpr bool operator==(const event_id&, const event_id&) noexcept = default;
    /// @brief Ids order by their high half, then their low half.
    friend constexpr auto operator<=>(const event_id&, const event_id&) noexcept = default;
};

/// @brief The key that correlates the events of one flow (a saga key, an aggregate id).
///
/// Immutable and shared: copying it onto every event a flow causes costs a reference
/// count, not a string copy.
class correlation_key {
public:
    /// @brief The empty key.
    correlation_key() noexcept = default;
    /// @brief A key with the given text (copied once).
    explicit correlation_key(std::string_view text)
        : text_(text.empty() ? nullptr : std::make_shared<const std::string>(text)) {}

    /// @brief The text of the key; empty for no key.
    [[nodiscard]] std::string_view view() const noexcept {
        return text_ ? std::string_view{*text_} : std::string_view{};
    }
    /// @brief True when there is no key.
    [[nodiscard]] bool empty() const noexcept { return text_ == nullptr; }
    /// @brief A hash of the text, stable within a process.
    [[nodiscard]] std::size_t hash() const noexcept { return std::hash<std::string_view>{}(view()); }

    /// @brief Keys are equal when their texts are.
    friend bool operator==(const correlation_key& a, const correlation_key& b) noexcept { return a.view() == b.view(); }

private:
    std::shared_ptr<const std::string> text_;
};

/// @brief The envelope of an event being handled: read it by taking `const envelope&`
/// (or `const delivery_info&`) as a listener's second parameter.
struct envelope {
    event_id id;           ///< unique per published event
    event_id causation_id; ///< the event being handled when this one was published; nil for a first event
    correlation_key key;   ///< inherited from the causing event unless given at publish
    std::chrono::system_clock::time_point time; ///< when the event was published
    std::string_view type_name;                 ///< choreo::event_type_name of the event
};

} // namespace choreo

/// @cond FMT_SPECIALIZATIONS
// Documented with event_id; Doxygen cannot place a specialization of another library's template.
template <>
struct fmt::formatter<choreo::event_id> : fmt::formatter<std::string_view> {
    auto format(const choreo::event_id& id, format_context& ctx) const {
        return fmt::format_to(ctx.out(), "{:016x}{:016x}", id.high, id.low);
    }
};
/// @endcond
