"""Builds the compiled inner loops; the rest of the metadata is in pyproject.toml."""

import tempfile
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

OPENMP = ["-fopenmp"]


class BuildExt(build_ext):
    """Builds with OpenMP where the C compiler has it, else single-threaded."""

    def build_extensions(self):
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
            Extension(
                "skvq._lloyd",
                ["skvq/_lloyd.pyx"],
                extra_compile_args=["-O3", *OPENMP],
                extra_link_args=[*OPENMP],
            ),
            Extension("skvq._runs", ["skvq/_runs.pyx"], extra_compile_args=["-O3"]),
            Extension(
                "skvq._context", ["skvq/_context.pyx"], extra_compile_args=["-O3"]
            ),
        ],
        compiler_directives={"language_level": "3"},
    ),
    cmdclass={"build_ext": BuildExt},
)
