#pragma once
/// @file
/// @brief A PostgreSQL connection (libpq) that is a choreo transactional resource, and the
/// results of its statements.
///
/// Part of the choreo::postgresql target (it links libpq). The outbox and inbox stores write
/// through the same connection as the business data, so their rows commit with it.

#include <libpq-fe.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <choreo/core/errors.hpp>
#include <choreo/postgresql/errors.hpp>

namespace choreo::postgresql {

/// @brief The rows a statement returned (values in PostgreSQL's text format).
class result {
public:
    /// @brief Takes ownership of a libpq result.
    explicit result(PGresult* handle) noexcept : handle_(handle, &PQclear) {}

    /// @brief Rows returned.
    [[nodiscard]] int rows() const noexcept { return PQntuples(handle_.get()); }
    /// @brief Rows changed by an INSERT, UPDATE or DELETE (0 for other statements).
    [[nodiscard]] std::int64_t affected() const noexcept {
        const char* n = PQcmdTuples(handle_.get());
        return n && *n ? std::strtoll(n, nullptr, 10) : 0;
    }
    /// @brief The command tag ("INSERT 0 1", "COMMIT", "ROLLBACK"...).
    [[nodiscard]] std::string_view command_status() const noexcept { return PQcmdStatus(handle_.get()); }
    /// @brief The value at `row`, `column` as text (empty for NULL).
    [[nodiscard]] std::string text(int row, int column) const {
        return {PQgetvalue(handle_.get(), row, column),
                static_cast<std::size_t>(PQgetlength(handle_.get(), row, column))};
    }
    /// @brief The value at `row`, `column` as an integer (0 for NULL).
    [[nodiscard]] std::int64_t integer(int row, int column) const {
        return std::strtoll(PQgetvalue(handle_.get(), row, column), nullptr, 10);
    }
    /// @brief True when the value at `row`, `column` is NULL.
    [[nodiscard]] bool is_null(int row, int column) const noexcept {
        return PQgetisnull(handle_.get(), row, column) != 0;
    }

private:
    std::unique_ptr<PGresult, void (*)(PGresult*)> handle_;
};

/// @brief A parameter of a statement: text, an integer, or NULL.
class parameter {
public:
    /// @brief Text (copied).
    parameter(std::string_view text) : value_(text) {}
    /// @brief Text (copied).
    parameter(const std::string& text) : value_(text) {}
    /// @brief Text (copied).
    parameter(const char* text) : value_(std::string{text}) {}
    /// @brief An integer, sent as its decimal text.
    parameter(std::int64_t number) : value_(std::to_string(number)) {}
    /// @brief An integer, sent as its decimal text.
    parameter(int number) : value_(std::to_string(number)) {}
    /// @brief NULL.
    parameter(std::nullopt_t) noexcept {}

    /// @brief The text libpq sends, or null for NULL.
    [[nodiscard]] const char* data() const noexcept { return value_ ? value_->c_str() : nullptr; }

private:
    std::optional<std::string> value_;
};

/// @brief One PostgreSQL connection that is also a choreo transactional resource.
///
/// Thread-safe: a unit of work on it holds its (recursive) lock from begin() to commit() or
/// rollback(), and read(), transact() and the stores take the same lock, so threads sharing
/// one connection take turns. Give each thread that needs its own transactions a database
/// of its own. Statements run with query() are prepared once per connection and kept.
///
/// A lost connection (the server restarted or failed over) is a postgresql_error of kind
/// failure::connection_lost; the next begin(), transact() or read() connects again.
class database {
public:
    /// @brief Connects with a libpq connection string ("host=... port=... dbname=..." or a
    /// postgresql:// URI); a postgresql_error when the server cannot be reached.
    /// `session` statements ("SET ...") run on every connection it makes, reconnections
    /// included.
    explicit database(std::string conninfo, std::vector<std::string> session = {})
        : conninfo_(std::move(conninfo)), session_(std::move(session)) {
        connection_.reset(PQconnectdb(conninfo_.c_str()));
        if (!connection_) throw postgresql_error(failure::connection_lost, {}, "cannot connect: out of memory");
        if (PQstatus(connection_.get()) != CONNECTION_OK)
            throw postgresql_error(failure::connection_lost, {}, "cannot connect: " + last_message());
        configure();
    }
    database(const database&) = delete;
    database& operator=(const database&) = delete;

