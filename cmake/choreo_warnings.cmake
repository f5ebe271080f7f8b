# Warnings for choreo's own targets (tests, examples, benchmarks); never imposed
# on users through the INTERFACE target.
function(choreo_strict_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror=return-type)
  if(CHOREO_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
option(CHOREO_WERROR "Treat warnings as errors in choreo's own targets" OFF)
