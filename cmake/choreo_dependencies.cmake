# The dependencies of choreo::choreo, shared by the build tree and the installed
# package config (choreoConfig.cmake includes the same list through find_dependency).
find_package(Threads REQUIRED)
find_package(Boost 1.81 REQUIRED)
find_package(fmt REQUIRED)
