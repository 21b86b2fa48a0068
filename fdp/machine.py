"""What machine a number was computed on, in the terms that can change it.

Two runs of the same code, data and seed can differ when the CPU kernels differ: torch picks its
ATen kernels by instruction set (`ATEN_CPU_CAPABILITY` caps it), numpy dispatches its ufuncs by
SIMD level (`NPY_DISABLE_CPU_FEATURES`), OpenCV by its own dispatcher (`OPENCV_CPU_DISABLE`,
`cv2.setUseOptimized`) and OpenBLAS by core type (`OPENBLAS_CORETYPE`). `machine_info()` reads
what this process actually uses -- after those switches -- so that two results that differ can be
told apart by their runs' tags, and `machine_summary` gives the one-line form the tables print.
"""

from __future__ import annotations

import functools
import os
import platform
import re

# x86 instruction-set levels, highest first: (name, the /proc/cpuinfo flags it needs)
_X86_LEVELS = (
    ("avx512_bf16", ("avx512f", "avx512bw", "avx512vl", "avx512_bf16")),
    ("avx512", ("avx512f", "avx512bw", "avx512vl")),
    ("avx2", ("avx2", "fma")),
    ("avx", ("avx",)),
    ("sse4_2", ("sse4_2",)),
)


def _cpuinfo() -> tuple[str, set[str]]:
    """(model name, flags) of the first CPU in /proc/cpuinfo; ("", set()) where there is none."""
    try:
        text = open("/proc/cpuinfo", encoding="utf-8", errors="replace").read()
    except OSError:
        return "", set()
    model = re.search(r"^(?:model name|Model|cpu model)\s*:\s*(.+)$", text, re.M)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", text, re.M)
    return (model.group(1).strip() if model else ""), set(flags.group(1).split() if flags else ())


def isa_level(flags: set[str], machine: str = "x86_64") -> str:
    """The highest x86 level whose flags are all present ("avx512", "avx2", ...); the machine
    name on other architectures, or when no level matches."""
    if machine in ("x86_64", "AMD64", "i686"):
        for name, needs in _X86_LEVELS:
            if all(f in flags for f in needs):
                return name
    return machine


def _numpy_simd() -> str:
    """The highest SIMD target numpy dispatches to in this process (its baseline if none)."""
    try:
        from numpy._core import _multiarray_umath as mu
    except ImportError:  # numpy < 2
        from numpy.core import _multiarray_umath as mu
    on = [t for t in mu.__cpu_dispatch__ if mu.__cpu_features__.get(t)]
    return on[-1] if on else (mu.__cpu_baseline__[-1] if mu.__cpu_baseline__ else "none")


def _opencv_simd() -> str:
    """The highest OpenCV dispatch target in use ("AVX512-SKX", "AVX2", ...), "off" when
    `cv2.setUseOptimized(False)`; a target disabled by OPENCV_CPU_DISABLE prints with "?"."""
    import cv2

    if not cv2.useOptimized():
        return "off"
    usable = [f.lstrip("*") for f in cv2.getCPUFeaturesLine().split() if not f.endswith("?")]
    return usable[-1] if usable else "baseline"


def _blas_core() -> str:
    """The kernel family ("architecture") of numpy's OpenBLAS ("" when threadpoolctl cannot
    tell); scipy loads an OpenBLAS of its own, which detects the CPU on its own."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return ""
    return next((i.get("architecture") or "" for i in threadpool_info()
                 if i.get("internal_api") == "openblas" and "numpy" in i.get("filepath", "")), "")


@functools.cache
def _static() -> dict[str, str]:
    import cv2
    import numpy
    import torch

    model, flags = _cpuinfo()
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "isa": isa_level(flags, platform.machine()),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "opencv": cv2.__version__,
        "blas": _blas_core(),
    }


def machine_info() -> dict[str, str]:
    """The CPU model and its instruction-set level, the library versions, and the kernels each
    library uses in this process: `torch_kernels` (ATen's CPU capability), `numpy_simd`,
    `opencv_simd`, `blas` (OpenBLAS core type). OpenCV's optimisation switch is read each call."""
    import torch

    return {**_static(), "torch_kernels": torch.backends.cpu.get_cpu_capability().lower(),
            "numpy_simd": _numpy_simd(), "opencv_simd": _opencv_simd(),
            "threads": str(torch.get_num_threads()), "host_cores": str(os.cpu_count() or 0)}


def machine_summary(info: dict[str, str]) -> str:
    """One line: 'Intel Xeon ... (avx512); torch 2.13.0 kernels avx512, numpy 2.4.6 X86_V4, opencv 4.14.0 AVX512-SKX'."""
    get = info.get
    return (f"{get('cpu', '?')} ({get('isa', '?')}); torch {get('torch', '?')} kernels {get('torch_kernels', '?')}, "
            f"numpy {get('numpy', '?')} {get('numpy_simd', '?')}, opencv {get('opencv', '?')} {get('opencv_simd', '?')}"
            + (f", openblas {get('blas')}" if get("blas") else ""))
