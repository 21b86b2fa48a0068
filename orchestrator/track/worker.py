"""What a worker writes into the run of its job (`RunLogger`): the run's start, the resolved
config as params, buffered step metrics, the fold's final metrics, predictions, confusion matrix
and example grid, its end. The run itself was opened by `orchestrator.track.driver.open_job_run`
from what the driver prepared; a retried attempt writes into the same run and sends no step or
final metric twice."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fdp import plots
from fdp.config import dump_yaml, flatten, to_dict
from fdp.pooling import predictions_csv
from orchestrator.track.provenance import machine_tags, source_tags
from orchestrator.track.store import client, unlogged_metrics, with_retry

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from fdp.config import ExperimentConfig
    from fdp.fold import FoldResult

MAX_PARAM_CHARS = 6000  # MLflow's limit on one param value
PARAMS_PER_BATCH = 100  # MLflow's limit on params per log_batch
METRICS_PER_BATCH = 1000  # MLflow's limit on metrics per log_batch


class RunLogger:
    """Logs one job into the run the driver created for it. Step metrics are buffered and sent
    with log_batch every `flush_every` metrics or `flush_seconds`, which keeps SQLite writes few."""

    def __init__(self, tracking_uri: str, run_id: str, flush_every: int = 50, flush_seconds: float = 10.0) -> None:
        self.uri, self.run_id = tracking_uri, run_id
        self.flush_every, self.flush_seconds = flush_every, flush_seconds
        self._client: MlflowClient | None = None
        self._buffer: list[Any] = []
        self._last_flush = time.monotonic()
        self._logged: dict[str, set[int]] = {}  # train/<term> -> steps in the store (earlier attempts' + sent)

    @property
    def client(self) -> "MlflowClient":
        if self._client is None:
            self._client = client(self.uri)
        return self._client

    def _log_batch(self, tags: dict[str, str], metrics: list[Any] | None = None) -> None:
        """One log_batch of `tags` (name -> value) and `metrics` (at most METRICS_PER_BATCH)."""
        from mlflow.entities import RunTag

        with_retry(self.client.log_batch, self.run_id, metrics=metrics or [],
                   tags=[RunTag(k, v) for k, v in tags.items()])

    def start(self, resumed_from_step: int = 0) -> None:
        with_retry(self.client.update_run, self.run_id, status="RUNNING")
        # where the fold computes: results of one configuration can differ by CPU kernels alone
        tags = {"fdp.host": socket.gethostname(), "fdp.worker_pid": str(os.getpid()), **machine_tags()}
        if resumed_from_step:
            tags["fdp.resumed_from_step"] = str(resumed_from_step)
        # a killed attempt may have sent steps past its checkpoint (or before its first one): a
        # retry replays them with the same values, and must not send them twice
        self._logged = self._logged_steps()
        self._log_batch(tags)

    def _logged_steps(self) -> dict[str, set[int]]:
        keys = [k for k in with_retry(self.client.get_run, self.run_id).data.metrics if k.startswith("train/")]
        return {k: {m.step for m in with_retry(self.client.get_metric_history, self.run_id, k)} for k in keys}

    def log_config(self, cfg: "ExperimentConfig", git_commit: str = "", git_dirty: bool = False) -> None:
        """Flattened config as params (only those not logged yet: a resumed attempt re-logs
        nothing, and MLflow refuses to change a param), `config.yaml` and git commit tags."""
        from mlflow.entities import Param

        have = with_retry(self.client.get_run, self.run_id).data.params
        params = [Param(k, _param_text(v)) for k, v in flatten(to_dict(cfg)).items() if k not in have]
        for i in range(0, len(params), PARAMS_PER_BATCH):
            with_retry(self.client.log_batch, self.run_id, params=params[i:i + PARAMS_PER_BATCH])
        with_retry(self.client.log_text, self.run_id, dump_yaml(cfg), "config.yaml")
        self._log_batch(source_tags("fdp-sweep", git_commit, git_dirty))

    def log_terms(self, step: int, terms: dict[str, float]) -> None:
        """The trainer's callback: buffer `train/<term>` at `step`, flush when due."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._buffer.extend(Metric(f"train/{k}", float(v), now, int(step)) for k, v in terms.items()
                            if int(step) not in self._logged.get(f"train/{k}", ()))
        if len(self._buffer) >= self.flush_every or time.monotonic() - self._last_flush >= self.flush_seconds:
            self.flush()

    def flush(self) -> None:
        while self._buffer:
            batch, self._buffer = self._buffer[:METRICS_PER_BATCH], self._buffer[METRICS_PER_BATCH:]
            with_retry(self.client.log_batch, self.run_id, metrics=batch)
            for m in batch:
                self._logged.setdefault(m.key, set()).add(m.step)
        self._last_flush = time.monotonic()

    def log_result(self, result: "FoldResult", cfg: "ExperimentConfig") -> None:
        """Final fold metrics, predictions, fold result, confusion matrix and example grid."""
        from mlflow.entities import Metric

        self.flush()
        now = int(time.time() * 1000)
        # complete loss curves: the logging steps a killed attempt buffered but never sent come
        # from the checkpointed curves in `result` (each step once)
        logged, every = self._logged, max(cfg.train.log_every, 1)  # earlier attempts' steps + this one's
        self._buffer = [Metric(f"train/{k}", float(v), now, int(s)) for k, pts in result.curves.items()
                        if k != "val_score" for s, v in pts
                        if (s % every == 0 or s == result.steps) and int(s) not in logged.get(f"train/{k}", ())]
        self.flush()
        values = dict(result.metrics)
        values.update(wall_time_s=result.wall_time_s, steps_per_s=result.steps_per_s,
                      peak_mem_mb=result.peak_mem_mb)
        if result.n_params is not None:
            values["n_params"] = result.n_params
        # the steps the method ran (its own budget for a compared method; 0: fitted once) and how its
        # predictions were selected
        tags = {"fdp.selection_detail": result.selection[:5000], "fdp.steps": str(result.steps),
                "fdp.device": result.device,
                # what the job ran as, after `auto` was resolved on its device (fdp.runtime)
                "fdp.precision": result.precision, "fdp.memory_format": result.memory_format,
                "fdp.compiled": result.compiled or "no", "fdp.gpu": result.gpu or "-"}
        # a final metric has exactly one value: an attempt that died after logging them is not
        # allowed to add a second
        metrics = unlogged_metrics(self.client, self.run_id, values, result.steps)
        if result.test_selected:  # the published protocol's pick, apart and labelled
            from orchestrator.track import test_selected as ts

            tags[ts.TAG] = ts.tag_text(result)
            metrics += unlogged_metrics(self.client, self.run_id, ts.metric_values(result), result.steps)
            if f"{ts.PREFIX}/curve/acc" not in with_retry(self.client.get_run, self.run_id).data.metrics:
                metrics += [Metric(k, v, now, s) for k, v, s in ts.curve_points(result)]  # once per run
        for i in range(0, max(len(metrics), 1), METRICS_PER_BATCH):
            self._log_batch(tags if i == 0 else {}, metrics[i:i + METRICS_PER_BATCH])
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            (d / "predictions.csv").write_text(predictions_csv(result))
            if result.test_selected:
                (d / ts.ARTIFACT).write_text(ts.predictions_csv(result))
            (d / "fold_result.json").write_text(result.to_json())
            if result.preds is not None:
                from fdp.metrics import confusion

                cm = confusion(result.labels, result.preds, len(result.class_names))
                plots.write_confusion(d, cm, result.class_names, f"fold {result.fold}")
            if result.examples:
                plots.examples_png(result.examples, d / "examples.png", f"{cfg.variant} fold {result.fold}")
            # one directory copy, not one call per file: fewer store round trips
            with_retry(self.client.log_artifacts, self.run_id, str(d))

    def log_objective(self, metric: str, value: float, step: int, train_subjects: list[str],
                      val_subjects: list[str]) -> None:
        """An objective fold's value (once: a retried attempt does not add a second) and the
        subjects it trained and validated on (the search's honesty, checkable per run)."""
        self._log_batch({"fdp.train_subjects": ",".join(train_subjects), "fdp.val_subjects": ",".join(val_subjects)},
                        unlogged_metrics(self.client, self.run_id, {f"objective_{metric}": value}, step))

    def finish(self) -> None:
        self.flush()
        with_retry(self.client.set_terminated, self.run_id, "FINISHED")

    def fail(self, reason: str, details: str = "") -> None:
        """Best effort: FAILED + `fdp.error`. If the store itself is the problem the driver marks
        the run from the outcome, so errors here must not mask the job's own error."""
        try:
            try:
                self.flush()
            except Exception:  # noqa: BLE001 - the curves are nice to have, the failure is not
                self._buffer.clear()
            with_retry(self.client.set_tag, self.run_id, "fdp.error", reason[:5000])
            if details:
                with_retry(self.client.log_text, self.run_id, details, "error.txt")
            with_retry(self.client.set_terminated, self.run_id, "FAILED")
        except Exception:  # noqa: BLE001 - see docstring
            pass


def _param_text(v: Any) -> str:
    text = json.dumps(v) if isinstance(v, (list, dict)) else str(v)
    return text[:MAX_PARAM_CHARS]
