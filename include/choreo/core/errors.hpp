#pragma once
/// @file
/// @brief The exceptions choreo throws, one type per kind of mistake or failure.

#include <stdexcept>
#include <string>

namespace choreo {

/// @brief Base of every exception choreo throws.
class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// @brief A failure of a layer that talks to a server (Redis, Kafka), with the layer's
/// reason code: each layer derives its own type from it, so callers catch one layer's errors.
template <class Errc>
class coded_error : public error {
public:
    /// @brief An error of kind `code` with a readable message.
    coded_error(Errc code, const std::string& message) : error(message), code_(code) {}
    /// @brief Which kind of failure this is.
    [[nodiscard]] Errc code() const noexcept { return code_; }

private:
    Errc code_;
};

/// @brief The library was used against its contract (committing twice, publishing into a
/// finished unit of work, an impossible subscription).
class usage_error : public error {
public:
    using error::error;
};

/// @brief An event was published with no unit of work and a listener's policy is `error`.
class no_transaction_error : public error {
public:
    using error::error;
};

/// @brief The before_commit pass could not finish (a depth or cycle limit); the unit of work rolled back.
class commit_error : public error {
public:
    using error::error;
};

/// @brief The bus was shut down; nothing more can be published or committed.
class bus_closed_error : public error {
public:
    using error::error;
};

/// @brief Derive a listener's exception from this to say that retrying cannot help;
/// the default retry policy then gives up at once.
class permanent_error : public error {
public:
    using error::error;
};

} // namespace choreo
