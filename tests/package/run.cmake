# Builds and runs tests/package/consumer with choreo obtained through VIA:
#   find_package                    COMPONENTS sqlite redis, with a minimum version
#   find_package_core_only          no components, on a "machine" without hiredis, librdkafka
#                                   or pkg-config (their find calls disabled): it must not need them
#   find_package_missing_dependency COMPONENTS redis there: refused, naming hiredis
#   find_package_too_new            a version above choreo's: refused, naming the version
#   add_subdirectory, fetchcontent  from the checkout
# The find_package variants install the already-built choreo (BUILD) into a private prefix first.
set(work ${WORK}/${VIA})
file(REMOVE_RECURSE ${work})
set(extra "")
set(how ${VIA})
set(expected "consumer ok with choreo 0.1.0 and choreo::sqlite and choreo::redis")
# What a machine without hiredis and librdkafka looks like to CMake.
set(no_hiredis -DCMAKE_DISABLE_FIND_PACKAGE_hiredis=ON -DCMAKE_DISABLE_FIND_PACKAGE_RdKafka=ON
               -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON)
if(VIA MATCHES "^find_package")
  execute_process(COMMAND ${CMAKE_COMMAND} --install ${BUILD} --prefix ${work}/prefix
                  RESULT_VARIABLE rc OUTPUT_QUIET)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "installing choreo failed")
  endif()
  set(how find_package)
  set(version 0.1)
  set(components "sqlite,redis") # commas: a semicolon would split the -D argument
  if(VIA STREQUAL "find_package_too_new")
    set(version 99.0)
  elseif(VIA STREQUAL "find_package_core_only")
    set(components "")
    list(APPEND extra ${no_hiredis})
    set(expected "consumer ok with choreo 0.1.0\n")
  elseif(VIA STREQUAL "find_package_missing_dependency")
    set(components "redis")
    list(APPEND extra ${no_hiredis})
  endif()
  list(APPEND extra -DCMAKE_PREFIX_PATH=${work}/prefix -DCHOREO_MIN_VERSION=${version} "-DCHOREO_COMPONENTS=${components}")
endif()
execute_process(
  COMMAND ${CMAKE_COMMAND} -S ${SOURCE}/tests/package/consumer -B ${work}/build -G ${GENERATOR}
          -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_BUILD_TYPE=Release -DCHOREO_VIA=${how} -DCHOREO_SOURCE_DIR=${SOURCE} ${extra}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(VIA STREQUAL "find_package_too_new" OR VIA STREQUAL "find_package_missing_dependency")
  if(VIA STREQUAL "find_package_too_new")
    set(reason "version")
  else()
    set(reason "choreo::redis needs hiredis")
  endif()
  if(rc EQUAL 0)
    message(FATAL_ERROR "${VIA}: find_package(choreo) was satisfied")
  endif()
  if(NOT err MATCHES "${reason}")
    message(FATAL_ERROR "${VIA}: find_package(choreo) failed without saying '${reason}':\n${err}")
  endif()
  message(STATUS "${VIA}: refused, as it should be, with '${reason}'")
  return()
endif()
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring the consumer failed:\n${out}\n${err}")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${work}/build RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the consumer failed:\n${out}\n${err}")
endif()
execute_process(COMMAND ${work}/build/consumer RESULT_VARIABLE rc OUTPUT_VARIABLE out)
if(NOT rc EQUAL 0 OR NOT out MATCHES "^${expected}")
  message(FATAL_ERROR "the consumer did not run as expected (exit ${rc}): ${out}")
endif()
message(STATUS "${VIA}: ${out}")
