#pragma once
/// @file
/// @brief The rollback-state and marker store on Redis: one hash per saga, one key per
/// marker, every operation one Lua call on one key.

#include <choreo/redis/connection.hpp>
#include <choreo/redis/detail/saga_store_replies.hpp>
#include <choreo/redis/detail/saga_store_scripts.hpp>
#include <choreo/saga/status.hpp>
#include <choreo/saga/store.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace choreo::redis {

/// @brief Settings of a saga_store.
struct saga_store_options {
    /// Put before every key ("shop:" gives "shop:saga:{key}"), so several applications share
    /// one Redis, and an ACL user can be limited to the prefix (`~shop:*`).
    std::string prefix = "choreo:";
    /// How long a saga's record lives after its last update (and after its deadline, while it
    /// runs): the TTL is set again by every operation, so only records nobody touches expire.
    std::chrono::milliseconds record_ttl{std::chrono::hours{24 * 7}};
};

namespace detail {

// Runs `f`, again when the connection dropped or timed out with the command sent (it may
// or may not have run): every store operation is safe to repeat, the saga operations by
// their ids, the markers and reads by what they do. Redis away longer than the
// connection's wait_for_server still fails, with errc::unreachable.
template <class F>
auto retrying(F&& f) -> decltype(f()) {
    constexpr int max_attempts = 10;
    for (int attempt = 1;; ++attempt) {
        try {
            return f();
        } catch (const redis_error& e) {
            if ((e.code() != errc::connection_lost && e.code() != errc::timeout) || attempt >= max_attempts) throw;
        }
    }
}

inline std::int64_t to_ms(saga::time_point t) {
    if (t == saga::time_point::max()) return -1;
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

inline saga::time_point from_ms(std::int64_t ms) {
    constexpr auto latest =
        std::chrono::duration_cast<std::chrono::milliseconds>(saga::time_point::max().time_since_epoch()).count();
    if (ms < 0 || ms >= latest) return saga::time_point::max(); // -1 means none; past the clock's range too
    return saga::time_point{std::chrono::duration_cast<saga::time_point::duration>(std::chrono::milliseconds{ms})};
}

} // namespace detail

/// @brief A choreo::saga::rollback_store and marker_store on Redis, for sagas whose
/// participants run in several processes (or that must survive a restart).
///
/// Each saga is one hash (`{prefix}saga:{key}`) and each marker one string
/// (`{prefix}marker:{name}`); every operation is one Lua script on one key (EVALSHA,
/// reloaded after a Redis restart), so it is atomic without locks and works on Redis
/// Cluster. Running sagas are also indexed by deadline in `{prefix}deadlines` (a sorted
/// set, updated by its own command: it may list a saga that already ended, never miss one)
/// for overdue(). Every update renews the record's TTL.
///
/// The operations block the calling thread for one round trip (the connection itself never
/// blocks its executor), so run saga steps on threads that may wait: the bus's pool or the
/// runtime's executor, not the connection's. Thread-safe.
class saga_store {
public:
    /// @brief A store on `redis` (which must outlive it) with `options`.
    explicit saga_store(connection& redis, saga_store_options options = {})
        : redis_(redis), options_(std::move(options)) {}

    /// @brief The settings it was made with.
    [[nodiscard]] const saga_store_options& options() const noexcept { return options_; }

    /// @brief A running saga whose first step is in `first_state`; false if the key exists.
    [[nodiscard]] bool create(std::string_view key, saga::time_point started, saga::time_point deadline,
                              std::string_view first_step, saga::step_state first_state) {
        check_name(key, "saga key");
        check_name(first_step, "step name");
        auto ttl = options_.record_ttl;
        if (deadline != saga::time_point::max() && deadline > started)
            ttl += std::chrono::duration_cast<std::chrono::milliseconds>(deadline - started);
        if (deadline != saga::time_point::max())
            detail::retrying([&] {
                return redis_.command({"ZADD", deadlines_key(), std::to_string(detail::to_ms(deadline)), key}).value();
            });
        auto r =
            run_saga(key, {"create", std::to_string(detail::to_ms(started)), std::to_string(detail::to_ms(deadline)),
                           first_step, std::to_string(static_cast<int>(first_state)), std::to_string(ttl.count())});
        return r.as_integer() == 1;
    }

