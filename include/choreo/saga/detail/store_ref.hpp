#pragma once
// The runtime talks to the user's stores through this interface, so the runtime and
// participants are not templates on the store types. Saga operations cost a lock or a
// round trip each; one virtual call more is noise beside them.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <choreo/saga/status.hpp>
#include <choreo/saga/store.hpp>

namespace choreo::saga::detail {

class store_ref {
public:
    virtual ~store_ref() = default;
    virtual bool create(std::string_view key, time_point started, time_point deadline, std::string_view step,
                        step_state state) = 0;
    virtual claim_outcome claim(std::string_view key, std::string_view step) = 0;
    virtual transition finish(std::string_view key, std::string_view step, bool succeeded) = 0;
    virtual transition roll_back(std::string_view key, std::string_view reason, std::string_view step) = 0;
    virtual compensation_outcome begin_compensation(std::string_view key, std::string_view step) = 0;
    virtual transition finish_compensation(std::string_view key, std::string_view step) = 0;
    virtual transition complete(std::string_view key) = 0;
    virtual transition expire(std::string_view key, time_point now, std::string_view reason) = 0;
    virtual join_outcome join(std::string_view key, std::string_view join_step, std::string_view branch) = 0;
    // A finished step with its fan-in arrivals and the completion (step_finishing_store).
    virtual step_finish finish_step(std::string_view key, std::string_view step,
                                    const std::vector<std::string_view>& joins, bool complete) = 0;
    [[nodiscard]] virtual std::optional<saga_status> status(std::string_view key) const = 0;
    [[nodiscard]] virtual std::optional<saga_record> get(std::string_view key) const = 0;
    [[nodiscard]] virtual std::vector<std::string> overdue(time_point now) const = 0;
    [[nodiscard]] virtual std::vector<std::string> stalled(time_point when) const = 0;
    virtual marker_outcome acquire(std::string_view marker, std::string_view key, time_point now, time_point until,
                                   time_point wait_until) = 0;
    virtual marker_release release(std::string_view marker, std::string_view key, time_point now) = 0;
    [[nodiscard]] virtual std::optional<std::string> holder(std::string_view marker, time_point now) const = 0;
};

template <rollback_store States, marker_store Markers>
class store_adapter final : public store_ref {
public:
    store_adapter(States& states, Markers& markers) noexcept : states_(states), markers_(markers) {}
    bool create(std::string_view key, time_point started, time_point deadline, std::string_view step,
                step_state state) override {
        return states_.create(key, started, deadline, step, state);
    }
    claim_outcome claim(std::string_view key, std::string_view step) override { return states_.claim(key, step); }
    transition finish(std::string_view key, std::string_view step, bool succeeded) override {
        return states_.finish(key, step, succeeded);
    }
    transition roll_back(std::string_view key, std::string_view reason, std::string_view step) override {
        return states_.roll_back(key, reason, step);
    }
    compensation_outcome begin_compensation(std::string_view key, std::string_view step) override {
        return states_.begin_compensation(key, step);
    }
    transition finish_compensation(std::string_view key, std::string_view step) override {
        return states_.finish_compensation(key, step);
    }
    transition complete(std::string_view key) override { return states_.complete(key); }
    transition expire(std::string_view key, time_point now, std::string_view reason) override {
        return states_.expire(key, now, reason);
    }
    join_outcome join(std::string_view key, std::string_view join_step, std::string_view branch) override {
        return states_.join(key, join_step, branch);
    }
    step_finish finish_step(std::string_view key, std::string_view step, const std::vector<std::string_view>& joins,
                            bool complete) override {
        if constexpr (step_finishing_store<States>) {
            return states_.finish_step(key, step, joins, complete);
        } else {
            step_finish out{.finished = states_.finish(key, step, true), .arrivals = {}, .completed = {}};
            if (!out.finished.found || out.finished.status != saga_status::running) return out;
            for (auto join : joins) out.arrivals.push_back(states_.join(key, join, step));
            if (complete) out.completed = states_.complete(key);
            return out;
        }
    }
    std::optional<saga_status> status(std::string_view key) const override { return states_.status(key); }
    std::optional<saga_record> get(std::string_view key) const override { return states_.get(key); }
    std::vector<std::string> overdue(time_point now) const override { return states_.overdue(now); }
    std::vector<std::string> stalled(time_point when) const override { return states_.stalled(when); }
    marker_outcome acquire(std::string_view marker, std::string_view key, time_point now, time_point until,
                           time_point wait_until) override {
        return markers_.acquire(marker, key, now, until, wait_until);
    }
    marker_release release(std::string_view marker, std::string_view key, time_point now) override {
        return markers_.release(marker, key, now);
    }
    std::optional<std::string> holder(std::string_view marker, time_point now) const override {
        return markers_.holder(marker, now);
    }

private:
    States& states_;
    Markers& markers_;
};

} // namespace choreo::saga::detail
