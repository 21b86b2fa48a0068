"""From a config to a fold's result, the same for every method: the prepared clips `cfg.data`
names, the folds (LOSO subjects, left-out databases, or the one cross-dataset fold), the split of
one fold, and `run_fold`, which hands them to the method the config names (fdp.methods). Shared
by the CLI, the Ray workers, the search's objective folds and the benchmarks.
"""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from fdp.config import ConfigError, ExperimentConfig
from fdp.fold import (Callback, FoldInputs, FoldResult, FoldSplit, TrainingError, loso_splits, training_labels,
                      with_validation)
from fdp.runtime import resolve_device


def cache_dir_for(dataset: str, explicit: str = "", newest: bool = False) -> Path:
    """The cache `data.cache_dir` names (a cache, a folder of exactly one, a fingerprint), else
    the only prepared one; several and none named refuse (`fdp.data.cache.find_cache`)."""
    from fdp.data.cache import resolve_cache_dir

    return resolve_cache_dir(dataset, explicit, newest=newest)


@functools.lru_cache(maxsize=4)
def _bank(cache_dir: str, setting: str, device: str):
    """(bank, selection, cache) of a cache on a device; kept per process so LOSO folds reuse them."""
    from fdp.data.cache import load_cache
    from fdp.data.sampling import ClipBank, select
    from fdp.data.settings import SETTINGS

    cache = load_cache(cache_dir)
    sel = select(cache, SETTINGS[setting])
    return ClipBank(cache, sel.indices, sel.labels, torch.device(device), class_names=sel.class_names), sel, cache


def load_data(cfg: ExperimentConfig, test: bool = False):
    """(bank, selection, cache) of the training data, or of the cross protocol's test data."""
    d = cfg.data
    if test:
        setting = d.setting.split("/")[0] + "/" + d.test_dataset if d.setting.startswith("cross/") else d.setting
        path = str(cache_dir_for(d.test_dataset, d.test_cache_dir))
    else:
        setting, path = d.setting, str(cache_dir_for(d.dataset, d.cache_dir))
    bank, sel, cache = _bank(path, setting, str(resolve_device(cfg.train.device)))
    if bank.size != d.aligned_size:
        # a crop of differently sized frames sees another scale of the face: refuse, never train on it
        raise ConfigError(f"data.aligned_size={d.aligned_size}: the cache {path} holds {bank.size}x{bank.size} "
                          f"frames; prepare it at {d.aligned_size} or set data.aligned_size={bank.size}")
    return bank, sel, cache


def load_bank(cfg: ExperimentConfig, test: bool = False):
    """(bank, selection) for the training data, or the test dataset of the cross protocol.
    ConfigError when the cache's frames are not `data.aligned_size` pixels square."""
    bank, sel, _ = load_data(cfg, test)
    return bank, sel


def fold_groups(cfg: ExperimentConfig, subjects: list[str]) -> list[str]:
    """What a fold holds out, per clip: its subject (LOSO), or its database (`data.fold_by:
    database`, leave-one-dataset-out on a merged cache whose subjects read `<database>/<subject>`)."""
    if cfg.data.fold_by == "database":
        from fdp.data.merged import database_of

        groups = [database_of(s) for s in subjects]
        if not all(groups):
            raise TrainingError(f"data.fold_by=database: the {cfg.data.dataset} cache is not a merged set "
                                "(its subjects carry no database); prepare one with `fdp-sweep merge lodo`")
        return groups
    return list(subjects)


def fold_names(cfg: ExperimentConfig) -> list[str]:
    """LOSO: the subjects with samples in the class setting, sorted; leave-one-dataset-out: the
    databases; cross protocol: ["cross"]."""
    if cfg.data.test_dataset:
        return ["cross"]
    from fdp.data.cache import load_cache
    from fdp.data.sampling import select
    from fdp.data.settings import SETTINGS

    sel = select(load_cache(cache_dir_for(cfg.data.dataset, cfg.data.cache_dir)), SETTINGS[cfg.data.setting])
    return sorted(set(fold_groups(cfg, sel.subjects)))


