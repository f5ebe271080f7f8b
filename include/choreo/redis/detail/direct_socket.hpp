#pragma once
// A blocking socket to Redis, used by one thread at a time: connection::command() and
// pipeline() write their commands on it and read the replies themselves, so a blocking call
// costs its caller one system call each way and one wake-up (by the kernel, when the reply
// arrives) instead of two hand-offs through the connection's strand (decision 0040).
// RESP is hiredis's, as on the strand (protocol.hpp). Not part of the API.

#include <choreo/redis/detail/protocol.hpp>
#include <choreo/redis/errors.hpp>
#include <choreo/redis/options.hpp>
#include <choreo/redis/reply.hpp>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace choreo::redis::detail {

class direct_socket {
public:
    using clock = std::chrono::steady_clock;

    // Connects and runs the handshake the strand runs (AUTH, SELECT, CLIENT SETNAME, PING)
    // within connect_timeout; throws redis_error when it cannot.
    explicit direct_socket(const connection_options& options)
        : where_(options.where()), command_timeout_(options.command_timeout) {
        auto deadline = clock::now() + options.connect_timeout;
        connect(options, deadline);
        try {
            handshake(options, deadline);
        } catch (...) {
            ::close(fd_);
            throw;
        }
    }
    ~direct_socket() { ::close(fd_); }
    direct_socket(const direct_socket&) = delete;
    direct_socket& operator=(const direct_socket&) = delete;

    // Writes `bytes`, which hold `count` commands, and reads their `count` replies within
    // command_timeout. Error replies are replies; a failure of the socket throws.
    std::vector<reply> exchange(std::string_view bytes, std::size_t count) {
        return exchange(bytes, count, clock::now() + command_timeout_);
    }

    // True when the socket must not be used any more: Redis closed it (a restart, CLIENT
    // KILL, its idle timeout) or sent something nobody asked for.
    [[nodiscard]] bool stale() const noexcept {
        pollfd p{fd_, POLLIN | POLLRDHUP, 0};
        return ::poll(&p, 1, 0) != 0;
    }

    // Wakes the thread waiting on the socket, whose call then fails (the connection is
    // being closed). The descriptor stays open until the socket is destroyed.
    void interrupt() noexcept { ::shutdown(fd_, SHUT_RDWR); }

private:
    std::vector<reply> exchange(std::string_view bytes, std::size_t count, clock::time_point deadline) {
        write_all(bytes, deadline);
        std::vector<reply> replies;
        replies.reserve(count);
        for (;;) {
            while (replies.size() < count)
                if (auto r = reader_.next())
                    replies.push_back(std::move(*r));
                else
                    break;
            if (replies.size() == count) return replies;
            if (!wait_for(POLLIN, deadline))
                throw redis_error(errc::timeout, "no reply from Redis at " + where_ + " within " +
                                                     std::to_string(command_timeout_.count()) + " ms");
            auto n = ::recv(fd_, buffer_.data(), buffer_.size(), 0);
            if (n == 0) throw redis_error(errc::connection_lost, "Redis closed the connection");
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
                throw redis_error(errc::connection_lost, "reading from Redis failed: " + last_error());
            }
            reader_.feed(buffer_.data(), static_cast<std::size_t>(n));
        }
    }

    void write_all(std::string_view bytes, clock::time_point deadline) {
        while (!bytes.empty()) {
            auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n >= 0) {
                bytes.remove_prefix(static_cast<std::size_t>(n));
                continue;
            }
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                throw redis_error(errc::connection_lost, "writing to Redis failed: " + last_error());
            if (!wait_for(POLLOUT, deadline))
                throw redis_error(errc::timeout, "Redis at " + where_ + " took no command within " +
                                                     std::to_string(command_timeout_.count()) + " ms");
        }
    }

    // Waits until the socket is ready for `events` (or failed, which the next call reports);
    // false at the deadline.
    bool wait_for(short events, clock::time_point deadline) const {
        for (;;) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - clock::now()).count();
            if (left <= 0) return false;
            pollfd p{fd_, events, 0};
            int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1 << 30)));
            if (ready > 0) return true;
            if (ready < 0 && errno != EINTR) return true; // the next send or recv says what failed
        }
    }

    static std::string last_error() { return std::system_category().message(errno); }

    void connect(const connection_options& options, clock::time_point deadline) {
        std::string why;
        if (!options.unix_socket.empty()) {
            sockaddr_un address{};
            address.sun_family = AF_UNIX;
            if (options.unix_socket.size() >= sizeof address.sun_path)
                throw redis_error(errc::unreachable, "the unix socket path " + options.unix_socket + " is too long");
            std::memcpy(address.sun_path, options.unix_socket.data(), options.unix_socket.size());
            if (try_connect(AF_UNIX, reinterpret_cast<const sockaddr*>(&address), sizeof address, deadline, why))
                return;
            throw redis_error(errc::unreachable, "cannot connect to " + where_ + ": " + why);
        }
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        addrinfo* found = nullptr;
        auto port = std::to_string(options.port);
        if (int rc = ::getaddrinfo(options.host.c_str(), port.c_str(), &hints, &found); rc != 0)
            throw redis_error(errc::unreachable, "cannot resolve " + options.host + ": " + ::gai_strerror(rc));
        std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owned{found, &::freeaddrinfo};
        for (auto* a = found; a != nullptr; a = a->ai_next) {
            if (!try_connect(a->ai_family, a->ai_addr, a->ai_addrlen, deadline, why)) continue;
            int on = 1;
            ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
            return;
        }
        throw redis_error(errc::unreachable, "cannot connect to " + where_ + ": " + why);
    }

    bool try_connect(int family, const sockaddr* address, socklen_t length, clock::time_point deadline,
                     std::string& why) {
        fd_ = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd_ < 0) {
            why = last_error();
            return false;
        }
        bool connected = ::connect(fd_, address, length) == 0;
        if (!connected && errno == EINPROGRESS) {
            if (!wait_for(POLLOUT, deadline)) {
                why = "no answer within the connect timeout";
            } else {
                int error = 0;
                socklen_t size = sizeof error;
                ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &size);
                connected = error == 0;
                if (!connected) why = std::system_category().message(error);
            }
        } else if (!connected) {
            why = last_error();
        }
        if (!connected) ::close(fd_);
        return connected;
    }

    void handshake(const connection_options& options, clock::time_point deadline) {
        std::string bytes;
        std::size_t count = 0;
        auto add = [&](std::vector<std::string_view> command) {
            bytes += format_command(command);
            ++count;
        };
        if (!options.password.empty()) {
            if (options.username.empty())
                add({"AUTH", options.password});
            else
                add({"AUTH", options.username, options.password});
        }
        auto db = std::to_string(options.database);
        if (options.database != 0) add({"SELECT", db});
        if (!options.client_name.empty()) add({"CLIENT", "SETNAME", options.client_name});
        add({"PING"});
        for (auto& r : exchange(bytes, count, deadline))
            if (r.is_error()) throw redis_error(errc::server_reply, "Redis at " + where_ + " refused: " + r.text);
    }

    std::string where_;
    std::chrono::milliseconds command_timeout_;
    int fd_ = -1;
    reply_reader reader_;
    std::array<char, 16 * 1024> buffer_{};
};

} // namespace choreo::redis::detail
