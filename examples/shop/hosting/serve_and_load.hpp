#pragma once
// The shop as six processes that talk only through Redis: `shop serve` runs one context (or
// the data platform) with its own SQLite database; `shop load` drives orders and payments
// through them and audits every database at the end. Built when choreo::redis is.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace shop::app {

struct serve_options {
    std::string context;          // order, product, coupon, point, payment or data_platform
    std::string redis_url;        // redis://[user:password@]host:port[/db] or unix://path
    std::string directory;        // where its database is: {directory}/{context}.db
    std::string prefix = "shop:"; // before every Redis key, so applications can share one Redis
    // kafka://host:port[,...]: the events between the contexts travel over Kafka topics
    // instead of Redis streams (the saga state, its broadcasts and the commands stay in Redis).
    std::string kafka_url;
    int kafka_partitions = 4; // of each topic this process creates (it may exist already)
    // Tells apart processes of one context: a second instance of the data platform shares its
    // database and its consumer groups with the first, which then split the partitions.
    // The saga contexts run as one process each (each resumes its saga journal alone).
    std::string instance = "1";
    // The order process only: serve the web API (docs/http.md) at this address and port
    // (port 0: any free one, printed), over the six processes.
    std::string http_address;
    unsigned short http_port = 0;
    // After SIGTERM or SIGINT, how long the process may take to finish its work in flight;
    // past it (Redis or Kafka unreachable), or at a second signal, it says what it leaves
    // undone and exits with stopped_short. Its databases hold that work for the next start.
    std::chrono::seconds grace{10};
    // For the process tests: once the first command called this has run (committed), the
    // process kills itself with SIGKILL before it answers, as a crash there would.
    std::string die_before_reply;
    // The order process: the most sagas it runs at once; an order or payment past it is
    // refused as busy, with when to try again (HTTP 503 with Retry-After), before it starts.
    std::size_t max_running = 512;
};

// The exit status of a serving process whose stop was cut short (EX_TEMPFAIL).
inline constexpr int stopped_short = 75;

// Runs the context until SIGINT or SIGTERM; returns the exit status.
int serve(const serve_options& options);

struct load_options {
    std::string redis_url;
    std::string directory; // the serving processes' directory, for the audit at the end
    std::string prefix = "shop:";
    std::size_t orders = 200;
    std::size_t concurrency = 8;
    std::size_t products = 4; // few products, so orders contend for their stock
    std::size_t users = 20;
    std::size_t stock = 0; // of each product; 0: enough for most orders, a few run out
    std::uint64_t seed = 1;
    std::chrono::seconds timeout{120}; // for the whole run; an order still unfinished then fails it
};

// Sets up a catalog, runs the orders, prints progress and a summary, waits for the processes
// to settle and checks every invariant across their databases. 0 when all orders ended and
// every invariant holds.
int load(const load_options& options);

// The same load on the one-process transactional shop, its databases made in
// options.directory (which must be empty); redis_url and prefix are not used. 0 when every
// invariant holds.
int load_in_process(const load_options& options);

} // namespace shop::app
