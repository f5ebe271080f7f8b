#pragma once
// What running a command becomes in its reply, for `shop serve`: the result, a business
// rule's refusal with its kind and code, "busy" with how long to wait (too many sagas
// running; nothing started), or any other failure in words for people.

#include "../kernel/errors.hpp"
#include "streams.hpp"

#include <boost/json.hpp>

#include <choreo/saga/errors.hpp>

#include <fmt/format.h>

#include <exception>

namespace shop::app {

// `run()` runs the command and returns its result as a JSON object.
template <class Run>
[[nodiscard]] command_reply answer_to(const command& c, Run&& run) {
    command_reply reply{c.request, false, {}, {}, -1, {}, 0};
    try {
        reply.result = boost::json::serialize(run());
        reply.ok = true;
    } catch (const kernel::domain_error& e) {
        reply.error = e.what();
        reply.refusal = static_cast<int>(e.kind());
        reply.code = e.code();
    } catch (const choreo::saga::saga_overloaded_error& e) {
        reply.error = e.what();
        reply.code = "busy";
        reply.retry_after_ms = e.retry_after().count();
    } catch (const std::exception& e) {
        reply.error = fmt::format("{} failed: {}", c.op, e.what());
    }
    return reply;
}

} // namespace shop::app
