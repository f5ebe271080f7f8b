#pragma once
// What `shop demo` and `shop scenario` print: a scenario's story and outcome, the final state
// of every context, the dispatches of a run as one table per flow, and the demo itself.

#include <vector>

#include <boost/json.hpp>

#include "scenarios.hpp"

namespace shop::app {

// Every context's final state, a few lines.
void print_state(const boost::json::object& state);
// Every dispatch of a run in one table (shop scenario --timeline).
void print_timeline(const std::vector<timeline_entry>& timeline);
// The scenario's story, what it expected and whether the invariants hold; with `details`,
// what was reported and the final state. Returns whether it ended as expected.
bool print_outcome(const scenario_outcome& o, bool details);
// The demo in each mode: the happy path's two flows as tables, each business scenario with
// what was compensated, the injected faults as one table (each in full with `verbose`).
// Returns the exit status.
int run_demo(const std::vector<mode>& modes, bool verbose);

} // namespace shop::app
