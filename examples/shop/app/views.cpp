#include "views.hpp"

namespace shop::app {

namespace json = boost::json;

json::object saga_view(const choreo::saga::saga_record& s) {
    json::array steps;
    for (auto& step : s.steps)
        steps.push_back(json::object{{"step", step.name}, {"state", choreo::saga::to_string(step.state)}});
    json::object out{{"key", s.key}, {"status", choreo::saga::to_string(s.status)}, {"steps", std::move(steps)}};
    if (!s.reason.empty()) {
        out["reason"] = s.reason;
        out["failed_step"] = s.failed_step;
    }
    return out;
}

} // namespace shop::app
