#pragma once
/// @file
/// @brief A pipelining Redis connection on Boost.Asio: hiredis for the protocol, Asio for
/// the socket, the timers and the reconnection.

#include <choreo/redis/detail/connection_state.hpp>
#include <choreo/redis/detail/direct_lanes.hpp>
#include <choreo/redis/detail/protocol.hpp>
#include <choreo/redis/errors.hpp>
#include <choreo/redis/options.hpp>
#include <choreo/redis/reply.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
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

namespace choreo::redis {

/// @brief One connection to Redis, shared by any number of threads. Commands are queued in
/// the order they are submitted, written to the socket in batches (pipelined) and answered
/// in that order. It connects at construction, authenticates and selects the database
/// before any command goes out, and reconnects with backoff when the connection drops:
/// commands submitted meanwhile wait (up to `wait_for_server`) and then go out in order.
///
/// Blocking calls (command(), pipeline()) take a shorter way when they can: while the
/// connection is up, and the calling thread has no asynchronous command of it outstanding,
/// the caller writes the command on a socket of its own and reads the reply itself (one
/// socket per thread calling at once, kept for the next call), instead of handing it to
/// the connection's thread and waiting to be woken. Each thread's commands keep their
/// order either way; commands of different threads were never ordered. Turn it off with
/// connection_options::direct_blocking_calls (decision 0040).
///
/// Thread safety: every member may be called from any thread at once. Completions run on
/// the connection's strand of the given executor: keep them short and never block in them.
class connection {
public:
    /// @brief Connects with `options`, running on `executor` (an io_context's, a pool's).
    connection(boost::asio::any_io_executor executor, connection_options options)
        : state_(std::make_shared<detail::connection_state>(std::move(executor), options)), lanes_(std::move(options)) {
        state_->start();
    }
    /// @brief Connects to `url` (see parse_url()); throws redis_error (bad_url) for a bad one.
    connection(boost::asio::any_io_executor executor, std::string_view url)
        : connection(std::move(executor), parse_url(url)) {}
    /// @brief Closes: commands not answered yet fail with errc::closed.
    ~connection() { close(); }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// @brief Sends one command; `done(error, reply)` runs on the connection's strand.
    /// Arguments are binary safe.
    void async_command(const std::vector<std::string_view>& args, completion done) {
        state_->submit(detail::format_command(args), tracked(std::move(done)));
    }

    /// @brief Sends several commands back to back; `done(error, replies)` runs once every
    /// reply is in (error: the first command's failure, if any).
    void async_pipeline(const std::vector<std::vector<std::string_view>>& commands,
                        std::function<void(std::exception_ptr, std::vector<reply>)> done) {
        if (commands.empty()) throw usage_error("an empty Redis pipeline");
        struct batch {
            std::vector<reply> replies;
            std::exception_ptr error;
            std::size_t left;
            std::function<void(std::exception_ptr, std::vector<reply>)> done;
        };
        submit_pipeline(formatted(commands), std::move(done));
    }

    /// @brief Sends one command and waits for its reply. Throws redis_error on failure,
    /// including an error reply (errc::server_reply). Must not be called from a completion.
    reply command(const std::vector<std::string_view>& args) {
        check_not_in_strand();
        auto bytes = detail::format_command(args);
        if (auto direct = try_direct(bytes, 1)) {
            (*direct)[0].value();
            return std::move((*direct)[0]);
        }
        std::promise<outcome<reply>> promise;
        auto future = promise.get_future();
        state_->submit(std::move(bytes), tracked(completion{[&promise](std::exception_ptr error, reply r) {
                           promise.set_value(settle(error, std::move(r)));
                       }}));
        auto r = future.get().take();
        r.value();
        return r;
    }

    /// @brief As command(), for a pipeline; error replies are returned, not thrown.
    std::vector<reply> pipeline(const std::vector<std::vector<std::string_view>>& commands) {
        check_not_in_strand();
        if (commands.empty()) throw usage_error("an empty Redis pipeline");
        auto each = formatted(commands);
        if (auto direct = try_direct(joined(each), commands.size())) return std::move(*direct);
        std::promise<outcome<std::vector<reply>>> promise;
        auto future = promise.get_future();
        submit_pipeline(std::move(each), [&promise](std::exception_ptr error, std::vector<reply> replies) {
            promise.set_value(settle(error, std::move(replies)));
        });
        return future.get().take();
    }

