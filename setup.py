"""Build fastgd's compiled engine (optimizer steps and the regression epoch) once per SIMD level."""
import os
import runpy
import sysconfig

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

simd = runpy.run_path(os.path.join("fastgd", "_simd.py"))
DEBUG = os.environ.get("FASTGD_DEBUG", "") == "1"  # bounds checks on, no optimization
# AddressSanitizer and UBSan (GCC, Clang) for CI: any error aborts; see .ci/run for how to run it.
# Python's CFLAGS hold -fwrapv, which defines signed overflow: UBSan does not report it.
SANITIZE = os.environ.get("FASTGD_SANITIZE", "") == "1"
# float-cast-overflow (a float out of an integer's range, NaN included, cast to it) is not in GCC's "undefined".
SANITIZE_FLAGS = ["-fsanitize=address,undefined,float-cast-overflow", "-fno-sanitize-recover=all",
                  "-fno-omit-frame-pointer", "-g", "-O1"]

DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}


SIMD_LEVEL = {}  # extension name -> SIMD level (cythonize does not keep extra attributes)


def extension(name, source, level="baseline"):
    SIMD_LEVEL[f"fastgd.{name}"] = level
    return Extension(
        f"fastgd.{name}",
        [os.path.join("src", source)],
        include_dirs=["src", numpy.get_include()],
        define_macros=[
            ("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION"),
            # the oldest NumPy the package claims (pyproject.toml); whatever NumPy 2.x builds
            # them, the modules run on it and later, and refuse older ones with a clear error
            ("NPY_TARGET_VERSION", "NPY_2_0_API_VERSION"),
        ],
    )


class BuildExt(build_ext):
    """Adds the compile flags of each extension's SIMD level, spelled for the compiler in use."""

    def build_extensions(self):
        family = simd["compiler_family"](self.compiler.compiler_type)
        if SANITIZE and family == "msvc":
            raise RuntimeError("FASTGD_SANITIZE=1 needs GCC or Clang (-fsanitize=address,undefined)")
        for ext in self.extensions:
            if DEBUG:
                flags = ["/Od", "/Zi"] if family == "msvc" else ["-O0", "-g"]
            else:
                flags = simd["COMMON_FLAGS"][family] + simd["LEVEL_FLAGS"][family][SIMD_LEVEL[ext.name]]
                if family == "unix" and not SANITIZE:
                    flags = flags + ["-g0"]  # Python's CFLAGS ask for debug info: a wheel need not ship it
            link = [] if family == "msvc" else ["-pthread"]
            if SANITIZE:
                # last, so that -O1 wins over -O3 (the level's -m flags stay: each module keeps its instructions)
                flags, link = flags + SANITIZE_FLAGS, link + SANITIZE_FLAGS
            ext.extra_compile_args = flags
            ext.extra_link_args = link
        super().build_extensions()


levels = simd["levels_for_platform"](sysconfig.get_platform())
extensions = [extension("_cpu", "_cpu.pyx")]
extensions += [extension(f"_engine_{level}", f"_engine_{level}.pyx", level) for level in levels]

setup(
    ext_modules=cythonize(extensions, compiler_directives=DIRECTIVES, include_path=["src"]),
    cmdclass={"build_ext": BuildExt},
    # a wheel carries the stubs of the modules it has (pyproject.toml's package-data adds *.pyi)
    exclude_package_data={"fastgd": [f"_engine_{level}.pyi" for level in simd["LEVELS"] if level not in levels]},
)
