"""Build the compiled soft-NMS, external/_cpu_nms.pyx, in place.

    python setup_cpu_nms.py build_ext --inplace     (plain `python setup_cpu_nms.py` does the same)

Writes external/_cpu_nms.<python-tag>.so (.pyd on Windows) next to its source, so
`external.nms` picks it up on the next import. Needs Cython (requirements.txt) and a
C compiler (gcc or clang; MSVC on Windows) with the Python headers. Running it again
is harmless: an up-to-date build is skipped. The build is optional: without it,
external/nms.py runs the numpy fallback (external/nms_numpy.py), which gives the same
results more slowly, and says so once on stderr.
"""
import os
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join("external", "_cpu_nms.pyx")
FALLBACK_NOTE = "Nothing was built; soft-NMS keeps working through the numpy fallback (external/nms_numpy.py)."


def main():
    try:
        from Cython.Build import cythonize
    except ImportError:
        sys.exit(f"setup_cpu_nms.py: Cython is not installed, so {SOURCE} cannot be compiled "
                 f"(pip install 'Cython>=3.0'). {FALLBACK_NOTE}")
    from setuptools import Extension, setup
    from setuptools.command.build_ext import build_ext
    from setuptools.errors import CCompilerError, CompileError, ExecError, LinkError, PlatformError

    class BuildExtExplained(build_ext):
        """build_ext whose compiler failures say what is missing instead of a traceback."""

        def build_extension(self, ext):
            try:
                super().build_extension(ext)
            except (CCompilerError, CompileError, ExecError, LinkError, PlatformError) as error:
                sys.exit(f"setup_cpu_nms.py: could not compile {ext.sources[0]}: {error}\n"
                         "Is a C compiler with the Python headers installed? (Debian/Ubuntu: "
                         "apt-get install gcc python3-dev; macOS: xcode-select --install; Windows: "
                         f"Microsoft C++ Build Tools.) {FALLBACK_NOTE}")

    # Paths below are relative to the project root, wherever the script is run from.
    os.chdir(ROOT)
    if len(sys.argv) == 1:
        sys.argv += ["build_ext", "--inplace"]
    extension = Extension("external._cpu_nms", [SOURCE])
    setup(
        name="centernet-cpu-nms",
        ext_modules=cythonize([extension], quiet=True),
        cmdclass={"build_ext": BuildExtExplained},
        script_args=sys.argv[1:],
    )


if __name__ == "__main__":
    main()
