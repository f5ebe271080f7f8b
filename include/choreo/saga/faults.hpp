#pragma once
/// @file
/// @brief Fault injection: make a named step, compensation or listener throw on its n-th call.

#include <concepts>
#include <limits>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include <fmt/format.h>

#include <choreo/core/errors.hpp>

namespace choreo::saga {

/// @brief What an injected fault throws.
class injected_fault : public choreo::error {
public:
    using choreo::error::error;
};

/// @brief Plans failures by name and counts calls. A saga runtime given one checks it
/// before every step (by the step's name, "participant/step") and every compensation
/// (by compensation_name()); wrap() puts any other listener under it. Thread-safe.
class fault_injector {
public:
    /// @brief Calls number `nth` (1-based) up to `nth + times - 1` of `name` throw injected_fault.
    void fail(std::string name, unsigned nth = 1, unsigned times = 1) {
        std::lock_guard lock{mutex_};
        plans_[std::move(name)] = {nth, times};
    }
    /// @brief Every call of `name` from now on throws.
    void fail_always(std::string name) {
        std::lock_guard lock{mutex_};
        unsigned next = counts_[name] + 1;
        plans_[std::move(name)] = {next, std::numeric_limits<unsigned>::max() - next};
    }
    /// @brief Forgets every plan and count.
    void clear() {
        std::lock_guard lock{mutex_};
        plans_.clear();
        counts_.clear();
    }
    /// @brief Counts a call of `name`; throws injected_fault if one is planned for it.
    void check(std::string_view name) {
        std::lock_guard lock{mutex_};
        auto& count = counts_[std::string{name}];
        ++count;
        auto plan = plans_.find(std::string{name});
        if (plan != plans_.end() && count >= plan->second.first && count - plan->second.first < plan->second.second)
            throw injected_fault(fmt::format("fault injected into '{}' (call {})", name, count));
    }
    /// @brief How many times `name` was called (checked).
    [[nodiscard]] unsigned calls(std::string_view name) const {
        std::lock_guard lock{mutex_};
        auto it = counts_.find(std::string{name});
        return it == counts_.end() ? 0 : it->second;
    }
    /// @brief The name under which a step's compensation is checked.
    [[nodiscard]] static std::string compensation_name(std::string_view step) {
        return fmt::format("{} (compensation)", step);
    }
    /// @brief A listener that checks `name` and then calls `listener`, for subscribing plain listeners under test.
    template <class F>
    [[nodiscard]] auto wrap(std::string name, F listener) {
        return [ this, name = std::move(name), listener = std::move(listener) ]<class... Args>(
            const Args&... args) mutable requires std::invocable<F&, const Args&...> {
            check(name);
            return listener(args...);
        };
    }

private:
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::pair<unsigned, unsigned>> plans_;
    std::unordered_map<std::string, unsigned> counts_;
};

} // namespace choreo::saga
