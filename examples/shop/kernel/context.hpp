#pragma once
// What every context's front door (its module.hpp) offers, and what a host gives it. A host
// is the one-process shop (app/single_process.cpp) or `shop serve` (hosting/); both go over
// the one list of contexts (contexts.hpp) and name none of them.
//
// A context's module is a struct with:
//   static constexpr std::string_view name;      "product"; its database is {name}.db
//   using publisher = choreo::publisher<...>;    the events it may publish
//   static constexpr std::array commands;        the names of the commands it answers
//   class instance;                              built from a context_host: its repository,
//                                                its steps wired, its operations; with
//                                                `void answer(command_table&)` registering
//                                                a handler for each of `commands`
//   static void read(database&, json::object&)   its read model for the audit, added to
//                                                the shop's state under its own keys

#include <choreo/core/bus.hpp>

#include <boost/json.hpp>

#include <fmt/format.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>

#include "errors.hpp"
#include "outside_systems.hpp"
#include "requests.hpp"
#include "sqlite.hpp"
#include "wiring.hpp"

namespace shop::kernel {

// The shop's clock, seconds since the epoch: a base (the system's, or a fixed day so that
// outputs do not depend on today) moved on by advance() (the scenarios' expiring coupons).
class clock {
public:
    explicit clock(std::function<std::int64_t()> base) : base_(std::move(base)) {}
    [[nodiscard]] std::int64_t now() const { return base_() + offset_.load(); }
    void advance(std::int64_t seconds) { offset_ += seconds; }

private:
    std::function<std::int64_t()> base_;
    std::atomic<std::int64_t> offset_{0};
};

// What a host gives a context it runs.
struct context_host {
    choreo::bus& bus;
    database& db;
    kernel::wiring& wiring;
    kernel::clock& clock;
    outside_systems& outside; // the card gateway and the data platform, for a context that calls them
    // Saga mode: the reservations of the steps on `db` (kernel/step_scope.hpp); null in
    // transactional mode, where one transaction takes everything at once.
    choreo::sqlite::reservations* reservations = nullptr;
};

// A context's operations as commands: JSON arguments in, a JSON result out. Broken rules
// throw domain_error. A command with an effect records its answer with the request, in the
// effect's unit of work, so that it runs once (requests.hpp).
using command = std::function<boost::json::object(const boost::json::object& args, request& request)>;

class command_table {
public:
    void add(std::string_view name, command c) { commands_[std::string{name}] = std::move(c); }
    // A command with no effect to run twice: a read, or a setting that repeats harmlessly.
    template <class F>
    requires std::is_invocable_r_v<boost::json::object, F&, const boost::json::object&>
    void add(std::string_view name, F f) {
        add(name, command{[f = std::move(f)](const boost::json::object& args, request&) { return f(args); }});
    }
    // The command called `name`, or null.
    [[nodiscard]] const command* find(std::string_view name) const {
        auto it = commands_.find(name);
        return it == commands_.end() ? nullptr : &it->second;
    }

private:
    std::map<std::string, command, std::less<>> commands_;
};

// Runs `c` once for `key`: a key that has an answer already gets it without running again.
// Two deliveries racing under one key: the second's record fails on the key and rolls its
// effect back, and it answers as the first did.
[[nodiscard]] inline boost::json::object run_once(const command& c, const boost::json::object& args, request_log& log,
                                                  const std::string& key) {
    if (auto earlier = log.answer_to(key)) return *earlier;
    request r{log, key};
    try {
        return c(args, r);
    } catch (const sqlite_error&) {
        if (auto earlier = log.answer_to(key)) return *earlier;
        throw;
    }
}

// A command's argument `name`, which must be an integer (or a string, or a boolean).
[[nodiscard]] inline std::int64_t integer(const boost::json::object& args, std::string_view name) {
    auto* v = args.if_contains(name);
    if (!v || !v->is_int64()) throw domain_error(fmt::format("the command needs an integer '{}'", name));
    return v->as_int64();
}
[[nodiscard]] inline std::string text(const boost::json::object& args, std::string_view name) {
    auto* v = args.if_contains(name);
    if (!v || !v->is_string()) throw domain_error(fmt::format("the command needs a string '{}'", name));
    return std::string{v->as_string()};
}
[[nodiscard]] inline bool flag(const boost::json::object& args, std::string_view name) {
    auto* v = args.if_contains(name);
    return v && v->is_bool() && v->as_bool();
}

// A read model for the audit: `rows()` read in one transaction of `db`, each row as JSON.
template <class Rows, class Row>
[[nodiscard]] boost::json::array rows_as_json(database& db, Rows rows, Row row) {
    return db.read([&] {
        boost::json::array out;
        for (const auto& r : rows()) out.push_back(row(r));
        return out;
    });
}

// The behaviour of an outside system called `name` in args' "behaviour" (its names listed in
// `names`, in the order of its enumerators).
template <class Behaviour, std::size_t N>
[[nodiscard]] Behaviour behaviour_in(const boost::json::object& args, const std::array<std::string_view, N>& names) {
    auto name = text(args, "behaviour");
    for (std::size_t i = 0; i < N; ++i)
        if (names[i] == name) return static_cast<Behaviour>(i);
    throw domain_error(refusal::invalid_input, "invalid_field", fmt::format("no such behaviour '{}'", name));
}

} // namespace shop::kernel
