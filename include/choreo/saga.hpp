#pragma once
/// @file
/// @brief The saga layer: choreographed sagas with a rollback-state store, compensation,
/// in-progress markers, fan-in and timeouts. The test harness is in saga/testing.hpp.

#include <choreo/saga/errors.hpp>
#include <choreo/saga/events.hpp>
#include <choreo/saga/faults.hpp>
#include <choreo/saga/journal.hpp>
#include <choreo/saga/key.hpp>
#include <choreo/saga/memory_store.hpp>
#include <choreo/saga/observe.hpp>
#include <choreo/saga/participant.hpp>
#include <choreo/saga/runtime.hpp>
#include <choreo/saga/scheduler.hpp>
#include <choreo/saga/status.hpp>
#include <choreo/saga/store.hpp>