    /// @brief Claims a step: claimed, duplicate, not_running or unknown.
    [[nodiscard]] saga::claim_outcome claim(std::string_view key, std::string_view step) {
        check_name(step, "step name");
        auto answer = run_saga(key, {"claim", step}).as_string();
        if (answer == "claimed") return saga::claim_outcome::claimed;
        if (answer == "duplicate") return saga::claim_outcome::duplicate;
        if (answer == "not_running") return saga::claim_outcome::not_running;
        return saga::claim_outcome::unknown;
    }

    /// @brief A claimed step becomes done or failed.
    [[nodiscard]] saga::transition finish(std::string_view key, std::string_view step, bool succeeded) {
        check_name(step, "step name");
        return transition_of(run_saga(key, {"finish", step, succeeded ? "1" : "0"}));
    }

    /// @brief A running saga becomes rolling_back (the first caller wins); the step, if claimed, failed.
    [[nodiscard]] saga::transition roll_back(std::string_view key, std::string_view reason,
                                             std::string_view failed_step) {
        return rollback_of(run_saga(key, {"roll_back", reason, failed_step}));
    }

    /// @brief Whether to compensate a step now (and marks it compensating).
    [[nodiscard]] saga::compensation_outcome begin_compensation(std::string_view key, std::string_view step) {
        auto answer = run_saga(key, {"begin_compensation", step}).as_string();
        if (answer == "run") return saga::compensation_outcome::run;
        if (answer == "duplicate") return saga::compensation_outcome::duplicate;
        if (answer == "never_ran") return saga::compensation_outcome::never_ran;
        if (answer == "pending") return saga::compensation_outcome::pending;
        if (answer == "not_rolling_back") return saga::compensation_outcome::not_rolling_back;
        return saga::compensation_outcome::unknown;
    }

    /// @brief A compensating step becomes compensated.
    [[nodiscard]] saga::transition finish_compensation(std::string_view key, std::string_view step) {
        return transition_of(run_saga(key, {"finish_compensation", step}));
    }

    /// @brief A running saga becomes completed.
    [[nodiscard]] saga::transition complete(std::string_view key) { return transition_of(run_saga(key, {"complete"})); }

    /// @brief A running saga whose deadline is at or before `now` becomes rolling_back.
    [[nodiscard]] saga::transition expire(std::string_view key, saga::time_point now, std::string_view reason) {
        return rollback_of(run_saga(key, {"expire", std::to_string(detail::to_ms(now)), reason}));
    }

    /// @brief Records a fan-in branch once; says how many distinct branches arrived.
    [[nodiscard]] saga::join_outcome join(std::string_view key, std::string_view join_step, std::string_view branch) {
        check_name(join_step, "step name");
        check_name(branch, "step name");
        auto r = run_saga(key, {"join", join_step, branch});
        return {.found = element(r, 0) == 1,
                .added = element(r, 1) == 1,
                .arrived = static_cast<std::size_t>(element(r, 2))};
    }

    /// @brief A step done, its fan-in arrivals and the completion, in one round trip
    /// (choreo::saga::step_finishing_store).
    [[nodiscard]] saga::step_finish finish_step(std::string_view key, std::string_view step,
                                                const std::vector<std::string_view>& joins, bool complete) {
        check_name(step, "step name");
        std::vector<std::string_view> args{"finish_step", step, complete ? "1" : "0"};
        for (auto join : joins) {
            check_name(join, "step name");
            args.push_back(join);
        }
        auto r = run_saga(key, std::move(args));
        saga::step_finish out{.finished = transition_of(r), .arrivals = {}, .completed = {}};
        if (!out.finished.found || out.finished.status != saga::saga_status::running) return out;
        std::size_t at = 4;
        for (std::size_t i = 0; i < joins.size(); ++i, at += 3)
            out.arrivals.push_back({.found = element(r, at) == 1,
                                    .added = element(r, at + 1) == 1,
                                    .arrived = static_cast<std::size_t>(element(r, at + 2))});
        if (complete) out.completed = transition_of(r, at);
        return out;
    }

    /// @brief The saga's status, or nothing for an unknown key.
    [[nodiscard]] std::optional<saga::saga_status> status(std::string_view key) const {
        auto r = detail::retrying([&] { return redis_.command({"HGET", saga_key(key), "st"}); });
        if (r.is_nil()) return std::nullopt;
        return static_cast<saga::saga_status>(std::stoi(r.as_string()));
    }

