#pragma once
/// @file
/// @brief Where and how to connect to Redis, by options or by URL.

#include <choreo/redis/errors.hpp>

#include <charconv>
#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace choreo::redis {

/// @brief How a connection reaches Redis and behaves when it cannot.
struct connection_options {
    std::string host = "127.0.0.1";                  ///< host name or address (TCP)
    unsigned short port = 6379;                      ///< TCP port
    std::string unix_socket;                         ///< a unix socket path; when set, host and port are not used
    std::string username;                            ///< an ACL user (Redis 6+); empty for the default user
    std::string password;                            ///< sent with AUTH when not empty
    int database = 0;                                ///< selected with SELECT after connecting
    std::string client_name = "choreo";              ///< shown by CLIENT LIST; empty to leave it unset
    std::chrono::milliseconds connect_timeout{2000}; ///< one connection attempt, handshake included
    std::chrono::milliseconds command_timeout{5000}; ///< from sending a command to its reply
    /// @brief How long a command may wait while there is no connection (Redis down or
    /// restarting) before failing with errc::unreachable; commands queued meanwhile are sent,
    /// in order, once a connection is back.
    std::chrono::milliseconds wait_for_server{30'000};
    std::chrono::milliseconds reconnect_initial_delay{50}; ///< first wait before reconnecting
    std::chrono::milliseconds reconnect_max_delay{2000};   ///< waits double up to this
    std::size_t queue_limit = 1'000'000;                   ///< commands waiting or in flight; beyond, errc::overloaded
    /// @brief Blocking calls from a thread with no asynchronous command outstanding run on a
    /// socket of the caller's own while the connection is up (see redis::connection); false
    /// sends every command through the connection's strand.
    bool direct_blocking_calls = true;

    /// @brief "host:port" or the socket path, for messages.
    [[nodiscard]] std::string where() const {
        return unix_socket.empty() ? host + ":" + std::to_string(port) : unix_socket;
    }
};

namespace detail {

inline redis_error bad_url(std::string_view url, std::string_view why) {
    return redis_error(errc::bad_url, "bad Redis URL '" + std::string{url} + "': " + std::string{why});
}

inline std::string percent_decode(std::string_view text, std::string_view url) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '%') {
            out += text[i];
            continue;
        }
        unsigned value = 0;
        if (i + 2 >= text.size()) throw bad_url(url, "a '%' is not followed by two hex digits");
        auto [end, ec] = std::from_chars(text.data() + i + 1, text.data() + i + 3, value, 16);
        if (ec != std::errc{} || end != text.data() + i + 3)
            throw bad_url(url, "a '%' is not followed by two hex digits");
        out += static_cast<char>(value);
        i += 2;
    }
    return out;
}

template <class T>
T parse_number(std::string_view text, std::string_view url, std::string_view what, long long low, long long high) {
    long long value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value < low || value > high)
        throw bad_url(url, std::string{what} + " '" + std::string{text} + "' is not a number from " +
                               std::to_string(low) + " to " + std::to_string(high));
    return static_cast<T>(value);
}

} // namespace detail

/// @brief Options from a URL: `redis://[[user]:password@]host[:port][/db]` or
/// `unix://[[user]:password@]/path/to.sock[?db=N]`; user and password may be percent-encoded.
/// Everything not in the URL keeps its default. Throws redis_error (bad_url) with the reason.
[[nodiscard]] inline connection_options parse_url(std::string_view url) {
    connection_options options;
    std::string_view rest;
    bool unix_socket = false;
    if (url.starts_with("redis://")) {
        rest = url.substr(8);
    } else if (url.starts_with("unix://")) {
        rest = url.substr(7);
        unix_socket = true;
    } else {
        throw detail::bad_url(url, "it must start with redis:// or unix://");
    }
    // Credentials end at the last '@' before the path, so a password may contain '@' only encoded.
    if (auto at = rest.find('@'); at != std::string_view::npos) {
        auto credentials = rest.substr(0, at);
        rest = rest.substr(at + 1);
        auto colon = credentials.find(':');
        if (colon == std::string_view::npos) {
            options.password = detail::percent_decode(credentials, url); // redis://password@host, as redis-cli takes it
        } else {
            options.username = detail::percent_decode(credentials.substr(0, colon), url);
            options.password = detail::percent_decode(credentials.substr(colon + 1), url);
        }
    }
    if (unix_socket) {
        auto query = rest.find('?');
        options.unix_socket = std::string{rest.substr(0, query)};
        if (options.unix_socket.empty() || options.unix_socket.front() != '/')
            throw detail::bad_url(url, "a unix socket path must be absolute");
        if (query != std::string_view::npos) {
            auto parameter = rest.substr(query + 1);
            if (!parameter.starts_with("db=")) throw detail::bad_url(url, "the only parameter understood is db=N");
            options.database = detail::parse_number<int>(parameter.substr(3), url, "database", 0, 1'000'000);
        }
        return options;
    }
    auto slash = rest.find('/');
    auto authority = rest.substr(0, slash);
    if (slash != std::string_view::npos) {
        auto db = rest.substr(slash + 1);
        if (!db.empty()) options.database = detail::parse_number<int>(db, url, "database", 0, 1'000'000);
    }
    if (authority.starts_with('[')) { // [::1]:6379
        auto close = authority.find(']');
        if (close == std::string_view::npos) throw detail::bad_url(url, "an IPv6 address lacks its ']'");
        options.host = std::string{authority.substr(1, close - 1)};
        authority = authority.substr(close + 1);
        if (!authority.empty()) {
            if (authority.front() != ':') throw detail::bad_url(url, "expected ':port' after the IPv6 address");
            options.port = detail::parse_number<unsigned short>(authority.substr(1), url, "port", 1, 65535);
        }
    } else {
        auto colon = authority.find(':');
        options.host = std::string{authority.substr(0, colon)};
        if (colon != std::string_view::npos)
            options.port = detail::parse_number<unsigned short>(authority.substr(colon + 1), url, "port", 1, 65535);
    }
    if (options.host.empty()) throw detail::bad_url(url, "no host");
    return options;
}

} // namespace choreo::redis
