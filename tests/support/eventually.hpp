#pragma once
// Waits for a condition that other threads make true (a consumer's count, a saga's end),
// polling, up to a limit: tests assert the outcome, never how long it took.

#include <chrono>
#include <thread>

namespace test_support {

template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds limit = std::chrono::seconds{10}) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (!done()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds{5});
    }
    return true;
}

} // namespace test_support
