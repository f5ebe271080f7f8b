// The composition root: builds the databases, the bus, the saga runtime and the five
// contexts for the chosen mode, and reads their state back for display and checks.

#include "shop.hpp"
#include "audit.hpp"
#include "views.hpp"

#include <atomic>
#include <csignal>
#include <limits>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <choreo/choreo.hpp>
#include <choreo/viz/wiring.hpp>

#include "../coupon/listeners.hpp"
#include "../coupon/service.hpp"
#include "../data_platform/listeners.hpp"
#include "../order/listeners.hpp"
#include "../order/service.hpp"
#include "../payment/listeners.hpp"
#include "../point/listeners.hpp"
#include "../point/service.hpp"
#include "../product/listeners.hpp"
#include "../product/service.hpp"

namespace shop::app {

namespace json = boost::json;

namespace {

constexpr std::int64_t start_of_demo = 1'796'083'200; // 2026-12-01 00:00 UTC: outputs do not depend on today

const char* const context_names[] = {"order", "product", "coupon", "point", "payment"};

std::string context_of(std::string_view listener) { return choreo::viz::node_of_listener(listener); }

} // namespace

struct shop::impl {
    config cfg;
    std::atomic<std::int64_t> now{start_of_demo};

    payment::card_gateway gateway;
    std::optional<data_platform::api> platform_api;
    choreo::saga::fault_injector faults;

    std::mutex log_mutex;
    std::vector<timeline_entry> log;
    std::vector<std::string> incident_log;
    std::map<std::thread::id, std::string> thread_names;
    std::thread::id main_thread = std::this_thread::get_id();

    std::vector<std::unique_ptr<platform::database>> databases;
    std::map<std::int64_t, std::int64_t> initial_stock;

    std::unique_ptr<choreo::bus> bus;
    choreo::saga::memory_store store;
    std::optional<choreo::saga::runtime> sagas;

    std::size_t index_of(const char* context) const {
        if (databases.size() == 1) return 0;
        for (std::size_t i = 0; i < 5; ++i)
            if (std::string_view{context_names[i]} == context) return i;
        throw std::logic_error("no database for context");
    }
    platform::database& db(const char* context) { return *databases[index_of(context)]; }
    platform::outbox& outbox_of(const char* context) { return *outbox_list[index_of(context)]; }

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

    std::optional<order::repository> orders;
    std::optional<product::repository> products;
    std::optional<coupon::repository> coupons;
    std::optional<point::repository> points;
    std::optional<payment::repository> payments;

    std::unique_ptr<choreo::saga::participant> order_p, product_p, coupon_p, point_p, payment_p;
    std::optional<platform::wiring> order_w, product_w, coupon_w, point_w, payment_w;
    std::optional<order::service> order_s;
    std::optional<product::service> product_s;
    std::optional<coupon::service> coupon_s;
    std::optional<point::service> point_s;
    // One outbox per database. OrderCompleted reaches the data platform through the order
    // database's; in saga mode every step's event comes through them too.
    std::vector<std::unique_ptr<choreo::sqlite::outbox_store>> outbox_stores;
    std::vector<std::unique_ptr<platform::outbox>> outbox_list;
    platform::outboxes durable;
    choreo::connection crash_hook;
    bool relaying = false;

    std::string thread_name(std::thread::id id) {
        if (id == main_thread) return "main";
        auto [it, inserted] = thread_names.try_emplace(id, "");
        if (inserted) it->second = fmt::format("pool-{}", thread_names.size());
        return it->second;
    }

