# Fails when a page (README) does not contain an example program (EXAMPLE) verbatim,
# so the example users copy is always the one the test suite compiles and runs.
file(READ ${README} readme)
file(READ ${EXAMPLE} example)
string(FIND "${readme}" "${example}" where)
if(where EQUAL -1)
  message(FATAL_ERROR "${README} does not contain ${EXAMPLE} verbatim; copy the file into the page")
endif()
