#include "six_processes.hpp"
#include "../app/audit.hpp"
#include "../app/views.hpp"
#include "command_client.hpp"
#include "streams.hpp"

#include "../kernel/errors.hpp"

#include <choreo/saga/errors.hpp>
#include <choreo/saga/key.hpp>

#include <fmt/format.h>

#include <sstream>
#include <thread>

#include "../events/events.hpp"

namespace shop::app {

namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

namespace {
// A business rule's refusal stays one, kind and code included, as in one process.
void rethrow_refusal(const command_failed& e) {
    if (e.refusal() >= 0 && e.refusal() <= static_cast<int>(kernel::refusal::rule_violated))
        throw kernel::domain_error(static_cast<kernel::refusal>(e.refusal()), e.code(), e.what());
    if (e.code() == "busy") throw choreo::saga::saga_overloaded_error(e.what(), e.retry_after());
}
} // namespace

six_processes::six_processes(six_processes_options o)
    : options_(std::move(o)), client_(std::make_unique<command_client>(options_.redis_url, options_.prefix)) {}

six_processes::~six_processes() = default;

json::object six_processes::call(std::string op, const json::object& args, const std::string& idempotency_key) {
    try {
        return client_->call(std::move(op), args, std::chrono::seconds{30}, idempotency_key);
    } catch (const command_failed& e) {
        rethrow_refusal(e);
        throw;
    }
}

std::optional<choreo::saga::saga_record> six_processes::saga_record(const std::string& key) {
    return client_->saga(key);
}

json::object six_processes::call_process(std::string_view process, std::string op, const json::object& args,
                                         std::chrono::milliseconds timeout) {
    try {
        return client_->call(process, std::move(op), args, timeout);
    } catch (const command_failed& e) {
        rethrow_refusal(e);
        throw;
    }
}

void six_processes::wait_for_processes(std::chrono::seconds limit) {
    for (auto name : process_names) {
        try {
            (void)call_process(name, "ping", {}, limit);
        } catch (const std::exception& e) {
            throw std::runtime_error(fmt::format("the {} process did not answer: {}", name, e.what()));
        }
    }
}

void six_processes::remove_keys() { client_->remove_keys(); }

json::object six_processes::activity_of_all(std::vector<std::string>* unsettled) {
    std::uint64_t work = 0;
    std::int64_t pending = 0, delivered = 0, failed = 0, attempts = 0;
    for (auto name : process_names) {
        auto a = call_process(name, "activity", {});
        work += a.at("work").to_number<std::uint64_t>();
        if (auto* o = a.if_contains("outbox")) {
            pending += o->at("pending").to_number<std::int64_t>();
            delivered += o->at("delivered").to_number<std::int64_t>();
            failed += o->at("failed").to_number<std::int64_t>();
            if (unsettled && o->at("pending").to_number<std::int64_t>() > 0)
                unsettled->push_back(fmt::format("the {} process's outbox has rows to deliver", name));
        }
        if (auto* n = a.if_contains("attempts")) attempts = n->to_number<std::int64_t>();
        if (auto* lag = a.if_contains("kafka_lag"); unsettled && lag && lag->to_number<std::int64_t>() != 0)
            unsettled->push_back(lag->to_number<std::int64_t>() < 0
                                     ? fmt::format("the {} process cannot tell its Kafka consumers' lag yet", name)
                                     : fmt::format("the {} process has {} Kafka records to handle", name,
                                                   lag->to_number<std::int64_t>()));
    }
    return {{"work", work},
            {"outbox", json::object{{"pending", pending}, {"delivered", delivered}, {"failed", failed}}},
            {"attempts", attempts}};
}

// First every saga the flows started has ended; then the processes are asked, round after
// round, what they have done and have still to do, and the streams what is unread or
// unacknowledged, until two quiet rounds in a row find the work counts unchanged.
void six_processes::settle() {
    auto deadline = clock_type::now() + options_.settle_timeout;
    for (auto& key : sagas_started())
        if (!client_->wait_ended(key, deadline))
            throw std::runtime_error(
                fmt::format("saga {} did not end within {} s", key, options_.settle_timeout.count()));
    bool last_round_quiet = false;
    std::uint64_t quiet_work = 0; // the work count of the last quiet round
    for (;;) {
        std::vector<std::string> unsettled;
        auto work = activity_of_all(&unsettled).at("work").to_number<std::uint64_t>();
        for (auto& s : client_->unsettled_streams()) unsettled.push_back(std::move(s));
        if (unsettled.empty() && last_round_quiet && quiet_work == work) return;
        last_round_quiet = unsettled.empty();
        quiet_work = work;
        if (clock_type::now() > deadline) {
            std::string what;
            for (auto& u : unsettled) what += "\n  " + u;
            throw std::runtime_error(
                fmt::format("the processes did not settle within {} s:{}", options_.settle_timeout.count(),
                            what.empty() ? std::string{"\n  their work counts kept moving"} : what));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
}

void six_processes::fail_step(const std::string& step) {
    auto slash = step.find('/');
    if (slash == std::string::npos) throw std::invalid_argument("a step is named context/step, not '" + step + "'");
    (void)call_process(step.substr(0, slash), "fail_step", {{"step", step}});
}

json::object six_processes::state() {
    serving_databases dbs{options_.databases};
    json::object out;
    out["mode"] = to_string(mode());
    for (auto& [name, value] : dbs.contexts()) out[name] = value;
    out["card_gateway"] = dbs.card_gateway();
    json::array received;
    for (auto id : dbs.received_orders()) received.push_back(id);
    auto activity = activity_of_all(nullptr);
    out["data_platform"] =
        json::object{{"received_orders", std::move(received)}, {"attempts", activity.at("attempts")}};
    out["outbox"] = activity.at("outbox");
    return out;
}

std::vector<std::string> six_processes::check_invariants() {
    serving_databases dbs{options_.databases};
    auto contexts = dbs.contexts();
    audit_sources sources;
    sources.initial_stock = initial_stock();
    for (auto& p : contexts.at("products").as_array())
        sources.initial_stock.try_emplace(p.at("id").as_int64(), p.at("stock").as_int64() + p.at("sold").as_int64());
    sources.net_charged = [&dbs](std::int64_t order) { return dbs.net_charged(order); };
    sources.saga = [this](const std::string& key) { return client_->saga(key); };
    sources.holder = [this](const std::string& marker) { return client_->holder(marker); };
    return app::check_invariants(contexts, sources);
}

} // namespace shop::app
