#pragma once
/// @file
/// @brief Everything choreo offers without extra libraries to link.

#include <choreo/version.hpp>
#include <choreo/core.hpp>
