#pragma once
// RESP through hiredis's protocol layer only: commands formatted by redisFormatCommandArgv,
// replies parsed by a redisReader fed with what the socket read. The I/O is Asio's.

#include <choreo/redis/errors.hpp>
#include <choreo/redis/reply.hpp>

#include <hiredis/hiredis.h>

#include <algorithm>
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

// hiredis builds the reply tree through these, straight into choreo::redis::reply values.
// An array's elements are appended as they arrive, never allocated from its announced
// size: a hostile or garbled "*2000000000" costs nothing until the elements really come
// (libFuzzer found hiredis's own calloc of the announced size exhausting memory).
// A child is kept inside its parent's vector; the parent's address stays valid while the
// child is filled, since nothing else is appended to the parent meanwhile.
struct reply_builder {
    // Never throws into hiredis (C): out of memory is a null, which hiredis reports as such.
    static void* place(const redisReadTask* task, reply&& value) noexcept {
        try {
            if (task->parent) {
                auto* parent = static_cast<reply*>(task->parent->obj);
                parent->elements.push_back(std::move(value));
                return &parent->elements.back();
            }
            return new reply(std::move(value));
        } catch (...) {
            return nullptr;
        }
    }
    static void* string(const redisReadTask* task, char* text, std::size_t length) noexcept try {
        reply r;
        r.type = task->type == REDIS_REPLY_ERROR    ? reply::kind::error
                 : task->type == REDIS_REPLY_STATUS ? reply::kind::status
                                                    : reply::kind::string;
        r.text.assign(text, length);
        return place(task, std::move(r));
    } catch (...) {
        return nullptr;
    }
    static void* array(const redisReadTask* task, int elements) noexcept try {
        reply r;
        r.type = reply::kind::array;
        r.elements.reserve(static_cast<std::size_t>(std::clamp(elements, 0, 1024)));
        return place(task, std::move(r));
    } catch (...) {
        return nullptr;
    }
    static void* integer(const redisReadTask* task, long long value) noexcept {
        reply r;
        r.type = reply::kind::integer;
        r.integer = value;
        return place(task, std::move(r));
    }
    static void* nil(const redisReadTask* task) noexcept { return place(task, reply{}); }
    // Called for the root only (it owns its children).
    static void free(void* root) noexcept { delete static_cast<reply*>(root); }

    static redisReplyObjectFunctions* functions() {
        static redisReplyObjectFunctions fns{&string, &array, &integer, &nil, &free};
        return &fns;
    }
};

// Parses replies out of the bytes read, in order.
class reply_reader {
public:
    reply_reader() : reader_(redisReaderCreateWithFunctions(reply_builder::functions())) {
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
        std::unique_ptr<reply> owned{static_cast<reply*>(raw)};
        return std::move(*owned);
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
