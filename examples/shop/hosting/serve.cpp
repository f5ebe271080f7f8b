// `shop serve --context NAME`: one bounded context in a process of its own. It has its own
// SQLite database, bus, saga runtime and participant; its steps' events leave through its
// outbox into Redis streams, the other contexts' events arrive from those streams (a
// consumer group per step), the saga state is in Redis, and the saga bridge carries
// rollbacks and ends between the processes. Requests come as commands on a stream.

#include "six_processes.hpp"
#ifdef SHOP_WITH_HTTP
#include "http.hpp"
#endif
#include "../app/storefront.hpp"
#include "../app/views.hpp"
#include "command_answer.hpp"
#include "event_transport.hpp"
#include "hop_report.hpp"
#include "io_thread.hpp"
#include "serve_and_load.hpp"
#include "stop_watch.hpp"
#include "streams.hpp"

#include <boost/json.hpp>

#include <choreo/choreo.hpp>
#include <choreo/redis.hpp>

#include <atomic>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <tuple>
#include <type_traits>
#include <unistd.h>
#include <vector>

#include "../contexts.hpp"
#include "../data_platform/module.hpp"
#include "../kernel/context.hpp"
#include "context_events.hpp"

namespace shop::app {

namespace json = boost::json;
namespace redis = choreo::redis;

namespace {

// Every context has a process, and every process but the data platform's is a context's.
constexpr bool processes_are_the_contexts() {
    std::size_t contexts_found = 0;
    bool all_named = true;
    contexts::each([&](auto m) {
        bool named = false;
        for (auto p : process_names) named = named || p == decltype(m)::type::name;
        all_named = all_named && named;
        ++contexts_found;
    });
    return all_named && contexts_found + 1 == process_names.size();
}
static_assert(processes_are_the_contexts(), "hosting/streams.hpp's process_names and contexts.hpp disagree");
static_assert(data_platform_process == data_platform::module::name);
static_assert(web_api_process == order::module::name, "the web API is served where orders are taken");

// Raised by the stop watch (stop_watch.hpp) at the first SIGTERM or SIGINT.
stop_signal stop_requested;

class context_process {
public:
    explicit context_process(serve_options o) : options_(std::move(o)) {
        bool known = options_.context == data_platform::module::name || contexts::known(options_.context);
        if (!known) {
            std::string names;
            for (auto n : process_names) names += (names.empty() ? "" : ", ") + std::string{n};
            throw std::invalid_argument("no context '" + options_.context + "' (" + names + ")");
        }
        if (options_.directory.empty()) throw std::invalid_argument("serve needs --dir, where its database is kept");
        std::filesystem::create_directories(options_.directory);

        if (options_.context == data_platform::module::name) {
            (void)outside_.data_platform(); // its books exist from the start, for the audit to read
            using taken = data_platform::module::event;
            std::vector<std::string> publishers;
            for_each_publisher([&](std::string_view context, auto publisher) {
                for (auto n : decltype(publisher)::type::event_names())
                    if (n == choreo::event_type_name<taken>()) publishers.emplace_back(context);
            });
            transport_.consume<taken>(publishers, std::string{data_platform::module::listener},
                                      [this](const taken& e, const choreo::envelope& env) {
                                          // its inbox makes a redelivery harmless
                                          data_platform::module::take(outside_.data_platform(), e, env);
                                      });
            data_platform::module::answer(commands_, outside_);
        } else {
            build_context();
        }
        // Requests side by side, as the steps: each is a unit of work of the context's own.
        transport_.add_consumer(commands_stream(options_.prefix, options_.context), "commands", 4)
            .on<command>([this](const command& c, const choreo::envelope&) { answer(c); });
    }

    ~context_process() {
        transport_.stop();
        if (bridge_) bridge_->stop();
        if (sagas_) sagas_->drain();
        outbox_.reset(); // its relay delivers to the steps: gone before them
        // The rest goes in reverse order of declaration: contexts, wiring, bridge,
        // participant, runtime, bus, consumers, connections, and the I/O thread last.
    }

