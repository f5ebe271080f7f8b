#pragma once
// The state behind redis::connection: the socket, the queue of commands, the handshake,
// reconnection with backoff and the deadlines, all on one strand. Not part of the API.

#include <choreo/redis/detail/protocol.hpp>
#include <choreo/redis/errors.hpp>
#include <choreo/redis/options.hpp>
#include <choreo/redis/reply.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace choreo::redis::detail {

using clock = std::chrono::steady_clock;
using socket_type = boost::asio::generic::stream_protocol::socket;

struct pending {
    std::string bytes;
    completion done;
    clock::time_point since; // queued (waiting) or sent (in flight)
    bool handshake = false;
};

class connection_state : public std::enable_shared_from_this<connection_state> {
public:
    connection_state(boost::asio::any_io_executor executor, connection_options options)
        : strand_(boost::asio::make_strand(executor)), options_(std::move(options)), socket_(strand_),
          resolver_(strand_), timer_(strand_), retry_timer_(strand_), delay_(options_.reconnect_initial_delay) {}

    void start() {
        boost::asio::post(strand_, [self = shared_from_this()] { self->connect(); });
    }

    void submit(std::string bytes, completion done) {
        boost::asio::post(strand_,
                          [self = shared_from_this(), bytes = std::move(bytes), done = std::move(done)]() mutable {
                              self->enqueue(std::move(bytes), std::move(done));
                          });
    }

    // Several commands queued together: nothing from another thread comes between them.
    void submit_all(std::vector<std::pair<std::string, completion>> commands) {
        boost::asio::post(strand_, [self = shared_from_this(), commands = std::move(commands)]() mutable {
            for (auto& [bytes, done] : commands) self->enqueue(std::move(bytes), std::move(done));
        });
    }

    void close() {
        boost::asio::post(strand_, [self = shared_from_this()] { self->shut(); });
    }

    [[nodiscard]] bool in_strand() const noexcept { return strand_.running_in_this_thread(); }
    [[nodiscard]] bool connected() const noexcept { return ready_.load(std::memory_order_acquire); }
    [[nodiscard]] std::uint64_t connections() const noexcept { return connections_.load(std::memory_order_relaxed); }
    [[nodiscard]] const connection_options& options() const noexcept { return options_; }

private:
    enum class phase { connecting, handshaking, ready, waiting_to_retry, failed, closed };

    static std::exception_ptr failure(errc code, const std::string& message) {
        return std::make_exception_ptr(redis_error(code, message));
    }

    void enqueue(std::string bytes, completion done) {
        if (phase_ == phase::closed) return done(failure(errc::closed, "the Redis connection was closed"), {});
        if (phase_ == phase::failed) return done(permanent_, {});
        if (waiting_.size() + in_flight_.size() >= options_.queue_limit)
            return done(failure(errc::overloaded, "more than " + std::to_string(options_.queue_limit) +
                                                      " Redis commands waiting; refused"),
                        {});
        waiting_.push_back({std::move(bytes), std::move(done), clock::now()});
        write_more();
        watch();
    }

    // --- connecting -------------------------------------------------------------------

    void connect() {
        if (phase_ == phase::closed || phase_ == phase::failed) return;
        phase_ = phase::connecting;
        attempt_deadline_ = clock::now() + options_.connect_timeout;
        ++attempt_;
        watch();
        auto self = shared_from_this();
        auto attempt = attempt_;
        if (!options_.unix_socket.empty()) {
            std::vector<boost::asio::generic::stream_protocol::endpoint> endpoints{
                boost::asio::local::stream_protocol::endpoint{options_.unix_socket}};
            return connect_to(std::move(endpoints), attempt);
        }
        resolver_.async_resolve(
            options_.host, std::to_string(options_.port),
            [self, attempt](boost::system::error_code ec, boost::asio::ip::tcp::resolver::results_type found) {
                if (attempt != self->attempt_ || self->phase_ != phase::connecting) return;
                if (ec) return self->attempt_failed("cannot resolve " + self->options_.host + ": " + ec.message());
                std::vector<boost::asio::generic::stream_protocol::endpoint> endpoints;
                for (auto& e : found) endpoints.emplace_back(e.endpoint());
                self->connect_to(std::move(endpoints), attempt);
            });
    }

    void connect_to(std::vector<boost::asio::generic::stream_protocol::endpoint> endpoints, std::uint64_t attempt) {
        auto self = shared_from_this();
        boost::asio::async_connect(socket_, endpoints, [self, attempt](boost::system::error_code ec, const auto&) {
            if (attempt != self->attempt_ || self->phase_ != phase::connecting) return;
            if (ec) return self->attempt_failed("cannot connect to " + self->options_.where() + ": " + ec.message());
            if (self->options_.unix_socket.empty()) {
                boost::system::error_code ignored;
                self->socket_.set_option(boost::asio::ip::tcp::no_delay{true}, ignored);
            }
            self->handshake();
        });
    }

