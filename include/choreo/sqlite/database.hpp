#pragma once
/// @file
/// @brief A SQLite connection that is a choreo transactional resource, and prepared statements.
///
/// Part of the choreo::sqlite target (it links SQLite3). The outbox and inbox stores write
/// through the same connection as the business data, so their rows commit with it.

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>

#include <choreo/core/errors.hpp>

namespace choreo::sqlite {

/// @brief A failure reported by SQLite (the message includes SQLite's and the statement).
class sqlite_error : public choreo::error {
public:
    using choreo::error::error;
};

class statement;

/// @brief One SQLite connection that is also a choreo transactional resource.
///
/// Thread-safe: a unit of work on it holds its (recursive) lock from begin() to commit()
/// or rollback(), and read() and the stores take the same lock, so threads sharing one
/// database take turns, as SQLite's single writer would make them anyway. Prepared
/// statements are cached per SQL text.
class database {
public:
    /// @brief Opens (creating) ":memory:" or a file; a file gets WAL and synchronous=NORMAL.
    explicit database(const std::string& path) : path_(path) {
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

    /// @brief Takes the lock and begins an immediate transaction (the resource's begin).
    void begin() {
        mutex_.lock();
        try {
            execute("BEGIN IMMEDIATE");
        } catch (...) {
            mutex_.unlock();
            throw;
        }
    }
    /// @brief Commits and releases the lock; on failure the unit of work calls rollback() next.
    void commit() {
        execute("COMMIT"); // if it throws, the unit of work calls rollback() next, which releases the lock
        mutex_.unlock();
    }
    /// @brief Rolls back (when a transaction is open) and releases the lock.
    void rollback() {
        std::unique_lock lock{mutex_, std::adopt_lock};
        if (!sqlite3_get_autocommit(handle_)) sqlite3_exec(handle_, "ROLLBACK", nullptr, nullptr, nullptr);
    }

    /// @brief Runs one or more statements with no result (a sqlite_error on failure).
    void execute(std::string_view sql) {
        char* error = nullptr;
        if (sqlite3_exec(handle_, std::string{sql}.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
            std::string message = error ? error : "unknown error";
            sqlite3_free(error);
            throw sqlite_error(message + " in: " + std::string{sql});
        }
    }

    /// @brief Runs `read` under the database's lock: for queries outside a unit of work.
    template <class F>
    auto read(F&& read) {
        std::lock_guard lock{mutex_};
        return read();
    }

    /// @brief Runs `work` in a transaction of its own under the lock: committed when it
    /// returns, rolled back when it throws. Not for use inside a unit of work on this database.
    template <class F>
    auto transact(F&& work) {
        std::lock_guard lock{mutex_};
        if (!sqlite3_get_autocommit(handle_))
            throw sqlite_error("a transaction is already open on " + path_ + " on this thread");
        execute("BEGIN IMMEDIATE");
        try {
            if constexpr (std::is_void_v<decltype(work())>) {
                work();
                execute("COMMIT");
            } else {
                auto result = work();
                execute("COMMIT");
                return result;
            }
        } catch (...) {
            if (!sqlite3_get_autocommit(handle_)) sqlite3_exec(handle_, "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    }

    /// @brief The rowid of the last insert on this connection.
    [[nodiscard]] std::int64_t last_insert_id() const noexcept { return sqlite3_last_insert_rowid(handle_); }
    /// @brief Rows changed by the last statement.
    [[nodiscard]] int changes() const noexcept { return sqlite3_changes(handle_); }
    /// @brief The SQLite handle, for what this class does not wrap.
    [[nodiscard]] sqlite3* handle() const noexcept { return handle_; }
    /// @brief The path it was opened with.
    [[nodiscard]] const std::string& path() const noexcept { return path_; }

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

    std::string path_;
    sqlite3* handle_ = nullptr;
    std::recursive_mutex mutex_; // recursive: a read inside a unit of work on the same thread
    std::mutex cache_mutex_;
    std::unordered_map<std::string, cached_statement, string_hash, std::equal_to<>> statements_;
};

/// @brief A prepared statement taken from the database's cache for one use (RAII).
class statement {
public:
    /// @brief Prepares `sql`, or takes it from the cache.
    statement(database& db, std::string_view sql) : owner_(db), db_(db.handle()), stmt_(db.acquire(sql, cached_)) {}
    ~statement() { owner_.give_back(stmt_, cached_); }
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;

    /// @brief Binds the parameters in order (integers, text, std::nullopt for NULL).
    template <class... Args>
    statement& bind(const Args&... args) {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
        int index = 0;
        (bind_one(++index, args), ...);
        return *this;
    }
    /// @brief Steps once: true while there is a row.
    bool step() {
        int rc = sqlite3_step(stmt_);
        if (rc == SQLITE_ROW) return true;
        if (rc == SQLITE_DONE) return false;
        throw sqlite_error(sqlite3_errmsg(db_));
    }
    /// @brief Steps to the end.
    void run() {
        while (step()) {}
    }
    /// @brief Column `column` of the current row as an integer.
    [[nodiscard]] std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
    /// @brief Column `column` of the current row as text (empty for NULL).
    [[nodiscard]] std::string text(int column) const {
        auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
        return p ? std::string{p} : std::string{};
    }
    /// @brief True when column `column` of the current row is NULL.
    [[nodiscard]] bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

private:
    void bind_one(int index, std::int64_t value) { check(sqlite3_bind_int64(stmt_, index, value)); }
    void bind_one(int index, int value) { check(sqlite3_bind_int64(stmt_, index, value)); }
    void bind_one(int index, const std::string& value) {
        check(sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT));
    }
    void bind_one(int index, std::string_view value) {
        // An empty view may have no data pointer, which SQLite would bind as NULL.
        const char* text = value.data() ? value.data() : "";
        check(sqlite3_bind_text(stmt_, index, text, static_cast<int>(value.size()), SQLITE_TRANSIENT));
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

} // namespace choreo::sqlite
