#pragma once
/// @file
/// @brief The errors of choreo::postgresql: what failed, classified by the server's SQLSTATE
/// so that callers can tell a lost connection from a conflict from a timeout.

#include <string>
#include <string_view>

#include <choreo/core/errors.hpp>

namespace choreo::postgresql {

/// @brief What kind of failure a postgresql_error is.
enum class failure {
    /// The connection is gone (server restarted, failed over, network): the next operation
    /// on the database reconnects. A transaction open at the time is lost; a commit cut off
    /// this way has an unknown outcome.
    connection_lost,
    /// A serialization failure or a deadlock: the transaction was rolled back and may be run
    /// again as a whole (SQLSTATE 40001, 40P01).
    conflict,
    /// The statement ran past statement_timeout, or was cancelled (SQLSTATE 57014).
    statement_timeout,
    /// The transaction had already failed: its commit rolled it back.
    transaction_aborted,
    /// Anything else: a syntax error, a constraint violated, a bad value.
    other,
};

/// @brief Name of a failure kind.
[[nodiscard]] constexpr std::string_view to_string(failure kind) noexcept {
    switch (kind) {
    case failure::connection_lost: return "connection_lost";
    case failure::conflict: return "conflict";
    case failure::statement_timeout: return "statement_timeout";
    case failure::transaction_aborted: return "transaction_aborted";
    case failure::other: return "other";
    }
    return "unknown";
}

/// @brief A failure reported by libpq or the server; the message includes the server's and
/// the statement.
class postgresql_error : public choreo::error {
public:
    /// @brief An error of `kind`, with the server's SQLSTATE (empty when there is none).
    postgresql_error(failure kind, std::string sqlstate, const std::string& message)
        : choreo::error(message), kind_(kind), sqlstate_(std::move(sqlstate)) {}

    /// @brief What kind of failure it is.
    [[nodiscard]] failure kind() const noexcept { return kind_; }
    /// @brief The server's five-character SQLSTATE, empty when libpq failed without one.
    [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }
    /// @brief True when running the whole transaction again may succeed: a conflict.
    [[nodiscard]] bool retryable() const noexcept { return kind_ == failure::conflict; }

private:
    failure kind_;
    std::string sqlstate_;
};

namespace detail {

// The failure kind of a SQLSTATE: class 08 and the shutdown codes of class 57 mean the
// connection is gone; 40001 and 40P01 are conflicts; 57014 is a cancelled statement.
[[nodiscard]] inline failure failure_of(std::string_view sqlstate) noexcept {
    if (sqlstate.starts_with("08") || sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03")
        return failure::connection_lost;
    if (sqlstate == "40001" || sqlstate == "40P01") return failure::conflict;
    if (sqlstate == "57014") return failure::statement_timeout;
    if (sqlstate == "25P02") return failure::transaction_aborted;
    return failure::other;
}

} // namespace detail

} // namespace choreo::postgresql