    /// @brief Takes the lock and begins a transaction (the resource's begin).
    void begin() {
        mutex_.lock();
        try {
            reconnect_if_lost();
            execute("BEGIN");
            unit_open_ = true;
        } catch (...) {
            mutex_.unlock();
            throw;
        }
    }
    /// @brief Commits and releases the lock. Throws, keeping the lock, when the commit
    /// failed (the unit of work calls rollback() next, which releases it): a transaction that
    /// had failed is rolled back by the server and reported as failure::transaction_aborted.
    void commit() {
        finish_commit();
        unit_open_ = false;
        mutex_.unlock();
    }
    /// @brief Rolls back (when a transaction is open) and releases the lock.
    void rollback() {
        std::unique_lock lock{mutex_, std::adopt_lock};
        unit_open_ = false;
        if (in_transaction()) result ignored{PQexec(connection_.get(), "ROLLBACK")};
    }

    /// @brief True inside a transaction on this connection (a failed one included, and one
    /// whose connection was lost: it is over only at its commit or rollback).
    [[nodiscard]] bool in_transaction() const noexcept {
        auto status = PQtransactionStatus(connection_.get());
        return unit_open_ || status == PQTRANS_INTRANS || status == PQTRANS_INERROR || status == PQTRANS_ACTIVE;
    }

    /// @brief Runs one or more statements without parameters; their last result. Outside a
    /// transaction, a connection lost earlier is made again first; inside one, never (the
    /// statements after it would commit on their own).
    result execute(std::string_view sql) {
        std::lock_guard lock{mutex_};
        if (!unit_open_) reconnect_if_lost();
        return checked(PQexec(connection_.get(), std::string{sql}.c_str()), sql);
    }

    /// @brief Runs `sql` with `$1`, `$2`... bound to `params`, as a statement prepared on
    /// this connection the first time it is seen (reconnecting as execute() does).
    result query(std::string_view sql, const std::vector<parameter>& params = {}) {
        std::lock_guard lock{mutex_};
        if (!unit_open_) reconnect_if_lost();
        const auto& name = prepared(sql);
        std::vector<const char*> values;
        values.reserve(params.size());
        for (const auto& p : params) values.push_back(p.data());
        return checked(PQexecPrepared(connection_.get(), name.c_str(), static_cast<int>(values.size()), values.data(),
                                      nullptr, nullptr, 0),
                       sql);
    }

    /// @brief Runs `read` under the lock: for queries outside a unit of work.
    template <class F>
    auto read(F&& read) {
        std::lock_guard lock{mutex_};
        if (!unit_open_) reconnect_if_lost();
        return read();
    }

    /// @brief Runs `work` in a transaction of its own under the lock: committed when it
    /// returns, rolled back when it throws. A conflict (serialization failure, deadlock)
    /// runs it again, up to `attempts` times in all, so `work` must do nothing but its
    /// statements. Not for use inside a unit of work on this database (a usage_error).
    template <class F>
    auto transact(F&& work, int attempts = 3) {
        std::lock_guard lock{mutex_};
        if (in_transaction())
            throw usage_error("a transaction is already open on this PostgreSQL connection; transact() runs its "
                              "own");
        for (int attempt = 1;; ++attempt) {
            reconnect_if_lost();
            try {
                execute("BEGIN");
                unit_open_ = true;
                if constexpr (std::is_void_v<decltype(work())>) {
                    work();
                    finish_commit();
                    unit_open_ = false;
                    return;
                } else {
                    auto outcome = work();
                    finish_commit();
                    unit_open_ = false;
                    return outcome;
                }
            } catch (const postgresql_error& e) {
                abandon_transaction();
                if (!e.retryable() || attempt >= attempts) throw;
            } catch (...) {
                abandon_transaction();
                throw;
            }
        }
    }

