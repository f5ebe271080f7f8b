#pragma once
// Versioned schema: each component (outbox, inbox) records the version of its tables in
// choreo_schema, creates them on first use, and refuses a database written by a newer
// choreo rather than misreading it.

#include <cstdint>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include <choreo/sqlite/database.hpp>

namespace choreo::sqlite::detail {

inline void ensure_schema(database& db, std::string_view component, std::int64_t version, std::string_view ddl) {
    db.transact([&] {
        db.execute("CREATE TABLE IF NOT EXISTS choreo_schema (component TEXT PRIMARY KEY, version INTEGER NOT NULL)");
        statement find{db, "SELECT version FROM choreo_schema WHERE component = ?"};
        find.bind(component);
        if (find.step()) {
            auto found = find.integer(0);
            if (found > version)
                throw sqlite_error(fmt::format("the {} tables in {} have schema version {}, newer than the {} this "
                                               "choreo knows; upgrade choreo to use this database",
                                               component, db.path(), found, version));
            if (found == version) return;
        }
        // Version 1 is the first; later versions add their migrations here, keyed by `found`.
        db.execute(ddl);
        statement record{db, "INSERT OR REPLACE INTO choreo_schema (component, version) VALUES (?, ?)"};
        record.bind(component, version).run();
    });
}

} // namespace choreo::sqlite::detail
