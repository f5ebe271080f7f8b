// The composition root: builds the databases, the bus, the saga runtime and the five
// contexts for the chosen mode, and reads their state back for display and checks.

#include "shop.hpp"


#include <atomic>
#include <csignal>
#include <limits>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <choreo/choreo.hpp>

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

std::string context_of(std::string_view listener) {
    auto end = listener.find_first_of("/:");
    return std::string{listener.substr(0, end)};
}

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
                       thread_name(t.thread), outcome});
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
                                  }});
            order_p = std::make_unique<choreo::saga::participant>(*sagas, "order", db("order"));
            product_p = std::make_unique<choreo::saga::participant>(*sagas, "product", db("product"));
            coupon_p = std::make_unique<choreo::saga::participant>(*sagas, "coupon", db("coupon"));
            point_p = std::make_unique<choreo::saga::participant>(*sagas, "point", db("point"));
            payment_p = std::make_unique<choreo::saga::participant>(*sagas, "payment", db("payment"));
            step_faults = nullptr; // the saga runtime checks its steps itself
        }
        platform::outboxes* steps_through = cfg.mode == mode::saga ? &durable : nullptr;
        order_w.emplace(*bus, order_p.get(), step_faults, "order", steps_through);
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
    json::array found;
    for (auto& p : impl_->product_s->search(name_part, min_price, max_price))
        found.push_back(json::object{{"id", p.id}, {"name", p.name}, {"price", p.price}, {"stock", p.stock}});
    return found;
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
    json::array found;
    for (auto& c : impl_->coupon_s->of_user(user_id))
        found.push_back(json::object{{"issued_coupon", c.id},      {"coupon", c.coupon_id}, {"type", c.type},
                                     {"amount", c.amount},         {"expires_at", c.expires_at},
                                     {"used_by_order", c.used_by_order}});
    return found;
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
    out["products"] = s.read("product", [&] {
        json::array a;
        for (auto& p : s.products->all())
            a.push_back(json::object{{"id", p.id}, {"name", p.name}, {"price", p.price}, {"stock", p.stock}, {"sold", p.sold}});
        return a;
    });
    out["coupons"] = s.read("coupon", [&] {
        json::array a;
        for (auto& c : s.coupons->all_issued())
            a.push_back(json::object{{"issued_coupon", c.id},
                                     {"user", c.user_id},
                                     {"type", c.type},
                                     {"amount", c.amount},
                                     {"used_by_order", c.used_by_order}});
        return a;
    });
    out["points"] = s.read("point", [&] {
        json::array a;
        for (auto& [user, balance] : s.points->balances()) {
            auto t = s.points->history(user);
            a.push_back(json::object{{"user", user},
                                     {"balance", balance},
                                     {"charged", t.charged},
                                     {"used", t.used},
                                     {"refunded", t.refunded}});
        }
        return a;
    });
    out["payments"] = s.read("payment", [&] {
        json::array a;
        for (auto& p : s.payments->all())
            a.push_back(json::object{{"id", p.id},
                                     {"order", p.order_id},
                                     {"amount", p.amount},
                                     {"status", p.status},
                                     {"method", p.method}});
        return a;
    });
    out["orders"] = s.read("order", [&] {
        json::array a;
        for (auto id : s.orders->ids()) {
            auto o = *s.orders->find(id);
            json::array items, coupons;
            for (auto& i : o.items)
                items.push_back(json::object{{"product", i.product_id}, {"name", i.name}, {"unit_price", i.unit_price},
                                             {"quantity", i.quantity}});
            for (auto& c : o.coupons)
                coupons.push_back(json::object{{"issued_coupon", c.issued_coupon_id}, {"type", c.type}, {"amount", c.amount}});
            a.push_back(json::object{{"id", o.id},
                                     {"user", o.user_id},
                                     {"status", o.status},
                                     {"price", o.price},
                                     {"payment", o.payment_id},
                                     {"items", std::move(items)},
                                     {"coupons", std::move(coupons)}});
        }
        return a;
    });
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
    auto st = state();
    std::vector<std::string> broken;
    auto fail = [&](std::string text) { broken.push_back(std::move(text)); };

    std::map<std::int64_t, std::string> order_status;
    std::map<std::int64_t, std::int64_t> units_in_live_orders; // product -> units in CREATED or COMPLETED orders
    std::map<std::int64_t, int> coupon_uses;                    // issued coupon -> live orders using it
    for (auto& v : st["orders"].as_array()) {
        auto& o = v.as_object();
        auto id = o.at("id").as_int64();
        std::string status{o.at("status").as_string()};
        order_status[id] = status;
        if (status == "CREATE_PENDING") fail(fmt::format("order {} is still CREATE_PENDING after the flow settled", id));
        bool live = status == "CREATED" || status == "COMPLETED";
        if (!live && (!o.at("items").as_array().empty() || !o.at("coupons").as_array().empty()))
            fail(fmt::format("order {} is {} but still lists items or coupons", id, status));
        for (auto& i : o.at("items").as_array())
            if (live) units_in_live_orders[i.at("product").as_int64()] += i.at("quantity").as_int64();
        for (auto& c : o.at("coupons").as_array())
            if (live) coupon_uses[c.at("issued_coupon").as_int64()] += 1;
    }
    for (auto& v : st["products"].as_array()) {
        auto& p = v.as_object();
        auto id = p.at("id").as_int64();
        auto stock = p.at("stock").as_int64(), sold = p.at("sold").as_int64();
        if (stock < 0) fail(fmt::format("product {} has negative stock", id));
        if (stock + sold != impl_->initial_stock[id])
            fail(fmt::format("product {}: stock {} + sold {} != initial {}", id, stock, sold, impl_->initial_stock[id]));
        if (sold != units_in_live_orders[id])
            fail(fmt::format("product {}: {} sold but live orders hold {}", id, sold, units_in_live_orders[id]));
    }
    for (auto& v : st["coupons"].as_array()) {
        auto& c = v.as_object();
        auto id = c.at("issued_coupon").as_int64();
        auto used_by = c.at("used_by_order").as_int64();
        if (coupon_uses[id] > 1) fail(fmt::format("coupon {} is used by {} orders", id, coupon_uses[id]));
        bool used_by_live = used_by != 0 && (order_status[used_by] == "CREATED" || order_status[used_by] == "COMPLETED");
        if (used_by != 0 && !used_by_live)
            fail(fmt::format("coupon {} is marked used by order {}, which is {}", id, used_by,
                             order_status.count(used_by) ? order_status[used_by] : "absent"));
        if (coupon_uses[id] == 1 && !used_by_live) fail(fmt::format("coupon {} is in an order but not marked used", id));
    }
    for (auto& v : st["points"].as_array()) {
        auto& p = v.as_object();
        auto expected = p.at("charged").as_int64() - p.at("used").as_int64() + p.at("refunded").as_int64();
        if (p.at("balance").as_int64() != expected)
            fail(fmt::format("user {}: balance {} != charged - used + refunded = {}", p.at("user").as_int64(),
                             p.at("balance").as_int64(), expected));
    }
    std::map<std::int64_t, std::string> payment_of_order;
    for (auto& v : st["payments"].as_array()) {
        auto& p = v.as_object();
        auto order = p.at("order").as_int64();
        std::string status{p.at("status").as_string()};
        payment_of_order[order] = status;
        auto net = impl_->gateway.net_charged(order);
        bool paid_by_card = status == "PAID" && p.at("method").as_string() == "card";
        if (net != (paid_by_card ? p.at("amount").as_int64() : 0))
            fail(fmt::format("order {}: card net charge {} does not match its {} payment", order, net, status));
    }
    for (auto& [id, status] : order_status) {
        auto payment = payment_of_order.count(id) ? payment_of_order[id] : std::string{"none"};
        bool agrees = (status == "COMPLETED" && payment == "PAID") || (status == "CREATED" && payment == "PENDING") ||
                      (status == "CANCELLED" && (payment == "none" || payment == "CANCELLED"));
        if (!agrees) fail(fmt::format("order {} is {} but its payment is {}", id, status, payment));
    }
    if (impl_->sagas) {
        // Saga mode: every saga ended (completed, or rolled back with every compensation
        // done), and no aggregate is left marked in progress.
        for (auto& [id, status] : order_status) {
            auto create = impl_->sagas->state(choreo::saga::key_for<events::OrderCreateStart>(std::to_string(id)));
            if (create && !choreo::saga::has_ended(create->status))
                fail(fmt::format("order {}: its creation saga is still {}", id, choreo::saga::to_string(create->status)));
            for (int attempt = 1; attempt < 10; ++attempt) {
                auto pay = impl_->sagas->state(choreo::saga::key_for<events::PayStart>(fmt::format("{}#{}", id, attempt)));
                if (!pay) break;
                if (!choreo::saga::has_ended(pay->status))
                    fail(fmt::format("order {}: payment saga {} is still {}", id, attempt,
                                     choreo::saga::to_string(pay->status)));
            }
        }
        std::vector<std::string> markers;
        for (auto& v : st["products"].as_array()) markers.push_back(fmt::format("product:{}", v.at("id").as_int64()));
        for (auto& v : st["coupons"].as_array()) markers.push_back(fmt::format("coupon:{}", v.at("issued_coupon").as_int64()));
        for (auto& v : st["points"].as_array()) markers.push_back(fmt::format("points:{}", v.at("user").as_int64()));
        for (auto& v : st["payments"].as_array()) markers.push_back(fmt::format("payment:{}", v.at("id").as_int64()));
        for (auto& marker : markers)
            if (auto holder = impl_->sagas->holder(marker))
                fail(fmt::format("{} is still marked in progress by saga {}", marker, *holder));
    }
    return broken;
}

