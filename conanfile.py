"""Conan 2 recipe for choreo, a header-only library.

Options select the optional layers, as the CMake package does: `durable` (the outbox and its
JSON codec; Boost.JSON's compiled library), `sqlite` (the SQLite stores; SQLite3) and
`redis` (the Redis connection; hiredis). The Kafka layer is left out of the package
for now (CHOREO_KAFKA off).

The package is choreo's own CMake install: its headers and its package config, which finds
Boost and {fmt}, and the dependencies of the components asked for. Consumers write
`find_package(choreo CONFIG REQUIRED COMPONENTS sqlite redis)` and link choreo::choreo,
choreo::durable, choreo::sqlite or choreo::redis, exactly as with a tree installed by CMake; and the same config works
whether those dependencies are Conan packages (through CMakeDeps) or the system's (through
[platform_requires], which Conan's CMakeDeps cannot name in a component's requirements).
See docs/decisions/0017-conan-package-uses-choreo-config.md.
"""
import re

from conan import ConanFile
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, load


class ChoreoConan(ConanFile):
    name = "choreo"
    description = "Typed events, transaction-phase listeners and choreographed sagas for C++20"
    license = "MIT"
    topics = ("events", "saga", "outbox", "transactions", "asio", "header-only")
    package_type = "header-library"
    settings = "os", "arch", "compiler", "build_type"
    options = {"durable": [True, False], "sqlite": [True, False], "redis": [True, False]}
    default_options = {"durable": True, "sqlite": True, "redis": True}
    exports_sources = "include/*", "cmake/*", "CMakeLists.txt", "LICENSE"
    no_copy_source = True

    def set_version(self):
        # One version source: include/choreo/version.hpp, as for CMake.
        header = load(self, f"{self.recipe_folder}/include/choreo/version.hpp")
        parts = [re.search(rf"#define CHOREO_VERSION_{p} (\d+)", header).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
        self.version = ".".join(parts)

    def configure(self):
        if not self.options.durable:
            # The SQLite stores and the Redis layer build on the durable layer (its codec and
            # envelope): without it they are not built, so they require nothing.
            self.options.rm_safe("sqlite")
            self.options.rm_safe("redis")

    def layout(self):
        cmake_layout(self)

    def requirements(self):
        # Boost >= 1.81 (Asio, Signals2; JSON and Describe for the durable layer) and {fmt}
        # appear in choreo's public headers.
        self.requires("boost/[>=1.81]", transitive_headers=True, transitive_libs=True)
        self.requires("fmt/[>=9]", transitive_headers=True, transitive_libs=True)
        if self.options.get_safe("sqlite"):
            self.requires("sqlite3/[>=3.35]", transitive_headers=True, transitive_libs=True)
        if self.options.get_safe("redis"):
            self.requires("hiredis/[>=0.14]", transitive_headers=True, transitive_libs=True)

    def validate(self):
        check_min_cppstd(self, 20)

    def generate(self):
        CMakeDeps(self).generate()
        toolchain = CMakeToolchain(self)
        toolchain.cache_variables["CHOREO_BUILD_TESTS"] = False
        toolchain.cache_variables["CHOREO_BUILD_EXAMPLES"] = False
        toolchain.cache_variables["CHOREO_BUILD_BENCHMARKS"] = False
        toolchain.cache_variables["CHOREO_DURABLE"] = bool(self.options.durable)
        toolchain.cache_variables["CHOREO_SQLITE"] = bool(self.options.get_safe("sqlite", False))
        toolchain.cache_variables["CHOREO_REDIS"] = bool(self.options.get_safe("redis", False))
        # The Kafka layer gets an option (and a librdkafka requirement) once the shop runs on it.
        toolchain.cache_variables["CHOREO_KAFKA"] = False
        # Likewise the PostgreSQL layer, once it is complete (issue 25).
        toolchain.cache_variables["CHOREO_POSTGRESQL"] = False
        toolchain.generate()

    def package_id(self):
        # Headers only, so one package serves every compiler and build type; but the options
        # decide which targets the installed config defines, so they stay in the id.
        self.info.settings.clear()
        self.info.requires.clear()

    def package(self):
        # Nothing to compile: configure and install the headers and the package config.
        cmake = CMake(self)
        cmake.configure()
        cmake.install()
        copy(self, "LICENSE", self.source_folder, f"{self.package_folder}/licenses")

    def package_info(self):
        self.cpp_info.bindirs = []
        self.cpp_info.libdirs = []
        # Consumers' find_package(choreo) reads the installed choreoConfig.cmake.
        self.cpp_info.set_property("cmake_find_mode", "none")
        self.cpp_info.builddirs = ["share/cmake/choreo"]
