#pragma once
/// @file
/// @brief The core layer: events, phases, units of work, the bus and typed publishers.

#include <choreo/core/bus.hpp>
#include <choreo/core/causation.hpp>
#include <choreo/core/connection.hpp>
#include <choreo/core/delivery_info.hpp>
#include <choreo/core/envelope.hpp>
#include <choreo/core/errors.hpp>
#include <choreo/core/latency_histogram.hpp>
#include <choreo/core/listener_options.hpp>
#include <choreo/core/observe.hpp>
#include <choreo/core/phase.hpp>
#include <choreo/core/publisher.hpp>
#include <choreo/core/resource.hpp>
#include <choreo/core/type_name.hpp>
#include <choreo/core/unit_of_work.hpp>
