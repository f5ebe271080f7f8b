// The shop in one process: builds the databases, the bus, the saga runtime and every context
// of contexts.hpp for the chosen mode, and answers the contexts' commands in process.

#include "one_process.hpp"
#include "audit.hpp"
#include "timeline_recorder.hpp"

#include <csignal>
#include <filesystem>
#include <limits>
#include <map>
#include <thread>

#include <choreo/choreo.hpp>
#include <choreo/viz/wiring.hpp>

#include "../contexts.hpp"
#include "../data_platform/module.hpp"
#include "../kernel/context.hpp"

namespace shop::app {

namespace json = boost::json;

namespace {

constexpr std::int64_t start_of_demo = 1'796'083'200; // 2026-12-01 00:00 UTC: outputs do not depend on today

void remove_database(const std::string& path) {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
}

} // namespace

struct one_process::impl {
    // One context as it runs here: its participant (saga mode), its wiring, and its instance.
    struct running_context {
        std::unique_ptr<choreo::saga::participant> participant;
        std::optional<choreo::sqlite::reservations> reservations; // saga mode
        std::optional<kernel::wiring> wiring;
        std::optional<kernel::context_host> host;
        std::shared_ptr<void> instance;
    };

    config cfg;
    kernel::clock clock{[] { return start_of_demo; }};
    kernel::outside_systems outside{[this](std::string_view name) { return path_of(name); }};
    choreo::saga::fault_injector faults;
    timeline_recorder recorder{cfg.record_timeline};

    // Transactional mode: one database, "shop"; saga mode: one per context, named after it.
    std::map<std::string, std::unique_ptr<kernel::database>, std::less<>> databases;
    std::unique_ptr<choreo::bus> bus;
    choreo::saga::memory_store store;
    std::optional<choreo::saga::runtime> sagas;
    // One outbox per database. OrderCompleted reaches the data platform through them; in saga
    // mode every step's event comes through them too.
    std::vector<std::unique_ptr<choreo::sqlite::outbox_store>> outbox_stores;
    std::vector<std::unique_ptr<kernel::outbox>> outbox_list;
    kernel::outboxes durable;
    std::vector<std::unique_ptr<running_context>> running; // in the list's order
    kernel::command_table commands;
    choreo::connection crash_hook;
    bool relaying = false;

    explicit impl(config c) : cfg(std::move(c)) {
        if (cfg.mode == mode::saga)
            contexts::each([&](auto m) { open_database(decltype(m)::type::name); });
        else
            open_database("shop");
        bus = std::make_unique<choreo::bus>(
            choreo::bus_options{.threads = 2,
                                .max_commit_depth = 32,
                                .max_commit_events = 100'000,
                                .key_lanes = 64,
                                .on_incident =
                                    [this](const choreo::incident& i) {
                                        recorder.on_incident(fmt::format("{}: {} for {}: {}", choreo::to_string(i.kind),
                                                                         i.listener, i.event_type, i.message));
                                    },
                                .tracer = [this](const choreo::dispatch_trace& t) { recorder.on_trace(t); }});
        for (auto& [name, database] : databases) {
            request_logs[name] = std::make_unique<kernel::request_log>(*database);
            request_logs[name]->create_schema();
            outbox_stores.push_back(std::make_unique<choreo::sqlite::outbox_store>(*database));
            outbox_list.push_back(std::make_unique<kernel::outbox>(
                *bus, *outbox_stores.back(),
                choreo::durable::outbox_options{.relay_name = name, .poll_interval = std::chrono::milliseconds{50}}));
            durable.add(*outbox_list.back());
        }
        choreo::saga::fault_injector* step_faults = &faults;
        if (cfg.mode == mode::saga) {
            start_sagas();
            step_faults = nullptr; // the saga runtime checks its steps itself
        }
        kernel::outboxes* steps_through = cfg.mode == mode::saga ? &durable : nullptr;
        contexts::each([&](auto m) {
            using module = typename decltype(m)::type;
            auto& r = *running.emplace_back(std::make_unique<running_context>());
            auto& database = db(module::name);
            if (sagas)
                r.participant =
                    std::make_unique<choreo::saga::participant>(*sagas, std::string{module::name}, database);
            r.wiring.emplace(*bus, r.participant.get(), step_faults, std::string{module::name}, steps_through);
            r.wiring->observe_steps(
                [this](const std::string& step, const char* where) { recorder.on_step_ran(step, where); });
            if (sagas) r.reservations.emplace(*sagas, database);
            r.host.emplace(kernel::context_host{*bus, database, *r.wiring, clock, outside,
                                                r.reservations ? &*r.reservations : nullptr});
            auto instance = std::make_shared<typename module::instance>(*r.host);
            instance->answer(commands);
            r.instance = std::move(instance);
        });
        data_platform::module::wire(durable, outside.data_platform());
        data_platform::module::answer(commands, outside);
        // Reopened after a crash: what sagas that completed meanwhile reserved is final.
        for (auto& r : running)
            if (r->reservations) (void)r->reservations->settle_ended();
        if (cfg.start_relay) start_relay(); // after a restart, first delivers what the last run left
    }

