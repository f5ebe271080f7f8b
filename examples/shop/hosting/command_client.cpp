#include "command_client.hpp"

#include "../contexts.hpp"
#include "../data_platform/module.hpp"
#include "io_thread.hpp"
#include "serve_and_load.hpp"
#include "streams.hpp"

#include <choreo/redis.hpp>

#include <condition_variable>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <unistd.h>

namespace shop::app {

namespace json = boost::json;
namespace redis = choreo::redis;
using clock_type = std::chrono::steady_clock;

namespace {

redis::connection_options connection_options(const std::string& url) {
    auto o = redis::parse_url(url);
    o.client_name = "shop-client";
    o.wait_for_server = std::chrono::minutes{2};
    return o;
}

redis::stream_consumer_options consumer_options(std::string stream, std::string group) {
    redis::stream_consumer_options c;
    c.stream = std::move(stream);
    c.group = std::move(group);
    c.consumer = "client";
    c.block = std::chrono::milliseconds{200};
    return c;
}

// A glob pattern matching exactly the keys that start with `prefix`.
std::string keys_under(std::string_view prefix) {
    std::string pattern;
    for (char c : prefix) {
        if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') pattern += '\\';
        pattern += c;
    }
    return pattern + "*";
}

// A field of a flat [name, value, name, value...] reply, or nullptr.
const redis::reply* field(const redis::reply& pairs, std::string_view name) {
    for (std::size_t i = 0; i + 1 < pairs.elements.size(); i += 2)
        if (pairs.elements[i].text == name) return &pairs.elements[i + 1];
    return nullptr;
}

} // namespace

struct command_client::impl {
    impl(const std::string& url, std::string p)
        : prefix(std::move(p)), client(fmt::format("client-{}-{}", ::getpid(), std::random_device{}())),
          options(connection_options(url)), writer(io.executor(), options), reply_reader(io.executor(), options),
          saga_reader(io.executor(), options), publisher(writer),
          replies(reply_reader, consumer_options(replies_stream(prefix, client), "client")),
          sagas(saga_reader, consumer_options(sagas_stream(prefix), client)),
          store(writer, redis::saga_store_options{.prefix = prefix}) {}

    // Every key under the prefix of the given type ("" for any).
    std::vector<std::string> scan(std::string_view type) {
        std::vector<std::string> keys;
        std::string cursor = "0";
        auto pattern = keys_under(prefix);
        do {
            std::vector<std::string_view> args{"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"};
            if (!type.empty()) {
                args.push_back("TYPE");
                args.push_back(type);
            }
            auto r = writer.command(args).value();
            if (r.elements.size() != 2) throw std::runtime_error("SCAN answered with an unexpected shape");
            cursor = r.elements[0].as_string();
            for (auto& key : r.elements[1].elements) keys.push_back(key.as_string());
        } while (cursor != "0");
        return keys;
    }

    std::string prefix;
    std::string client;
    io_thread io;
    redis::connection_options options;
    redis::connection writer;
    redis::connection reply_reader;
    redis::connection saga_reader;
    redis::stream_publisher<> publisher;
    redis::stream_consumer<> replies;
    redis::stream_consumer<> sagas;
    redis::saga_store store;
    std::atomic<std::uint64_t> found_in_store{0};
    std::uint64_t ids_high = std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32);
    std::atomic<std::uint64_t> requests{0};
    std::mutex mutex;
    std::map<std::string, std::promise<command_reply>> waiting;
    std::map<std::string, choreo::saga::saga_status> ended;
    // A thread in wait_ended, woken only by its own saga's end: the stream carries every
    // saga's end, and waking every waiter on each one cost the load more CPU than its orders.
    std::multimap<std::string, std::condition_variable*> end_waiters;
};

command_client::command_client(const std::string& redis_url, std::string prefix)
    : impl_(std::make_unique<impl>(redis_url, std::move(prefix))) {
    auto& s = *impl_;
    s.replies.on<command_reply>([&s](const command_reply& r, const choreo::envelope&) {
        std::lock_guard lock{s.mutex};
        if (auto it = s.waiting.find(r.request); it != s.waiting.end()) {
            it->second.set_value(r);
            s.waiting.erase(it);
        }
    });
    s.sagas.on<choreo::saga::saga_ended>([&s](const choreo::saga::saga_ended& e, const choreo::envelope&) {
        std::lock_guard lock{s.mutex};
        s.ended[e.key] = e.outcome;
        auto [first, last] = s.end_waiters.equal_range(e.key);
        for (auto it = first; it != last; ++it) it->second->notify_one();
    });
    s.sagas.on<choreo::saga::saga_rolled_back>([](const choreo::saga::saga_rolled_back&, const choreo::envelope&) {});
    s.replies.start();
    s.sagas.start();
}

command_client::~command_client() {
    impl_->replies.stop();
    impl_->sagas.stop();
    // Nobody reads this client's replies or its group of the sagas stream again.
    try {
        (void)impl_->writer.command({"DEL", replies_stream(impl_->prefix, impl_->client)});
        (void)impl_->writer.command({"XGROUP", "DESTROY", sagas_stream(impl_->prefix), impl_->client});
    } catch (...) {}
}

