"""Builds and runs the package consumer of tests/package against the Conan package: the same
project the CMake packaging tests build, found here through find_package as Conan provides it."""
import os

from conan import ConanFile
from conan.tools.build import can_run
from conan.tools.cmake import CMake, cmake_layout


class ChoreoTestPackage(ConanFile):
    settings = "os", "arch", "compiler", "build_type"
    generators = "CMakeDeps", "CMakeToolchain"

    def requirements(self):
        self.requires(self.tested_reference_str)

    def layout(self):
        cmake_layout(self)

    def build(self):
        cmake = CMake(self)
        consumer = os.path.join(self.source_folder, os.pardir, "tests", "package", "consumer")
        # The components the tested package was built with: find_package asks for each.
        options = self.dependencies["choreo"].options
        components = [c for c in ("durable", "sqlite", "redis") if options.get_safe(c)]
        cmake.configure(build_script_folder=consumer,
                        variables={"CHOREO_VIA": "find_package", "CHOREO_COMPONENTS": ";".join(components)})
        cmake.build()

    def test(self):
        if can_run(self):
            self.run(os.path.join(self.cpp.build.bindir, "consumer"), env="conanrun")
