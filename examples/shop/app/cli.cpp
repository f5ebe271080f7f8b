// The shop program's command line: usage, parsing and reading the options.

#include "cli.hpp"

#include <boost/json.hpp>
#include <fmt/format.h>

#include <charconv>
#include <string_view>

namespace shop::app {

const char* const usage = R"(usage:
  shop demo [--mode transactional|saga] [--verbose]
                                              every scenario: both flows of the happy path as
                                              timelines, the business failures, the injected
                                              faults as one table (--verbose: each in full);
                                              default: both modes
  shop scenario NAME [--mode transactional|saga] [--json] [--timeline]
  shop scenario NAME|all --redis URL [--kafka URL] [--json] [--prefix P]
                                              on six fresh `shop serve` processes through Redis
                                              (saga mode), started and stopped for each scenario
  shop scenario crash-after-commit [--mode transactional|saga]
                                              kill the process right after a commit, restart, and
                                              show the data platform receiving the order once
  shop scenarios                              list the scenario names
  shop order PRODUCT:QUANTITY... [--card] [--mode transactional|saga]
                                              order from the catalog (1 apple, 2 pear, 3 last unit) and pay
  shop diagram [--format mermaid|dot] [--flow create|pay] [--mode transactional|saga]
  shop serve --http ADDRESS:PORT --dir DIR [--mode transactional|saga] [--threads N] [--max-running N]
                                              the shop's web API (see README), until SIGTERM;
                                              saga mode runs at most N sagas at once (512),
                                              answering 503 with Retry-After past that
  shop serve --context NAME --redis URL --dir DIR [--prefix P] [--kafka URL [--kafka-partitions N]]
             [--http ADDRESS:PORT (order only)] [--instance NAME (data_platform only)] [--grace SECONDS]
             [--die-before-reply OP] [--max-running N]
                                              run one context (order, product, coupon, point,
                                              payment) or the data_platform in this process,
                                              with its database in DIR, talking only through Redis
                                              (with --kafka kafka://HOST:PORT, the events between
                                              the contexts go over Kafka topics instead; a
                                              second data_platform --instance shares the work;
                                              after SIGTERM it finishes its work for up to
                                              --grace seconds, default 10, then exits 75 and
                                              leaves the rest in its database; for the
                                              process tests, --die-before-reply OP kills it
                                              with SIGKILL once the first command OP ran,
                                              before it answers; the order process runs at
                                              most --max-running sagas at once, 512, and
                                              refuses more as busy before they start)
  shop load --redis URL --dir DIR [--orders N] [--concurrency C] [--products P] [--users U]
            [--stock N] [--seed S] [--timeout SECONDS] [--prefix P]
                                              drive orders through the six serving processes, then
                                              audit their databases (a command refused as busy
                                              is sent again after the wait it was given)
  shop load --mode transactional --dir DIR [--orders N] [--concurrency C] [--products P] [--users U]
            [--stock N] [--seed S]
                                              the same orders (for a seed) on the one-process
                                              transactional shop, databases made in DIR (empty)
)";

// The lines of `usage` for one command: each entry that starts "  shop COMMAND" with the
// lines that continue it; the whole text when no entry matches.
std::string usage_of(const std::string& command) {
    std::string found;
    bool in_entry = false;
    std::string_view text{usage};
    for (std::size_t at = 0; at < text.size();) {
        auto end = text.find('\n', at);
        auto line = text.substr(at, end - at);
        if (line.starts_with("  shop "))
            in_entry = line.substr(7).starts_with(command + " ") || line.substr(7) == command;
        else if (!line.starts_with("   "))
            in_entry = false;
        if (in_entry) found += fmt::format("{}\n", line);
        at = end + 1;
    }
    return found.empty() ? std::string{usage} : "usage:\n" + found;
}

arguments parse(int argc, char** argv) {
    if (argc < 2) throw usage_error("a command is needed");
    arguments a;
    a.command = argv[1];
    for (int i = 2; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--help" || arg == "-h")
            a.help = true;
        else if (arg == "--json")
            a.json = true;
        else if (arg == "--verbose")
            a.verbose = true;
        else if (arg == "--timeline")
            a.timeline = true;
        else if (arg == "--card")
            a.card = true;
        else if (arg == "--mode" || arg == "--format" || arg == "--flow" || arg == "--dir" || arg == "--context" ||
                 arg == "--redis" || arg == "--prefix" || arg == "--orders" || arg == "--concurrency" ||
                 arg == "--products" || arg == "--users" || arg == "--seed" || arg == "--timeout" || arg == "--http" ||
                 arg == "--threads" || arg == "--kafka" || arg == "--kafka-partitions" || arg == "--instance" ||
                 arg == "--grace" || arg == "--die-before-reply" || arg == "--max-running" || arg == "--stock") {
            if (i + 1 >= argc) throw usage_error(arg + " needs a value");
            a.options[arg.substr(2)] = argv[++i];
        } else if (arg.starts_with("--"))
            throw usage_error("unknown option " + arg);
        else if (a.command == "order")
            a.rest.push_back(arg);
        else if (a.name.empty())
            a.name = arg;
        else
            throw usage_error("unexpected argument " + arg);
    }
    return a;
}

std::vector<mode> modes_of(const arguments& a, bool both_by_default) {
    auto it = a.options.find("mode");
    if (it == a.options.end()) {
        if (both_by_default) return {mode::transactional, mode::saga};
        return {mode::transactional};
    }
    if (it->second == "transactional") return {mode::transactional};
    if (it->second == "saga") return {mode::saga};
    throw usage_error("--mode takes transactional or saga, not '" + it->second + "'");
}

std::string option(const arguments& a, const std::string& key, const std::string& fallback,
                   std::initializer_list<const char*> allowed) {
    auto it = a.options.find(key);
    if (it == a.options.end()) return fallback;
    for (auto v : allowed)
        if (it->second == v) return it->second;
    throw usage_error(fmt::format("--{} does not take '{}'", key, it->second));
}

std::string required(const arguments& a, const std::string& key) {
    auto it = a.options.find(key);
    if (it == a.options.end()) throw usage_error(fmt::format("{} needs --{}", a.command, key));
    return it->second;
}

std::uint64_t count_option(const arguments& a, const std::string& key, std::uint64_t fallback) {
    auto it = a.options.find(key);
    if (it == a.options.end()) return fallback;
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), value);
    if (ec != std::errc{} || end != it->second.data() + it->second.size() || value == 0)
        throw usage_error(fmt::format("--{} takes a positive whole number, not '{}'", key, it->second));
    return value;
}

// --http ADDRESS:PORT
std::pair<std::string, unsigned short> http_endpoint(const arguments& a) {
    auto where = a.options.at("http");
    auto colon = where.rfind(':');
    if (colon == std::string::npos) throw usage_error(fmt::format("--http takes ADDRESS:PORT, not '{}'", where));
    auto port = where.substr(colon + 1);
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc{} || end != port.data() + port.size() || value > 65535)
        throw usage_error(fmt::format("--http takes ADDRESS:PORT with a port up to 65535, not '{}'", where));
    return {where.substr(0, colon), static_cast<unsigned short>(value)};
}

void print_json(const scenario_outcome& o) {
    boost::json::object out{{"scenario", o.name},
                            {"mode", to_string(o.mode)},
                            {"as_expected", o.as_expected},
                            {"invariants_broken", boost::json::value_from(o.broken)},
                            {"state", o.state}};
    fmt::print("{}\n", boost::json::serialize(out));
}

} // namespace shop::app
