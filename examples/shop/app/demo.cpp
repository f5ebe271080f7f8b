// What `shop demo` and `shop scenario` print.

#include "demo.hpp"

#include <fmt/format.h>

#include <algorithm>

#include <map>
#include <string>
#include <string_view>

namespace shop::app {

namespace {

// What each step's compensation does, in the words of the seed.
const std::map<std::string_view, std::string_view> undoes{
    {"order/create order", "the order is CANCELLED"},
    {"product/deduct stock", "the stock is put back"},
    {"coupon/use coupons", "the coupons are unused again"},
    {"order/add items", "the order's items are removed"},
    {"order/add coupons", "the order's coupons are removed"},
    {"order/confirm order", "the order is CREATE_PENDING again"},
    {"payment/create payment", "the payment is CANCELLED"},
    {"order/record payment", "the order no longer has its payment"},
    {"order/start payment", "nothing: the order stays CREATED, to be paid again"},
    {"point/use points", "the points are refunded"},
    {"payment/charge card", "the card charge is refunded"},
    {"payment/complete payment", "the payment is PENDING again"},
    {"order/complete order", "the order is CREATED again"},
};

// The saga's compensations, one line each: the step and what undoing it did.
void print_compensations(const std::vector<timeline_entry>& timeline) {
    for (auto& t : timeline) {
        if (t.phase != "compensation") continue;
        auto what = undoes.find(t.listener);
        fmt::print("      undone: {} ({}): {}\n", t.listener, t.saga,
                   t.outcome != "ok"      ? t.outcome
                   : what != undoes.end() ? std::string{what->second}
                                          : std::string{"ok"});
    }
}

// The happy path's dispatches, as one table per flow: order creation, then payment. In saga
// mode the saga key says which flow; in transactional mode, the dispatches are in order and
// the payment's begin with PayStart.
void print_flows(const std::vector<timeline_entry>& timeline) {
    std::vector<timeline_entry> creation, payment;
    bool paying = false;
    for (auto& t : timeline) {
        paying = t.saga.empty() ? paying || t.event == "PayStart" : t.saga.starts_with("PayStart:");
        (paying ? payment : creation).push_back(t);
    }
    // A saga's start runs in the command, before any step; its trace comes once its unit of
    // work has ended, when steps on other threads may have run already: it leads its table.
    for (auto* flow : {&creation, &payment})
        std::stable_partition(flow->begin(), flow->end(),
                              [](const timeline_entry& t) { return t.phase == "in the command"; });
    auto key_of = [](const std::vector<timeline_entry>& flow) {
        for (auto& t : flow)
            if (!t.saga.empty()) return fmt::format(" (saga {})", t.saga);
        return std::string{" (one transaction)"};
    };
    fmt::print("  Order creation{}: ann orders 2 apples and 1 pear with both coupons\n", key_of(creation));
    print_timeline(creation);
    fmt::print("\n  Payment{}: ann pays by points\n", key_of(payment));
    print_timeline(payment);
    fmt::print("\n");
}

// The injected faults, one row each: where, whether it ended as expected, how many steps
// were compensated, and the invariants; the expectation once for the rows that share it.
bool print_fault_table(mode m, bool verbose) {
    bool all_ok = true;
    constexpr auto row = "      {:<26} {:<12} {:<10} {}\n";
    std::string expectation;
    for (auto& name : scenario_names()) {
        if (!name.starts_with("fail-")) continue;
        auto o = run_scenario(name, m, true);
        bool ok = o.as_expected && o.broken.empty();
        all_ok &= ok;
        if (verbose) {
            print_outcome(o, false);
            print_compensations(o.timeline);
            continue;
        }
        if (o.expected != expectation) {
            expectation = o.expected;
            fmt::print("    expected: {}\n", expectation);
            fmt::print(row, "fault injected into", "as expected", "undone", "invariants");
        }
        std::size_t undone = 0;
        for (auto& t : o.timeline) undone += t.phase == "compensation" ? 1 : 0;
        // "fail-payment-charge-card" -> "payment/charge card"
        auto step = name.substr(std::string_view{"fail-"}.size());
        step[step.find('-')] = '/';
        for (auto& c : step) c = c == '-' ? ' ' : c;
        fmt::print(row, step, ok ? "yes" : "NO",
                   m == mode::transactional ? std::string{"rolled back"}
                                            : fmt::format("{} step{}", undone, undone == 1 ? "" : "s"),
                   o.broken.empty() ? "all hold" : fmt::format("{} broken", o.broken.size()));
    }
    return all_ok;
}

} // namespace

void print_state(const boost::json::object& state) {
    namespace json = boost::json;
    std::string products;
    for (auto& p : state.at("products").as_array())
        products += fmt::format("{}{} {}/{}", products.empty() ? "" : ", ", p.at("name").as_string().c_str(),
                                p.at("stock").as_int64(), p.at("stock").as_int64() + p.at("sold").as_int64());
    fmt::print("    products (stock/initial): {}\n", products);
    for (auto& o : state.at("orders").as_array()) {
        std::string payment = "no payment";
        for (auto& p : state.at("payments").as_array())
            if (p.at("order").as_int64() == o.at("id").as_int64())
                payment = fmt::format("payment {} {}{}", p.at("id").as_int64(), p.at("status").as_string().c_str(),
                                      p.at("method").as_string().empty()
                                          ? ""
                                          : fmt::format(" by {}", p.at("method").as_string().c_str()));
        fmt::print("    order {} (user {}): {} at {}, {} items, {} coupons, {}\n", o.at("id").as_int64(),
                   o.at("user").as_int64(), o.at("status").as_string().c_str(), o.at("price").as_int64(),
                   o.at("items").as_array().size(), o.at("coupons").as_array().size(), payment);
    }
    std::string coupons;
    for (auto& c : state.at("coupons").as_array())
        coupons += fmt::format("{}{} {}", coupons.empty() ? "" : ", ", c.at("issued_coupon").as_int64(),
                               c.at("used_by_order").as_int64()
                                   ? fmt::format("used by order {}", c.at("used_by_order").as_int64())
                                   : std::string{"unused"});
    fmt::print("    coupons: {}\n", coupons);
    std::string points;
    for (auto& p : state.at("points").as_array())
        points += fmt::format("{}user {}: {}", points.empty() ? "" : ", ", p.at("user").as_int64(),
                              p.at("balance").as_int64());
    fmt::print("    points: {}\n", points);
    auto& card = state.at("card_gateway").as_object();
    auto& platform = state.at("data_platform").as_object();
    fmt::print("    card gateway: {} charges, {} refunded; data platform: {} orders received in {} attempts\n",
               card.at("charges").as_int64(), card.at("refunds").as_int64(),
               platform.at("received_orders").as_array().size(), platform.at("attempts").as_int64());
}

// The saga layer's own events reach every participant; one line each says enough, and
// the bookkeeping of a saga's start is left out.
void print_timeline(const std::vector<timeline_entry>& timeline) {
    constexpr auto row = "    {:<23} {:<25} {:<14} {:<35} {:<7} {}\n";
    fmt::print(row, "event", "phase", "context", "listener or step", "thread", "outcome");
    const timeline_entry* previous = nullptr;
    for (auto& t : timeline) {
        bool internal = t.event.starts_with("choreo.");
        if (t.event == "choreo.saga_started") continue;
        if (internal && previous && previous->event == t.event && previous->outcome == t.outcome) continue;
        previous = &t;
        if (internal)
            fmt::print(row, t.event, t.phase, "every context", t.listener.substr(t.listener.find(':') + 2), t.thread,
                       t.outcome);
        else
            fmt::print(row, t.event, t.phase, t.context, t.listener, t.thread, t.outcome);
    }
}

bool print_outcome(const scenario_outcome& o, bool details) {
    bool ok = o.as_expected && o.broken.empty();
    fmt::print("  [{}] {} ({}): {}\n", ok ? "ok" : "UNEXPECTED", o.name, to_string(o.mode), o.description);
    for (auto& line : o.story) fmt::print("      {}\n", line);
    fmt::print("      expected: {}{}\n", o.expected, o.as_expected ? "" : "  <-- NOT MET");
    fmt::print("      invariants: {}\n", o.broken.empty() ? "all hold" : fmt::format("{} broken", o.broken.size()));
    for (auto& b : o.broken) fmt::print("        BROKEN: {}\n", b);
    if (details) {
        for (auto& i : o.incidents) fmt::print("      reported: {}\n", i);
        print_state(o.state);
    }
    return ok;
}

int run_demo(const std::vector<mode>& modes, bool verbose) {
    bool all_ok = true;
    for (auto m : modes) {
        fmt::print("=== {} mode: {}\n\n", to_string(m),
                   m == mode::transactional
                       ? "one SQLite transaction per command; solid arrows are before_commit listeners"
                       : "a database per context; events cross contexts after commit; failures are compensated");
        auto happy = run_scenario("happy-path", m, true);
        fmt::print("  The happy path, every dispatch in order, one table per flow:\n\n");
        print_flows(happy.timeline);
        all_ok &= print_outcome(happy, true);
        fmt::print("\n  The business failures and the world around the shop:\n");
        for (auto& name : scenario_names()) {
            if (name == "happy-path" || name.starts_with("fail-")) continue;
            auto o = run_scenario(name, m, true);
            all_ok &= print_outcome(o, false);
            print_compensations(o.timeline);
        }
        fmt::print("\n  A failure injected at each step of the two flows{}:\n",
                   verbose ? "" : " (each in full: --verbose)");
        all_ok &= print_fault_table(m, verbose);
        fmt::print("\n");
    }
    fmt::print("{}\n", all_ok ? "Every scenario ended as expected, with every invariant holding."
                              : "SOME SCENARIOS DID NOT END AS EXPECTED.");
    return all_ok ? 0 : 1;
}

} // namespace shop::app