    void run() {
        if (outbox_) outbox_->start();
        if (bridge_) bridge_->start();
        transport_.start(stop_requested);
        // What a previous run of this process left unsettled (it was killed mid-saga).
        if (participant_)
            if (auto n = participant_->resume())
                fmt::print("{}: resumed {} sagas from the journal\n", options_.context, n);
        if (reservations_)
            if (auto n = reservations_->settle_ended())
                fmt::print("{}: settled the reservations of {} sagas that completed meanwhile\n", options_.context, n);
        fmt::print("{}: serving (pid {}{}), database {}, Redis {}{}\n", options_.context, ::getpid(),
                   options_.instance == "1" ? "" : ", instance " + options_.instance, path_of(options_.context),
                   transport_.redis_options().where(),
                   options_.kafka_url.empty() ? "" : ", events on " + options_.kafka_url);
        start_web_api();
        std::fflush(stdout);
        // Until the stop, which ends the wait at once: every second, the order process's
        // timers having died with it, every process sweeps for sagas past their deadline, so a
        // saga whose starter crashed is still rolled back, and announces again the rollbacks
        // still unfinished well after it (their announcement, or a participant's handling of
        // it, died with a process).
        while (!stop_requested.wait_for(std::chrono::seconds{1})) {
            if (sagas_) {
                try {
                    sagas_->expire_overdue();
                    sagas_->announce_stalled(std::chrono::seconds{5});
                } catch (const std::exception& e) {
                    fmt::print(stderr, "{}: sweeping overdue sagas failed: {}\n", options_.context, e.what());
                }
            }
        }
        fmt::print("{}: stopping, {} events of other contexts taken\n", options_.context, transport_.events_taken());
#ifdef SHOP_WITH_HTTP
        if (web_api_) web_api_->stop(); // the requests in flight are answered first
#endif
    }

private:
    // The order process may serve the web API: its requests become commands to the six
    // processes (its own included), as any client's would.
    void start_web_api() {
        if (options_.http_address.empty()) return;
        if (options_.context != web_api_process)
            throw std::invalid_argument("only the " + std::string{web_api_process} +
                                        " process serves the web API (--http)");
#ifdef SHOP_WITH_HTTP
        web_shop_ = std::make_unique<six_processes>(six_processes_options{
            .redis_url = options_.redis_url, .prefix = options_.prefix, .databases = options_.directory});
        http_options o;
        o.address = options_.http_address;
        o.port = options_.http_port;
        web_api_ = std::make_unique<http_service>(*web_shop_, o);
        web_api_->start();
        fmt::print("order: web API on {}\n", web_api_->url());
#else
        throw std::invalid_argument("this shop was built without its web API (Boost.URL)");
#endif
    }

    // What this process has done and has still to do, after waiting for its bus and its
    // scheduled saga retries to go idle: the client's settle() asks every process until the
    // work counts stop moving and nothing is pending anywhere.
    json::object activity() {
        if (sagas_) sagas_->drain();
        std::uint64_t work = transport_.events_taken();
        json::object out;
        if (auto lag = transport_.kafka_lag()) out["kafka_lag"] = *lag;
        if (outbox_) {
            auto counts = outbox_->counts();
            work += static_cast<std::uint64_t>(counts.delivered + counts.failed);
            out["outbox"] =
                json::object{{"pending", counts.pending}, {"delivered", counts.delivered}, {"failed", counts.failed}};
        }
        if (auto* platform = outside_.data_platform_if_made())
            out["attempts"] = static_cast<std::int64_t>(platform->attempts());
        out["work"] = work;
        return out;
    }

    std::string path_of(std::string_view name) const {
        return (std::filesystem::path{options_.directory} / (std::string{name} + ".db")).string();
    }

