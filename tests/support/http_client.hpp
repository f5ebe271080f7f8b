#pragma once
// A blocking HTTP/1.1 client for the tests of the shop's web API: one connection per call.

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cstdint>
#include <string>

namespace test_support {

struct http_reply {
    int status = 0;
    std::string body;
};

// `idempotency_key`, when not empty, goes in the Idempotency-Key header.
inline http_reply http_call(unsigned short port, boost::beast::http::verb method, const std::string& target,
                            const std::string& body = {}, std::int64_t user = 0,
                            const std::string& idempotency_key = {}) {
    namespace http = boost::beast::http;
    boost::asio::io_context io;
    boost::beast::tcp_stream stream{io};
    stream.connect(boost::asio::ip::tcp::endpoint{boost::asio::ip::make_address("127.0.0.1"), port});
    http::request<http::string_body> req{method, target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (user) req.set("X-User-Id", std::to_string(user));
    if (!idempotency_key.empty()) req.set("Idempotency-Key", idempotency_key);
    if (!body.empty()) {
        req.set(http::field::content_type, "application/json");
        req.body() = body;
    }
    req.prepare_payload();
    http::write(stream, req);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    return {static_cast<int>(res.result_int()), res.body()};
}

// Raw bytes in, whatever comes back until the server closes the connection.
inline std::string http_raw(unsigned short port, const std::string& bytes) {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket{io};
    socket.connect(boost::asio::ip::tcp::endpoint{boost::asio::ip::make_address("127.0.0.1"), port});
    boost::asio::write(socket, boost::asio::buffer(bytes));
    std::string answer;
    boost::system::error_code ec;
    for (char chunk[4096];;) {
        auto n = socket.read_some(boost::asio::buffer(chunk), ec);
        answer.append(chunk, n);
        if (ec) break;
    }
    return answer;
}

} // namespace test_support
