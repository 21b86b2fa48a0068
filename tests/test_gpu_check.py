"""`make gpu-check` cannot rot: its CPU form (`bench/gpu_check.py --quick`) runs every step of the
GPU check at tiny sizes and must leave every step's records, with the device named, in the
results file it was given -- never in the repository's bench/results.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^## (.+?) — \d{4}-\d\d-\d\d \d\d:\d\d UTC$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


@pytest.mark.integration
def test_gpu_check_cpu_form_records_every_step(tmp_path):
    repo_results = (REPO / "bench" / "results.md").read_bytes()
    results = tmp_path / "results.md"
    r = subprocess.run([sys.executable, "bench/gpu_check.py", "--quick", "--results", str(results),
                        "--workdir", str(tmp_path / "work")], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (REPO / "bench" / "results.md").read_bytes() == repo_results
    sec = _sections(results.read_text())
    assert list(sec) == ["bench/model.py --quick", "bench/loso.py --quick", "bench/table9.py --quick",
                         "bench/gpu_check.py --quick"]
    for body in sec.values():
        # cores, the CPU with its instruction set, the kernels each library uses, the GPU (bench/common.machine)
        assert re.search(r"^Machine: \d+ CPU cores, .+ \(\w+\); torch \S+ kernels \w+, numpy .+, (no GPU|\d+ x .+);",
                         body, flags=re.M), body
    # the summary: every step ran and passed
    rows = [ln.split("|")[1:-1] for ln in sec["bench/gpu_check.py --quick"].splitlines() if ln.startswith("| ")][1:]
    assert [(c[0].strip(), c[2].strip()) for c in rows] == [("tests", "ok"), ("model", "ok"), ("loso", "ok"),
                                                          ("table9", "ok")]
    # model: the GPU settings forced on CPU, with the memory estimate beside the measured peak
    model_row = next(ln for ln in sec["bench/model.py --quick"].splitlines() if ln.startswith("| fdp |"))
    cells = [c.strip() for c in model_row.split("|")[1:-1]]
    assert cells[3] == "bf16, channels_last" and float(cells[8]) > 0 and float(cells[9]) > 0
    # loso: in-process and packed 2 per (fake) GPU, every fold done, estimate beside peak
    loso = [ln for ln in sec["bench/loso.py --quick"].splitlines() if ln.startswith("| in-process") or
            ln.startswith("| sweep, 2 job(s) per GPU")]
    assert len(loso) == 2 and "fake GPU declared to Ray" in loso[1]
    for ln in loso:
        c = [x.strip() for x in ln.split("|")[1:-1]]
        assert c[3] == "4" and float(c[9]) > 0 and float(c[10]) > 0  # 4 folds done; peak, estimate
    # table9: 6 variants x 2 folds, none failed
    t9 = next(ln for ln in sec["bench/table9.py --quick"].splitlines() if ln.startswith("| 6 |"))
    assert [c.strip() for c in t9.split("|")[1:-1]][2:4] == ["12", "0"]
