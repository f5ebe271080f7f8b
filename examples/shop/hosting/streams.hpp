#pragma once
// The shop as separate processes: what travels between them through Redis, and where.
//   {prefix}events:{context}:{type}
//                              the events of one type a context publishes, from its outbox;
//                              one consumer group per subscribing step (the step's name);
//                              with --kafka, a Kafka topic of that name instead (events_topic)
//   {prefix}sagas              the saga bridge: rollbacks and ends, one group per process
//   {prefix}commands:{context} requests to a context (create an order, add a product...)
//   {prefix}replies:{client}   the answers, one stream per client
// Commands carry their arguments and results as JSON text, so one pair of types serves
// every operation; the events keep their own types and schema versions.

#include <boost/describe/class.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace shop::app {

struct command {
    static constexpr std::string_view choreo_event_name = "shop.command";
    std::string request;  // the client's id for it, echoed in the reply
    std::string reply_to; // the stream the reply goes to
    std::string op;       // "create_order", "pay", "add_product", ...
    std::string args;     // a JSON object
    // The caller's idempotency key (an HTTP request's Idempotency-Key): a command with an
    // effect runs once per key. Empty: the client's name and request number are the key.
    std::string key;
};
BOOST_DESCRIBE_STRUCT(command, (), (request, reply_to, op, args, key))

struct command_reply {
    static constexpr std::string_view choreo_event_name = "shop.reply";
    std::string request;
    bool ok = false;
    std::string result; // JSON, when ok
    std::string error;  // for people, when not
    // When a business rule refused it: the kernel::refusal, as a number, and the code;
    // -1 and empty for any other failure.
    int refusal = -1;
    std::string code;
    // "busy" (too many sagas running): when to try again.
    std::int64_t retry_after_ms = 0;
};
BOOST_DESCRIBE_STRUCT(command_reply, (), (request, ok, result, error, refusal, code, retry_after_ms))

// The process of the data platform, which takes completed orders to the outside data platform.
inline constexpr std::string_view data_platform_process = "data_platform";
// The processes of `shop serve --context NAME`: the five contexts (contexts.hpp, whose list
// serve.cpp checks this against at compile time) and the data platform. The one list of
// process names: the child processes, the clients and the load go over it.
inline constexpr std::array<std::string_view, 6> process_names{"order", "product", "coupon",
                                                               "point", "payment", data_platform_process};
// The process that may serve the web API (`--http`): the one whose context takes orders.
inline constexpr std::string_view web_api_process = process_names[0];

inline std::string events_stream(std::string_view prefix, std::string_view context, std::string_view type) {
    return std::string{prefix} + "events:" + std::string{context} + ":" + std::string{type};
}
// With --kafka, the events of one type a context publishes go to this topic instead (Kafka
// names allow letters, digits, '.', '_' and '-': anything else becomes '.').
inline std::string events_topic(std::string_view prefix, std::string_view context, std::string_view type) {
    auto name = events_stream(prefix, context, type);
    for (auto& c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            c = '.';
    return name;
}
inline std::string sagas_stream(std::string_view prefix) { return std::string{prefix} + "sagas"; }
inline std::string commands_stream(std::string_view prefix, std::string_view context) {
    return std::string{prefix} + "commands:" + std::string{context};
}
inline std::string replies_stream(std::string_view prefix, std::string_view client) {
    return std::string{prefix} + "replies:" + std::string{client};
}

} // namespace shop::app
