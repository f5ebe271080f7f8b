// The benchmark binary's main, and the replaced operator new that counts allocations.
#include "allocations.hpp"

#include <cstdlib>
#include <new>

#include <malloc.h>

#include <benchmark/benchmark.h>

namespace bench {
heap_counters& heap() noexcept {
    static heap_counters counters;
    return counters;
}
} // namespace bench

void* operator new(std::size_t size) {
    void* p = std::malloc(size == 0 ? 1 : size);
    if (!p) throw std::bad_alloc{};
    bench::heap().allocations.fetch_add(1, std::memory_order_relaxed);
    bench::heap().live_bytes.fetch_add(static_cast<std::ptrdiff_t>(malloc_usable_size(p)), std::memory_order_relaxed);
    return p;
}
void* operator new[](std::size_t size) { return operator new(size); }
void operator delete(void* p) noexcept {
    if (!p) return;
    bench::heap().live_bytes.fetch_sub(static_cast<std::ptrdiff_t>(malloc_usable_size(p)), std::memory_order_relaxed);
    std::free(p);
}
void operator delete[](void* p) noexcept { operator delete(p); }
void operator delete(void* p, std::size_t) noexcept { operator delete(p); }
void operator delete[](void* p, std::size_t) noexcept { operator delete(p); }

BENCHMARK_MAIN();
