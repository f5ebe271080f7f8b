#pragma once
/// @file
/// @brief SQLite: the database resource and the outbox and inbox stores (target choreo::sqlite).

#include <choreo/sqlite/database.hpp>
#include <choreo/sqlite/inbox_store.hpp>
#include <choreo/sqlite/outbox_store.hpp>
#include <choreo/sqlite/reservations.hpp>
#include <choreo/sqlite/saga_journal.hpp>
