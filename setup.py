"""Builds the compiled inner loops; the rest of the metadata is in pyproject.toml."""

import os
import tempfile
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP = ["-fopenmp"]
# The K-Means engine's compiled modules (skvq/_engine/<name>.pyx).
ENGINE = ["_openmp", "_colors", "_grid", "_lloyd", "_seeding", "_sweep"]
# Release builds: Python's own CFLAGS ask for debug info (-g), which made the
# wheel's extension modules several MB. The last -g option wins.
NO_DEBUG_INFO = ["-g0"]
# Every product rounded before its sum, as numpy's separate operations round
# them: the seedings that draw as KMeans draws need the same sums. (GCC fuses
# them into FMA instructions by default where the CPU has them, e.g. ARM64.)
NO_FUSED_MULTIPLY_ADD = ["-ffp-contract=off"]


class BuildExt(build_ext):
    """Builds with OpenMP where the C compiler has it, else single-threaded.

    Extensions compile in parallel, one per core, without debug info.
    """

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1

    def build_extensions(self):
        if self.compiler.compiler_type == "unix":
            for extension in self.extensions:
                extension.extra_compile_args += NO_DEBUG_INFO + NO_FUSED_MULTIPLY_ADD
        if not self._compiles_openmp():
            print("skvq: the C compiler has no OpenMP; building single-threaded")
            for extension in self.extensions:
                for args in (extension.extra_compile_args, extension.extra_link_args):
                    if OPENMP[0] in args:
                        args.remove(OPENMP[0])
        super().build_extensions()

    def _compiles_openmp(self):
        with tempfile.TemporaryDirectory() as tmp:
            source = Path(tmp, "probe.c")
            source.write_text(
                "#include <omp.h>\n"
                "int main(void) { return omp_get_max_threads() < 1; }\n"
            )
            try:
                objects = self.compiler.compile(
                    [str(source)], output_dir=tmp, extra_postargs=OPENMP
                )
                self.compiler.link_executable(
                    objects, str(Path(tmp, "probe")), extra_postargs=OPENMP
                )
            except Exception:  # any compile or link failure means no OpenMP
                return False
        return True


setup(
    ext_modules=cythonize(
        [
            *(
                Extension(
                    f"skvq._engine.{name}",
                    [f"skvq/_engine/{name}.pyx"],
                    extra_compile_args=["-O3", *OPENMP],
                    extra_link_args=[*OPENMP],
                )
                for name in ENGINE
            ),
            Extension(
                "skvq._engine._refine",
                ["skvq/_engine/_refine.pyx"],
                extra_compile_args=["-O3"],
            ),
            Extension("skvq._runs", ["skvq/_runs.pyx"], extra_compile_args=["-O3"]),
            Extension("skvq._dither", ["skvq/_dither.pyx"], extra_compile_args=["-O3"]),
            Extension(
                "skvq._context", ["skvq/_context.pyx"], extra_compile_args=["-O3"]
            ),
        ],
        compiler_directives={"language_level": "3"},
    ),
    cmdclass={"build_ext": BuildExt},
)
