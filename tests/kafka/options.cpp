// Kafka settings: a kafka:// URL, settings librdkafka refuses, an unreachable cluster, and
// SASL credentials passed through.

#include "../support/fault_log.hpp"
#include "support.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace kafka_test;
using namespace choreo::kafka;
using namespace std::chrono_literals;
using test::eventually;
using test_events::order_paid_named;
using test_events::order_paid_v2;

TEST_CASE("kafka: a kafka:// URL gives the brokers and the settings; a bad one is refused") {
    auto o = client_options::from_url("kafka://b1:9092,b2:9093?security.protocol=SASL_SSL&sasl.mechanism=PLAIN");
    CHECK(o.bootstrap_servers == "b1:9092,b2:9093");
    CHECK(o.settings.at("security.protocol") == "SASL_SSL");
    CHECK(o.settings.at("sasl.mechanism") == "PLAIN");
    for (auto bad : {"redis://127.0.0.1:6379", "kafka://", "kafka://b1:9092?novalue", "kafka://b1:9092?a=b=c",
                     "kafka://b1:9092?sasl.password=p%26q", "kafka://b1:9092/topic"}) {
        CAPTURE(bad);
        try {
            (void)client_options::from_url(bad);
            FAIL("accepted");
        } catch (const kafka_error& e) {
            CHECK(e.code() == errc::bad_configuration);
        }
    }
}

TEST_CASE("kafka: a setting librdkafka refuses is named; an unreachable cluster fails clearly and in time") {
    client_options wrong{"127.0.0.1:9", {{"no.such.setting", "1"}}, 1s, {}};
    try {
        record_producer p{wrong};
        FAIL("accepted");
    } catch (const kafka_error& e) {
        CHECK(e.code() == errc::bad_configuration);
        CHECK(std::string{e.what()}.find("no.such.setting") != std::string::npos);
    }
    wrong.settings = {{"security.protocol", "CARRIER_PIGEON"}};
    CHECK_THROWS_AS(record_producer{wrong}, kafka_error);

    // Nothing listens on port 9 (discard) of loopback here.
    // librdkafka's log lines go to the function given, not to stderr.
    std::mutex log_mutex;
    std::vector<std::string> logged;
    client_options nowhere{"127.0.0.1:9", {}, 1500ms, [&](int level, const std::string&, const std::string& message) {
                               std::lock_guard lock{log_mutex};
                               if (level <= 3) logged.push_back(message);
                           }};
    record_producer p{nowhere};
    auto started = std::chrono::steady_clock::now();
    try {
        p.check_reachable();
        FAIL("reached");
    } catch (const kafka_error& e) {
        CHECK(e.code() == errc::unreachable);
        CHECK(std::string{e.what()}.find("127.0.0.1:9") != std::string::npos);
    }
    try {
        p.send_and_wait("anything", "key", "value", {});
        FAIL("delivered");
    } catch (const kafka_error& e) {
        CHECK((e.code() == errc::delivery_failed || e.code() == errc::timeout));
    }
    CHECK(std::chrono::steady_clock::now() - started < 20s); // refused within the timeouts, not hung
    {
        std::lock_guard lock{log_mutex};
        REQUIRE_FALSE(logged.empty());
        CHECK(logged.front().find("127.0.0.1:9") != std::string::npos);
    }
    CHECK_THROWS_AS(create_topic(nowhere, "anything", 1), kafka_error);
}

TEST_CASE("kafka: SASL settings pass through: the right credentials publish and consume, wrong ones fail in time") {
    // The broker's second listener wants SASL/PLAIN.
    auto secured = [](const std::string& password, std::vector<std::string>* log) {
        auto o = client_options::from_url("kafka://" + broker().sasl_bootstrap() +
                                          "?security.protocol=SASL_PLAINTEXT&sasl.mechanism=PLAIN");
        o.settings["sasl.username"] = test_support::kafka_broker::sasl_user;
        o.settings["sasl.password"] = password; // where values with '&', '=' or '%' go
        o.timeout = 10s;
        if (log)
            o.log = [log, mutex = std::make_shared<std::mutex>()](int level, const std::string&,
                                                                  const std::string& message) {
                std::lock_guard lock{*mutex};
                if (level <= 3) log->push_back(message);
            };
        return o;
    };
    auto good = secured(test_support::kafka_broker::sasl_password, nullptr);
    REQUIRE(create_topic(good, "orders.sasl", 1));
    producer<> out{good};
    out.publish("orders.sasl", order_paid{1, 2}, envelope_for("OrderCreateStart:sasl"));
    auto reading_secured = reading("orders.sasl", "sasl");
    reading_secured.client = good;
    received_log log;
    consumer<> in{reading_secured};
    in.on<order_paid>([&](const order_paid& e, const choreo::envelope& env) { log.take(e, env); });
    in.start();
    CHECK(eventually([&] { return log.unique() == 1; }, 60s));
    in.stop();

    std::vector<std::string> said;
    auto bad = secured("not-the-password", &said);
    bad.timeout = 3s;
    auto started = std::chrono::steady_clock::now();
    record_producer refused{bad};
    CHECK_THROWS_AS(refused.check_reachable(), kafka_error);
    CHECK(std::chrono::steady_clock::now() - started < 15s);
    // The reason is in the client's log: librdkafka reports the broker's refusal there.
    bool named = eventually(
        [&] {
            for (auto& line : said)
                if (line.find("uthentication") != std::string::npos) return true;
            return false;
        },
        10s);
    CHECK_MESSAGE(named, "no authentication error logged");
}