    /// @brief Closes now: commands not answered yet fail with errc::closed, and so does
    /// anything submitted later.
    void close() {
        lanes_.close();
        state_->close();
    }

    /// @brief True while a connection is up and authenticated.
    [[nodiscard]] bool connected() const noexcept { return state_->connected(); }
    /// @brief How many times a connection was established (1 after the first; more after
    /// reconnects), the sockets of blocking calls included.
    [[nodiscard]] std::uint64_t connections() const noexcept { return state_->connections() + lanes_.opened(); }
    /// @brief How many of those were sockets of blocking calls (see the class's note).
    [[nodiscard]] std::uint64_t direct_sockets() const noexcept { return lanes_.opened(); }
    /// @brief The options it was made with.
    [[nodiscard]] const connection_options& options() const noexcept { return state_->options(); }

private:
    // What a blocking call hands from the connection's thread to the caller's: the value, or
    // the error as a code and a message, so the caller throws an exception of its own rather
    // than share one object between threads.
    template <class T>
    struct outcome {
        std::optional<T> value;
        errc code = errc::protocol;
        std::string message;
        T take() {
            if (!value) throw redis_error(code, message);
            return std::move(*value);
        }
    };

    template <class T>
    static outcome<T> settle(const std::exception_ptr& error, T value) {
        outcome<T> out;
        if (!error) {
            out.value = std::move(value);
            return out;
        }
        try {
            std::rethrow_exception(error);
        } catch (const redis_error& e) {
            out.code = e.code();
            out.message = e.what();
        } catch (const std::exception& e) {
            out.message = e.what();
        } catch (...) {
            out.message = "an unknown failure in the Redis connection";
        }
        return out;
    }

    static std::vector<std::string> formatted(const std::vector<std::vector<std::string_view>>& commands) {
        std::vector<std::string> each;
        each.reserve(commands.size());
        for (auto& c : commands) each.push_back(detail::format_command(c));
        return each;
    }
    static std::string joined(const std::vector<std::string>& each) {
        std::string bytes;
        for (auto& b : each) bytes += b;
        return bytes;
    }

    // Commands already formatted, through the strand; `done` once every reply is in.
    void submit_pipeline(std::vector<std::string> each,
                         std::function<void(std::exception_ptr, std::vector<reply>)> done) {
        struct batch {
            std::vector<reply> replies;
            std::exception_ptr error;
            std::size_t left;
            std::function<void(std::exception_ptr, std::vector<reply>)> done;
        };
        auto shared = std::make_shared<batch>(
            batch{std::vector<reply>(each.size()), nullptr, each.size(), tracked(std::move(done))});
        std::vector<std::pair<std::string, completion>> queued;
        queued.reserve(each.size());
        for (std::size_t i = 0; i < each.size(); ++i)
            queued.emplace_back(std::move(each[i]), [shared, i](std::exception_ptr error, reply r) {
                if (error && !shared->error) shared->error = error;
                shared->replies[i] = std::move(r);
                if (--shared->left == 0) shared->done(shared->error, std::move(shared->replies));
            });
        state_->submit_all(std::move(queued));
    }

    // A blocking call on a socket of the caller's own (see the class's note), or nothing
    // when it goes through the strand.
    std::optional<std::vector<reply>> try_direct(std::string_view bytes, std::size_t count) {
        if (!state_->options().direct_blocking_calls || !state_->connected() || slots_->busy()) return std::nullopt;
        auto socket = lanes_.take();
        if (!socket) return std::nullopt;
        try {
            auto replies = socket->exchange(bytes, count);
            lanes_.give_back(std::move(socket), true);
            return replies;
        } catch (const redis_error&) {
            lanes_.give_back(std::move(socket), false);
            if (lanes_.closed()) throw detail::direct_lanes::closed_error();
            throw;
        }
    }

    // Counts an asynchronous command of this thread until its completion runs.
    template <class F>
    F tracked(F done) {
        return [slots = slots_, slot = slots_->enter(), done = std::move(done)](std::exception_ptr error,
                                                                                auto answer) mutable {
            slots->leave(slot);
            done(std::move(error), std::move(answer));
        };
    }

    void check_not_in_strand() const {
        if (state_->in_strand())
            throw usage_error("a blocking Redis call from the connection's own completion would wait for ever; "
                              "use async_command there");
    }

    std::shared_ptr<detail::connection_state> state_;
    detail::direct_lanes lanes_;
    std::shared_ptr<detail::async_slots> slots_ = std::make_shared<detail::async_slots>();
};

} // namespace choreo::redis
