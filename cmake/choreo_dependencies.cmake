# The dependencies of choreo's targets, shared by the build tree and the installed
# package config (choreoConfig.cmake asks for the same through find_dependency).
#   choreo::choreo  headers only: Boost (Asio, Signals2), fmt
#   choreo::durable + Boost.JSON's library (the default codec of the outbox)
#   choreo::sqlite  + SQLite3 (outbox and inbox stores, the database resource)
#   choreo::redis   + hiredis (the Redis connection)
#   choreo::kafka   + librdkafka (the Kafka producer and consumer)
#   choreo::postgresql + libpq (outbox, inbox and journal stores, the database resource)
# The last four are defined only when what they link is found, so a user who wants
# in-process events needs nothing more than the headers.
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED OPTIONAL_COMPONENTS json)
find_package(fmt REQUIRED)
find_package(SQLite3 QUIET)
find_package(PostgreSQL QUIET)
include(${CMAKE_CURRENT_LIST_DIR}/choreo_find_hiredis.cmake)
include(${CMAKE_CURRENT_LIST_DIR}/choreo_find_rdkafka.cmake)
