#pragma once
/// @file
/// @brief Everything choreo offers without extra libraries to link: the core and the saga layers.

#include <choreo/core.hpp>
#include <choreo/saga.hpp>
#include <choreo/version.hpp>
