// The envelope on the wire: the optional finer times, and the hop stages a consumer takes from them.
#include <choreo/durable/hop_latency.hpp>
#include <choreo/durable/wire.hpp>

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

using namespace std::chrono_literals;
using clock_type = std::chrono::system_clock;

namespace {

std::map<std::string, std::string, std::less<>> fields_of(const choreo::envelope& env) {
    std::map<std::string, std::string, std::less<>> fields;
    for (auto& [name, value] : choreo::durable::wire_fields("test.event", 1, env)) fields[std::string{name}] = value;
    fields["payload"] = "{}";
    return fields;
}

choreo::durable::wire_envelope decode(const std::map<std::string, std::string, std::less<>>& fields) {
    return choreo::durable::decode_wire(
        [&](std::string_view name) -> const std::string* {
            auto it = fields.find(name);
            return it == fields.end() ? nullptr : &it->second;
        },
        1024);
}

choreo::envelope envelope_at(clock_type::time_point time) {
    return {choreo::event_id{1, 2}, choreo::event_id{3, 4}, choreo::correlation_key{"k"}, time, "test.event"};
}

} // namespace

TEST_CASE("the publication time travels to the microsecond, and the hand-over time with it") {
    auto published = clock_type::time_point{1'700'000'000'123'456us};
    auto before = clock_type::now();
    auto record = decode(fields_of(envelope_at(published)));
    CHECK(record.time == published);
    REQUIRE(record.sent);
    CHECK(*record.sent >= std::chrono::floor<std::chrono::microseconds>(before));
    CHECK(*record.sent <= clock_type::now());
}

TEST_CASE("a record without the finer times (an older sender) decodes to the millisecond, with no hand-over") {
    auto fields = fields_of(envelope_at(clock_type::time_point{1'700'000'000'123'456us}));
    fields.erase("time_us");
    fields.erase("sent_us");
    auto record = decode(fields);
    CHECK(record.time == clock_type::time_point{1'700'000'000'123ms});
    CHECK_FALSE(record.sent);
}

TEST_CASE("finer times that do not parse or disagree with the milliseconds are ignored, not trusted") {
    auto fields = fields_of(envelope_at(clock_type::time_point{1'700'000'000'123'456us}));
    fields["time_us"] = "1700000009999999"; // another millisecond than "time"
    fields["sent_us"] = "soon";
    auto record = decode(fields);
    CHECK(record.time == clock_type::time_point{1'700'000'000'123ms});
    CHECK_FALSE(record.sent);
    fields["sent_us"] = "-5";
    CHECK_FALSE(decode(fields).sent);
}

TEST_CASE("a hop is split into its stages by the times of the record, the read and the handler") {
    choreo::durable::hop_latency hops;
    auto t0 = clock_type::now();
    choreo::durable::wire_envelope record;
    record.time = t0;
    record.sent = t0 + 300us;
    hops.record(record, t0 + 1'000us, t0 + 1'200us, t0 + 5'000us);
    using choreo::durable::hop_stage;
    // Each stage's one duration is in the bucket of its microseconds.
    auto in_bucket_of = [&](hop_stage s, std::uint64_t micros) {
        using choreo::latency_histogram;
        return static_cast<std::uint64_t>(hops.of(s).percentile(100).count()) ==
               latency_histogram::upper_bound_of(latency_histogram::bucket_of(micros));
    };
    CHECK(in_bucket_of(hop_stage::relay, 300));
    CHECK(in_bucket_of(hop_stage::transport, 700));
    CHECK(in_bucket_of(hop_stage::queue, 200));
    CHECK(in_bucket_of(hop_stage::arrival, 1'200));
    CHECK(in_bucket_of(hop_stage::handle, 3'800));
    CHECK(in_bucket_of(hop_stage::whole, 5'000));

    record.sent.reset(); // an older sender: no relay or transport stage to tell apart
    hops.record(record, t0 + 1'000us, t0 + 1'200us, t0 + 5'000us);
    CHECK(hops.of(hop_stage::relay).total() == 1);
    CHECK(hops.of(hop_stage::transport).total() == 1);
    CHECK(hops.of(hop_stage::arrival).total() == 2);
    CHECK(hops.of(hop_stage::whole).total() == 2);

    choreo::durable::hop_latency merged;
    merged.add(hops);
    merged.add(hops);
    CHECK(merged.of(hop_stage::whole).total() == 4);
    CHECK(choreo::durable::to_string(hop_stage::transport) == "transport");
    CHECK(choreo::durable::to_string(hop_stage::arrival) == "arrival");
}
