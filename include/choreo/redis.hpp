#pragma once
/// @file
/// @brief The Redis layer (target choreo::redis): so far its connection, on hiredis and Asio.

#include <choreo/redis/connection.hpp>
#include <choreo/redis/errors.hpp>
#include <choreo/redis/options.hpp>
#include <choreo/redis/reply.hpp>
