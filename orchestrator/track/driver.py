"""The driver's side of the tracking store: the experiment, the parent run of a sweep instance,
what each job's run is created with, pooled metrics and figures on the parent.

Order of writes (SPEC §7: eight processes creating a SQLite store at once crashed seven): the
DRIVER creates the store, the experiment (with an explicit absolute artifact location) and the
parent run before any worker starts; a worker only opens its job's run (`open_job_run`, found
again by job key when the job is retried) and writes to it (`orchestrator.track.worker`).

Names a reader of the store relies on -- tags, params, metrics and artifacts of parent and child
runs -- are listed in docs/sweeps.md ("Tracking (MLflow)"); a change to a name here changes them there.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fdp import plots
from fdp.pooling import concat_predictions, pool_predictions, read_predictions
from orchestrator.track.provenance import git_info, source_tags
from orchestrator.track.store import artifact_location, client, project_root, unlogged_metrics, with_retry

if TYPE_CHECKING:
    from mlflow.entities import Run

    from orchestrator.plan.jobs import Job
    from orchestrator.spec.sweep import SweepSpec

POOLED = ("acc", "war", "uf1", "uar", "di_mse")


def metric_prefix(config_label: str) -> str:
    """A configuration label as an MLflow metric-name prefix: 'fdp|lambda_d=10|seed0' ->
    'fdp/lambda_d:10/seed0', 'casme2->samm|fdp|seed0' -> 'casme2-to-samm/fdp/seed0' (MLflow
    names allow only [/\\w.\\- :])."""
    text = config_label.replace("|", "/").replace("=", ":").replace("->", "-to-")
    return re.sub(r"[^/\w.\- :]", "_", text)


def pooled_artifact_dir(config_label: str) -> str:
    """Where a configuration's pooled figures sit among the parent run's artifacts."""
    return "pooled/" + re.sub(r"[^\w.\-/]", "_", metric_prefix(config_label))


@dataclass
class ParentRun:
    run_id: str
    instance: str  # fdp.sweep_instance: one uuid per sweep instance (kept when resumed)
    reused: bool  # True when an earlier parent run with the same spec hash is continued


class SweepTracker:
    """The driver's view of the store: experiment, parent run, child runs, pooled metrics."""

    def __init__(self, tracking_uri: str, root: Path | None = None) -> None:
        self.uri = tracking_uri
        self.root = root or project_root()
        # the store's one-time schema messages and download progress bars are noise in a sweep's output
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        for name in ("mlflow.store.db.utils", "alembic"):
            logging.getLogger(name).setLevel(logging.WARNING)
        if tracking_uri.startswith("sqlite:///"):
            Path(tracking_uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        self.client = client(tracking_uri)  # creates the SQLite schema here, in one process

    def experiment_id(self, name: str, description: str = "") -> str:
        """Get or create the experiment; its artifacts go to an absolute `mlruns/` location, or,
        with a tracking server, wherever the server keeps them (`mlflow-artifacts:/...`, uploaded
        over HTTP): a path on the driver's disk is not one the other nodes' workers can write to."""
        from mlflow.exceptions import MlflowException

        exp = with_retry(self.client.get_experiment_by_name, name)
        if exp is None:
            served = self.uri.startswith(("http://", "https://", "databricks"))
            try:
                return with_retry(self.client.create_experiment, name,
                                  artifact_location=None if served else artifact_location(name, self.root),
                                  tags={"mlflow.note.content": description} if description else None)
            except MlflowException:
                # another driver created it between our lookup and create: use theirs
                exp = with_retry(self.client.get_experiment_by_name, name)
                if exp is None:
                    raise
        if exp.lifecycle_stage == "deleted":
            with_retry(self.client.restore_experiment, exp.experiment_id)
        if description and not exp.tags.get("mlflow.note.content"):
            # the UI shows this note as the experiment's description
            with_retry(self.client.set_experiment_tag, exp.experiment_id, "mlflow.note.content", description)
        return exp.experiment_id

    def search(self, experiment_id: str, filter_string: str, order_by: list[str] | None = None,
               max_results: int | None = None) -> list["Run"]:
        """All runs matching `filter_string`, paging through the store."""
        runs: list[Run] = []
        token = None
        while True:
            page = with_retry(self.client.search_runs, [experiment_id], filter_string,
                              max_results=min(max_results or 1000, 1000), order_by=order_by, page_token=token)
            runs.extend(page)
            token = page.token
            if not token or (max_results and len(runs) >= max_results):
                return runs[:max_results] if max_results else runs

    def open_parent(self, experiment_id: str, spec: "SweepSpec", fresh: bool = False, data: str = "",
                    extra_tags: dict[str, str] | None = None) -> ParentRun:
        """Continue the latest parent run of this sweep with the same spec hash and data (`data`:
        the content fingerprints of the caches its jobs read, tag `fdp.data`), or create one:
        re-prepared data starts a new sweep instance, so a table never pools two data versions."""
        if not fresh:
            flt = (f"tags.`fdp.role` = 'parent' and tags.`fdp.sweep` = '{spec.name}' "
                   f"and tags.`fdp.spec_hash` = '{spec.spec_hash}'")
            if data:
                flt += f" and tags.`fdp.data` = '{data}'"
            found = self.search(experiment_id, flt, order_by=["attributes.start_time DESC"], max_results=1)
            if found:
                run = found[0]
                with_retry(self.client.update_run, run.info.run_id, status="RUNNING")
                return ParentRun(run.info.run_id, run.data.tags.get("fdp.sweep_instance", ""), True)
        instance = uuid.uuid4().hex
        tags = {"fdp.role": "parent", "fdp.sweep": spec.name, "fdp.spec_hash": spec.spec_hash,
                "fdp.sweep_instance": instance, "fdp.smoke": str(spec.is_smoke).lower(),
                "fdp.spec_path": spec.path, **(extra_tags or {})}
        if data:
            tags["fdp.data"] = data[:5000]
        if spec.table:
            tags["fdp.table"] = spec.table
        if spec.from_search:
            tags["fdp.from_search"] = spec.from_search  # the study its overrides and folds come from
        tags["fdp.experiments"] = ",".join(e.key for e in spec.experiments)[:5000]
        commit, dirty = git_info()
        tags.update(source_tags(spec.path, commit, dirty))
        run = with_retry(self.client.create_run, experiment_id, tags=tags,
                         run_name=f"{spec.name}{' [smoke]' if spec.is_smoke else ''}")
        rid = run.info.run_id
        import yaml

        with_retry(self.client.log_text, rid, yaml.safe_dump(spec.raw, sort_keys=False), "sweep.yaml")
        if spec.sets:
            with_retry(self.client.log_dict, rid, spec.sets, "cli_sets.json")
        return ParentRun(rid, instance, False)

    def log_parent_inputs(self, parent_id: str, jobs: Iterable["Job"]) -> None:
        """The data a sweep's jobs read, once each, as the parent run's dataset inputs: the
        runs table shows it on the parent row too (children are folded under it)."""
        have = {(d.dataset.name, d.dataset.digest) for d in
                with_retry(self.client.get_run, parent_id).inputs.dataset_inputs}
        out, sheets = [], {}
        for job in jobs:
            for i in dataset_inputs(job):
                if (i["name"], i["digest"]) not in have:
                    have.add((i["name"], i["digest"]))
                    out.append(i)
            for ref in (job.data, job.test_data):
                if ref is not None:
                    sheets[contact_sheet_dir(ref)] = ref.path
        if out:
            with_retry(self.client.log_inputs, parent_id, datasets=mlflow_inputs(out))
            # each cache's contact sheet beside its dataset input (once per sweep, not per job)
            from fdp.data.contact_sheet import sheet_paths

            for where, cache_dir in sheets.items():
                for page in sheet_paths(cache_dir):
                    with_retry(self.client.log_artifact, parent_id, str(page), where)

    def children(self, experiment_id: str, parent_id: str) -> dict[str, "Run"]:
        """job_key -> child run of a parent (the FINISHED one if a key somehow has several)."""
        return self.runs_by_key(experiment_id, f"tags.`mlflow.parentRunId` = '{parent_id}'")

    def runs_by_key(self, experiment_id: str, filter_string: str) -> dict[str, "Run"]:
        """job_key -> the run of that key among those matching (a FINISHED one where there are several)."""
        out: dict[str, Run] = {}
        for run in self.search(experiment_id, filter_string):
            key = run.data.tags.get("fdp.job_key")
            if key and (key not in out or run.info.status == "FINISHED"):
                out[key] = run
        return out

    def child_run_spec(self, parent: ParentRun, job: "Job", sweep: str) -> dict[str, Any]:
        """What a job's run is created with (tags, name, dataset inputs as plain data): the worker
        opens it when the job starts training (`open_job_run`), so its Duration is the job's."""
        tags = {"mlflow.parentRunId": parent.run_id, "fdp.role": "job", "fdp.job_key": job.key,
                "fdp.variant": job.variant, "fdp.fold": job.fold, "fdp.seed": str(job.seed),
                "fdp.config_label": job.config_label, "fdp.selection": job.cfg.train.selection,
                "fdp.sweep": sweep, "fdp.sweep_instance": parent.instance, **experiment_tags(job), **data_tags(job),
                **control_tags(job.cfg)}
        return {"tags": tags, "name": run_name(job), "inputs": dataset_inputs(job)}

    def create_child(self, experiment_id: str, parent: ParentRun, job: "Job", sweep: str) -> str:
        """Create a job's run now (status SCHEDULED), e.g. for tools that hand out run ids."""
        s = self.child_run_spec(parent, job, sweep)
        rid = open_job_run(self.uri, experiment_id, s["tags"], s["name"], s["inputs"])
        with_retry(self.client.update_run, rid, status="SCHEDULED")
        return rid

    def mark_failed(self, run_id: str, reason: str) -> None:
        """FAILED with the reason as tag `fdp.error` (also for deaths the worker cannot report)."""
        with_retry(self.client.set_tag, run_id, "fdp.error", reason[:5000])
        with_retry(self.client.set_terminated, run_id, "FAILED")

    def predictions(self, run_id: str) -> dict[str, Any]:
        """A child's per-clip predictions: labels, preds (None without MER), di_mse, num_classes."""
        return read_predictions(self.artifact_text(run_id, "predictions.csv"))

    def artifact_text(self, run_id: str, path: str) -> str:
        """The text of one artifact of a run (a job's `predictions.csv`, `fold_result.json`)."""
        uri = with_retry(self.client.get_run, run_id).info.artifact_uri
        if uri.startswith("file:"):  # local store: read in place, no copy
            from urllib.parse import unquote, urlparse

            return (Path(unquote(urlparse(uri).path)) / path).read_text()
        with tempfile.TemporaryDirectory() as tmp:
            return Path(with_retry(self.client.download_artifacts, run_id, path, tmp)).read_text()

    def pooled(self, run_ids: Iterable[str]) -> dict[str, float]:
        """Metrics of the concatenated per-clip predictions of these child runs (SPEC §5)."""
        return pool_predictions([self.predictions(rid) for rid in run_ids])

    def log_pooled(self, parent_id: str, config_label: str, metrics: dict[str, float]) -> None:
        prefix = metric_prefix(config_label)
        # a pooled metric is logged once: a second value would make the parent's number ambiguous
        ms = unlogged_metrics(self.client, parent_id, {f"{prefix}/{k}": v for k, v in metrics.items() if k in POOLED})
        if ms:
            with_retry(self.client.log_batch, parent_id, metrics=ms)

    def log_pooled_figures(self, parent_id: str, config_label: str, folds: list[str],
                           predictions: list[dict[str, Any]]) -> None:
        """On the parent run, under `pooled/<configuration>/`: the confusion matrix of the pooled
        predictions (json + png) and the per-fold Acc / UF1 (json + bar chart). `predictions`: one
        `read_predictions` dict per fold in `folds`, as `pool_predictions` got them."""
        from fdp.metrics import confusion, pooled_metrics

        pooled = concat_predictions(predictions)
        if not predictions or pooled["preds"] is None:  # no MER head: nothing to count
            return
        names = predictions[0]["class_names"]
        per_fold = []
        for fold, p in zip(folds, predictions):
            m = pooled_metrics(p["labels"], p["preds"], p["num_classes"])
            per_fold.append({"fold": fold, "clips": len(p["labels"]), "acc": m["acc"], "uf1": m["uf1"]})
        cm = confusion(pooled["labels"], pooled["preds"], len(names))
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            plots.write_confusion(d, cm, names, f"{config_label}: pooled over {len(per_fold)} folds")
            (d / "per_fold.json").write_text(json.dumps(per_fold))
            plots.per_fold_png(per_fold, d / "per_fold.png", config_label)
            with_retry(self.client.log_artifacts, parent_id, str(d), pooled_artifact_dir(config_label))

    def close_parent(self, parent_id: str, ok: bool, summary: dict[str, Any]) -> None:
        with_retry(self.client.log_dict, parent_id, summary, "summary.json")
        with_retry(self.client.set_terminated, parent_id, "FINISHED" if ok else "FAILED")


def control_tags(cfg: Any) -> dict[str, str]:
    """`fdp.method` (what fitted and predicted the job, fdp.methods) on every job run, and
    `fdp.control: shuffled_labels` on the runs of the negative control (trained on permuted
    training labels: must score chance), whose number is a control, not a model result."""
    tags = {"fdp.method": cfg.method}
    if cfg.train.shuffle_labels:
        tags["fdp.control"] = "shuffled_labels"
    return tags


def experiment_tags(job: "Job") -> dict[str, str]:
    """The experiment a job belongs to, as declared in the spec: `fdp.experiment` (the key Tables
    4-8 file it under), `fdp.dataset`, `fdp.setting`, `fdp.protocol`, `fdp.test_dataset`, and
    `fdp.smoke` (true: a --smoke run; the params `data.*` say what it trained on, which is then
    the smoke block's data, e.g. the synthetic casme2/5, not the declared one)."""
    e = job.experiment
    if e is None:  # a job built without a spec: its own data is the experiment
        from orchestrator.spec.sweep import experiment_key

        d = job.cfg.data
        protocol = "cross" if d.test_dataset else "loso"
        return {"fdp.experiment": experiment_key(d.dataset, d.setting, protocol, d.test_dataset),
                "fdp.dataset": d.dataset, "fdp.setting": d.setting, "fdp.protocol": protocol,
                "fdp.test_dataset": d.test_dataset}
    return {"fdp.experiment": e.key, "fdp.dataset": e.dataset, "fdp.setting": e.setting,
            "fdp.protocol": e.protocol, "fdp.test_dataset": e.test_dataset, "fdp.smoke": str(e.smoke).lower()}


def run_name(job: "Job") -> str:
    """'fold=01 fdp seed0' ('fold=006 samm/3 fdp seed0'): the fold first, where the UI's run
    name column cuts long names off."""
    return f"fold={job.fold} " + job.config_label.replace("|", " ")


def data_tags(job: "Job") -> dict[str, str]:
    """The caches a job reads: path, content fingerprint, source root, real or synthetic."""
    out: dict[str, str] = {}
    for prefix, ref in (("fdp.", job.data), ("fdp.test_", job.test_data)):
        if ref is not None:
            out.update({f"{prefix}data_fingerprint": ref.fingerprint, f"{prefix}cache_dir": ref.path,
                        f"{prefix}data_root": ref.root, f"{prefix}data_synthetic": str(ref.synthetic).lower()})
            if ref.align:
                out[f"{prefix}align"] = ref.align
    return out


def contact_sheet_dir(ref: Any) -> str:
    """Where a cache's contact sheet goes among the parent run's artifacts: data/<dataset>-<fingerprint>."""
    return f"data/{ref.dataset}-{ref.fingerprint}"


def dataset_name(dataset: str, setting: str) -> str:
    """'casme2/5' for the setting casme2/5 of casme2, 'casme2/cross/samm' for a cross setting."""
    return setting if setting.startswith(dataset + "/") else f"{dataset}/{setting}"


def dataset_inputs(job: "Job") -> list[dict[str, Any]]:
    """A job's data as MLflow dataset inputs (the UI's Dataset column), as plain data for the
    worker: name `dataset/setting`, digest = content fingerprint, source = the dataset folder,
    context training / test (one input `training+test` under LOSO, whose folds split one cache)."""
    d = job.cfg.data
    pairs = [(job.data, "training"), (job.test_data, "test")] if job.test_data is not None \
        else [(job.data, "training+test")]
    return [{"name": dataset_name(ref.dataset, d.setting if ctx != "test" else f"{d.setting}/{ref.dataset}"),
             "digest": ref.fingerprint, "source_type": "local", "source": json.dumps({"uri": ref.root}),
             "profile": json.dumps({"clips": ref.clips, "cache": ref.path, "prepared": ref.created,
                                    "synthetic": ref.synthetic, "align": ref.align,
                                    "contact_sheet": f"parent run artifacts: {contact_sheet_dir(ref)}/"}),
             "context": ctx}
            for ref, ctx in pairs if ref is not None]


def open_job_run(uri: str, experiment_id: str, tags: dict[str, str], name: str,
                 inputs: list[dict[str, Any]] | None = None) -> str:
    """The run of one job (`tags` hold its parent and job key): the one an earlier attempt of
    the job opened (a worker that died and was retried), else a new one with its dataset inputs.
    Called on the worker as the job starts, so the run's start time is the job's."""
    c = client(uri)
    found = with_retry(c.search_runs, [experiment_id],
                       f"tags.`mlflow.parentRunId` = '{tags['mlflow.parentRunId']}' and "
                       f"tags.`fdp.job_key` = '{tags['fdp.job_key']}'", max_results=1)
    if found:
        return found[0].info.run_id
    run = with_retry(c.create_run, experiment_id, tags=tags, run_name=name)
    if inputs:
        with_retry(c.log_inputs, run.info.run_id, datasets=mlflow_inputs(inputs))
    return run.info.run_id


def mlflow_inputs(inputs: list[dict[str, Any]]) -> list[Any]:
    """`dataset_inputs` dicts as MLflow's DatasetInput entities."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    return [DatasetInput(Dataset(name=i["name"], digest=i["digest"], source_type=i["source_type"],
                                 source=i["source"], profile=i.get("profile")),
                         [InputTag("mlflow.data.context", i["context"])]) for i in inputs]