json::object command_client::call(std::string op, const json::object& args, std::chrono::milliseconds timeout,
                                  const std::string& idempotency_key) {
    auto owner = contexts::owner_of(op);
    for (auto c : data_platform::module::commands)
        if (c == op) owner = data_platform::module::name;
    if (owner.empty()) throw std::invalid_argument("no process answers the command '" + op + "'");
    return call(owner, std::move(op), args, timeout, idempotency_key);
}

json::object command_client::call(std::string_view context, std::string op, const json::object& args,
                                  std::chrono::milliseconds timeout, const std::string& idempotency_key) {
    auto& s = *impl_;
    auto number = ++s.requests;
    auto request = std::to_string(number);
    std::future<command_reply> answer;
    {
        std::lock_guard lock{s.mutex};
        answer = s.waiting[request].get_future();
    }
    command c{request, replies_stream(s.prefix, s.client), std::move(op), json::serialize(args), idempotency_key};
    // Keyed by the client and its request: a serving process runs different requests side
    // by side (they are independent: a client waits for each answer before it goes on).
    choreo::envelope env{{s.ids_high, number},
                         {},
                         choreo::correlation_key{s.client + ":" + request},
                         std::chrono::system_clock::now(),
                         choreo::event_type_name<command>()};
    // Sent again if the connection dropped with it in flight: a command may then run
    // twice, and the second answer to the same request is ignored.
    for (int attempt = 1;; ++attempt) {
        try {
            s.publisher.publish(commands_stream(s.prefix, context), c, env);
            break;
        } catch (const redis::redis_error& e) {
            bool lost = e.code() == redis::errc::connection_lost || e.code() == redis::errc::timeout;
            if (!lost || attempt == 10) throw;
        }
    }
    if (answer.wait_for(timeout) != std::future_status::ready) {
        std::lock_guard lock{s.mutex};
        s.waiting.erase(request);
        throw std::runtime_error(
            fmt::format("no answer from the {} process to {} within {} ms", context, c.op, timeout.count()));
    }
    auto reply = answer.get();
    if (!reply.ok)
        throw command_failed(reply.error, reply.refusal, reply.code, std::chrono::milliseconds{reply.retry_after_ms});
    return json::parse(reply.result).as_object();
}

std::optional<choreo::saga::saga_status> command_client::wait_ended(const std::string& key,
                                                                    clock_type::time_point deadline) {
    auto& s = *impl_;
    for (;;) {
        auto next_look = std::min(deadline, clock_type::now() + std::chrono::seconds{1});
        {
            std::unique_lock lock{s.mutex};
            std::condition_variable ended_here;
            auto waiter = s.end_waiters.emplace(key, &ended_here);
            bool heard = ended_here.wait_until(lock, next_look, [&] { return s.ended.contains(key); });
            s.end_waiters.erase(waiter);
            if (heard) return s.ended[key];
        }
        auto status = s.store.status(key);
        if (status && choreo::saga::has_ended(*status)) {
            ++s.found_in_store;
            return status;
        }
        if (clock_type::now() >= deadline) return std::nullopt;
    }
}

std::uint64_t command_client::found_in_store() const noexcept { return impl_->found_in_store.load(); }

std::optional<choreo::saga::saga_record> command_client::saga(const std::string& key) { return impl_->store.get(key); }

std::optional<std::string> command_client::holder(const std::string& marker) {
    return impl_->store.holder(marker, std::chrono::system_clock::now());
}

std::vector<std::string> command_client::unsettled_streams() {
    auto& s = *impl_;
    std::vector<std::string> left;
    auto commands = commands_stream(s.prefix, ""), replies = replies_stream(s.prefix, "");
    for (auto& stream : s.scan("stream")) {
        if (stream.starts_with(commands) || stream.starts_with(replies)) continue;
        auto groups = s.writer.command({"XINFO", "GROUPS", stream}).value();
        std::optional<std::string> last_written; // asked for only when a group's lag is unknown
        for (auto& group : groups.elements) {
            auto* name = field(group, "name");
            auto* pending = field(group, "pending");
            auto* lag = field(group, "lag");
            auto* last_read = field(group, "last-delivered-id");
            if (!name || !pending || !last_read)
                throw std::runtime_error("XINFO GROUPS answered with an unexpected shape");
            std::int64_t unread = 0;
            if (lag && lag->type == choreo::redis::reply::kind::integer) {
                unread = lag->integer;
            } else { // Redis cannot tell the lag (entries were deleted): compare the ids
                if (!last_written) {
                    auto info = s.writer.command({"XINFO", "STREAM", stream}).value();
                    auto* id = field(info, "last-generated-id");
                    last_written = id ? id->text : std::string{};
                }
                unread = *last_written != last_read->text ? 1 : 0;
            }
            if (pending->integer > 0 || unread > 0)
                left.push_back(fmt::format("{}: group {} has {} pending, {} unread", stream, name->text,
                                           pending->integer, unread));
        }
    }
    return left;
}

void command_client::remove_keys() {
    impl_->replies.stop(); // a reader would create its stream and group again
    impl_->sagas.stop();
    for (auto& key : impl_->scan("")) (void)impl_->writer.command({"UNLINK", key}).value();
}

} // namespace shop::app