    void build_context() {
        const auto& name = options_.context;
        db_ = std::make_unique<kernel::database>(path_of(name));
        requests_ = std::make_unique<kernel::request_log>(*db_);
        requests_->create_schema();
        journal_ = std::make_unique<kernel::journal>(*db_);
        bus_ = std::make_unique<choreo::bus>(choreo::bus_options{
            .threads = 2,
            .max_commit_depth = 32,
            .max_commit_events = 100'000,
            .key_lanes = 64,
            .on_incident =
                [name](const choreo::incident& i) {
                    fmt::print(stderr, "{}: {} for {}: {}\n", name, choreo::to_string(i.kind), i.event_type, i.message);
                },
            .tracer = {}});
        outbox_store_ = std::make_unique<choreo::sqlite::outbox_store>(*db_);
        outbox_ = std::make_unique<kernel::outbox>(
            *bus_, *outbox_store_,
            choreo::durable::outbox_options{
                .relay_name = name, .relay = true, .poll_interval = std::chrono::milliseconds{50}});
        durable_.add(*outbox_);
        store_ = std::make_unique<redis::saga_store>(transport_.writer(),
                                                     redis::saga_store_options{.prefix = options_.prefix});
        sagas_.emplace(
            *bus_, *store_,
            choreo::saga::runtime_options{// A saga whose process died mid-step is rolled back at its deadline
                                          // and settled from the journals; markers outlast any running saga.
                                          .timeout = std::chrono::seconds{10},
                                          // A waiter queues (no polling): it may wait as long as its saga.
                                          .marker_wait = std::chrono::seconds{10},
                                          .max_running = options_.max_running,
                                          .marker_ttl = std::chrono::seconds{15},
                                          .faults = &faults_,
                                          .on_incident = [name](const choreo::saga::saga_incident& i) {
                                              if (i.kind == choreo::saga::saga_incident_kind::aggregate_busy)
                                                  return; // routine
                                              fmt::print(stderr, "{}: saga {}: {} [{}]: {}\n", name,
                                                         choreo::saga::to_string(i.kind), i.saga, i.step, i.message);
                                          }});
        participant_ = std::make_unique<choreo::saga::participant>(*sagas_, name, *db_);
        reservations_.emplace(*sagas_, *db_);
        bridge_.emplace(*bus_, transport_.writer(), transport_.new_reader(),
                        redis::saga_bridge_options{.stream = sagas_stream(options_.prefix), .process = name});
        wiring_.emplace(*bus_, participant_.get(), nullptr, name, &durable_);
        wiring_->journal_with(*journal_);

        // What this context publishes leaves through its outbox into a stream per event type;
        // what other contexts publish comes in from theirs. (PaymentOrderUse has two
        // publishers: the payment context's own reach its steps through its outbox, the
        // point context's through the point context's stream.)
        std::map<std::string_view, std::vector<std::string>> others; // event type -> other contexts publishing it
        for_each_publisher([&](std::string_view publisher_context, auto publisher) {
            events_of<typename decltype(publisher)::type>::each([&](auto event) {
                using E = typename decltype(event)::type;
                if (publisher_context == name)
                    transport_.export_from<E>(*outbox_);
                else
                    others[choreo::event_type_name<E>()].emplace_back(publisher_context);
            });
        });
        for_each_publisher([&](std::string_view publisher_context, auto publisher) {
            events_of<typename decltype(publisher)::type>::each([&](auto event) {
                using E = typename decltype(event)::type;
                auto it = others.find(choreo::event_type_name<E>());
                if (it != others.end() && it->second.front() == publisher_context) import_from_streams<E>(it->second);
            });
        });

        // The context itself, behind its front door, and its commands.
        contexts::each([&](auto m) {
            using module = typename decltype(m)::type;
            if (module::name != name) return;
            host_.emplace(kernel::context_host{*bus_, *db_, *wiring_, clock_, outside_, &*reservations_});
            context_ = std::make_shared<typename module::instance>(*host_);
            std::static_pointer_cast<typename module::instance>(context_)->answer(commands_);
        });
    }

    // A step of this context on an event E of other contexts reads each of their streams of E
    // in a consumer group named after the step; an entry is acknowledged once the step is done.
    template <class E>
    void import_from_streams(std::vector<std::string> publishers) {
        wiring_->import_with<E>([this, publishers](const std::string& listener,
                                                   std::function<void(const E&, const choreo::envelope&)> deliver) {
            transport_.consume<E>(publishers, listener, deliver);
        });
    }