    void on_trace(const choreo::dispatch_trace& t) {
        if (!cfg.record_timeline) return;
        if (t.listener.starts_with("choreo.")) return; // the outbox's own steps
        std::lock_guard lock{log_mutex};
        auto phase = std::string{choreo::to_string(t.listener_phase)};
        if (t.mode == choreo::delivery::asynchronous) phase += ", async";
        std::string outcome{choreo::to_string(t.outcome)};
        if (t.error) outcome += ": " + choreo::describe(t.error);
        log.push_back({std::string{t.event_type}, phase, context_of(t.listener), std::string{t.listener},
                       thread_name(t.thread), outcome, std::string{t.event_envelope.key.view()}});
    }
    // What the bus's tracer cannot show: a saga's start and fan-in, which run inside other
    // code, and each compensation (the bus sees only the rollback event that runs them).
    void on_saga_trace(const choreo::saga::saga_trace& t) {
        using choreo::saga::saga_work;
        if (!cfg.record_timeline || t.work == saga_work::step) return;
        std::lock_guard lock{log_mutex};
        const char* where = t.work == saga_work::start ? "in the command" : t.work == saga_work::join ? "fan-in" : "compensation";
        log.push_back({t.work == saga_work::compensation ? "(undo)" : "", where, context_of(t.step), std::string{t.step},
                       thread_name(t.thread), t.succeeded ? std::string{"ok"} : fmt::format("failed: {}", t.error),
                       std::string{t.saga}});
    }
    // The same in transactional mode, where the wiring reports them.
    void on_step_ran(const std::string& step, const char* where) {
        if (!cfg.record_timeline) return;
        std::lock_guard lock{log_mutex};
        log.push_back({"", where, context_of(step), step, thread_name(std::this_thread::get_id()), "ok", ""});
    }
    void on_incident(std::string line) {
        std::lock_guard lock{log_mutex};
        incident_log.push_back(std::move(line));
    }

