#pragma once
// Definitions of unit_of_work, and of bus::begin(). Included by bus.hpp.

#include <choreo/core/bus.hpp>

namespace choreo {

// ---------------------------------------------------------------------------------------
// unit_of_work

template <transactional_resource R>
unit_of_work bus::begin(R& resource) {
    if (is_closed() && detail::working_for != this) throw_closed();
    return unit_of_work{*this, detail::resource_ref::to(resource), unit_of_work::kind::explicit_unit};
}

inline unit_of_work bus::begin() {
    if (is_closed() && detail::working_for != this) throw_closed();
    return unit_of_work{*this, detail::resource_ref{}, unit_of_work::kind::explicit_unit};
}

inline unit_of_work::unit_of_work(choreo::bus& owner, detail::resource_ref resource, kind k)
    : bus_(&owner), resource_(resource), kind_(k), thread_(std::this_thread::get_id()),
      previous_(detail::current_unit) {
    resource_.begin();
    detail::current_unit = this;
}

inline unit_of_work::~unit_of_work() {
    if (state_ == unit_state::active) finish_rollback(completion::rolled_back);
    if (events_) bus_->release_buffer(std::move(events_));
}

template <class E>
void unit_of_work::publish(E&& event) {
    bus_->publish_impl(std::forward<E>(event), nullptr, this);
}

template <class E>
void unit_of_work::publish(E&& event, const correlation_key& key) {
    bus_->publish_impl(std::forward<E>(event), &key, this);
}

inline void unit_of_work::require_open(const char* action) const {
    if (state_ == unit_state::active || state_ == unit_state::committing) return;
    throw usage_error(fmt::format("cannot {} a unit of work that has already {}", action,
                                  state_ == unit_state::committed ? "committed" : "rolled back"));
}

inline detail::event_buffer& unit_of_work::events() {
    if (!events_) events_ = bus_->acquire_buffer();
    return *events_;
}

inline void unit_of_work::unlink() noexcept {
    if (thread_ != std::this_thread::get_id()) return;
    if (detail::current_unit == this) {
        detail::current_unit = previous_;
        return;
    }
    for (auto* unit = detail::current_unit; unit; unit = unit->previous_) {
        if (unit->previous_ == this) {
            unit->previous_ = previous_;
            return;
        }
    }
}

inline void unit_of_work::commit() {
    if (state_ != unit_state::active) {
        if (state_ == unit_state::committing)
            throw usage_error("commit() was called again while the unit of work is committing");
        require_open("commit");
    }
    // A unit with nothing to deliver (the common case for a listener's own unit) skips
    // the in-flight accounting: there is nothing for a shutdown to wait for.
    const bool has_events = events_ && !events_->empty();
    std::optional<bus::work_scope> work;
    if (has_events) work.emplace(*bus_);
    const bool admitted = has_events ? work->admitted() : !(bus_->is_closed() && detail::working_for != bus_);
    if (!admitted) {
        finish_rollback(completion::rolled_back);
        bus_->throw_closed();
    }
    state_ = unit_state::committing;
    try {
        // Restored on the way out, so a unit committed inside a before_commit listener
        // hands the role back to the outer one.
        struct committing_scope {
            unit_of_work* saved = detail::committing_unit;
            explicit committing_scope(unit_of_work* unit) noexcept { detail::committing_unit = unit; }
            ~committing_scope() { detail::committing_unit = saved; }
        };
        if (events_) {
            committing_scope scope{this};
            for (std::size_t i = 0; i < events_->size(); ++i) bus_->run_before_commit(*this, i);
        }
        publish_depth_ = 0;
        publish_parent_ = -1;
        resource_.commit();
    } catch (...) {
        finish_rollback(completion::rolled_back);
        throw;
    }
    state_ = unit_state::committed;
    unlink();
    if (!has_events) return;
    try {
        bus_->run_after(*this, completion::committed);
    } catch (...) {
        bus_->report(incident_kind::listener_failed, nullptr, nullptr, phase::after_commit, std::current_exception(), 0,
                     "after_commit delivery could not be scheduled");
    }
    if (events_) bus_->release_buffer(std::move(events_));
}

inline unit_of_work* unit_of_work::committing() noexcept { return detail::committing_unit; }

inline void unit_of_work::rollback() {
    if (state_ != unit_state::active) {
        if (state_ == unit_state::committing)
            throw usage_error("rollback() was called while the unit of work is committing; throw from the "
                              "before_commit listener instead");
        require_open("roll back");
    }
    finish_rollback(completion::rolled_back);
}

inline void unit_of_work::finish_rollback(completion why) noexcept {
    try {
        resource_.rollback();
    } catch (...) {
        auto error = std::current_exception();
        bus_->report(incident_kind::rollback_failed, nullptr, nullptr, phase::after_rollback, error, 0,
                     describe(error));
    }
    state_ = unit_state::rolled_back;
    publish_depth_ = 0;
    publish_parent_ = -1;
    unlink();
    if (!events_ || events_->empty()) return;
    bus::work_scope work{*bus_};
    if (!work.admitted()) return; // shut down: the resource rolled back, listeners no longer run
    try {
        bus_->run_after(*this, why);
    } catch (...) {
        bus_->report(incident_kind::listener_failed, nullptr, nullptr, phase::after_rollback, std::current_exception(),
                     0, "after_rollback delivery could not be scheduled");
    }
    if (events_) bus_->release_buffer(std::move(events_));
}

} // namespace choreo
