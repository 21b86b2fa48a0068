# The README's two commands: `make demo` and `make test`. Both create .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MLFLOW_DISABLE_TELEMETRY := true
export RAY_USAGE_STATS_ENABLED := 0
export PYTHONUNBUFFERED := 1

.PHONY: install demo test test-slow test-browser bench clean

$(BIN)/fdp-sweep: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[test]"
	touch $@

install: $(BIN)/fdp-sweep

# synthetic benchmark -> clip cache -> Table 9 ablation sweep (smoke size) -> Table 9
demo: install
	$(BIN)/fdp-sweep demo

test: install
	$(BIN)/python -m pytest -q

test-slow: install
	$(BIN)/python -m pytest -q -m slow

# the MLflow UI in headless Chromium (screenshots of the runs table and a child run into
# $(SHOTS)); needs `apt-get install chromium` (.ci/run installs it)
SHOTS ?= figures/screenshots
test-browser: install
	FDP_SCREENSHOTS=$(abspath $(SHOTS)) $(BIN)/python -m pytest -q -m browser tests/test_mlflow_ui.py

bench: install
	$(BIN)/python bench/model.py --quick

clean:
	rm -rf $(VENV) .cache mlflow.db mlruns/* optuna.db