    // AUTH, SELECT and CLIENT SETNAME go first, alone: user commands wait until they succeed,
    // so a wrong password fails them clearly instead of each getting NOAUTH.
    void handshake() {
        phase_ = phase::handshaking;
        reader_ = reply_reader{};
        std::vector<std::pair<std::string, std::string>> steps; // (bytes, what it is)
        if (!options_.password.empty()) {
            if (options_.username.empty())
                steps.emplace_back(format_command({"AUTH", options_.password}), "AUTH");
            else
                steps.emplace_back(format_command({"AUTH", options_.username, options_.password}), "AUTH");
        }
        if (options_.database != 0) {
            auto db = std::to_string(options_.database);
            steps.emplace_back(format_command({"SELECT", db}), "SELECT " + db);
        }
        if (!options_.client_name.empty())
            steps.emplace_back(format_command({"CLIENT", "SETNAME", options_.client_name}), "CLIENT SETNAME");
        steps.emplace_back(format_command({"PING"}), "PING");
        handshake_left_ = steps.size();
        std::string bytes;
        for (auto& [command, what] : steps) {
            bytes += command;
            in_flight_.push_back({{},
                                  [self = shared_from_this(), what = what](std::exception_ptr error, reply r) {
                                      self->handshake_reply(what, error, std::move(r));
                                  },
                                  clock::now(),
                                  true});
        }
        write_bytes(std::move(bytes));
        read();
        watch();
    }

    void handshake_reply(const std::string& what, std::exception_ptr error, reply r) {
        if (error) return; // the connection failed; attempt_failed handles it
        if (r.is_error()) {
            bool auth = what == "AUTH" || r.text.starts_with("NOAUTH") || r.text.starts_with("WRONGPASS");
            auto message = "Redis at " + options_.where() + " refused " + what + ": " + r.text;
            // A server still loading its data after a restart (or busy with a script) will
            // answer in a moment: try again, as for a server not reachable yet.
            bool transient = r.text.starts_with("LOADING") || r.text.starts_with("BUSY") ||
                             r.text.starts_with("TRYAGAIN") || r.text.starts_with("MASTERDOWN");
            if (transient && !auth) return attempt_failed(message);
            return fail_permanently(auth ? errc::auth_failed : errc::server_reply, message);
        }
        if (--handshake_left_ > 0) return;
        phase_ = phase::ready;
        ready_.store(true, std::memory_order_release);
        connections_.fetch_add(1, std::memory_order_relaxed);
        delay_ = options_.reconnect_initial_delay;
        last_error_.clear();
        write_more();
        watch();
    }

    // --- reading and writing ----------------------------------------------------------------

    void write_more() {
        if (phase_ != phase::ready || writing_ || waiting_.empty()) return;
        std::string bytes;
        auto now = clock::now();
        while (!waiting_.empty() && bytes.size() < (1u << 20)) {
            auto& p = waiting_.front();
            bytes += p.bytes;
            p.bytes.clear();
            p.since = now;
            in_flight_.push_back(std::move(p));
            waiting_.pop_front();
        }
        write_bytes(std::move(bytes));
    }

    void write_bytes(std::string bytes) {
        writing_ = true;
        write_buffer_ = std::move(bytes);
        auto self = shared_from_this();
        auto generation = generation_;
        boost::asio::async_write(
            socket_, boost::asio::buffer(write_buffer_), [self, generation](boost::system::error_code ec, std::size_t) {
                if (generation != self->generation_) return;
                self->writing_ = false;
                if (ec)
                    return self->connection_failed(errc::connection_lost, "writing to Redis failed: " + ec.message());
                self->write_more();
            });
    }

    void read() {
        auto self = shared_from_this();
        auto generation = generation_;
        socket_.async_read_some(
            boost::asio::buffer(read_buffer_), [self, generation](boost::system::error_code ec, std::size_t n) {
                if (generation != self->generation_) return;
                if (ec) {
                    auto what = ec == boost::asio::error::eof ? std::string{"Redis closed the connection"}
                                                              : "reading from Redis failed: " + ec.message();
                    return self->connection_failed(errc::connection_lost, what);
                }
                try {
                    self->reader_.feed(self->read_buffer_.data(), n);
                    while (auto r = self->reader_.next()) {
                        if (self->in_flight_.empty())
                            return self->connection_failed(errc::protocol, "Redis sent a reply nobody asked for");
                        auto p = std::move(self->in_flight_.front());
                        self->in_flight_.pop_front();
                        p.done(nullptr, std::move(*r));
                        if (generation != self->generation_) return; // a handshake reply may have ended the connection
                    }
                } catch (const redis_error& e) {
                    return self->connection_failed(e.code(), e.what());
                }
                self->watch();
                self->read();
            });
    }

    // --- failures, retries, deadlines ----------------------------------------------------

    void attempt_failed(const std::string& why) { connection_failed(errc::unreachable, why); }