    void answer(const command& c) {
        auto reply = answer_to(c, [&] {
            auto parsed = json::parse(c.args);
            if (!parsed.is_object()) throw kernel::domain_error("a command's arguments are a JSON object");
            // The caller's key, or the client's name (its reply stream) and its request's
            // number: the same when the stream hands the command over again, or the client
            // sends it again.
            auto key = c.key.empty() ? "request " + c.reply_to + "#" + c.request : "key " + c.op + " " + c.key;
            auto result = execute(c.op, parsed.as_object(), key);
            if (c.op == options_.die_before_reply) ::raise(SIGKILL);
            return result;
        });
        choreo::envelope env{{reply_ids_high_, ++replies_},
                             {},
                             {},
                             std::chrono::system_clock::now(),
                             choreo::event_type_name<command_reply>()};
        // The command ran: if the reply cannot be appended now (Redis away), it is tried
        // again rather than the command, which must not run twice.
        for (int attempt = 1;; ++attempt) {
            try {
                transport_.publisher().publish(c.reply_to, reply, env);
                return;
            } catch (const std::exception& e) {
                if (attempt == 30 || stop_requested.raised()) {
                    fmt::print(stderr, "{}: the reply to {} {} was lost: {}\n", options_.context, c.op, c.request,
                               e.what());
                    return;
                }
                (void)stop_requested.wait_for(std::chrono::milliseconds{200}); // then the loop gives up
            }
        }
    }

    json::object execute(const std::string& op, const json::object& args, const std::string& key) {
        const auto& name = options_.context;
        if (op == "ping") return {{"context", name}, {"pid", static_cast<std::int64_t>(::getpid())}};
        if (op == "activity") return activity();
        if (op == "hops") {
            choreo::durable::hop_latency hops;
            transport_.add_hops_to(hops);
            return hops_to_json(hops);
        }
        // The world around the shop, for the scenarios: a step's next call fails.
        if (op == "fail_step" && participant_) {
            auto step = kernel::text(args, "step");
            if (!step.starts_with(name + "/"))
                throw kernel::domain_error(fmt::format("'{}' is not a step of the {} context", step, name));
            faults_.fail(step, faults_.calls(step) + 1);
            return {};
        }
        if (auto* command = commands_.find(op)) {
            if (requests_) return kernel::run_once(*command, args, *requests_, key);
            kernel::request unkept; // the data platform's process: its commands are settings
            return (*command)(args, unkept);
        }
        throw kernel::domain_error(fmt::format("the {} process has no operation '{}'", name, op));
    }

    serve_options options_;
    std::unique_ptr<six_processes> web_shop_;
#ifdef SHOP_WITH_HTTP
    std::unique_ptr<http_service> web_api_;
#endif
    io_thread io_;
    event_transport transport_{io_, options_};
    std::uint64_t reply_ids_high_ = std::random_device{}() | (std::uint64_t{std::random_device{}()} << 32);
    std::atomic<std::uint64_t> replies_{0};

    choreo::saga::fault_injector faults_;
    // The shop's clock: the system's, moved on by the scenarios' advance_clock.
    kernel::clock clock_{[] { return static_cast<std::int64_t>(std::time(nullptr)); }};
    kernel::outside_systems outside_{[this](std::string_view name) { return path_of(name); }};

    std::unique_ptr<kernel::database> db_;
    std::unique_ptr<kernel::request_log> requests_; // the commands it ran, and their answers
    std::unique_ptr<kernel::journal> journal_;
    std::unique_ptr<choreo::bus> bus_;
    std::unique_ptr<choreo::sqlite::outbox_store> outbox_store_;
    std::unique_ptr<kernel::outbox> outbox_;
    kernel::outboxes durable_;
    std::unique_ptr<redis::saga_store> store_;
    std::optional<choreo::saga::runtime> sagas_;
    std::unique_ptr<choreo::saga::participant> participant_;
    std::optional<choreo::sqlite::reservations> reservations_;
    std::optional<redis::saga_bridge> bridge_;
    std::optional<kernel::wiring> wiring_;

    // The context this process runs, behind its front door, and the commands it answers.
    std::optional<kernel::context_host> host_;
    std::shared_ptr<void> context_;
    kernel::command_table commands_;
};

} // namespace

int serve(const serve_options& options) {
    // Declared first, so that it watches the whole stop (the process's destruction included).
    stop_watch watch{options, stop_requested};
    context_process process{options};
    process.run();
    return 0;
}

} // namespace shop::app
