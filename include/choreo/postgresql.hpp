#pragma once
/// @file
/// @brief PostgreSQL: the database resource, the outbox and inbox stores and the saga journal (target
/// choreo::postgresql).

#include <choreo/postgresql/database.hpp>
#include <choreo/postgresql/errors.hpp>
#include <choreo/postgresql/inbox_store.hpp>
#include <choreo/postgresql/outbox_store.hpp>
#include <choreo/postgresql/outbox_wakeup.hpp>
#include <choreo/postgresql/saga_journal.hpp>
