#pragma once
// The shop's scenarios: the happy path, each business failure, each failure of the world
// around the shop, and a failure injected at every step, in either mode.

#include <string>
#include <vector>

#include <boost/json.hpp>

#include "one_process.hpp"

namespace shop::app {

struct scenario_outcome {
    std::string name;
    app::mode mode = mode::transactional;
    std::string description;
    std::vector<std::string> story; // what happened, step by step
    std::string expected;           // what the scenario expects
    bool as_expected = false;
    std::vector<std::string> broken; // invariants that do not hold (none, or it is a bug)
    boost::json::object state;       // every context's final state
    std::vector<timeline_entry> timeline;
    std::vector<std::string> incidents;
};

// Every scenario name, in the order the demo runs them.
[[nodiscard]] std::vector<std::string> scenario_names();

// Orders the given (product id, quantity) lines for ann on the scenarios' catalog (products
// 1 apple, 2 pear, 3 last unit), then pays by points or card.
[[nodiscard]] scenario_outcome run_order(const std::vector<std::pair<std::int64_t, std::int64_t>>& lines, mode m,
                                         bool by_card);

// Throws std::invalid_argument for a name that is not a scenario's.
void check_scenario_name(const std::string& name);

// Runs one scenario on a fresh one-process shop. Throws std::invalid_argument for an unknown name.
[[nodiscard]] scenario_outcome run_scenario(const std::string& name, mode m, bool keep_timeline = false);

// Runs one scenario on `s`, which must be fresh: nothing added, nothing ordered, every
// behaviour at its default. The steps' names are one_process::steps().
[[nodiscard]] scenario_outcome run_scenario(const std::string& name, storefront& s);

} // namespace shop::app