    explicit impl(config c) : cfg(std::move(c)) {
        std::size_t count = cfg.mode == mode::saga ? 5 : 1;
        for (std::size_t i = 0; i < count; ++i) {
            std::string path = ":memory:";
            if (!cfg.directory.empty()) {
                std::filesystem::create_directories(cfg.directory);
                path = (std::filesystem::path{cfg.directory} / (count == 1 ? std::string{"shop.db"}
                                                                            : std::string{context_names[i]} + ".db"))
                           .string();
                if (!cfg.reopen) remove_database(path);
            }
            databases.push_back(std::make_unique<platform::database>(path));
        }
        std::string platform_path = ":memory:";
        if (!cfg.directory.empty()) {
            platform_path = (std::filesystem::path{cfg.directory} / "data_platform.db").string();
            if (!cfg.reopen) remove_database(platform_path);
        }
        platform_api.emplace(platform_path);
        bus = std::make_unique<choreo::bus>(choreo::bus_options{
            .threads = 2,
            .max_commit_depth = 32,
            .max_commit_events = 100'000,
            .key_lanes = 64,
            .on_incident =
                [this](const choreo::incident& i) {
                    on_incident(fmt::format("{}: {} for {}: {}", choreo::to_string(i.kind), i.listener, i.event_type,
                                            i.message));
                },
            .tracer = [this](const choreo::dispatch_trace& t) { on_trace(t); }});

        for (std::size_t i = 0; i < databases.size(); ++i) {
            outbox_stores.push_back(std::make_unique<choreo::sqlite::outbox_store>(*databases[i]));
            outbox_list.push_back(std::make_unique<platform::outbox>(
                *bus, *outbox_stores.back(),
                choreo::durable::outbox_options{.relay_name = databases.size() == 1 ? "shop" : context_names[i],
                                                .poll_interval = std::chrono::milliseconds{50}}));
            durable.add(*outbox_list.back());
        }

        orders.emplace(db("order"));
        products.emplace(db("product"));
        coupons.emplace(db("coupon"));
        points.emplace(db("point"));
        payments.emplace(db("payment"));
        orders->create_schema();
        products->create_schema();
        coupons->create_schema();
        points->create_schema();
        payments->create_schema();

        choreo::saga::fault_injector* step_faults = &faults;
        if (cfg.mode == mode::saga) {
            sagas.emplace(*bus, store,
                          choreo::saga::runtime_options{
                              .timeout = std::chrono::seconds{10},
                              .contention = {.immediate_retries = 0,
                                             .delayed_retries = 12,
                                             .initial_delay = std::chrono::milliseconds{2},
                                             .backoff_multiplier = 2.0,
                                             .max_delay = std::chrono::milliseconds{100},
                                             .is_retryable = {}},
                              .faults = &faults,
                              .on_incident =
                                  [this](const choreo::saga::saga_incident& i) {
                                      on_incident(fmt::format("saga {}: {} [{}]: {}", choreo::saga::to_string(i.kind),
                                                              i.saga, i.step, i.message));
                                  },
                              .tracer = [this](const choreo::saga::saga_trace& t) { on_saga_trace(t); }});
            order_p = std::make_unique<choreo::saga::participant>(*sagas, "order", db("order"));
            product_p = std::make_unique<choreo::saga::participant>(*sagas, "product", db("product"));
            coupon_p = std::make_unique<choreo::saga::participant>(*sagas, "coupon", db("coupon"));
            point_p = std::make_unique<choreo::saga::participant>(*sagas, "point", db("point"));
            payment_p = std::make_unique<choreo::saga::participant>(*sagas, "payment", db("payment"));
            step_faults = nullptr; // the saga runtime checks its steps itself
        }
        platform::outboxes* steps_through = cfg.mode == mode::saga ? &durable : nullptr;
        order_w.emplace(*bus, order_p.get(), step_faults, "order", steps_through);
        order_w->observe_steps([this](const std::string& step, const char* where) { on_step_ran(step, where); });
        product_w.emplace(*bus, product_p.get(), step_faults, "product", steps_through);
        coupon_w.emplace(*bus, coupon_p.get(), step_faults, "coupon", steps_through);
        point_w.emplace(*bus, point_p.get(), step_faults, "point", steps_through);
        payment_w.emplace(*bus, payment_p.get(), step_faults, "payment", steps_through);
        auto clock = [this] { return now.load(); };
        order::wire(*order_w, *orders);
        product::wire(*product_w, *products);
        coupon::wire(*coupon_w, *coupons, clock);
        point::wire(*point_w, *points);
        payment::wire(*payment_w, *payments, gateway);
        data_platform::wire(outbox_of("order"), *platform_api);
        if (cfg.start_relay) start_relay(); // after a restart, first delivers what the last run left
        if (cfg.reopen) // products from an earlier run: what they were added with is what they hold plus what they sold
            for (auto& p : db("product").read([&] { return products->all(); })) initial_stock[p.id] = p.stock + p.sold;

        order_s.emplace(*order_w, db("order"), *orders);
        product_s.emplace(*bus, db("product"), *products);
        coupon_s.emplace(*bus, db("coupon"), *coupons, clock);
        point_s.emplace(*bus, db("point"), *points);
    }

    ~impl() {
        try {
            drain();
        } catch (...) {
        }
        crash_hook.disconnect();
        outbox_list.clear(); // before the bus and the databases they use
        order_w.reset();
        product_w.reset();
        coupon_w.reset();
        point_w.reset();
        payment_w.reset();
        order_p.reset();
        product_p.reset();
        coupon_p.reset();
        point_p.reset();
        payment_p.reset();
        sagas.reset();
        bus.reset();
    }

