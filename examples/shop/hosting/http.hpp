#pragma once
// `shop serve --http ADDRESS:PORT`: the one-process shop behind the seed's web API, on
// Boost.Beast with JSON bodies (Boost.JSON). A user is whoever the X-User-Id header says
// (there is no authentication); a user never sees or spends another user's orders,
// coupons or points.

#include "../app/storefront.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace shop::app {

struct http_options {
    std::string address = "127.0.0.1";
    unsigned short port = 8080; // 0: any free port; the one taken is printed
    std::string directory;      // the one-process shop's SQLite files; kept across restarts
    app::mode mode = mode::transactional;
    std::size_t threads = 4; // serving requests; each runs its command to the end
    std::size_t body_limit = 64 * 1024;
    std::size_t max_running = 512; // saga mode: sagas at once; past it, 503 with Retry-After
};

// The API over any shop: the one-process shop, or the six processes' (six_processes) from
// the order process. Listens when constructed (throws if it cannot), serves from start().
class http_service {
public:
    http_service(storefront& shop, const http_options& options);
    ~http_service(); // stop()
    http_service(const http_service&) = delete;
    http_service& operator=(const http_service&) = delete;

    void start();
    // Stops accepting, closes idle connections, answers the requests being handled (with
    // Connection: close), and returns once every connection is closed. Idempotent.
    void stop();

    [[nodiscard]] std::string url() const; // http://address:port, the port actually taken
    [[nodiscard]] std::uint64_t requests() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// The one-process shop behind the API until SIGTERM or SIGINT; then it stops accepting,
// finishes the requests in flight, lets the sagas in flight end and the outbox deliver, and
// returns 0.
int serve_http(const http_options& options);

} // namespace shop::app
