#pragma once
// A small RAII layer over SQLite3 shared by every context (it is infrastructure, like the
// bus, not a context): a database that is also a choreo transactional resource, and
// prepared statements. One mutex per database serialises its transactions across
// threads, as SQLite has one writer at a time anyway.

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace shop::platform {

class sqlite_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class statement;

class database {
public:
    // ":memory:" for an in-memory database, or a file path (WAL, synchronous=NORMAL).
    explicit database(const std::string& path) {
        if (sqlite3_open_v2(path.c_str(), &handle_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                            nullptr) != SQLITE_OK) {
            std::string message = handle_ ? sqlite3_errmsg(handle_) : "out of memory";
            sqlite3_close(handle_);
            throw sqlite_error("cannot open " + path + ": " + message);
        }
        sqlite3_busy_timeout(handle_, 5000);
        execute("PRAGMA foreign_keys = ON");
        if (path != ":memory:") {
            execute("PRAGMA journal_mode = WAL");
            execute("PRAGMA synchronous = NORMAL");
        }
    }
    ~database() {
        for (auto& [sql, cached] : statements_) sqlite3_finalize(cached.handle);
        sqlite3_close_v2(handle_);
    }
    database(const database&) = delete;
    database& operator=(const database&) = delete;

    // The transactional resource: a unit of work on this database holds its lock from
    // begin() to commit() or rollback().
    void begin() {
        mutex_.lock();
        try {
            execute("BEGIN IMMEDIATE");
        } catch (...) {
            mutex_.unlock();
            throw;
        }
    }
    void commit() {
        execute("COMMIT"); // if it throws, the unit of work calls rollback() next, which releases the lock
        mutex_.unlock();
    }
    void rollback() {
        std::unique_lock lock{mutex_, std::adopt_lock};
        if (!sqlite3_get_autocommit(handle_)) sqlite3_exec(handle_, "ROLLBACK", nullptr, nullptr, nullptr);
    }

    void execute(std::string_view sql) {
        char* error = nullptr;
        if (sqlite3_exec(handle_, std::string{sql}.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
            std::string message = error ? error : "unknown error";
            sqlite3_free(error);
            throw sqlite_error(message + " in: " + std::string{sql});
        }
    }

    // Runs `read` under the database's lock: for queries outside a unit of work.
    template <class F>
    auto read(F&& read) {
        std::lock_guard lock{mutex_};
        return read();
    }

    [[nodiscard]] std::int64_t last_insert_id() const noexcept { return sqlite3_last_insert_rowid(handle_); }
    [[nodiscard]] int changes() const noexcept { return sqlite3_changes(handle_); }
    [[nodiscard]] sqlite3* handle() const noexcept { return handle_; }

private:
    friend class statement;
    // Prepared statements are kept per SQL text: preparing costs more than running most of
    // the shop's statements. One in use is not handed out again (a fresh one is prepared).
    struct cached_statement {
        sqlite3_stmt* handle = nullptr;
        bool in_use = false;
    };
    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
    };

    sqlite3_stmt* acquire(std::string_view sql, cached_statement*& cached) {
        {
            std::lock_guard lock{cache_mutex_};
            auto it = statements_.find(sql);
            if (it != statements_.end() && !it->second.in_use) {
                it->second.in_use = true;
                cached = &it->second;
                return it->second.handle;
            }
        }
        sqlite3_stmt* stmt = nullptr;
        if (sqlite3_prepare_v2(handle_, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr) != SQLITE_OK)
            throw sqlite_error(std::string{sqlite3_errmsg(handle_)} + " in: " + std::string{sql});
        std::lock_guard lock{cache_mutex_};
        auto [it, inserted] = statements_.try_emplace(std::string{sql}, cached_statement{stmt, true});
        cached = inserted ? &it->second : nullptr;
        return stmt;
    }
    void give_back(sqlite3_stmt* stmt, cached_statement* cached) noexcept {
        if (!cached) {
            sqlite3_finalize(stmt);
            return;
        }
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
        std::lock_guard lock{cache_mutex_};
        cached->in_use = false;
    }

    sqlite3* handle_ = nullptr;
    std::recursive_mutex mutex_; // recursive: a read inside a unit of work on the same thread
    std::mutex cache_mutex_;
    std::unordered_map<std::string, cached_statement, string_hash, std::equal_to<>> statements_;
};

class statement {
public:
    statement(database& db, std::string_view sql) : owner_(db), db_(db.handle()), stmt_(db.acquire(sql, cached_)) {}
    ~statement() { owner_.give_back(stmt_, cached_); }
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;

    template <class... Args>
    statement& bind(const Args&... args) {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
        int index = 0;
        (bind_one(++index, args), ...);
        return *this;
    }
    // Steps once: true while there is a row.
    bool step() {
        int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        throw sqlite_error(sqlite3_errmsg(db_));
    }
    void run() {
        while (step()) {
        }
    }
    [[nodiscard]] std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
    [[nodiscard]] std::string text(int column) const {
        auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
        return p ? std::string{p} : std::string{};
    }
    [[nodiscard]] bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

private:
    void bind_one(int index, std::int64_t value) { check(sqlite3_bind_int64(stmt_, index, value)); }
    void bind_one(int index, int value) { check(sqlite3_bind_int64(stmt_, index, value)); }
    void bind_one(int index, const std::string& value) {
        check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT));
    }
    void bind_one(int index, std::string_view value) {
        check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT));
    }
    void bind_one(int index, const char* value) { bind_one(index, std::string_view{value}); }
    void bind_one(int index, std::nullopt_t) { check(sqlite3_bind_null(stmt_, index)); }
    void check(int rc) const {
        if (rc != SQLITE_OK) throw sqlite_error(sqlite3_errmsg(db_));
    }

    database& owner_;
    sqlite3* db_;
    database::cached_statement* cached_ = nullptr;
    sqlite3_stmt* stmt_ = nullptr;
};

} // namespace shop::platform
