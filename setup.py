"""Build the Cython kernels in cext/ into the hlfast package.

Every cext/<name>.pyx becomes the extension module hlfast.<name>.  Kernels cimport
each other as ``from hlfast.<name> cimport ...``; to make those .pxd files visible
under their package name without moving them out of cext/, the build links them
into build/pxd/hlfast/ and puts build/pxd on Cython's include path.
"""
import glob
import os

from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = os.path.dirname(os.path.abspath(__file__))
PXD_ROOT = os.path.join(HERE, "build", "pxd")


def _link_pxds() -> None:
    pkg = os.path.join(PXD_ROOT, "hlfast")
    os.makedirs(pkg, exist_ok=True)
    open(os.path.join(pkg, "__init__.pxd"), "w").close()
    for src in glob.glob(os.path.join(HERE, "cext", "*.pxd")):
        dst = os.path.join(pkg, os.path.basename(src))
        if os.path.islink(dst) and os.readlink(dst) == src:
            continue
        try:
            if os.path.lexists(dst):
                os.remove(dst)
            os.symlink(src, dst)
        except FileExistsError:  # a concurrent build linked it first
            pass


def _extensions() -> list:
    flags = ["-O3", "-fno-strict-aliasing", "-Wno-unused-function"]
    if os.environ.get("HLFAST_NATIVE") == "1":
        flags.append("-march=native")  # opt-in: wheels must run on other CPUs
    exts = []
    # HLFAST_ONLY=book,tape builds a subset (handy while one kernel is being edited).
    only = {n for n in os.environ.get("HLFAST_ONLY", "").split(",") if n}
    for pyx in sorted(glob.glob("cext/*.pyx")):
        name = os.path.splitext(os.path.basename(pyx))[0]
        if only and name not in only:
            continue
        exts.append(
            Extension(
                f"hlfast.{name}",
                [pyx],
                extra_compile_args=flags,
                libraries=["m"],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
            )
        )
    return exts


_link_pxds()
setup(
    ext_modules=cythonize(
        _extensions(),
        include_path=[PXD_ROOT],
        compiler_directives={"language_level": 3, "embedsignature": True},
        annotate=os.environ.get("HLFAST_ANNOTATE") == "1",
        quiet=True,
    ),
    zip_safe=False,
)
