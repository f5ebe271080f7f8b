#pragma once
/// @file
/// @brief The handlers of a transport's consumer, by event type, and what every transport
/// does with a record once its envelope is decoded: find the handler, check the schema
/// version, decode the payload, and hand the handler the event with its envelope.

#include <choreo/core/envelope.hpp>
#include <choreo/core/errors.hpp>
#include <choreo/core/type_name.hpp>
#include <choreo/durable/wire.hpp>

#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace choreo::durable::detail {

/// Not synchronized: the consumer that owns it guards it.
template <class Codec>
class handler_table {
public:
    using run_type = std::function<void(const wire_envelope&)>;

    /// @brief Registers the handler of E, decoding with `codec` (which must outlive the
    /// table). Throws usage_error if E has a handler already.
    template <class E, class Handler>
    void add(Handler handler, Codec& codec) {
        static_assert(std::is_invocable_v<Handler&, const E&, const envelope&>,
                      "a consumer's handler takes (const E&, const choreo::envelope&)");
        auto type = std::string{event_type_name<E>()};
        if (handlers_.contains(type)) throw usage_error("a handler for " + type + " is registered already");
        handlers_.emplace(
            std::move(type),
            entry{schema_version_of<E>(), [&codec, handler = std::move(handler)](const wire_envelope& e) mutable {
                      auto event = codec.template decode<E>(e.payload);
                      envelope env{e.event, e.causation, e.key.empty() ? correlation_key{} : correlation_key{e.key},
                                   e.time, event_type_name<E>()};
                      handler(event, env);
                  }});
    }

    /// @brief A record's handler, or (run null) why it has none: the record goes to the dead letters.
    struct match {
        const run_type* run = nullptr;
        std::string refusal;
    };

    /// @brief The handler for `record` in consumer group `group` (named in the refusal).
    [[nodiscard]] match find(const wire_envelope& record, std::string_view group) const {
        auto it = handlers_.find(record.type);
        if (it == handlers_.end())
            return {nullptr, "no handler for event type '" + record.type + "' in group " + std::string{group}};
        if (it->second.schema != record.schema)
            return {nullptr, "schema version " + std::to_string(record.schema) + " of " + record.type +
                                 ", but this consumer reads version " + std::to_string(it->second.schema)};
        return {&it->second.run, {}};
    }

private:
    struct entry {
        int schema = 1;
        run_type run;
    };
    std::map<std::string, entry, std::less<>> handlers_;
};

} // namespace choreo::durable::detail
