"""fdp.machine: the CPU, its instruction-set level and the kernels each library uses, as the
switches that change numerics set them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import pytest

from fdp.machine import isa_level, machine_info, machine_summary


@pytest.mark.parametrize(("flags", "level"), [
    ({"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16"}, "avx512_bf16"),
    ({"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl"}, "avx512"),
    ({"sse4_2", "avx", "avx2", "fma", "avx512f"}, "avx2"),  # AVX-512 foundation alone is not a level
    ({"sse4_2", "avx", "avx2"}, "avx"),  # AVX2 without FMA (no x86-64-v3)
    ({"sse4_2"}, "sse4_2"),
    (set(), "x86_64"),
])
def test_isa_level_is_the_highest_level_whose_flags_are_all_there(flags, level):
    assert isa_level(flags, "x86_64") == level


def test_isa_level_off_x86_is_the_machine():
    assert isa_level({"asimd", "sve"}, "aarch64") == "aarch64"


def test_machine_info_reads_the_opencv_switch_each_call():
    before = machine_info()
    assert {"cpu", "isa", "torch", "torch_kernels", "numpy", "numpy_simd", "opencv", "opencv_simd"} <= set(before)
    assert before["opencv"] == cv2.__version__ and before["opencv_simd"] != "off"
    cv2.setUseOptimized(False)
    try:
        assert machine_info()["opencv_simd"] == "off"
    finally:
        cv2.setUseOptimized(True)
    line = machine_summary(before)
    assert before["cpu"] in line and f"kernels {before['torch_kernels']}" in line


@pytest.mark.integration
def test_machine_info_reports_the_kernels_the_switches_leave():
    """Under the switches that emulate an older CPU, the tags say so (they are what tells two
    machines' results apart)."""
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "NPY_DISABLE_CPU_FEATURES": "X86_V3,X86_V4,AVX512_ICL,AVX512_SPR",
           "OPENCV_CPU_DISABLE": "AVX512-SKX,AVX2,FP16,AVX"}
    code = "import json; from fdp.machine import machine_info; print(json.dumps(machine_info()))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    info = json.loads(out.strip().splitlines()[-1])
    assert info["torch_kernels"] == "default"
    assert info["numpy_simd"] not in ("X86_V3", "X86_V4", "AVX512_ICL", "AVX512_SPR")
    assert info["opencv_simd"] not in ("AVX512-SKX", "AVX2", "AVX", "FP16")
    assert info["isa"] == machine_info()["isa"]  # the hardware is the same: only the kernels moved
