# Makes sure a target hiredis::hiredis exists, for choreo::redis. hiredis 1.x (and the Conan
# and vcpkg packages) provide it with their CMake config; Debian 12's hiredis 0.14 has only
# variables there, so it is built from pkg-config instead. Used by the build tree and by
# the installed choreoConfig.cmake alike. Sets choreo_hiredis_FOUND.
set(choreo_hiredis_FOUND FALSE)
if(NOT TARGET hiredis::hiredis)
  find_package(hiredis CONFIG QUIET)
endif()
if(NOT TARGET hiredis::hiredis)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(choreo_pc_hiredis QUIET IMPORTED_TARGET hiredis)
    if(TARGET PkgConfig::choreo_pc_hiredis)
      add_library(hiredis::hiredis INTERFACE IMPORTED)
      target_link_libraries(hiredis::hiredis INTERFACE PkgConfig::choreo_pc_hiredis)
    endif()
  endif()
endif()
if(TARGET hiredis::hiredis)
  set(choreo_hiredis_FOUND TRUE)
endif()
