#pragma once
// The events of one unit of work, in publication order. Nodes live in fixed blocks so
// their addresses stay put while before_commit listeners append to the buffer, and the
// blocks are kept after clear() so a reused buffer allocates nothing in steady state.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <string_view>
#include <utility>
#include <vector>

#include <choreo/core/envelope.hpp>
#include <choreo/core/type_name.hpp>

namespace choreo::detail {

struct event_ops {
    std::string_view type_name;
    void (*destroy)(void*) noexcept;
};

template <class E>
void destroy_event(void* p) noexcept {
    static_cast<E*>(p)->~E();
}

template <class E>
inline constexpr event_ops ops_for{event_type_name<E>(), &destroy_event<E>};

struct buffered_event {
    const event_ops* ops;
    std::size_t index; // detail::event_index of the event's type
    void* object;
    envelope env;
    std::uint32_t depth; // 0 for events published by the unit's owner; +1 per before_commit hop
    std::int32_t parent; // index of the event whose before_commit listener published it, or -1
};

class event_buffer {
public:
    static constexpr std::size_t block_size = 16 * 1024;

    event_buffer() = default;
    event_buffer(const event_buffer&) = delete;
    event_buffer& operator=(const event_buffer&) = delete;
    ~event_buffer() { clear(); }

    template <class E>
    buffered_event& push(E&& event, std::uint32_t depth, std::int32_t parent) {
        using T = std::remove_cvref_t<E>;
        void* node_memory = allocate(sizeof(buffered_event), alignof(buffered_event));
        void* object_memory = allocate(sizeof(T), alignof(T));
        T* object = ::new (object_memory) T(std::forward<E>(event));
        auto* node =
            ::new (node_memory) buffered_event{&ops_for<T>, event_index<T>(), object, envelope{}, depth, parent};
        nodes_.push_back(node);
        return *node;
    }

    [[nodiscard]] std::size_t size() const noexcept { return nodes_.size(); }
    [[nodiscard]] bool empty() const noexcept { return nodes_.empty(); }
    [[nodiscard]] buffered_event& operator[](std::size_t i) noexcept { return *nodes_[i]; }
    [[nodiscard]] const buffered_event& operator[](std::size_t i) const noexcept { return *nodes_[i]; }

    // Destroys the events but keeps the blocks for the next unit of work.
    void clear() noexcept {
        for (auto* node : nodes_) {
            node->ops->destroy(node->object);
            node->~buffered_event();
        }
        nodes_.clear();
        for (auto& large : large_) ::operator delete (large.first, std::align_val_t{large.second});
        large_.clear();
        block_ = 0;
        offset_ = 0;
    }

private:
    void* allocate(std::size_t size, std::size_t align) {
        if (size + align > block_size / 4) {
            void* p = ::operator new (size, std::align_val_t{align});
            large_.emplace_back(p, align);
            return p;
        }
        for (;;) {
            if (block_ < blocks_.size()) {
                auto base = reinterpret_cast<std::uintptr_t>(blocks_[block_].get());
                std::size_t aligned = (base + offset_ + align - 1) / align * align - base;
                if (aligned + size <= block_size) {
                    offset_ = aligned + size;
                    return blocks_[block_].get() + aligned;
                }
                ++block_;
                offset_ = 0;
                continue;
            }
            blocks_.push_back(std::make_unique<std::byte[]>(block_size));
        }
    }

    std::vector<buffered_event*> nodes_;
    std::vector<std::unique_ptr<std::byte[]>> blocks_;
    std::vector<std::pair<void*, std::size_t>> large_;
    std::size_t block_ = 0;
    std::size_t offset_ = 0;
};

} // namespace choreo::detail
