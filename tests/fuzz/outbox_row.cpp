// libFuzzer target: an outbox row as a relay reads it back from SQLite, whatever a damaged
// or tampered database holds in it (any text in the id, type and key columns, a time of any
// size or type, any payload), then its payload decoded into its event. Reading must mark a
// row it cannot use as corrupt (outbox_row::problem), and decoding may only throw
// choreo::durable::codec_error; never a crash.
// Input: fields separated by NUL bytes: event type, listener, event id, causation id, key,
// time (8 bytes of an integer after \x01, else text), payload.

#include <choreo/durable/json_codec.hpp>
#include <choreo/sqlite/database.hpp>
#include <choreo/sqlite/outbox_store.hpp>

#include "../support/wire_events.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

using test_events::order_paid;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view input{reinterpret_cast<const char*>(data), size};
    std::array<std::string_view, 7> fields{};
    for (std::size_t i = 0; i < fields.size(); ++i) {
        auto end = i + 1 == fields.size() ? input.size() : input.find('\0');
        fields[i] = input.substr(0, end);
        if (end == std::string_view::npos || end >= input.size()) break;
        input.remove_prefix(end + 1);
    }
    static choreo::sqlite::database db{":memory:"};
    static choreo::sqlite::outbox_store store{db};
    db.execute("DELETE FROM choreo_outbox");
    try {
        choreo::sqlite::statement insert{db, "INSERT INTO choreo_outbox (event_type, listener, event_id, causation_id, "
                                             "correlation_key, event_time, payload) "
                                             "VALUES (?, ?, ?, ?, ?, ?, ?)"};
        auto time = fields[5];
        if (!time.empty() && time[0] == '\x01' && time.size() >= 9) {
            std::int64_t nanoseconds = 0;
            std::memcpy(&nanoseconds, time.data() + 1, sizeof nanoseconds);
            insert.bind(fields[0], fields[1], fields[2], fields[3], fields[4], nanoseconds, fields[6]).run();
        } else {
            insert.bind(fields[0], fields[1], fields[2], fields[3], fields[4], time, fields[6]).run();
        }
    } catch (const choreo::sqlite::sqlite_error&) {
        return 0; // the table's own constraints refused it: nothing a relay would read
    }
    auto rows = store.claim("fuzz", 10, std::chrono::system_clock::now(), std::chrono::seconds{30});
    if (rows.size() != 1) __builtin_trap(); // the row written must be the row claimed
    for (auto& row : rows) {
        if (!row.problem.empty()) continue; // reported as corrupt, as it should be
        try {
            (void)choreo::durable::json_codec{}.decode<order_paid>(row.payload);
        } catch (const choreo::durable::codec_error&) {}
    }
    return 0;
}
