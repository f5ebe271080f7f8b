#pragma once
/// @file
/// @brief Continue handling an event outside its dispatch, so that what is published
/// still carries its correlation key and causation id.

#include <choreo/core/detail/frame.hpp>
#include <choreo/core/envelope.hpp>

namespace choreo {

/// @brief For the scope of this object, `cause` is the event being handled on this thread:
/// events published meanwhile take its id as their causation id and inherit its key.
///
/// The bus does this itself during every dispatch. Use it when handling continues
/// later or elsewhere (a deferred retry, a transport's consumer, a saga's
/// compensation), so listeners still write no code to propagate keys. `cause` must
/// outlive the scope; scopes nest.
class causation_scope {
public:
    /// @brief Makes `cause` the event being handled until the scope ends.
    explicit causation_scope(const envelope& cause) noexcept : frame_(cause), scope_(frame_) {}
    causation_scope(const causation_scope&) = delete;
    causation_scope& operator=(const causation_scope&) = delete;

private:
    detail::frame frame_;
    detail::frame_scope scope_;
};

} // namespace choreo
