# Makes sure a target hiredis::hiredis exists, for choreo::redis. hiredis 1.x (and the Conan
# and vcpkg packages) provide it with their CMake config; Debian 12's hiredis 0.14 has only
# variables there, so it is built from pkg-config instead. Sets choreo_hiredis_FOUND.
include(${CMAKE_CURRENT_LIST_DIR}/choreo_find_c_library.cmake)
choreo_find_c_library(hiredis::hiredis hiredis hiredis hiredis::hiredis choreo_hiredis_FOUND)
