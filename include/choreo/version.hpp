#pragma once
/// @file
/// @brief The single source of choreo's version; CMake reads these lines.

#define CHOREO_VERSION_MAJOR 0
#define CHOREO_VERSION_MINOR 1
#define CHOREO_VERSION_PATCH 0

namespace choreo {
/// @brief The library version as major * 10000 + minor * 100 + patch.
inline constexpr int version = CHOREO_VERSION_MAJOR * 10000 + CHOREO_VERSION_MINOR * 100 + CHOREO_VERSION_PATCH;
} // namespace choreo
