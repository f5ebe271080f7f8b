// libFuzzer target: bytes from a Redis server (or anything on its port) through the reply
// reader, fed in two pieces at a point the input chooses. Only choreo::redis::redis_error
// (a protocol error) may come out.

#include <choreo/redis/detail/protocol.hpp>

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const char* bytes = reinterpret_cast<const char*>(data) + 1;
    std::size_t length = size - 1;
    std::size_t cut = length == 0 ? 0 : data[0] % (length + 1);
    try {
        choreo::redis::detail::reply_reader reader;
        reader.feed(bytes, cut);
        while (reader.next()) {}
        reader.feed(bytes + cut, length - cut);
        while (auto r = reader.next()) (void)r->is_error();
    } catch (const choreo::redis::redis_error&) {}
    return 0;
}
