# Makes sure a target rdkafka::rdkafka exists, for choreo::kafka: librdkafka's C library
# (Debian: librdkafka-dev, which ships pkg-config files and no CMake config; newer
# librdkafka builds and the Conan and vcpkg packages provide RdKafka::rdkafka).
# Used by the build tree and by the installed choreoConfig.cmake alike. Sets
# choreo_rdkafka_FOUND.
set(choreo_rdkafka_FOUND FALSE)
if(NOT TARGET rdkafka::rdkafka)
  find_package(RdKafka CONFIG QUIET)
  if(TARGET RdKafka::rdkafka)
    add_library(rdkafka::rdkafka INTERFACE IMPORTED)
    target_link_libraries(rdkafka::rdkafka INTERFACE RdKafka::rdkafka)
  endif()
endif()
if(NOT TARGET rdkafka::rdkafka)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(choreo_pc_rdkafka QUIET IMPORTED_TARGET rdkafka)
    if(TARGET PkgConfig::choreo_pc_rdkafka)
      add_library(rdkafka::rdkafka INTERFACE IMPORTED)
      target_link_libraries(rdkafka::rdkafka INTERFACE PkgConfig::choreo_pc_rdkafka)
    endif()
  endif()
endif()
if(TARGET rdkafka::rdkafka)
  set(choreo_rdkafka_FOUND TRUE)
endif()
