#pragma once
// Commands that run once. A command can reach its context twice: the process took it and
// died before answering (the stream hands the entry over again when it restarts), or the
// client sent it again after losing its connection. Each command carries an idempotency
// key; a command with an effect records the key and its answer in the transaction of the
// effect, so a repeat finds the answer instead of running again, and a crash between the
// two cannot leave one without the other.

#include <boost/json.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "sqlite.hpp"

namespace shop::kernel {

// The keys of the commands a context ran, with their answers, in the context's database.
class request_log {
public:
    explicit request_log(database& db) : db_(db) {}

    void create_schema() {
        db_.execute("CREATE TABLE IF NOT EXISTS requests (key TEXT PRIMARY KEY, answer TEXT NOT NULL)");
    }
    // The answer of the command that committed under `key`, if one did.
    [[nodiscard]] std::optional<boost::json::object> answer_to(std::string_view key) {
        return db_.read([&]() -> std::optional<boost::json::object> {
            statement s{db_, "SELECT answer FROM requests WHERE key = ?"};
            s.bind(key);
            if (!s.step()) return std::nullopt;
            return boost::json::parse(s.text(0)).as_object();
        });
    }
    // Inside the unit of work of the command's effect; a sqlite_error (the key's primary
    // key) if a command under the same key committed first, which rolls the effect back.
    void record(std::string_view key, const boost::json::object& answer) {
        statement{db_, "INSERT INTO requests (key, answer) VALUES (?, ?)"}
            .bind(key, boost::json::serialize(answer))
            .run();
    }

private:
    database& db_;
};

// The request a command serves: its idempotency key, if it has one, and its answer. A
// command with an effect calls record() in the effect's unit of work, before it commits.
class request {
public:
    // No key: a caller in the same process, which gets its answer or an exception directly.
    request() = default;
    request(request_log& log, std::string key) : log_(&log), key_(std::move(key)) {}

    // The command's answer, kept under the key in the current unit of work when there is one.
    void record(boost::json::object answer) {
        if (log_ && !key_.empty()) log_->record(key_, answer);
        answer_ = std::move(answer);
    }
    [[nodiscard]] const boost::json::object& answer() const noexcept { return answer_; }

private:
    request_log* log_ = nullptr;
    std::string key_;
    boost::json::object answer_;
};

} // namespace shop::kernel
