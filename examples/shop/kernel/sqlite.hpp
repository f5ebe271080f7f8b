#pragma once
// The shop's SQLite layer is choreo's (choreo/sqlite/database.hpp): a database that is also
// a transactional resource, with cached prepared statements. The outbox and inbox write
// through the same connection, so the contexts use the very same class.

#include <choreo/sqlite/database.hpp>

namespace shop::kernel {

using choreo::sqlite::database;
using choreo::sqlite::sqlite_error;
using choreo::sqlite::statement;

} // namespace shop::kernel