    // The connection is unusable: what was sent fails (it may have run), what waits stays
    // queued for the next connection.
    void connection_failed(errc code, const std::string& why) {
        if (phase_ == phase::closed || phase_ == phase::failed) return;
        drop_socket();
        last_error_ = why;
        auto sent = std::move(in_flight_);
        in_flight_.clear();
        for (auto& p : sent)
            if (!p.handshake) p.done(failure(code == errc::unreachable ? errc::connection_lost : code, why), {});
        phase_ = phase::waiting_to_retry;
        auto self = shared_from_this();
        retry_timer_.expires_after(delay_);
        delay_ = std::min(delay_ * 2, options_.reconnect_max_delay);
        retry_timer_.async_wait([self](boost::system::error_code ec) {
            if (!ec && self->phase_ == phase::waiting_to_retry) self->connect();
        });
        watch();
    }

    void fail_permanently(errc code, const std::string& why) {
        permanent_ = failure(code, why);
        phase_ = phase::failed;
        drop_socket();
        fail_all(permanent_);
    }

    void shut() {
        if (phase_ == phase::closed) return;
        phase_ = phase::closed;
        drop_socket();
        retry_timer_.cancel();
        timer_.cancel();
        fail_all(failure(errc::closed, "the Redis connection was closed"));
    }

    void drop_socket() {
        ++generation_;
        ready_.store(false, std::memory_order_release);
        writing_ = false;
        boost::system::error_code ignored;
        resolver_.cancel();
        socket_.close(ignored);
    }

    void fail_all(const std::exception_ptr& error) {
        auto sent = std::move(in_flight_);
        auto queued = std::move(waiting_);
        in_flight_.clear();
        waiting_.clear();
        for (auto& p : sent)
            if (!p.handshake) p.done(error, {});
        for (auto& p : queued) p.done(error, {});
    }

    // One timer for every deadline: the connection attempt, the oldest command sent, the
    // oldest command waiting for a connection.
    void watch() {
        if (phase_ == phase::closed || phase_ == phase::failed) return;
        auto deadline = clock::time_point::max();
        if (phase_ == phase::connecting) deadline = attempt_deadline_;
        if (phase_ == phase::handshaking) deadline = attempt_deadline_;
        if (phase_ == phase::ready && !in_flight_.empty())
            deadline = in_flight_.front().since + options_.command_timeout;
        if (phase_ != phase::ready && !waiting_.empty())
            deadline = std::min(deadline, waiting_.front().since + options_.wait_for_server);
        if (deadline == armed_) return;
        armed_ = deadline;
        if (deadline == clock::time_point::max()) {
            timer_.cancel();
            return;
        }
        timer_.expires_at(deadline);
        timer_.async_wait([self = shared_from_this(), deadline](boost::system::error_code ec) {
            if (ec || self->armed_ != deadline) return;
            self->armed_ = clock::time_point::max();
            self->deadline_passed();
        });
    }

    void deadline_passed() {
        auto now = clock::now();
        if ((phase_ == phase::connecting || phase_ == phase::handshaking) && now >= attempt_deadline_) {
            connection_failed(errc::unreachable, "connecting to Redis at " + options_.where() + " took longer than " +
                                                     std::to_string(options_.connect_timeout.count()) + " ms");
        } else if (phase_ == phase::ready && !in_flight_.empty() &&
                   now >= in_flight_.front().since + options_.command_timeout) {
            // A reply cannot be skipped in a pipeline: the connection is dropped and rebuilt.
            auto late = std::move(in_flight_.front());
            in_flight_.pop_front();
            late.done(failure(errc::timeout, "no reply from Redis at " + options_.where() + " within " +
                                                 std::to_string(options_.command_timeout.count()) + " ms"),
                      {});
            connection_failed(errc::connection_lost, "the connection was reset after a command timed out");
        }
        if (phase_ != phase::ready) {
            while (!waiting_.empty() && now >= waiting_.front().since + options_.wait_for_server) {
                auto p = std::move(waiting_.front());
                waiting_.pop_front();
                p.done(failure(errc::unreachable, "Redis at " + options_.where() + " was unreachable for " +
                                                      std::to_string(options_.wait_for_server.count()) + " ms: " +
                                                      (last_error_.empty() ? "still connecting" : last_error_)),
                       {});
            }
        }
        watch();
    }

    boost::asio::strand<boost::asio::any_io_executor> strand_;
    connection_options options_;
    socket_type socket_;
    boost::asio::ip::tcp::resolver resolver_;
    boost::asio::steady_timer timer_;
    boost::asio::steady_timer retry_timer_;
    std::chrono::milliseconds delay_;
    phase phase_ = phase::connecting;
    std::uint64_t attempt_ = 0;
    std::uint64_t generation_ = 0;
    clock::time_point attempt_deadline_{};
    clock::time_point armed_ = clock::time_point::max();
    std::size_t handshake_left_ = 0;
    bool writing_ = false;
    std::string write_buffer_;
    std::array<char, 64 * 1024> read_buffer_{};
    reply_reader reader_;
    std::deque<pending> waiting_;
    std::deque<pending> in_flight_;
    std::string last_error_;
    std::exception_ptr permanent_;
    std::atomic<bool> ready_{false};
    std::atomic<std::uint64_t> connections_{0};
};

} // namespace choreo::redis::detail
