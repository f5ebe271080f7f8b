#pragma once
/// @file
/// @brief A unit of work: the transaction that transactional listeners are bound to.

#include <cstdint>
#include <memory>
#include <thread>

#include <choreo/core/detail/event_buffer.hpp>
#include <choreo/core/envelope.hpp>
#include <choreo/core/phase.hpp>
#include <choreo/core/resource.hpp>

namespace choreo {

class bus;

/// @brief Where a unit of work stands.
enum class unit_state : std::uint8_t {
    active,      ///< open: publish into it, then commit() or rollback()
    committing,  ///< inside commit(), running before_commit listeners
    committed,   ///< the resource committed
    rolled_back, ///< the resource rolled back
};

/// @brief A transaction bound to a resource of the user's; begin one with bus::begin().
///
/// Events published into it reach their immediate listeners at once and their
/// transactional listeners at commit() or rollback(), as the phase contract says
/// (docs/phases.md). Destroying an active unit of work rolls it back. It is current on
/// the thread that began it until it completes, so bus::publish() finds it, but it can
/// always be passed explicitly: publish through it directly. One thread at a time may
/// use a unit of work; complete and destroy it on the thread that began it.
class unit_of_work {
public:
    unit_of_work(const unit_of_work&) = delete;
    unit_of_work& operator=(const unit_of_work&) = delete;
    unit_of_work(unit_of_work&&) = delete;
    unit_of_work& operator=(unit_of_work&&) = delete;
    /// @brief Rolls back when still active; never throws (failures go to the error handler).
    ~unit_of_work();

    /// @brief Publishes into this unit of work (a choreo::usage_error once it has completed).
    template <class E>
    void publish(E&& event);
    /// @brief Publishes with an explicit correlation key.
    template <class E>
    void publish(E&& event, const correlation_key& key);

    /// @brief Runs before_commit listeners (and those of what they publish) until none are
    /// left, commits the resource, then runs after_commit and after_completion listeners.
    /// Throws what a before_commit listener or the resource's commit threw, after rolling
    /// back; a choreo::usage_error when the unit is not active.
    void commit();

    /// @brief Rolls the resource back and runs after_rollback and after_completion listeners.
    void rollback();

    /// @brief Where it stands.
    [[nodiscard]] unit_state state() const noexcept { return state_; }
    /// @brief The bus it belongs to.
    [[nodiscard]] choreo::bus& owner() const noexcept { return *bus_; }
    /// @brief True when this unit of work was begun on `resource` (that very object).
    template <class R>
    [[nodiscard]] bool runs_on(const R& resource) const noexcept {
        return resource_.object == static_cast<const void*>(&resource);
    }
    /// @brief The address of the resource it was begun on (null for none): what runs_on()
    /// compares, for code that keeps resources by address (the outboxes of a bus).
    [[nodiscard]] const void* resource_address() const noexcept { return resource_.object; }
    /// @brief The unit whose before_commit listeners run on this thread now, or null.
    /// A before_commit listener reaches its transaction with it (the outbox writes
    /// into the unit's resource this way) without relying on which unit is current.
    [[nodiscard]] static unit_of_work* committing() noexcept;

private:
    friend class bus;
    enum class kind : std::uint8_t { explicit_unit, follow_up, implicit };

    unit_of_work(choreo::bus& owner, detail::resource_ref resource, kind k);

    void require_open(const char* action) const;
    void finish_rollback(completion why) noexcept;
    void unlink() noexcept;
    detail::event_buffer& events();

    choreo::bus* bus_;
    detail::resource_ref resource_;
    kind kind_;
    unit_state state_ = unit_state::active;
    std::thread::id thread_;
    unit_of_work* previous_;                       // the unit that was current before this one
    std::unique_ptr<detail::event_buffer> events_; // taken from the bus's pool on first publish
    std::uint32_t publish_depth_ = 0;              // depth given to events published now
    std::int32_t publish_parent_ = -1;             // index of the event whose before_commit runs now
};

} // namespace choreo

#include <choreo/core/bus.hpp>
