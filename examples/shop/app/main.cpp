// The shop program: the demo, one scenario at a time, and the wiring as a diagram.

#include <boost/json.hpp>
#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <choreo/viz/flowchart.hpp>

#include "cli.hpp"
#include "demo.hpp"
#include "one_process.hpp"
#include "scenarios.hpp"

namespace {

using namespace shop::app;

int demo(const arguments& a) { return run_demo(modes_of(a, true), a.verbose); }

int scenario(const arguments& a) {
    if (a.name.empty()) throw usage_error("scenario needs a NAME (see: shop scenarios)");
    if (a.options.contains("redis")) return remote_scenarios(a);
    auto m = modes_of(a, false).front();
    auto o = run_scenario(a.name, m, a.timeline);
    if (a.json) {
        print_json(o);
    } else {
        if (a.timeline) print_timeline(o.timeline);
        print_outcome(o, true);
    }
    return o.as_expected && o.broken.empty() ? 0 : 1;
}

std::int64_t number(const std::string& text, const std::string& what) {
    std::size_t used = 0;
    long long value = 0;
    try {
        value = std::stoll(text, &used);
    } catch (const std::exception&) {
        used = 0;
    }
    if (used == 0 || used != text.size())
        throw usage_error(fmt::format("{} must be a whole number, not '{}'", what, text));
    return value;
}

int order(const arguments& a) {
    if (a.rest.empty()) throw usage_error("order needs at least one PRODUCT:QUANTITY");
    std::vector<std::pair<std::int64_t, std::int64_t>> lines;
    for (auto& item : a.rest) {
        auto colon = item.find(':');
        if (colon == std::string::npos) throw usage_error(fmt::format("'{}' is not PRODUCT:QUANTITY", item));
        lines.emplace_back(number(item.substr(0, colon), "a product id"), number(item.substr(colon + 1), "a quantity"));
    }
    auto o = run_order(lines, modes_of(a, false).front(), a.card);
    return print_outcome(o, true) ? 0 : 1;
}

int diagram(const arguments& a) {
    auto format = option(a, "format", "mermaid", {"mermaid", "dot"});
    auto flow = option(a, "flow", "create", {"create", "pay"});
    auto m = modes_of(a, false).front();
    const std::vector<std::string> create_events{"OrderCreateStart", "OrderDeduct", "OrderUsed", "OrderCreated",
                                                 "OrderPaymentCreated"};
    const std::vector<std::string> pay_events{"PayStart", "PaymentOrderUse", "OrderPaymentCompleted", "OrderCompleted"};
    const auto& events = flow == "create" ? create_events : pay_events;
    one_process s{config{.mode = m}};
    auto arrows = s.wiring(events);
    std::string title =
        fmt::format("{} ({} mode)", flow == "create" ? "Order creation" : "Order payment", to_string(m));
    fmt::print("{}", format == "mermaid" ? choreo::viz::to_mermaid(arrows, title) : choreo::viz::to_dot(arrows, title));
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    try {
        auto a = parse(argc, argv);
        if (a.help) {
            fmt::print("{}", usage_of(a.command));
            return 0;
        }
        if (a.command == "demo") return demo(a);
        if (a.command == "scenario" && a.name == "crash-after-commit") {
            if (a.json || a.timeline)
                throw usage_error("crash-after-commit tells what happens to a process and its files; it has no --json "
                                  "or --timeline");
            int failed = 0;
            for (auto m : modes_of(a, true)) failed |= crash_after_commit(m);
            return failed;
        }
        if (a.command == "scenario") return scenario(a);
        if (a.command == "crash-child") return crash_child(a);
        if (a.command == "scenarios") {
            for (auto& n : scenario_names()) fmt::print("{}\n", n);
            return 0;
        }
        if (a.command == "diagram") return diagram(a);
        if (a.command == "order") return order(a);
        if (a.command == "serve" && a.options.contains("http") && !a.options.contains("context"))
            return serve_http_command(a);
        if (a.command == "serve") return serve_command(a);
        if (a.command == "load") return load_command(a);
        if (a.command == "help" || a.command == "--help") {
            fmt::print("{}", usage);
            return 0;
        }
        throw usage_error("unknown command '" + a.command + "'");
    } catch (const usage_error& e) {
        fmt::print(stderr, "shop: {}\n{}", e.what(), usage);
        return 2;
    } catch (const std::invalid_argument& e) {
        fmt::print(stderr, "shop: {} (see: shop scenarios)\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        fmt::print(stderr, "shop: {}\n", e.what());
        return 1;
    }
}
