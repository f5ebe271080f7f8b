# Fails when the README's usage example and examples/core/readme_example.cpp differ,
# so the example users copy is always the one the test suite compiles and runs.
file(READ ${README} readme)
file(READ ${EXAMPLE} example)
string(FIND "${readme}" "${example}" where)
if(where EQUAL -1)
  message(FATAL_ERROR "README.md does not contain examples/core/readme_example.cpp verbatim; "
                      "copy the file into the README's usage section")
endif()
