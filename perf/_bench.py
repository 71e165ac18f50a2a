"""Timing, percentile and harness-building helpers shared by the perf/bench_*.py scripts.

The scripts run as ``python perf/bench_x.py``, so this module sits first on sys.path and imports as
``_bench``."""

from __future__ import annotations

import importlib.util
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from types import ModuleType

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def percentile(values: list, q: float) -> float:
    """The q-quantile by rank (no interpolation), e.g. q=0.99 for p99."""
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def p50_p99(samples: Iterable) -> dict[str, float]:
    """Median and p99 of the samples, as floats in the samples' unit."""
    ordered = sorted(float(x) for x in samples)
    return {"p50": statistics.median(ordered), "p99": percentile(ordered, 0.99)}


def call_ns(fn: Callable[[], object], calls: int) -> list[int]:
    """Individually timed calls in ns (includes ~30-50 ns of timer overhead each)."""
    clock = time.perf_counter_ns
    out = [0] * calls
    for i in range(calls):
        t0 = clock()
        fn()
        out[i] = clock() - t0
    return out


def compile_harness(source: str, name: str) -> ModuleType:
    """Compile a Cython timing harness against the in-place build and import it (a few seconds)."""
    from Cython.Build import cythonize
    from setuptools import Distribution, Extension

    work = tempfile.mkdtemp(prefix=f"hlfast_{name}_")
    src = os.path.join(work, f"{name}.pyx")
    with open(src, "w") as f:
        f.write(source)
    ext = Extension(name, [src], extra_compile_args=["-O3"])
    dist = Distribution({"ext_modules": cythonize([ext], include_path=[os.path.join(ROOT, "build", "pxd")],
                                                  quiet=True)})
    cmd = dist.get_command_obj("build_ext")
    cmd.build_lib = work
    cmd.build_temp = os.path.join(work, "tmp")
    cmd.ensure_finalized()
    cmd.run()
    spec = importlib.util.spec_from_file_location(name, cmd.get_ext_fullpath(name))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
