#pragma once
/// @file
/// @brief The Redis layer (target choreo::redis): the connection, on hiredis and Asio, the
/// rollback-state store of sagas, events over Redis Streams, and the saga bridge between processes.

#include <choreo/redis/connection.hpp>
#include <choreo/redis/errors.hpp>
#include <choreo/redis/options.hpp>
#include <choreo/redis/reply.hpp>
#include <choreo/redis/saga_bridge.hpp>
#include <choreo/redis/saga_store.hpp>
#include <choreo/redis/streams.hpp>
