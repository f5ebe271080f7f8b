#pragma once
/// @file
/// @brief The resource a unit of work is bound to (a database connection, a fake in tests).

#include <concepts>
#include <type_traits>

namespace choreo {

/// @brief A transactional resource: begin() starts a transaction, commit() makes it
/// durable, rollback() undoes it. commit() may throw; the unit of work then rolls back.
template <class R>
concept transactional_resource = requires(R& resource) {
    resource.begin();
    resource.commit();
    resource.rollback();
};

/// @brief A resource with nothing to commit: a unit of work that only orders listeners.
struct no_resource {
    /// @brief Does nothing.
    void begin() noexcept {}
    /// @brief Does nothing.
    void commit() noexcept {}
    /// @brief Does nothing.
    void rollback() noexcept {}
};

namespace detail {

// Type-erased reference to a user's resource: two words of function table plus the object.
struct resource_ref {
    void* object = nullptr;
    void (*begin_fn)(void*) = nullptr;
    void (*commit_fn)(void*) = nullptr;
    void (*rollback_fn)(void*) = nullptr;

    // A resource_ref given where a resource is expected (the saga layer keeps its
    // participant's resource this way) is the reference itself, not a wrapper around it,
    // so unit_of_work::runs_on() still sees the user's object.
    template <transactional_resource R>
    static resource_ref to(R& resource) noexcept {
        if constexpr (std::is_same_v<std::remove_const_t<R>, resource_ref>) {
            return resource;
        } else {
            return {&resource, [](void* r) { static_cast<R*>(r)->begin(); },
                    [](void* r) { static_cast<R*>(r)->commit(); }, [](void* r) { static_cast<R*>(r)->rollback(); }};
        }
    }
    [[nodiscard]] bool empty() const noexcept { return object == nullptr; }
    void begin() const {
        if (object) begin_fn(object);
    }
    void commit() const {
        if (object) commit_fn(object);
    }
    void rollback() const {
        if (object) rollback_fn(object);
    }
};

} // namespace detail
} // namespace choreo
