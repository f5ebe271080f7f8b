// The shop's web API served: a Beast server that shuts down gracefully, over the routes of
// http_routes.cpp.

#include "http.hpp"
#include "../app/one_process.hpp"
#include "http_routes.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

#include <fmt/format.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <limits>
#include <memory>
#include <mutex>
#include <pthread.h>
#include <signal.h>
#include <thread>
#include <vector>

#include <choreo/sqlite/database.hpp>

#include "../kernel/errors.hpp"

namespace shop::app {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;
using request = http_request;
using response = http_response;

class server;

// One connection: requests read one at a time and answered in order (keep-alive), on the
// connection's own strand.
class session : public std::enable_shared_from_this<session> {
public:
    session(tcp::socket socket, server& owner);
    // The accept handler runs on the acceptor's executor, not this connection's strand, and
    // stop() may already be closing the socket on the strand: the first read starts there too.
    void start() {
        net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
    }
    // Closes the connection if it is waiting for a request; one being handled is answered
    // first, and the connection closes after the answer.
    void stop() {
        net::post(stream_.get_executor(), [self = shared_from_this()] {
            if (!self->busy_) self->close();
        });
    }

private:
    void read();
    void on_read(beast::error_code ec);
    void write(response res);
    void close() {
        beast::error_code ignored;
        stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream_.socket().close(ignored);
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    server& server_;
    bool busy_ = false;
};

class server {
public:
    server(net::io_context& io, storefront& s, const http_options& o) : io_(io), acceptor_(io), api_(s), options_(o) {
        tcp::endpoint endpoint{net::ip::make_address(o.address), o.port};
        acceptor_.open(endpoint.protocol());
        acceptor_.set_option(net::socket_base::reuse_address(true));
        acceptor_.bind(endpoint);
        acceptor_.listen(net::socket_base::max_listen_connections);
        endpoint_ = acceptor_.local_endpoint();
    }

    [[nodiscard]] tcp::endpoint endpoint() const { return endpoint_; }
    void accept() {
        acceptor_.async_accept(net::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
            if (ec) return; // closed: stopping
            auto s = std::make_shared<session>(std::move(socket), *this);
            {
                std::lock_guard lock{mutex_};
                std::erase_if(sessions_, [](const std::weak_ptr<session>& w) { return w.expired(); });
                sessions_.push_back(s);
            }
            s->start();
            accept();
        });
    }
    void stop() {
        stopping_ = true;
        net::post(acceptor_.get_executor(), [this] {
            beast::error_code ignored;
            acceptor_.close(ignored);
        });
        std::lock_guard lock{mutex_};
        for (auto& w : sessions_)
            if (auto s = w.lock()) s->stop();
    }

    [[nodiscard]] bool stopping() const noexcept { return stopping_; }
    [[nodiscard]] const http_options& options() const noexcept { return options_; }
    response handle(const request& req) {
        ++requests_;
        return api_.handle(req);
    }
    [[nodiscard]] std::uint64_t requests() const noexcept { return requests_; }

private:
    net::io_context& io_;
    tcp::acceptor acceptor_;
    tcp::endpoint endpoint_;
    http_routes api_;
    http_options options_;
    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> requests_{0};
    std::mutex mutex_;
    std::vector<std::weak_ptr<session>> sessions_;
};

session::session(tcp::socket socket, server& owner) : stream_(std::move(socket)), server_(owner) {}

void session::read() {
    if (server_.stopping()) return close();
    parser_.emplace();
    parser_->body_limit(server_.options().body_limit);
    parser_->header_limit(16 * 1024);
    stream_.expires_after(std::chrono::seconds{30}); // an idle or stalled client is let go
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
}

void session::on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::operation_aborted || ec == beast::error::timeout ||
        ec == net::error::connection_reset || ec == net::error::bad_descriptor)
        return close();
    busy_ = true;
    if (ec == http::error::body_limit)
        return write(http_error(http::status::payload_too_large, "body_too_large",
                                fmt::format("bodies are limited to {} bytes", server_.options().body_limit), 11));
    if (ec == http::error::header_limit)
        return write(http_error(http::status::request_header_fields_too_large, "headers_too_large",
                                "the headers are too large", 11));
    if (ec) return write(http_error(http::status::bad_request, "malformed_request", ec.message(), 11));
    auto req = parser_->release();
    auto res = server_.handle(req);
    res.keep_alive(req.keep_alive() && !server_.stopping());
    write(std::move(res));
}

void session::write(response res) {
    // After a malformed request the stream's position is unknown: answer, then close.
    if (!parser_ || !parser_->is_done()) res.keep_alive(false);
    auto shared = std::make_shared<response>(std::move(res));
    http::async_write(stream_, *shared, [self = shared_from_this(), shared](beast::error_code ec, std::size_t) {
        self->busy_ = false;
        if (ec || !shared->keep_alive()) return self->close();
        self->read();
    });
}

} // namespace

struct http_service::impl {
    impl(storefront& s, const http_options& o) : io(static_cast<int>(o.threads)), srv(io, s, o) {}
    net::io_context io;
    server srv;
    std::vector<std::thread> threads;
    std::mutex stop_mutex;
};

http_service::http_service(storefront& shop, const http_options& options) {
    if (options.threads == 0) throw std::invalid_argument("--threads must be at least 1");
    impl_ = std::make_unique<impl>(shop, options);
}

http_service::~http_service() { stop(); }

void http_service::start() {
    impl_->srv.accept();
    for (std::size_t i = 0; i < impl_->srv.options().threads; ++i)
        impl_->threads.emplace_back([this] { impl_->io.run(); });
}

void http_service::stop() {
    std::lock_guard lock{impl_->stop_mutex};
    if (impl_->threads.empty()) return;
    impl_->srv.stop();
    // The io_context runs out of work once the acceptor and every connection are closed.
    for (auto& t : impl_->threads) t.join();
    impl_->threads.clear();
}

std::string http_service::url() const {
    auto where = impl_->srv.endpoint();
    return fmt::format("http://{}:{}", where.address().to_string(), where.port());
}

std::uint64_t http_service::requests() const noexcept { return impl_->srv.requests(); }

int serve_http(const http_options& o) {
    if (o.directory.empty()) throw std::invalid_argument("serve --http needs --dir, where the databases are kept");
    // SIGINT and SIGTERM are blocked before any thread starts (each inherits the mask) and
    // taken below by sigwait: no handler, and no loop looking at a flag.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    one_process s{config{.mode = o.mode,
                         .directory = o.directory,
                         .record_timeline = false,
                         .reopen = true,
                         .start_relay = true,
                         .max_running = o.max_running}};
    http_service service{s, o};
    service.start();
    fmt::print("shop: listening on {} ({} mode, databases in {})\n", service.url(), to_string(o.mode), o.directory);
    std::fflush(stdout);
    for (int signal = 0; sigwait(&stop_signals, &signal) != 0;) {}
    service.stop();
    fmt::print("shop: stopping after {} requests; letting sagas in flight end and the outbox deliver\n",
               service.requests());
    std::fflush(stdout);
    s.settle();
    fmt::print("shop: stopped\n");
    return 0;
}

} // namespace shop::app