    /// @brief The saga's whole record, or nothing for an unknown key.
    [[nodiscard]] std::optional<saga::saga_record> get(std::string_view key) const {
        auto r = detail::retrying([&] { return redis_.command({"HGETALL", saga_key(key)}); });
        if (r.elements.empty()) return std::nullopt;
        saga::saga_record record;
        record.key = std::string{key};
        std::vector<std::pair<std::string, std::string>> fields;
        for (std::size_t i = 0; i + 1 < r.elements.size(); i += 2)
            fields.emplace_back(r.elements[i].as_string(), r.elements[i + 1].as_string());
        auto field = [&](std::string_view name) -> const std::string* {
            for (auto& [k, v] : fields)
                if (k == name) return &v;
            return nullptr;
        };
        if (auto* v = field("st")) record.status = static_cast<saga::saga_status>(std::stoi(*v));
        if (auto* v = field("rs")) record.reason = *v;
        if (auto* v = field("fs")) record.failed_step = *v;
        if (auto* v = field("t0")) record.started = detail::from_ms(std::stoll(*v));
        if (auto* v = field("dl")) record.deadline = detail::from_ms(std::stoll(*v));
        if (auto* v = field("steps"))
            for (auto& name : split_lines(*v))
                if (auto* state = field("s:" + name))
                    record.steps.push_back({name, static_cast<saga::step_state>(std::stoi(*state))});
        if (auto* v = field("joined")) record.joined = split_lines(*v);
        return record;
    }

    /// @brief The keys of running sagas whose deadline is at or before `now`, sorted.
    [[nodiscard]] std::vector<std::string> overdue(saga::time_point now) const {
        return due(now, saga::saga_status::running);
    }

    /// @brief The keys of sagas still rolling back whose deadline is at or before `when`, sorted.
    [[nodiscard]] std::vector<std::string> stalled(saga::time_point when) const {
        return due(when, saga::saga_status::rolling_back);
    }

    /// @brief Marks an aggregate as in progress for a saga until `until` (re-entrant), or
    /// queues the saga for it until `wait_until` (see choreo::saga::marker_store).
    [[nodiscard]] saga::marker_outcome acquire(std::string_view marker, std::string_view key, saga::time_point now,
                                               saga::time_point until, saga::time_point wait_until) {
        auto r = run(marker_sha_, detail::marker_script, marker_key(marker),
                     {"acquire", std::to_string(detail::to_ms(now)), key, std::to_string(detail::to_ms(until)),
                      std::to_string(options_.record_ttl.count()), std::to_string(detail::to_ms(wait_until))});
        return {.acquired = element(r, 0) == 1,
                .holder = r.elements.size() > 1 ? r.elements[1].text : std::string{},
                .queued = element(r, 2) == 1,
                .ahead = static_cast<std::size_t>(element(r, 3))};
    }

    /// @brief Takes `key` out of a marker's queue and, if it holds the marker, hands it to
    /// the first saga still waiting or frees it.
    saga::marker_release release(std::string_view marker, std::string_view key, saga::time_point now) {
        auto r = run(marker_sha_, detail::marker_script, marker_key(marker),
                     {"release", key, std::to_string(detail::to_ms(now)), std::to_string(options_.record_ttl.count())});
        return {.released = element(r, 0) == 1, .next = r.elements.size() > 1 ? r.elements[1].text : std::string{}};
    }

    /// @brief The saga holding a marker at `now`, if any.
    [[nodiscard]] std::optional<std::string> holder(std::string_view marker, saga::time_point now) const {
        auto r =
            run(marker_sha_, detail::marker_script, marker_key(marker), {"holder", std::to_string(detail::to_ms(now))});
        if (r.is_nil()) return std::nullopt;
        return r.as_string();
    }

private:
    [[nodiscard]] std::string saga_key(std::string_view key) const {
        return options_.prefix + "saga:" + std::string{key};
    }
    [[nodiscard]] std::string marker_key(std::string_view m) const {
        return options_.prefix + "marker:" + std::string{m};
    }
    [[nodiscard]] std::string deadlines_key() const { return options_.prefix + "deadlines"; }

    // Names are stored newline-separated: a newline inside one would corrupt the record.
    static void check_name(std::string_view name, const char* what) {
        if (name.empty() || name.find('\n') != std::string_view::npos)
            throw usage_error(std::string{"a "} + what + " must be non-empty and without newlines");
    }

    static std::vector<std::string> split_lines(const std::string& text) {
        std::vector<std::string> out;
        std::size_t from = 0;
        while (from <= text.size()) {
            auto end = text.find('\n', from);
            if (end == std::string::npos) end = text.size();
            if (end > from) out.push_back(text.substr(from, end - from));
            from = end + 1;
        }
        return out;
    }

