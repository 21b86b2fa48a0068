"""The sweep schema (orchestrator.schema): every sweep file resolves to the configurations and job
keys it resolved to before the schema existed, the JSON Schema `fdp-sweep schema` prints accepts
every file in sweeps/ and rejects the bad specs of the corpus, and docs/sweeps.md's table of keys
is the one the schema generates."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from pathlib import Path

import pytest

from orchestrator.jobs import job_key
from orchestrator.search import parse_search
from orchestrator.spec import configurations, load_spec

REPO = Path(__file__).resolve().parents[1]
SWEEPS = sorted((REPO / "sweeps").glob("*.yaml"))
# What every sweep file resolved to at 2120755 (the hand-written validator): job keys hash the
# resolved config, so a changed default would orphan every tracked run. Regenerate only for a
# change that is meant to change them: `python tests/test_schema.py > tests/data/sweep_keys.json`.
KEYS = REPO / "tests" / "data" / "sweep_keys.json"


def _digest(x) -> str:
    return hashlib.sha256(json.dumps(x, sort_keys=True, default=repr).encode()).hexdigest()[:16]


def resolved(path: Path, smoke: bool) -> dict:
    """A sweep file as the system sees it: the spec's fields, each configuration's label and job
    key (fold 01, a fixed data fingerprint), and the settings of its search block."""
    s = load_spec(path, smoke=smoke)
    out = {f.name: getattr(s, f.name) for f in dataclasses.fields(s) if f.name not in ("raw", "path", "experiments")}
    out["resources"] = dataclasses.asdict(s.resources)
    out["experiments"] = [dataclasses.asdict(e) for e in s.experiments]
    out["spec_hash"] = s.spec_hash
    out["configurations"] = [[c.label, job_key(c.cfg, "01", c.experiment.key if s.multi else "", data="f" * 16),
                              _digest([c.point, c.seed, c.overrides])] for c in configurations(s)]
    if s.search is not None:
        out["search_settings"] = dataclasses.asdict(parse_search(s))
    return json.loads(json.dumps(out, sort_keys=True, default=repr))


def _all() -> dict:
    return {f"{p.name}{'+smoke' if smoke else ''}": resolved(p, smoke) for p in SWEEPS for smoke in (False, True)}


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
@pytest.mark.parametrize("smoke", [False, True], ids=["full", "smoke"])
def test_sweep_files_resolve_as_before(path, smoke):
    want = json.loads(KEYS.read_text())[f"{path.name}{'+smoke' if smoke else ''}"]
    got = resolved(path, smoke)
    assert got["configurations"] == want["configurations"]  # labels and job keys first: the clearest diff
    assert got == want


def test_every_sweep_file_is_pinned():
    assert sorted(json.loads(KEYS.read_text())) == sorted(_all())


if __name__ == "__main__":
    json.dump(_all(), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