    ~impl() {
        try {
            drain();
        } catch (...) {}
        crash_hook.disconnect();
        outbox_list.clear();                         // before the bus and the databases they use
        while (!running.empty()) running.pop_back(); // the contexts, in reverse
        sagas.reset();
        bus.reset();
    }

    std::string path_of(std::string_view name) const {
        if (cfg.directory.empty()) return ":memory:";
        std::filesystem::create_directories(cfg.directory);
        auto path = (std::filesystem::path{cfg.directory} / (std::string{name} + ".db")).string();
        if (!cfg.reopen) remove_database(path);
        return path;
    }
    void open_database(std::string_view name) {
        databases.emplace(std::string{name}, std::make_unique<kernel::database>(path_of(name)));
    }
    // The commands run under an idempotency key, and their answers, in each database.
    std::map<std::string, std::unique_ptr<kernel::request_log>, std::less<>> request_logs;
    // Where the context answering `op` keeps them; null for the data platform's settings.
    kernel::request_log* request_log_of(std::string_view op) {
        auto context = contexts::owner_of(op);
        if (context.empty()) return nullptr;
        auto& database = db(context);
        for (auto& [name, d] : databases)
            if (d.get() == &database) return request_logs.at(name).get();
        return nullptr;
    }

    kernel::database& db(std::string_view context) {
        if (databases.size() == 1) return *databases.begin()->second;
        return *databases.find(context)->second;
    }

    void start_sagas() {
        sagas.emplace(*bus, store,
                      choreo::saga::runtime_options{
                          .timeout = cfg.saga_timeout,
                          // A waiter queues (no polling), so it may wait as long as its saga may run.
                          .marker_wait = cfg.saga_timeout,
                          .max_running = cfg.max_running,
                          .faults = &faults,
                          .on_incident =
                              [this](const choreo::saga::saga_incident& i) {
                                  recorder.on_incident(fmt::format("saga {}: {} [{}]: {}",
                                                                   choreo::saga::to_string(i.kind), i.saga, i.step,
                                                                   i.message));
                              },
                          .tracer = [this](const choreo::saga::saga_trace& t) { recorder.on_saga_trace(t); }});
    }

    choreo::durable::outbox_counts outbox_counts() {
        choreo::durable::outbox_counts sum;
        for (auto& o : outbox_list) {
            auto c = o->counts();
            sum.pending += c.pending;
            sum.delivered += c.delivered;
            sum.failed += c.failed;
        }
        return sum;
    }

    // Until nothing moves: the bus's (or the sagas') work, then the outboxes' pending rows
    // (a delivery or a retry on its way; a row that fails for good stops being pending),
    // whose deliveries may start more work.
    void drain() {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
        for (;;) {
            if (sagas)
                sagas->drain();
            else
                bus->drain();
            if (!relaying || outbox_counts().pending == 0 || std::chrono::steady_clock::now() > deadline) {
                if (sagas)
                    sagas->drain();
                else
                    bus->drain();
                if (!relaying || outbox_counts().pending == 0 || std::chrono::steady_clock::now() > deadline) return;
            }
            for (auto& o : outbox_list) o->poke();
            std::this_thread::sleep_for(std::chrono::microseconds{200});
        }
    }

