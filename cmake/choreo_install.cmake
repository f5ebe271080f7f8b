include(CMakePackageConfigHelpers)

set(choreo_installed_targets choreo)
if(CHOREO_HAS_DURABLE)
  list(APPEND choreo_installed_targets choreo_durable)
endif()
if(CHOREO_HAS_SQLITE)
  list(APPEND choreo_installed_targets choreo_sqlite)
endif()
if(CHOREO_HAS_REDIS)
  list(APPEND choreo_installed_targets choreo_redis)
endif()
if(CHOREO_HAS_KAFKA)
  list(APPEND choreo_installed_targets choreo_kafka)
endif()
install(TARGETS ${choreo_installed_targets} EXPORT choreoTargets)
install(DIRECTORY include/choreo DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(choreo_cmake_dir ${CMAKE_INSTALL_DATADIR}/cmake/choreo)
install(EXPORT choreoTargets NAMESPACE choreo:: DESTINATION ${choreo_cmake_dir})

configure_package_config_file(cmake/choreoConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/choreoConfig.cmake
  INSTALL_DESTINATION ${choreo_cmake_dir})
# Header-only and architecture independent: one package serves every target.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/choreoConfigVersion.cmake
  COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/choreoConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/choreoConfigVersion.cmake
  cmake/choreo_find_hiredis.cmake
  cmake/choreo_find_rdkafka.cmake
  DESTINATION ${choreo_cmake_dir})
