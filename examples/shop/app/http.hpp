#pragma once
// `shop serve --http ADDRESS:PORT`: the one-process shop behind the seed's web API, on
// Boost.Beast with JSON bodies (Boost.JSON). A user is whoever the X-User-Id header says
// (there is no authentication); a user never sees or spends another user's orders,
// coupons or points.

#include "shop_api.hpp"

#include <cstddef>
#include <string>

namespace shop::app {

struct http_options {
    std::string address = "127.0.0.1";
    unsigned short port = 8080;       // 0: any free port; the one taken is printed
    std::string directory;            // the SQLite files; kept across restarts
    app::mode mode = mode::transactional;
    std::size_t threads = 4;          // serving requests; each runs its command to the end
    std::size_t body_limit = 64 * 1024;
};

// Serves until SIGTERM or SIGINT, then stops accepting, finishes the requests in flight,
// lets the sagas in flight end and the outbox deliver, and returns 0.
int serve_http(const http_options& options);

} // namespace shop::app
