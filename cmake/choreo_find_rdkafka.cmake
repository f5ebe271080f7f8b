# Makes sure a target rdkafka::rdkafka exists, for choreo::kafka: librdkafka's C library
# (Debian: librdkafka-dev, which ships pkg-config files and no CMake config; newer
# librdkafka builds and the Conan and vcpkg packages provide RdKafka::rdkafka). Sets
# choreo_rdkafka_FOUND.
include(${CMAKE_CURRENT_LIST_DIR}/choreo_find_c_library.cmake)
choreo_find_c_library(rdkafka::rdkafka rdkafka RdKafka RdKafka::rdkafka choreo_rdkafka_FOUND)
