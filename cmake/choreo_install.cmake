include(CMakePackageConfigHelpers)

# One export set per component, so that a consumer's find_package loads (and finds the
# dependencies of) only the components it asks for: choreo::choreo alone needs neither
# hiredis nor librdkafka on its machine.
set(choreo_cmake_dir ${CMAKE_INSTALL_DATADIR}/cmake/choreo)
install(TARGETS choreo EXPORT choreoTargets)
install(EXPORT choreoTargets NAMESPACE choreo:: DESTINATION ${choreo_cmake_dir})
set(choreo_available_components)
foreach(component durable sqlite redis kafka postgresql)
  string(TOUPPER ${component} upper)
  if(CHOREO_HAS_${upper})
    install(TARGETS choreo_${component} EXPORT choreo_${component}_targets)
    install(EXPORT choreo_${component}_targets NAMESPACE choreo:: DESTINATION ${choreo_cmake_dir}
            FILE choreo_${component}_targets.cmake)
    list(APPEND choreo_available_components ${component})
  endif()
endforeach()
install(DIRECTORY include/choreo DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

configure_package_config_file(cmake/choreoConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/choreoConfig.cmake
  INSTALL_DESTINATION ${choreo_cmake_dir})
# Header-only and architecture independent: one package serves every target.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/choreoConfigVersion.cmake
  COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/choreoConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/choreoConfigVersion.cmake
  cmake/choreo_find_c_library.cmake
  cmake/choreo_find_hiredis.cmake
  cmake/choreo_find_rdkafka.cmake
  DESTINATION ${choreo_cmake_dir})
