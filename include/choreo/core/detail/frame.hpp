#pragma once
// The event being handled on this thread. Publishing inside a handler reads it to give
// the new event its causation id and correlation key, so listeners write no code for
// that. The envelope of an immediately dispatched event is built only when somebody
// asks for it (a listener, the tracer, or a child event), which keeps immediate
// dispatch as cheap as a function call. Asynchronous jobs set the frame again on
// their own thread from the envelope they carry: nothing relies on thread-local
// state across an asynchronous hop.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <new>
#include <random>
#include <string_view>

#include <choreo/core/envelope.hpp>

namespace choreo::detail {

class id_source {
public:
    id_source() {
        std::random_device device;
        high_ = (std::uint64_t{device()} << 32) | device();
        if (high_ == 0) high_ = 1; // keeps every real id distinct from the nil id
    }
    [[nodiscard]] event_id next() noexcept { return {high_, next_.fetch_add(1, std::memory_order_relaxed)}; }

private:
    std::uint64_t high_ = 0;
    std::atomic<std::uint64_t> next_{1};
};

struct frame;
inline thread_local const frame* current_frame = nullptr;

struct frame {
    const frame* parent;
    std::string_view type_name;
    const correlation_key* explicit_key; // null: inherit from the parent
    id_source* ids;
    mutable const envelope* ready = nullptr;
    mutable bool owns_envelope = false;
    // Constructed only when somebody asks for the envelope: an immediate dispatch that never
    // reads it neither zeroes nor destroys one.
    union {
        mutable envelope own;
    };

    // A frame for an event whose envelope is made lazily.
    frame(std::string_view type, const correlation_key* key, id_source& source) noexcept
        : parent(current_frame), type_name(type), explicit_key(key), ids(&source) {}
    // A frame for an event whose envelope already exists (buffered or asynchronous).
    explicit frame(const envelope& existing) noexcept
        : parent(current_frame), type_name(existing.type_name), explicit_key(nullptr), ids(nullptr), ready(&existing) {}
    ~frame() {
        if (owns_envelope) own.~envelope();
    }
    frame(const frame&) = delete;
    frame& operator=(const frame&) = delete;

    [[nodiscard]] const envelope& get() const {
        if (!ready) {
            ::new (static_cast<void*>(&own)) envelope{};
            owns_envelope = true;
            fill(own, type_name, explicit_key, parent, *ids);
            ready = &own;
        }
        return *ready;
    }

    static void fill(envelope& out, std::string_view type, const correlation_key* key, const frame* cause,
                     id_source& source) {
        out.id = source.next();
        out.time = std::chrono::system_clock::now();
        out.type_name = type;
        if (cause) {
            const envelope& parent_envelope = cause->get();
            out.causation_id = parent_envelope.id;
            out.key = key && !key->empty() ? *key : parent_envelope.key;
        } else {
            out.causation_id = {};
            out.key = key ? *key : correlation_key{};
        }
    }
};

// Makes a frame current for the scope of one dispatch.
class frame_scope {
public:
    explicit frame_scope(const frame& f) noexcept : saved_(current_frame) { current_frame = &f; }
    ~frame_scope() { current_frame = saved_; }
    frame_scope(const frame_scope&) = delete;
    frame_scope& operator=(const frame_scope&) = delete;

private:
    const frame* saved_;
};

} // namespace choreo::detail