    // The indexed sagas in `status` whose deadline is at or before `when`. Ended sagas (and
    // expired records) are dropped from the index on the way; the index is written by its
    // own command, so it may list a saga that ended, never miss one.
    std::vector<std::string> due(saga::time_point when, saga::saga_status status) const {
        auto candidates = detail::retrying([&] {
            return redis_.command({"ZRANGEBYSCORE", deadlines_key(), "-inf", std::to_string(detail::to_ms(when))});
        });
        std::vector<std::string> keys;
        std::vector<std::vector<std::string>> commands;
        for (auto& c : candidates.elements) keys.push_back(c.as_string());
        if (keys.empty()) return {};
        for (auto& k : keys) commands.push_back({"HGET", saga_key(k), "st"});
        auto answers = detail::retrying([&] { return redis_.pipeline(views(commands)); });
        auto wanted = std::to_string(static_cast<int>(status));
        std::vector<std::string> found;
        std::vector<std::string> gone;
        for (std::size_t i = 0; i < keys.size(); ++i) {
            auto& a = answers[i];
            auto st = a.is_nil() ? std::string{} : a.as_string();
            if (st == wanted) found.push_back(keys[i]);
            bool ended = st.empty() || st == std::to_string(static_cast<int>(saga::saga_status::completed)) ||
                         st == std::to_string(static_cast<int>(saga::saga_status::rolled_back));
            if (ended) gone.push_back(keys[i]);
        }
        if (!gone.empty()) {
            auto index = deadlines_key();
            std::vector<std::string_view> remove{"ZREM", index};
            remove.insert(remove.end(), gone.begin(), gone.end());
            detail::retrying([&] { return redis_.command(remove); });
        }
        std::sort(found.begin(), found.end());
        return found;
    }

    static std::vector<std::vector<std::string_view>> views(const std::vector<std::vector<std::string>>& commands) {
        std::vector<std::vector<std::string_view>> out;
        for (auto& c : commands) out.emplace_back(c.begin(), c.end());
        return out;
    }

    static std::int64_t element(const reply& r, std::size_t i) { return detail::script_element(r, i); }
    static saga::transition transition_of(const reply& r, std::size_t at = 0) { return detail::transition_from(r, at); }
    static saga::transition rollback_of(const reply& r) { return detail::rollback_from(r); }

    // A saga operation under a fresh operation id, so that repeating it is safe.
    reply run_saga(std::string_view key, std::vector<std::string_view> args) const {
        auto id = operation_id();
        args.push_back(id);
        return run(saga_sha_, detail::saga_script, saga_key(key), std::move(args));
    }

    [[nodiscard]] std::string operation_id() const {
        thread_local std::mt19937_64 random{std::random_device{}() ^
                                            std::hash<std::thread::id>{}(std::this_thread::get_id())};
        return fmt::format("{:016x}{:016x}", random(), random());
    }

    // EVALSHA with the script's digest; the first call, and any after Redis lost its script
    // cache (a restart), loads it with SCRIPT LOAD.
    reply run(std::string& sha, std::string_view script, const std::string& key,
              std::vector<std::string_view> args) const {
        return detail::retrying([&] {
            for (int attempt = 0; attempt < 2; ++attempt) {
                std::string digest;
                {
                    std::lock_guard lock{mutex_};
                    if (sha.empty()) sha = redis_.command({"SCRIPT", "LOAD", script}).as_string();
                    digest = sha;
                }
                std::vector<std::string_view> command{"EVALSHA", digest, "1", key};
                command.insert(command.end(), args.begin(), args.end());
                auto r = redis_.pipeline({command})[0];
                if (r.is_error() && r.text.starts_with("NOSCRIPT")) {
                    std::lock_guard lock{mutex_};
                    if (sha == digest) sha.clear();
                    continue;
                }
                return r.value();
            }
            throw redis_error(errc::server_reply, "Redis kept losing the saga store's script");
        });
    }

    connection& redis_;
    saga_store_options options_;
    mutable std::mutex mutex_;
    mutable std::string saga_sha_;
    mutable std::string marker_sha_;
};

static_assert(saga::rollback_store<saga_store>);
static_assert(saga::marker_store<saga_store>);
static_assert(saga::step_finishing_store<saga_store>);

} // namespace choreo::redis
