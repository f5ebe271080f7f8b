#pragma once
// Counts heap allocations and live bytes through a replaced global operator new
// (defined in main.cpp), so each benchmark can report allocations per event and bytes
// per in-flight saga.

#include <atomic>
#include <cstddef>

namespace bench {

struct heap_counters {
    std::atomic<std::size_t> allocations{0};
    std::atomic<std::ptrdiff_t> live_bytes{0};
};

heap_counters& heap() noexcept;

// Allocations since construction.
class allocation_meter {
public:
    allocation_meter() noexcept : start_(heap().allocations.load(std::memory_order_relaxed)) {}
    [[nodiscard]] std::size_t count() const noexcept {
        return heap().allocations.load(std::memory_order_relaxed) - start_;
    }

private:
    std::size_t start_;
};

} // namespace bench
