# The version lives in include/choreo/version.hpp; the places that must repeat it (the
# vcpkg port's manifest, the changelog's newest entry) must agree. The Conan recipe and
# CMake read the header, so they cannot disagree.
file(STRINGS ${SOURCE}/include/choreo/version.hpp lines REGEX "#define CHOREO_VERSION_(MAJOR|MINOR|PATCH) ")
foreach(line IN LISTS lines)
  if(line MATCHES "#define CHOREO_VERSION_(MAJOR|MINOR|PATCH) ([0-9]+)")
    set(${CMAKE_MATCH_1} ${CMAKE_MATCH_2})
  endif()
endforeach()
set(version ${MAJOR}.${MINOR}.${PATCH})

file(READ ${SOURCE}/ports/choreo/vcpkg.json manifest)
string(JSON port_version GET "${manifest}" version-semver)
if(NOT port_version STREQUAL version)
  message(FATAL_ERROR "ports/choreo/vcpkg.json says ${port_version}, version.hpp says ${version}")
endif()

file(STRINGS ${SOURCE}/CHANGELOG.md entries REGEX "^## ")
list(GET entries 0 newest)
if(NOT newest MATCHES "^## ${version}( |$)")
  message(FATAL_ERROR "CHANGELOG.md's newest entry is '${newest}', version.hpp says ${version}")
endif()
message(STATUS "version ${version} agrees in version.hpp, the vcpkg port and the changelog")
