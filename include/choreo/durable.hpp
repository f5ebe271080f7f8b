#pragma once
/// @file
/// @brief Durable delivery: the transactional outbox and relay, inbox and codecs (target choreo::durable).

#include <choreo/durable/codec.hpp>
#include <choreo/durable/hop_latency.hpp>
#include <choreo/durable/json_codec.hpp>
#include <choreo/durable/outbox.hpp>
#include <choreo/durable/store.hpp>
