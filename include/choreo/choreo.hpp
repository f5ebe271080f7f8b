#pragma once
/// @file
/// @brief Everything choreo offers without extra libraries to link: the core and the saga layers.

#include <choreo/version.hpp>
#include <choreo/core.hpp>
#include <choreo/saga.hpp>