    // Until nothing moves: the bus's (or the sagas') work, then the outboxes' pending rows
    // (a delivery or a retry on its way; a row that fails for good stops being pending),
    // whose deliveries may start more work.
    void drain() {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{30};
        for (;;) {
            if (sagas) sagas->drain();
            else bus->drain();
            if (!relaying || outbox_counts().pending == 0 || std::chrono::steady_clock::now() > deadline) {
                if (sagas) sagas->drain();
                else bus->drain();
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

    static void remove_database(const std::string& path) {
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
    }

    template <class F>
    auto read(const char* context, F&& f) {
        return db(context).read(std::forward<F>(f));
    }
};

shop::shop(config c) : impl_(std::make_unique<impl>(std::move(c))) {}
shop::~shop() = default;

app::mode shop::mode() const noexcept { return impl_->cfg.mode; }

std::int64_t shop::add_product(const std::string& name, std::int64_t price, std::int64_t stock) {
    auto id = impl_->product_s->add(name, price, stock);
    impl_->initial_stock[id] = stock;
    return id;
}

json::array shop::search_products(const std::string& name_part, std::int64_t min_price, std::int64_t max_price) {
    return products_view(impl_->product_s->search(name_part, min_price, max_price));
}

std::int64_t shop::define_coupon(const std::string& name, const std::string& type, std::int64_t amount,
                                 std::int64_t stock, std::chrono::seconds valid_for) {
    auto now = impl_->now.load();
    return impl_->coupon_s->define({0, name, type, amount, stock, 0, now - 3600, now + 30 * 86400, valid_for.count()});
}

std::int64_t shop::issue_coupon(std::int64_t coupon_id, std::int64_t user_id) {
    return impl_->coupon_s->issue(coupon_id, user_id);
}

json::array shop::coupons_of(std::int64_t user_id) {
    return coupons_view(impl_->coupon_s->of_user(user_id));
}

void shop::charge_points(std::int64_t user_id, std::int64_t amount) { impl_->point_s->charge(user_id, amount); }
std::int64_t shop::balance(std::int64_t user_id) { return impl_->point_s->balance(user_id); }

std::int64_t shop::create_order(std::int64_t user_id, const std::vector<std::pair<std::int64_t, std::int64_t>>& lines,
                                const std::vector<std::int64_t>& issued_coupon_ids) {
    std::vector<events::order_line> order_lines;
    for (auto& [product, quantity] : lines) order_lines.push_back({product, quantity});
    return impl_->order_s->create(user_id, order_lines, issued_coupon_ids);
}

void shop::pay(std::int64_t order_id, bool by_card) {
    impl_->order_s->pay(order_id, by_card ? events::payment_method::card : events::payment_method::points);
}

void shop::settle() { impl_->drain(); }
void shop::advance_clock(std::chrono::seconds by) { impl_->now += by.count(); }
void shop::fail_step(const std::string& step) {
    impl_->faults.fail(step, impl_->faults.calls(step) + 1);
}
void shop::set_card(card_behaviour b) {
    impl_->gateway.set(static_cast<payment::card_gateway::behaviour>(b));
}
void shop::crash_after_next_completion() {
    // Ordered before every other after_commit listener of the event, the outbox's wake-up
    // of its relay included: the row is committed and nothing has delivered it.
    impl_->crash_hook = impl_->bus->subscribe<events::OrderCompleted>([](const events::OrderCompleted&) { std::raise(SIGKILL); },
                                                                      {.name = "crash/after commit",
                                                                       .when = choreo::phase::after_commit,
                                                                       .order = std::numeric_limits<int>::min()});
}

void shop::start_relay() { impl_->start_relay(); }

void shop::set_data_platform(platform_behaviour b) {
    impl_->platform_api->set(static_cast<data_platform::api::behaviour>(b));
}

std::string shop::order_status(std::int64_t order_id) {
    auto o = impl_->read("order", [&] { return impl_->orders->find(order_id); });
    return o ? o->status : "NONE";
}

std::optional<json::object> shop::order(std::int64_t order_id) {
    auto o = impl_->read("order", [&] { return impl_->orders->find(order_id); });
    if (!o) return std::nullopt;
    std::optional<payment::payment> p;
    if (o->payment_id != 0) p = impl_->read("payment", [&] { return impl_->payments->find(o->payment_id); });
    return order_view(*o, payment_view(p));
}

std::optional<json::object> shop::saga(const std::string& key) {
    if (!impl_->sagas) return std::nullopt;
    auto s = impl_->sagas->state(key);
    if (!s) return std::nullopt;
    return saga_view(*s);
}

std::string shop::saga_outcome(std::int64_t order_id) {
    if (!impl_->sagas) return {};
    std::string text;
    auto describe = [&](const choreo::correlation_key& key) {
        auto s = impl_->sagas->state(key);
        if (!s) return;
        if (!text.empty()) text += "; ";
        text += fmt::format("{} {}", key.view(), choreo::saga::to_string(s->status));
        if (!s->reason.empty()) text += fmt::format(" at {}: {}", s->failed_step, s->reason);
    };
    describe(choreo::saga::key_for<events::OrderCreateStart>(std::to_string(order_id)));
    for (int attempt = 1; attempt < 10; ++attempt)
        describe(choreo::saga::key_for<events::PayStart>(fmt::format("{}#{}", order_id, attempt)));
    return text;
}

json::object shop::state() {
    auto& s = *impl_;
    json::object out;
    out["mode"] = to_string(s.cfg.mode);
    for (auto& [name, value] : read_contexts({s.db("order"), s.db("product"), s.db("coupon"), s.db("point"), s.db("payment")}))
        out[name] = value;
    out["card_gateway"] = json::object{{"charges", static_cast<std::int64_t>(s.gateway.charges())},
                                       {"refunds", static_cast<std::int64_t>(s.gateway.refunds())}};
    json::array received;
    for (auto& r : s.platform_api->received()) received.push_back(r.order_id);
    auto outbox = s.outbox_counts();
    out["data_platform"] = json::object{{"received_orders", std::move(received)},
                                        {"attempts", static_cast<std::int64_t>(s.platform_api->attempts())}};
    out["outbox"] = json::object{{"pending", outbox.pending}, {"delivered", outbox.delivered}, {"failed", outbox.failed}};
    return out;
}

std::vector<std::string> shop::check_invariants() {
    audit_sources sources{.initial_stock = impl_->initial_stock,
                          .net_charged = [this](std::int64_t order) { return impl_->gateway.net_charged(order); },
                          .saga = {},
                          .holder = {}};
    if (auto& sagas = impl_->sagas) {
        sources.saga = [&sagas](const std::string& key) { return sagas->state(key); };
        sources.holder = [&sagas](const std::string& marker) { return sagas->holder(marker); };
    }
    return app::check_invariants(state(), sources);
}

std::vector<timeline_entry> shop::timeline() {
    std::lock_guard lock{impl_->log_mutex};
    return impl_->log;
}

std::vector<std::string> shop::incidents() {
    std::lock_guard lock{impl_->log_mutex};
    return impl_->incident_log;
}

std::vector<choreo::viz::arrow> shop::wiring(const std::vector<std::string>& events) {
    choreo::viz::wiring_options options{.publishers = {}, .events = events, .node_of = {}};
    auto add = [&](const char* context, auto names) {
        for (auto n : names) options.publishers[std::string{n}].push_back(context);
    };
    add("order", order::publisher::event_names());
    add("product", product::publisher::event_names());
    add("coupon", coupon::publisher::event_names());
    add("point", point::publisher::event_names());
    add("payment", payment::publisher::event_names());
    auto registrations = impl_->bus->wiring();
    for (auto& o : impl_->outbox_list)
        for (auto& r : o->wiring()) registrations.push_back(std::move(r)); // arrows are kept once
    return choreo::viz::arrows_of(registrations, options);
}

const std::vector<std::string>& shop::steps() {
    static const std::vector<std::string> all{
        "order/create order",  "product/deduct stock", "coupon/use coupons",     "order/add items",
        "order/add coupons",   "order/confirm order",  "payment/create payment", "order/record payment",
        "order/start payment", "point/use points",     "payment/charge card",    "payment/complete payment",
        "order/complete order"};
    return all;
}

} // namespace shop::app
