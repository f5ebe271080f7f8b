// The program's commands that run processes: the web API, a context in a process of its
// own, the load, and every scenario on six processes of its own.

#include "../app/cli.hpp"
#include "../app/demo.hpp"
#include "serve_and_load.hpp"
#include "streams.hpp"
#ifdef SHOP_WITH_REDIS
#include "scenario_processes.hpp"
#endif
#ifdef SHOP_WITH_HTTP
#include "http.hpp"
#endif

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <tuple>

namespace shop::app {

#ifdef SHOP_WITH_HTTP
int serve_http_command(const arguments& a) {
    http_options o;
    std::tie(o.address, o.port) = http_endpoint(a);
    o.directory = required(a, "dir");
    o.mode = modes_of(a, false).front();
    o.threads = count_option(a, "threads", o.threads);
    o.max_running = count_option(a, "max-running", o.max_running);
    return ::shop::app::serve_http(o);
}
#else
int serve_http_command(const arguments&) { throw usage_error("this shop was built without its web API (Boost.URL)"); }
#endif

#ifdef SHOP_WITH_REDIS
int serve_command(const arguments& a) {
    serve_options o;
    o.context = required(a, "context");
    o.redis_url = required(a, "redis");
    o.directory = required(a, "dir");
    if (auto it = a.options.find("prefix"); it != a.options.end()) o.prefix = it->second;
    if (auto it = a.options.find("kafka"); it != a.options.end()) o.kafka_url = it->second;
    o.kafka_partitions = static_cast<int>(count_option(a, "kafka-partitions", 4));
    if (o.kafka_partitions < 1) throw usage_error("--kafka-partitions takes a number from 1");
    if (auto it = a.options.find("instance"); it != a.options.end()) {
        o.instance = it->second;
        if (o.instance.empty() || o.instance.size() > 32 ||
            !std::all_of(o.instance.begin(), o.instance.end(),
                         [](char c) { return std::isalnum(static_cast<unsigned char>(c)); }))
            throw usage_error("--instance takes a name of letters and digits (at most 32)");
        if (o.instance != "1" && o.context != data_platform_process)
            throw usage_error(
                "only the data_platform runs as more than one instance: each saga context is one process, "
                "which alone resumes its saga journal");
    }
    if (a.options.contains("http")) std::tie(o.http_address, o.http_port) = http_endpoint(a);
    o.grace = std::chrono::seconds{count_option(a, "grace", static_cast<std::uint64_t>(o.grace.count()))};
    if (auto it = a.options.find("die-before-reply"); it != a.options.end()) o.die_before_reply = it->second;
    o.max_running = count_option(a, "max-running", o.max_running);
    return ::shop::app::serve(o);
}

int load_command(const arguments& a) {
    auto in_process = a.options.contains("mode") && modes_of(a, false).front() == mode::transactional;
    load_options o{.redis_url = in_process ? std::string{} : required(a, "redis"), .directory = required(a, "dir")};
    if (auto it = a.options.find("prefix"); it != a.options.end()) o.prefix = it->second;
    o.orders = count_option(a, "orders", o.orders);
    o.concurrency = count_option(a, "concurrency", o.concurrency);
    o.products = count_option(a, "products", o.products);
    o.users = count_option(a, "users", o.users);
    o.stock = count_option(a, "stock", o.stock);
    o.seed = count_option(a, "seed", o.seed);
    o.timeout = std::chrono::seconds{count_option(a, "timeout", static_cast<std::uint64_t>(o.timeout.count()))};
    return in_process ? ::shop::app::load_in_process(o) : ::shop::app::load(o);
}
#else
int serve_command(const arguments&) { throw usage_error("this shop was built without Redis (choreo::redis)"); }
int load_command(const arguments&) { throw usage_error("this shop was built without Redis (choreo::redis)"); }
#endif

#ifdef SHOP_WITH_REDIS
// Each scenario on six processes of its own: a fresh directory and key prefix, the processes
// started before it and stopped after. A failed one keeps its directory (databases, logs).
int remote_scenarios(const arguments& a) {
    if (a.options.contains("mode") && a.options.at("mode") != "saga")
        throw usage_error("the six processes run in saga mode only");
    if (a.timeline) throw usage_error("--timeline is not available across processes");
    std::vector<std::string> names;
    if (a.name == "all")
        names = scenario_names();
    else {
        check_scenario_name(a.name);
        names.push_back(a.name);
    }
    auto prefix = a.options.contains("prefix") ? a.options.at("prefix") : std::string{"shop:scenario:"};
    auto program = std::filesystem::read_symlink("/proc/self/exe").string();
    bool all_ok = true;
    for (auto& name : names) {
        scenario_processes_options o{.program = program,
                                     .redis_url = required(a, "redis"),
                                     .kafka_url = a.options.contains("kafka") ? a.options.at("kafka") : std::string{},
                                     .prefix = fmt::format("{}{}:{}:", prefix, name, ::getpid()),
                                     .directory = std::filesystem::temp_directory_path() /
                                                  fmt::format("choreo-shop-{}-{}", ::getpid(), name),
                                     .settle_timeout = std::chrono::seconds{60}};
        scenario_processes shop{o};
        scenario_outcome outcome;
        try {
            outcome = run_scenario(name, shop);
            outcome.incidents = shop.incidents();
        } catch (const std::exception& e) {
            fmt::print(stderr, "shop: scenario {} failed: {}\n{}\n(databases and logs kept in {})\n", name, e.what(),
                       shop.logs(), shop.keep_files());
            all_ok = false;
            continue;
        }
        auto unclean = shop.stop();
        for (auto& u : unclean) outcome.broken.push_back("the " + u);
        bool ok = outcome.as_expected && outcome.broken.empty();
        if (a.json)
            print_json(outcome);
        else
            print_outcome(outcome, names.size() == 1);
        if (!ok) fmt::print(stderr, "shop: scenario {}: databases and logs kept in {}\n", name, shop.keep_files());
        all_ok &= ok;
        std::fflush(stdout);
    }
    return all_ok ? 0 : 1;
}
#else
int remote_scenarios(const arguments&) { throw usage_error("this shop was built without Redis (choreo::redis)"); }
#endif

} // namespace shop::app
