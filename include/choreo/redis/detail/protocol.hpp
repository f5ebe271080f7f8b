#pragma once
// RESP through hiredis's protocol layer only: commands formatted by redisFormatCommandArgv,
// replies parsed by a redisReader fed with what the socket read. The I/O is Asio's.

#include <choreo/redis/errors.hpp>
#include <choreo/redis/reply.hpp>

#include <hiredis/hiredis.h>

#include <cstddef>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace choreo::redis::detail {

// One command in RESP, ready to write.
inline std::string format_command(const std::vector<std::string_view>& args) {
    if (args.empty()) throw usage_error("a Redis command needs at least its name");
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (auto a : args) {
        argv.push_back(a.data());
        lengths.push_back(a.size());
    }
    char* formatted = nullptr;
    int length = redisFormatCommandArgv(&formatted, static_cast<int>(argv.size()), argv.data(), lengths.data());
    if (length < 0 || formatted == nullptr) throw std::bad_alloc();
    std::string out{formatted, static_cast<std::size_t>(length)};
    redisFreeCommand(formatted);
    return out;
}

inline reply to_reply(const redisReply& r) {
    reply out;
    switch (r.type) {
    case REDIS_REPLY_STRING: out.type = reply::kind::string; break;
    case REDIS_REPLY_STATUS: out.type = reply::kind::status; break;
    case REDIS_REPLY_ERROR: out.type = reply::kind::error; break;
    case REDIS_REPLY_INTEGER: out.type = reply::kind::integer; break;
    case REDIS_REPLY_NIL: out.type = reply::kind::nil; break;
    case REDIS_REPLY_ARRAY: out.type = reply::kind::array; break;
    default: throw redis_error(errc::protocol, "a reply of unknown type " + std::to_string(r.type));
    }
    if (r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS || r.type == REDIS_REPLY_ERROR)
        out.text.assign(r.str, r.len);
    if (r.type == REDIS_REPLY_INTEGER) out.integer = r.integer;
    if (r.type == REDIS_REPLY_ARRAY) {
        out.elements.reserve(r.elements);
        for (std::size_t i = 0; i < r.elements; ++i) out.elements.push_back(to_reply(*r.element[i]));
    }
    return out;
}

// Parses replies out of the bytes read, in order.
class reply_reader {
public:
    reply_reader() : reader_(redisReaderCreate()) {
        if (!reader_) throw std::bad_alloc();
    }
    void feed(const char* data, std::size_t size) {
        if (redisReaderFeed(reader_.get(), data, size) != REDIS_OK) throw error();
    }
    // The next complete reply, or nothing until more bytes arrive.
    std::optional<reply> next() {
        void* raw = nullptr;
        if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) throw error();
        if (!raw) return std::nullopt;
        std::unique_ptr<redisReply, decltype(&freeReplyObject)> owned{static_cast<redisReply*>(raw), &freeReplyObject};
        return to_reply(*owned);
    }

private:
    redis_error error() const {
        return redis_error(errc::protocol, std::string{"unreadable reply from Redis: "} + reader_->errstr);
    }
    struct free_reader {
        void operator()(redisReader* r) const noexcept { redisReaderFree(r); }
    };
    std::unique_ptr<redisReader, free_reader> reader_;
};

} // namespace choreo::redis::detail
