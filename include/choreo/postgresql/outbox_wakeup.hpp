#pragma once
/// @file
/// @brief Wakes a relay when another process commits outbox rows, through PostgreSQL's
/// LISTEN/NOTIFY: no polling on the path of an event.

#include <libpq-fe.h>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include <choreo/core/errors.hpp>
#include <choreo/postgresql/errors.hpp>

namespace choreo::postgresql {

/// @brief Listens on a connection of its own for the notification choreo_outbox's trigger
/// sends when a transaction commits rows no relay claimed at append (another process's
/// writes, or a process without a running relay), and calls `wake` for them: give it the
/// relay's `poke()`.
///
/// The rows a relay's own process commits reach it from memory (durable::claims_on_append)
/// and send no notification; the relay's poll interval then only picks up retries, and may
/// be long. Notifications that arrive together wake once. When the connection is lost, it
/// connects again (waiting 100 ms, doubling to 5 s, between attempts) and wakes once after
/// listening again, since rows may have been committed meanwhile. The channel is the
/// outbox table's schema's: `schema` is the one the outbox store's connection uses (empty:
/// this connection's current schema). `wake` runs on the listener's thread.
class outbox_wakeup {
public:
    /// @brief Connects with `conninfo` and listens; a postgresql_error when it cannot.
    outbox_wakeup(std::string conninfo, std::function<void()> wake, std::string schema = {})
        : conninfo_(std::move(conninfo)), wake_(std::move(wake)), schema_(std::move(schema)) {
        if (!wake_) throw usage_error("outbox_wakeup needs a function to call (the relay's poke)");
        stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (stop_fd_ < 0) throw postgresql_error(failure::other, {}, "eventfd failed");
        std::string why;
        if (!listen(why)) {
            ::close(stop_fd_);
            throw postgresql_error(failure::connection_lost, {}, "outbox_wakeup cannot listen: " + why);
        }
        thread_ = std::thread{[this] { run(); }};
    }
    ~outbox_wakeup() {
        std::uint64_t one = 1;
        (void)!::write(stop_fd_, &one, sizeof one);
        thread_.join();
        ::close(stop_fd_);
    }
    outbox_wakeup(const outbox_wakeup&) = delete;
    outbox_wakeup& operator=(const outbox_wakeup&) = delete;

    /// @brief The channel it listens on ("choreo_outbox:" and the schema).
    [[nodiscard]] const std::string& channel() const noexcept { return channel_; }
    /// @brief Notifications received (several arriving together wake once).
    [[nodiscard]] std::uint64_t notifications() const noexcept { return notifications_.load(); }
    /// @brief Times it called `wake`.
    [[nodiscard]] std::uint64_t wakes() const noexcept { return wakes_.load(); }
    /// @brief Times `wake` threw (it should not: the relay's poke does not); each is counted
    /// here and the listener goes on.
    [[nodiscard]] std::uint64_t wake_failures() const noexcept { return wake_failures_.load(); }
    /// @brief Times it connected again after the connection was lost.
    [[nodiscard]] std::uint64_t reconnections() const noexcept { return reconnections_.load(); }

private:
    struct closer {
        void operator()(PGconn* c) const noexcept { PQfinish(c); }
    };

    // Connects (again) and runs LISTEN; false, with the reason, when it could not.
    bool listen(std::string& why) {
        connection_.reset(PQconnectdb(conninfo_.c_str()));
        if (!connection_ || PQstatus(connection_.get()) != CONNECTION_OK) {
            why = connection_ ? PQerrorMessage(connection_.get()) : "out of memory";
            return false;
        }
        if (channel_.empty()) {
            std::string schema = schema_;
            if (schema.empty()) {
                auto* r = PQexec(connection_.get(), "SELECT current_schema()");
                if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) schema = PQgetvalue(r, 0, 0);
                PQclear(r);
            }
            channel_ = "choreo_outbox:" + schema;
        }
        char* quoted = PQescapeIdentifier(connection_.get(), channel_.c_str(), channel_.size());
        if (!quoted) {
            why = PQerrorMessage(connection_.get());
            return false;
        }
        auto* r = PQexec(connection_.get(), ("LISTEN " + std::string{quoted}).c_str());
        PQfreemem(quoted);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok) why = PQresultErrorMessage(r);
        PQclear(r);
        return ok;
    }

    // Waits on the connection's socket and the stop descriptor; no timeout while connected.
    void run() {
        auto backoff = std::chrono::milliseconds{100};
        for (;;) {
            const bool connected = connection_ && PQstatus(connection_.get()) == CONNECTION_OK;
            pollfd fds[2] = {{stop_fd_, POLLIN, 0}, {connected ? PQsocket(connection_.get()) : -1, POLLIN, 0}};
            const int timeout = connected ? -1 : static_cast<int>(backoff.count());
            if (::poll(fds, 2, timeout) < 0) continue; // EINTR
            if (fds[0].revents & POLLIN) return;
            if (!connected) {
                std::string why;
                if (listen(why)) {
                    ++reconnections_;
                    backoff = std::chrono::milliseconds{100};
                    wake(); // rows may have been committed while it was away
                } else {
                    backoff = std::min(backoff * 2, std::chrono::milliseconds{5000});
                }
                continue;
            }
            if (!PQconsumeInput(connection_.get())) {
                connection_.reset(); // lost: reconnect after the backoff
                continue;
            }
            bool notified = false;
            while (PGnotify* n = PQnotifies(connection_.get())) {
                notified = true;
                ++notifications_;
                PQfreemem(n);
            }
            if (notified) wake();
        }
    }

    void wake() {
        ++wakes_;
        try {
            wake_();
        } catch (...) { // counted: a user's function must not end the listener
            ++wake_failures_;
        }
    }

    std::string conninfo_;
    std::function<void()> wake_;
    std::string schema_;
    std::string channel_;
    std::unique_ptr<PGconn, closer> connection_;
    int stop_fd_ = -1;
    std::atomic<std::uint64_t> notifications_{0};
    std::atomic<std::uint64_t> wakes_{0};
    std::atomic<std::uint64_t> reconnections_{0};
    std::atomic<std::uint64_t> wake_failures_{0};
    std::thread thread_; // last: started once the rest is in place
};

} // namespace choreo::postgresql