    void start_relay() {
        for (auto& o : outbox_list) o->start();
        relaying = true;
    }
};

one_process::one_process(config c) : impl_(std::make_unique<impl>(std::move(c))) {}
one_process::~one_process() = default;

app::mode one_process::mode() const noexcept { return impl_->cfg.mode; }

json::object one_process::call(std::string op, const json::object& args, const std::string& idempotency_key) {
    auto* command = impl_->commands.find(op);
    if (command && !idempotency_key.empty())
        if (auto* log = impl_->request_log_of(op))
            return kernel::run_once(*command, args, *log, "key " + op + " " + idempotency_key);
    // Without a key the caller gets its answer or the exception directly: nothing to repeat.
    kernel::request direct;
    if (command) return (*command)(args, direct);
    throw std::logic_error("no context of the shop answers the command '" + op + "'");
}

std::optional<choreo::saga::saga_record> one_process::saga_record(const std::string& key) {
    if (!impl_->sagas) return std::nullopt;
    return impl_->sagas->state(key);
}

void one_process::settle() { impl_->drain(); }
void one_process::fail_step(const std::string& step) { impl_->faults.fail(step, impl_->faults.calls(step) + 1); }

void one_process::crash_after_next_completion() {
    // Ordered before every other after_commit listener of the event, the outbox's wake-up
    // of its relay included: the row is committed and nothing has delivered it.
    impl_->crash_hook = impl_->bus->subscribe<events::OrderCompleted>(
        [](const events::OrderCompleted&) { std::raise(SIGKILL); },
        {.name = "crash/after commit", .when = choreo::phase::after_commit, .order = std::numeric_limits<int>::min()});
}

void one_process::start_relay() { impl_->start_relay(); }

json::object one_process::state() {
    auto& s = *impl_;
    json::object out;
    out["mode"] = to_string(s.cfg.mode);
    for (auto& [name, value] :
         read_contexts([&s](std::string_view context) -> kernel::database& { return s.db(context); }))
        out[name] = value;
    auto& gateway = s.outside.card_gateway();
    out["card_gateway"] = json::object{{"charges", static_cast<std::int64_t>(gateway.charges())},
                                       {"refunds", static_cast<std::int64_t>(gateway.refunds())}};
    auto& platform = s.outside.data_platform();
    json::array received;
    for (auto& r : platform.received()) received.push_back(r.order_id);
    auto outbox = s.outbox_counts();
    out["data_platform"] = json::object{{"received_orders", std::move(received)},
                                        {"attempts", static_cast<std::int64_t>(platform.attempts())}};
    out["outbox"] =
        json::object{{"pending", outbox.pending}, {"delivered", outbox.delivered}, {"failed", outbox.failed}};
    return out;
}

// Products from an earlier run (a restart) count as added with what they hold plus what they sold.
std::vector<std::string> one_process::check_invariants() {
    auto st = state();
    audit_sources sources{
        .initial_stock = initial_stock(),
        .net_charged = [this](std::int64_t order) { return impl_->outside.card_gateway().net_charged(order); },
        .saga = {},
        .holder = {}};
    for (auto& p : st.at("products").as_array())
        sources.initial_stock.try_emplace(p.at("id").as_int64(), p.at("stock").as_int64() + p.at("sold").as_int64());
    if (auto& sagas = impl_->sagas) {
        sources.saga = [&sagas](const std::string& key) { return sagas->state(key); };
        sources.holder = [&sagas](const std::string& marker) { return sagas->holder(marker); };
    }
    return app::check_invariants(st, sources);
}

std::vector<timeline_entry> one_process::timeline() { return impl_->recorder.timeline(); }
std::vector<std::string> one_process::incidents() { return impl_->recorder.incidents(); }

std::vector<choreo::viz::arrow> one_process::wiring(const std::vector<std::string>& events) {
    choreo::viz::wiring_options options{.publishers = {}, .events = events, .node_of = {}};
    contexts::each([&](auto m) {
        using module = typename decltype(m)::type;
        for (auto n : module::publisher::event_names()) options.publishers[std::string{n}].emplace_back(module::name);
    });
    auto registrations = impl_->bus->wiring();
    for (auto& o : impl_->outbox_list)
        for (auto& r : o->wiring()) registrations.push_back(std::move(r)); // arrows are kept once
    return choreo::viz::arrows_of(registrations, options);
}

const std::vector<std::string>& one_process::steps() {
    static const std::vector<std::string> all = [] {
        one_process registered{config{.mode = mode::saga}};
        return registered.impl_->sagas->steps();
    }();
    return all;
}

} // namespace shop::app