def make_split(cfg: ExperimentConfig, subjects: list[str], fold: str, n_test: int | None = None) -> FoldSplit:
    if fold == "cross":
        split = FoldSplit("cross", np.arange(len(subjects)), np.arange(n_test or 0))
    else:
        groups = fold_groups(cfg, subjects)
        splits = {s.fold: s for s in loso_splits(groups)}
        if fold not in splits:
            what = "test database" if cfg.data.fold_by == "database" else "test subject"
            raise TrainingError(f"fold {fold!r}: no such {what} (known: {', '.join(sorted(splits))})")
        split = splits[fold]
    if cfg.train.selection == "early_stop_val":
        split = with_validation(split, subjects, cfg.train.val_subjects, cfg.train.seed)
    return split


def with_classes(cfg: ExperimentConfig, class_names: Sequence[str]) -> ExperimentConfig:
    """`cfg` whose classifier has one output per class of the data it reads (a copy when that differs)."""
    if cfg.model.num_classes == len(class_names):
        return cfg
    cfg = copy.deepcopy(cfg)
    cfg.model.num_classes = len(class_names)
    return cfg


def fold_inputs(cfg: ExperimentConfig, fold: str, callback: Callback | None = None,
                checkpoint_path: str | os.PathLike | None = None) -> FoldInputs:
    """The inputs of fold `fold` of `cfg`: its data loaded, its split built, the labels training
    may read (`fdp.fold.training_labels`) and, when `cfg.protocol_probe` names a metric, the
    recorder of the test-selected protocol."""
    bank, sel, cache = load_data(cfg)
    test_bank, test_cache = bank, cache
    if fold == "cross":
        test_bank, test_sel, test_cache = load_data(cfg, test=True)
        split = make_split(cfg, list(sel.subjects), fold, n_test=len(test_sel.subjects))
    else:
        split = make_split(cfg, list(sel.subjects), fold)
    return inputs_of(with_classes(cfg, sel.class_names), split, bank, test_bank, cache, test_cache,
                     callback=callback, checkpoint_path=checkpoint_path)


def inputs_of(cfg: ExperimentConfig, split: FoldSplit, bank, test_bank=None, cache=None, test_cache=None,
              callback: Callback | None = None, checkpoint_path: str | os.PathLike | None = None) -> FoldInputs:
    """`FoldInputs` of a split that is already built (`fold_inputs`, the search's objective folds)."""
    from fdp.test_selected import recorder_for

    test_bank = bank if test_bank is None else test_bank
    test_cache = cache if test_cache is None else test_cache
    inputs = FoldInputs(cfg, split, bank, test_bank, cache, test_cache, training_labels(cfg, bank, split),
                        callback, Path(checkpoint_path) if checkpoint_path else None)
    inputs.probe = recorder_for(cfg, inputs.test_labels)
    return inputs


def run(inputs: FoldInputs) -> FoldResult:
    """Fit the config's method on the training split and predict the test split (fdp.methods);
    the test-selected record, when one was asked for, is attached to the result."""
    from fdp.methods import get_method

    if len(inputs.split.train) == 0 or len(inputs.split.test) == 0:
        raise TrainingError(f"fold {inputs.split.fold}: empty split (train {len(inputs.split.train)}, "
                            f"test {len(inputs.split.test)})")
    if inputs.test_bank is inputs.bank and np.intersect1d(inputs.split.train, inputs.split.test).size:
        raise TrainingError(f"fold {inputs.split.fold}: test clips appear in the training set")
    result = get_method(inputs.cfg.method).run(inputs)
    if inputs.probe is not None:
        result.test_selected = inputs.probe.records()
    return result


def run_fold(cfg: ExperimentConfig, fold: str, callback: Callback | None = None,
             checkpoint_path: str | os.PathLike | None = None) -> FoldResult:
    """Load the prepared clips named by `cfg.data`, build fold `fold` and run the config's method on it."""
    return run(fold_inputs(cfg, fold, callback, checkpoint_path))
