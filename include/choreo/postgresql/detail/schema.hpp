#pragma once
// Versioned schema, as on SQLite: each component (outbox, inbox, journal) records the
// version of its tables in choreo_schema, creates them on first use, and refuses a database
// written by a newer choreo rather than misreading it. Several processes starting at once on
// one database take turns through a transaction-scoped advisory lock.

#include <cstdint>
#include <string_view>

#include <fmt/format.h>

#include <choreo/postgresql/database.hpp>

namespace choreo::postgresql::detail {

inline void ensure_schema(database& db, std::string_view component, std::int64_t version, std::string_view ddl) {
    db.transact([&] {
        // hashtext() of a fixed name: the same lock in every choreo process.
        (void)db.execute("SELECT pg_advisory_xact_lock(hashtext('choreo_schema'))");
        (void)db.execute("CREATE TABLE IF NOT EXISTS choreo_schema (component TEXT PRIMARY KEY, version BIGINT NOT "
                         "NULL)");
        auto found = db.query("SELECT version FROM choreo_schema WHERE component = $1", {component});
        if (found.rows() == 1) {
            auto current = found.integer(0, 0);
            if (current > version)
                throw postgresql_error(failure::other, {},
                                       fmt::format("the {} tables have schema version {}, newer than the {} this "
                                                   "choreo knows; upgrade choreo to use this database",
                                                   component, current, version));
            if (current == version) return;
        }
        // Version 1 is the first; later versions add their migrations here, keyed by `current`.
        (void)db.execute(ddl);
        (void)db.query("INSERT INTO choreo_schema (component, version) VALUES ($1, $2) "
                       "ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version",
                       {component, version});
    });
}

} // namespace choreo::postgresql::detail
