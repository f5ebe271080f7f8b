#pragma once
/// @file
/// @brief Events over Redis Streams: a versioned envelope per entry, a publisher (XADD with
/// a trimming policy) and a consumer per consumer group that acknowledges an entry only
/// after its handler returned, retries, reclaims the entries of crashed consumers and moves
/// what cannot be handled to a dead-letter stream with the reason.

#include <choreo/redis/stream_consumer.hpp>
#include <choreo/redis/stream_publisher.hpp>
