"""The method registry: every way a fold is fitted and predicted, behind one interface.

A method is a name, its paper, its input in words, its exact parameter count for a config, and
`run(FoldInputs) -> FoldResult` (fdp.fold): fit on the training split, predict the test split once,
report what it cost (wall time, steps, peak memory). The FDP network and its registered variants
(fdp.variants: config diffs) are the method `network`; a variant names its method with the config
key `method`. Every caller -- the fold runner (fdp.runner), the scheduler's workers, tracking,
the tables -- treats every method alike through this table.

Adding a method is one registration (this module's `register`, in the method's module, which
fdp/methods/__init__.py imports) and one small adapter, its `run`: turn `FoldInputs` into the
method's own fit/predict call and its predictions into a FoldResult
(`fdp.fold.result_of_predictions`). A method that trains in steps feeds `inputs.probe` (the
test-selected recorder, fdp.test_selected) every `inputs.probe.every` steps when it is not None.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from fdp.config import ConfigError, suggest


@dataclass(frozen=True)
class Method:
    name: str
    paper: str  # where it comes from (citation), or why it exists
    input: Callable[[Any], str]  # cfg -> what it sees, in words ("the apex frame, grey, 16 x 16")
    params: Callable[[Any], int]  # cfg -> exact count of the weights it fits (networks: counted)
    params_note: str  # how `params` counts, in words ("trainable weights of the built model")
    run: Callable[[Any], Any]  # FoldInputs -> FoldResult
    check: Callable[[Any], None] = lambda cfg: None  # ConfigError for a config it cannot run (one line)
    # cfg, device type, frames of the bank -> fdp.memory.MemoryEstimate, or None: not estimated
    memory: Callable[[Any, str, int | None], Any] = lambda cfg, device, frames: None
    title: str = ""  # short name in a table row ("STSTNet"); "" = `name`
    selection: str = "model after the last step"  # what its honest result is, in words (a table row's protocol)
    reads: tuple[str, ...] = ()  # config sections of fdp.config.METHOD_SECTIONS it reads (they enter its job key)
    # cfg -> optimizer steps per fold, as a dry run lists them ("-": fitted once; "500 ep": epochs, the
    # steps depend on the training split)
    steps: Callable[[Any], int | str] = lambda cfg: cfg.train.steps


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.name in METHODS:
        raise ValueError(f"method {method.name!r} is registered twice")
    METHODS[method.name] = method
    return method


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise ConfigError(f"method: unknown method {name!r}{suggest(name, sorted(METHODS))}; "
                          f"known: {', '.join(METHODS)}")
    return METHODS[name]


def list_methods() -> list[Method]:
    return list(METHODS.values())
