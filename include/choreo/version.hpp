#pragma once
/// @file
/// @brief The single source of choreo's version; CMake reads these lines.

/// @brief Major version: incompatible API changes.
#define CHOREO_VERSION_MAJOR 0
/// @brief Minor version: compatible additions.
#define CHOREO_VERSION_MINOR 1
/// @brief Patch version: fixes.
#define CHOREO_VERSION_PATCH 0

namespace choreo {
/// @brief The library version as major * 10000 + minor * 100 + patch.
inline constexpr int version = CHOREO_VERSION_MAJOR * 10000 + CHOREO_VERSION_MINOR * 100 + CHOREO_VERSION_PATCH;
} // namespace choreo
