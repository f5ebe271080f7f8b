#pragma once
// Deferred reclamation of listener snapshots, so that dispatch reads them with plain
// loads: no lock, no reference count, no read-modify-write on the hot path.
//
// Each thread that dispatches owns a slot whose state is odd while it is inside a read
// section (and changes every time it enters one). A writer that replaces a snapshot
// retires the old one together with the slots that were inside a read section at that
// moment; it frees it once each of those slots has moved on. On Linux the writer issues
// membarrier(PRIVATE_EXPEDITED), so readers need only a compiler fence; elsewhere, or
// when the call is refused, readers pay a full fence instead (see docs/decisions).

#include <atomic>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#if defined(__linux__) && !defined(CHOREO_NO_MEMBARRIER)
#include <linux/membarrier.h>
#include <sys/syscall.h>
#include <unistd.h>
#define CHOREO_HAS_MEMBARRIER 1
#else
#define CHOREO_HAS_MEMBARRIER 0
#endif

namespace choreo::detail {

struct reader_slot {
    std::atomic<std::uint64_t> state{0}; // (sequence << 1) | inside
    std::atomic<bool> owned{true};
    reader_slot* next = nullptr;
};

class reader_registry {
public:
    static reader_registry& instance() noexcept {
        static reader_registry registry;
        return registry;
    }

    // True when readers can rely on the writer's membarrier and skip their own fence.
    [[nodiscard]] bool asymmetric() const noexcept { return asymmetric_; }

    reader_slot* acquire() {
        std::lock_guard lock{mutex_};
        for (auto* slot = head_.load(std::memory_order_relaxed); slot; slot = slot->next) {
            bool expected = false;
            if (slot->owned.compare_exchange_strong(expected, true)) return slot;
        }
        auto* slot = new reader_slot; // lives as long as the process; reused after its thread ends
        slot->next = head_.load(std::memory_order_relaxed);
        head_.store(slot, std::memory_order_release);
        return slot;
    }

    void release(reader_slot* slot) noexcept { slot->owned.store(false, std::memory_order_release); }

    // Makes every reader's earlier stores visible before the writer reads the slots.
    void heavy_barrier() const noexcept {
#if CHOREO_HAS_MEMBARRIER
        if (asymmetric_) {
            syscall(__NR_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0);
            return;
        }
#endif
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }

    template <class F>
    void for_each(F&& visit) const {
        for (auto* slot = head_.load(std::memory_order_acquire); slot; slot = slot->next) visit(*slot);
    }

private:
    reader_registry() noexcept {
#if CHOREO_HAS_MEMBARRIER
        long supported = syscall(__NR_membarrier, MEMBARRIER_CMD_QUERY, 0);
        asymmetric_ = supported > 0 && (supported & MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0 &&
                      syscall(__NR_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0;
#endif
    }

    std::mutex mutex_;
    std::atomic<reader_slot*> head_{nullptr};
    bool asymmetric_ = false;
};

struct thread_reader {
    reader_slot* slot;
    std::uint64_t sequence;
    unsigned depth = 0;
    bool fence;

    thread_reader()
        : slot(reader_registry::instance().acquire()), sequence(slot->state.load(std::memory_order_relaxed) >> 1),
          fence(!reader_registry::instance().asymmetric()) {}
    ~thread_reader() { reader_registry::instance().release(slot); }
    thread_reader(const thread_reader&) = delete;
    thread_reader& operator=(const thread_reader&) = delete;
};

inline thread_reader& this_thread_reader() {
    thread_local thread_reader reader;
    return reader;
}

// RAII read section; nests.
class read_section {
public:
    read_section() : reader_(this_thread_reader()) {
        if (reader_.depth++ == 0) {
            reader_.slot->state.store((++reader_.sequence << 1) | 1u, std::memory_order_relaxed);
            if (reader_.fence)
                std::atomic_thread_fence(std::memory_order_seq_cst);
            else
                std::atomic_signal_fence(std::memory_order_seq_cst);
        }
    }
    ~read_section() {
        if (--reader_.depth == 0) reader_.slot->state.store(reader_.sequence << 1, std::memory_order_release);
    }
    read_section(const read_section&) = delete;
    read_section& operator=(const read_section&) = delete;

private:
    thread_reader& reader_;
};

// Objects waiting until no reader can still see them. Not itself thread-safe: the owner
// serialises calls (a channel does, under its rebuild mutex).
class retire_list {
public:
    retire_list() = default;
    retire_list(const retire_list&) = delete;
    retire_list& operator=(const retire_list&) = delete;
    ~retire_list() {
        for (auto& r : retired_) r.destroy(r.object);
    }

    // `object` must already be unreachable for new readers (its pointer replaced).
    void retire(void* object, void (*destroy)(void*)) {
        auto& registry = reader_registry::instance();
        registry.heavy_barrier();
        retired entry{object, destroy, {}};
        registry.for_each([&](const reader_slot& slot) {
            auto state = slot.state.load(std::memory_order_acquire);
            if (state & 1u) entry.waiting.emplace_back(&slot, state);
        });
        if (entry.waiting.empty())
            destroy(object);
        else
            retired_.push_back(std::move(entry));
        collect();
    }

    // Frees what no reader can see any more.
    void collect() {
        std::erase_if(retired_, [](retired& r) {
            std::erase_if(r.waiting, [](const auto& waiting) {
                return waiting.first->state.load(std::memory_order_acquire) != waiting.second;
            });
            if (!r.waiting.empty()) return false;
            r.destroy(r.object);
            return true;
        });
    }

    [[nodiscard]] std::size_t pending() const noexcept { return retired_.size(); }

private:
    struct retired {
        void* object;
        void (*destroy)(void*);
        std::vector<std::pair<const reader_slot*, std::uint64_t>> waiting;
    };
    std::vector<retired> retired_;
};

} // namespace choreo::detail
