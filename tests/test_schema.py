"""The sweep schema (orchestrator.spec.schema): every sweep file resolves to the configurations and job
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
import yaml
from click.testing import CliRunner

from orchestrator.cli.main import main
from orchestrator.cli.schema import BEGIN, END
from orchestrator.plan.jobs import job_key
from orchestrator.spec.docs import keys_markdown
from orchestrator.search.study import parse_search
from orchestrator.spec.sweep import SpecError, configurations, load_spec, parse_spec

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
    out["resources"] = s.resources.model_dump()
    out["experiments"] = [dataclasses.asdict(e) for e in s.experiments]
    out["spec_hash"] = s.spec_hash
    out["configurations"] = [[c.label, job_key(c.cfg, "01", c.experiment.key if s.multi else "", data="f" * 16),
                              _digest([c.point, c.seed, c.overrides])] for c in configurations(s)]
    if s.search is not None:
        out["search_settings"] = dataclasses.asdict(parse_search(s))
    return json.loads(json.dumps(out, sort_keys=True, default=repr))


def _all() -> dict:
    return {f"{p.name}{'+smoke' if smoke else ''}": resolved(p, smoke) for p in SWEEPS for smoke in (False, True)}


@pytest.fixture(scope="module")
def validator():
    jsonschema = pytest.importorskip("jsonschema")
    res = CliRunner().invoke(main, ["schema"])
    assert res.exit_code == 0, res.output
    schema = json.loads(res.output)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_schema_accepts_every_sweep_file(path, validator):
    assert [e.message for e in validator.iter_errors(yaml.safe_load(path.read_text()))] == []


def test_schema_takes_what_the_validator_takes(validator):
    """One variant as a bare name and `smoke:` with nothing under it are valid files: an editor
    must not flag them; an unknown name or an empty list still is."""
    from orchestrator.spec.sweep import parse_spec

    base = {"name": "x", "dataset": "casme2", "setting": "casme2/5"}
    for ok in ({**base, "variants": "fdp"}, {**base, "variants": ["fdp"], "smoke": None, "overrides": None}):
        parse_spec(dict(ok))  # the validator takes it
        assert [e.message for e in validator.iter_errors(ok)] == []
    for bad in ({**base, "variants": "nope"}, {**base, "variants": []}, {**base, "variants": ["fdp"], "smoke": 3}):
        assert list(validator.iter_errors(bad))


# Bad specs of the corpus no JSON Schema can refuse: they stay caught by the loader / validator.
NOT_IN_SCHEMA = {
    "spec-malformed-yaml": "not YAML at all: the loader refuses it",
    "spec-file-missing": "no file to validate",
    "spec-duplicate-key": "JSON has no duplicate keys; the YAML loader (UniqueKeyLoader) refuses them",
    "spec-duplicate-nested-key": "JSON has no duplicate keys; the YAML loader (UniqueKeyLoader) refuses them",
    "spec-nan-weight-in-grid": "JSON has no NaN; fdp.config refuses non-finite numbers",
    "spec-search-choice-cannot-build": "whether a value builds depends on the variant and the other keys "
                                       "(fdp.variants.build_config)",
    "spec-more-gpus-than-the-cluster": "needs the cluster's nodes",
    "spec-from-unknown-study": "needs the Optuna store on disk",
    "spec-missing-cache": "needs the clip caches on disk (the file itself is right)",
    "spec-smoke-missing-cache": "needs the clip caches on disk (the file itself is right)",
}


def _spec_cases():
    from test_bad_inputs import CORPUS

    return [c for c in CORPUS if c.id.startswith("spec-")]


@pytest.mark.parametrize("case", _spec_cases(), ids=lambda c: c.id)
def test_schema_rejects_each_bad_spec_of_the_corpus(case, validator, tmp_path):
    argv = case.build(tmp_path)
    if case.id in NOT_IN_SCHEMA:
        return
    raw = yaml.safe_load((tmp_path / "spec.yaml").read_text())
    assert not validator.is_valid(raw), case.id
    # and the validator says it in our words, never pydantic's
    with pytest.raises(SpecError) as e:
        parse_spec(raw, source="s.yaml")
    assert not any(w in line for line in e.value.problems for w in ("Input should", "validation error", "[type="))
    assert argv[0] == "run"


def test_corpus_exemptions_are_real_cases():
    assert set(NOT_IN_SCHEMA) <= {c.id for c in _spec_cases()}


def test_docs_table_of_keys_is_current():
    text = (REPO / "docs" / "sweeps.md").read_text()
    assert f"{BEGIN}\n{keys_markdown()}{END}" in text, "stale: run `make docs`"


def test_schema_command_help_and_files(tmp_path):
    res = CliRunner().invoke(main, ["schema", "--help"])
    assert res.exit_code == 0 and "yaml-language-server: $schema=" in res.output and "--markdown" in res.output
    res = CliRunner().invoke(main, ["schema", "--out", str(tmp_path / "s.json")])
    assert res.exit_code == 0 and json.loads((tmp_path / "s.json").read_text())["title"] == "fdp-sweep sweep file"
    doc = tmp_path / "d.md"
    doc.write_text(f"intro\n{BEGIN}\nold\n{END}\nrest\n")
    assert CliRunner().invoke(main, ["schema", "--docs", str(doc)]).exit_code == 0
    assert doc.read_text() == f"intro\n{BEGIN}\n{keys_markdown()}{END}\nrest\n"


def test_schema_errors_name_the_key_path_one_line_each():
    raw = {"name": "t", "dataset": "casme2", "setting": "casme2/5", "variants": ["fdp"],
           "search": {"space": {"train.lr": {"type": "float", "low": 1e-5, "high": 1e-3, "logg": True}}, "trials": -1,
                      "pruner": {"p_threshold": 2}, "holdout": [1, 1]}, "tracking": {"experiment": " "}}
    with pytest.raises(SpecError) as e:
        parse_spec(raw, source="s.yaml")
    assert e.value.problems == [
        "s.yaml: tracking.experiment: expected a non-empty name, got ' '",
        "s.yaml: search: space: train.lr: unknown key 'logg' (did you mean 'log'?)",
        "s.yaml: search: trials: expected a positive integer, got -1",
        "s.yaml: search: holdout: a subject is listed twice",
        "s.yaml: search: pruner.p_threshold: expected a number in (0, 1), got 2",
    ]


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