std::vector<timeline_entry> shop::timeline() {
    std::lock_guard lock{impl_->log_mutex};
    return impl_->log;
}

std::vector<std::string> shop::incidents() {
    std::lock_guard lock{impl_->log_mutex};
    return impl_->incident_log;
}

std::vector<edge> shop::wiring() {
    std::map<std::string, std::vector<std::string>> publishers; // event -> contexts publishing it
    auto add = [&](const char* context, auto names) {
        for (auto n : names) publishers[std::string{n}].push_back(context);
    };
    add("order", order::publisher::event_names());
    add("product", product::publisher::event_names());
    add("coupon", coupon::publisher::event_names());
    add("point", point::publisher::event_names());
    add("payment", payment::publisher::event_names());
    std::vector<edge> edges;
    std::set<std::tuple<std::string, std::string, std::string>> seen;
    auto registrations = impl_->bus->wiring();
    for (auto& o : impl_->outbox_list)
        for (auto& r : o->wiring()) registrations.push_back(std::move(r)); // edges are kept once
    for (auto& r : registrations) {
        if (r.event_type.starts_with("choreo.")) continue; // the saga layer's own events
        if (r.listener.starts_with("choreo.")) continue;   // the outbox's own steps
        if (r.when != choreo::phase::before_commit && r.when != choreo::phase::after_commit) continue;
        auto to = context_of(r.listener);
        for (auto& from : publishers[r.event_type]) {
            if (!seen.insert({from, to, r.event_type}).second) continue;
            bool synchronous = r.when == choreo::phase::before_commit && r.mode == choreo::delivery::synchronous;
            edges.push_back({from, to, r.event_type, r.listener, synchronous});
        }
    }
    return edges;
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
