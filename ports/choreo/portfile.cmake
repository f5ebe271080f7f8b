# An overlay port for the checkout it lives in (vcpkg install choreo --overlay-ports=ports).
# choreo is header-only: configure, install the headers and the package config, and fix up
# the config's location. A registry port would take SOURCE_PATH from vcpkg_from_github.
set(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../..")

set(VCPKG_BUILD_TYPE release) # header-only port

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
    FEATURES
        durable CHOREO_DURABLE
        sqlite  CHOREO_SQLITE
        redis   CHOREO_REDIS
)

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        -DCHOREO_BUILD_TESTS=OFF
        -DCHOREO_BUILD_EXAMPLES=OFF
        -DCHOREO_BUILD_BENCHMARKS=OFF
        -DCHOREO_KAFKA=OFF # a feature of its own once the shop runs on it
        -DCHOREO_POSTGRESQL=OFF # a feature of its own once the layer is complete
        ${FEATURE_OPTIONS}
)

vcpkg_cmake_install()

vcpkg_cmake_config_fixup(CONFIG_PATH share/cmake/choreo PACKAGE_NAME choreo)

file(INSTALL "${SOURCE_PATH}/LICENSE" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}" RENAME copyright)
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