    /// @brief The libpq connection, for what this class does not wrap.
    [[nodiscard]] PGconn* handle() const noexcept { return connection_.get(); }
    /// @brief The connection string it connects with.
    [[nodiscard]] const std::string& conninfo() const noexcept { return conninfo_; }
    /// @brief The statements run on every connection it makes.
    [[nodiscard]] const std::vector<std::string>& session() const noexcept { return session_; }
    /// @brief How many times the connection was made again after it was lost.
    [[nodiscard]] std::uint64_t reconnections() const noexcept { return reconnections_; }

private:
    struct closer {
        void operator()(PGconn* c) const noexcept { PQfinish(c); }
    };

    // Every session of choreo's: UTC, no notices printed to stderr by libpq, then the
    // caller's own statements.
    void configure() {
        PQsetNoticeProcessor(
            connection_.get(), [](void*, const char*) {}, nullptr);
        result utc{checked(PQexec(connection_.get(), "SET TIME ZONE 'UTC'"), "SET TIME ZONE 'UTC'")};
        for (const auto& statement : session_)
            result done{checked(PQexec(connection_.get(), statement.c_str()), statement)};
    }

    void abandon_transaction() noexcept {
        unit_open_ = false;
        if (in_transaction()) result ignored{PQexec(connection_.get(), "ROLLBACK")};
    }

    void reconnect_if_lost() {
        if (PQstatus(connection_.get()) == CONNECTION_OK) return;
        PQreset(connection_.get());
        prepared_.clear(); // a new session knows none of them
        if (PQstatus(connection_.get()) != CONNECTION_OK)
            throw postgresql_error(failure::connection_lost, {}, "cannot reconnect: " + last_message());
        ++reconnections_;
        configure();
    }

    void finish_commit() {
        auto done = checked(PQexec(connection_.get(), "COMMIT"), "COMMIT");
        // A transaction in which a statement failed answers COMMIT with ROLLBACK, not an error.
        if (done.command_status() == "ROLLBACK")
            throw postgresql_error(failure::transaction_aborted, "25P02",
                                   "the transaction had failed before its COMMIT, which rolled it back");
    }

    const std::string& prepared(std::string_view sql) {
        auto it = prepared_.find(std::string{sql});
        if (it != prepared_.end()) return it->second;
        auto name = "choreo_" + std::to_string(prepared_.size() + 1);
        result ignored{checked(PQprepare(connection_.get(), name.c_str(), std::string{sql}.c_str(), 0, nullptr), sql)};
        return prepared_.emplace(std::string{sql}, std::move(name)).first->second;
    }

    // A result, or the postgresql_error it reports.
    result checked(PGresult* raw, std::string_view sql) {
        result r{raw};
        auto status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
        if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY) return r;
        const char* state = raw ? PQresultErrorField(raw, PG_DIAG_SQLSTATE) : nullptr;
        std::string sqlstate = state ? state : "";
        auto kind = sqlstate.empty() ? failure::other : detail::failure_of(sqlstate);
        if (PQstatus(connection_.get()) != CONNECTION_OK) kind = failure::connection_lost;
        auto message = raw && *PQresultErrorMessage(raw) ? std::string{PQresultErrorMessage(raw)} : last_message();
        while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
        if (kind == failure::connection_lost && sql == "COMMIT")
            message += " (whether the transaction committed is unknown)";
        throw postgresql_error(kind, std::move(sqlstate), message + " in: " + std::string{sql});
    }

    [[nodiscard]] std::string last_message() const {
        std::string message = connection_ ? PQerrorMessage(connection_.get()) : "no connection";
        while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
        return message;
    }

    std::string conninfo_;
    std::vector<std::string> session_;
    std::unique_ptr<PGconn, closer> connection_;
    std::recursive_mutex mutex_; // recursive: a store's statement inside a unit of work on the same thread
    std::unordered_map<std::string, std::string> prepared_; // SQL text -> statement name
    std::uint64_t reconnections_ = 0;
    bool unit_open_ = false; // from BEGIN to COMMIT or ROLLBACK, even if the connection died in between
};

} // namespace choreo::postgresql
