// libFuzzer target: connection URLs as a user or a configuration file gives them. Only
// choreo::redis::redis_error (bad_url) may come out.

#include <choreo/redis/options.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    try {
        auto options = choreo::redis::parse_url({reinterpret_cast<const char*>(data), size});
        (void)options.where();
    } catch (const choreo::redis::redis_error&) {}
    return 0;
}
