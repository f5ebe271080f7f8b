#pragma once
// The web API's routes (docs/http.md): each request to the storefront's operation, its JSON
// in and out, and every failure to a status with a stable code. hosting/http.cpp serves them.

#include "../app/storefront.hpp"

#include <boost/beast/http.hpp>

#include <memory>
#include <string>

namespace shop::app {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;
using http_response = boost::beast::http::response<boost::beast::http::string_body>;

// A refusal before any route (a body too large, a malformed request), in the API's shape.
[[nodiscard]] http_response http_error(boost::beast::http::status status, std::string code, std::string message,
                                       unsigned version);

class http_routes {
public:
    explicit http_routes(storefront& s);
    ~http_routes();
    http_routes(const http_routes&) = delete;
    http_routes& operator=(const http_routes&) = delete;

    // Never throws: every failure becomes an error response.
    [[nodiscard]] http_response handle(const http_request& req);

private:
    class api;
    std::unique_ptr<api> api_;
};

} // namespace shop::app
