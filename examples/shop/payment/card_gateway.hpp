#pragma once
// A simulated external card gateway, as the payment context's client sees it: it can
// approve, decline, or time out. It keeps its own books, so tests can check that every
// charge that does not stand was refunded.

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>

#include <fmt/format.h>

#include "../platform/wiring.hpp"

namespace shop::payment {

class card_declined : public platform::domain_error {
public:
    using platform::domain_error::domain_error;
};
class gateway_timeout : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class card_gateway {
public:
    enum class behaviour { approve, decline, time_out };

    void set(behaviour b, std::chrono::milliseconds timeout = std::chrono::milliseconds{50}) {
        std::lock_guard lock{mutex_};
        behaviour_ = b;
        timeout_ = timeout;
    }

    // Returns the charge's reference.
    std::string charge(std::int64_t order_id, std::int64_t amount) {
        behaviour b;
        std::chrono::milliseconds wait;
        {
            std::lock_guard lock{mutex_};
            b = behaviour_;
            wait = timeout_;
        }
        if (b == behaviour::decline) throw card_declined(fmt::format("card declined for order {}", order_id));
        if (b == behaviour::time_out) {
            std::this_thread::sleep_for(wait); // the caller's timeout, simulated
            throw gateway_timeout(fmt::format("card gateway did not answer within {} ms", wait.count()));
        }
        std::lock_guard lock{mutex_};
        auto reference = fmt::format("ch_{}", ++next_);
        charges_[reference] = {order_id, amount, false};
        return reference;
    }

    void refund(const std::string& reference) {
        std::lock_guard lock{mutex_};
        auto it = charges_.find(reference);
        if (it == charges_.end()) throw std::runtime_error("unknown charge " + reference);
        it->second.refunded = true; // idempotent, as real gateways make refunds by reference
    }

    // Net amount charged for an order: charges minus refunds.
    std::int64_t net_charged(std::int64_t order_id) const {
        std::lock_guard lock{mutex_};
        std::int64_t net = 0;
        for (auto& [ref, c] : charges_)
            if (c.order_id == order_id && !c.refunded) net += c.amount;
        return net;
    }
    std::size_t charges() const {
        std::lock_guard lock{mutex_};
        return charges_.size();
    }
    std::size_t refunds() const {
        std::lock_guard lock{mutex_};
        std::size_t n = 0;
        for (auto& [ref, c] : charges_) n += c.refunded ? 1 : 0;
        return n;
    }

private:
    struct entry {
        std::int64_t order_id;
        std::int64_t amount;
        bool refunded;
    };
    mutable std::mutex mutex_;
    behaviour behaviour_ = behaviour::approve;
    std::chrono::milliseconds timeout_{50};
    std::uint64_t next_ = 0;
    std::map<std::string, entry> charges_;
};

} // namespace shop::payment
