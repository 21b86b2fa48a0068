"""The honest split of a hyper-parameter search and one objective fold (SPEC §5: never select on
the test subject). No Ray, MLflow or Optuna here: `orchestrator.search.study` drives the study, the
fold worker (`orchestrator.run.worker.run_job`) trains a fold with `objective_fold`.

The subjects of a dataset are split ONCE into **holdout** subjects -- the ones a LOSO table fed
with the search result reports -- and **search** subjects. An objective fold v trains on the
search subjects other than v and evaluates on v; holdout subjects are neither trained on nor
evaluated on (`inner_split` whitelists search subjects; `objective_fold` re-checks what it got).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fdp.config import ExperimentConfig

NLL_FLOOR = 1e-12  # probabilities are clipped here: a confident miss costs 27.6 nats, never inf


class ObjectiveError(ValueError):
    """A split or objective that cannot be honest or computed (one line)."""


@dataclass(frozen=True)
class SubjectSplit:
    """Who may feed the objective (search) and who is reported (holdout); disjoint, sorted."""

    search: tuple[str, ...]
    holdout: tuple[str, ...]


def split_subjects(subjects: Sequence[str], holdout: int | float | list[str], seed: int = 0) -> SubjectSplit:
    """Holdout = the named subjects, or `holdout` of them (a count, or a fraction rounded, at least
    one) chosen with `seed`; search = the rest."""
    subjects = sorted(set(subjects))
    if isinstance(holdout, list):
        unknown = [s for s in holdout if s not in subjects]
        if unknown:
            raise ObjectiveError(f"search.holdout: unknown subject(s) {', '.join(unknown)}; "
                                 f"known: {', '.join(subjects)}")
        held = sorted(holdout)
    else:
        n = holdout if isinstance(holdout, int) else max(1, round(holdout * len(subjects)))
        rng = np.random.default_rng(seed)
        held = sorted(rng.choice(subjects, size=min(n, len(subjects)), replace=False).tolist())
    search = [s for s in subjects if s not in held]
    if len(search) < 2:
        raise ObjectiveError(f"search.holdout: {len(held)} of {len(subjects)} subjects held out leaves "
                             f"{len(search)} search subject(s); inner validation folds need at least 2")
    return SubjectSplit(tuple(search), tuple(held))


def inner_split(subjects: Sequence[str], val_subject: str, search_subjects: Sequence[str]):
    """Inner LOSO fold over the search subjects: train = search subjects other than
    `val_subject`, test (= validation) = `val_subject`. Defined by whitelist, so a subject that
    is not a search subject (the holdout, or one added to the data later) is never used."""
    from fdp.fold import FoldSplit

    allowed = set(search_subjects)
    if val_subject not in allowed:
        raise ObjectiveError(f"validation subject {val_subject!r} is not a search subject")
    subj = np.asarray(list(subjects))
    usable = np.isin(subj, sorted(allowed))
    return FoldSplit(f"val:{val_subject}", np.flatnonzero(usable & (subj != val_subject)),
                     np.flatnonzero(subj == val_subject))


def objective_fold(cfg: ExperimentConfig, val_subject: str, search_subjects: Sequence[str], bank=None,
                   callback=None, checkpoint_path=None):
    """Train on the other search subjects, evaluate on `val_subject`: one objective fold, resumed
    from `checkpoint_path` when it exists. Returns (FoldResult, sorted training subjects)."""
    from fdp.fold import TrainingError, with_validation
    from fdp.runner import inputs_of, load_data, run, with_classes

    cache = None  # the prepared cache behind `bank` (methods that read key frames need it)
    if bank is None:
        bank, _, cache = load_data(cfg)
    subjects = list(bank.subjects)
    split = inner_split(subjects, val_subject, search_subjects)
    if cfg.train.selection == "early_stop_val":  # early-stopping subjects: drawn from split.train only
        split = with_validation(split, subjects, cfg.train.val_subjects, cfg.train.seed)
    used = {subjects[i] for part in (split.train, split.val, split.test) for i in part}
    if not used <= set(search_subjects):  # defence in depth: the whitelist above makes this unreachable
        raise TrainingError(f"objective fold {val_subject}: would use non-search subject(s) "
                            f"{', '.join(sorted(used - set(search_subjects)))}")
    result = run(inputs_of(with_classes(cfg, bank.class_names), split, bank, cache=cache, callback=callback,
                           checkpoint_path=checkpoint_path))
    return result, sorted({subjects[i] for i in split.train})


def fold_value(result, metric: str) -> float:
    """The objective's value on one fold (`nll`: mean negative log-likelihood of the true class)."""
    if metric == "nll":
        if result.probs is None:
            raise ObjectiveError("metric nll needs the MER head (this variant has none)")
        p = np.asarray(result.probs, dtype=np.float64)
        y = np.asarray(result.labels)
        return float(-np.log(np.clip(p[np.arange(len(y)), y], NLL_FLOOR, 1.0)).mean())
    if metric not in result.metrics:
        raise ObjectiveError(f"metric {metric} is not produced by this variant (has {', '.join(result.metrics)})")
    return float(result.metrics[metric])
