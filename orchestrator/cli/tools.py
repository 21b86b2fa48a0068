"""Small helpers shared by the CLI commands: one-line errors, KEY=VALUE parsing."""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, NoReturn

import click

from fdp.config import ConfigError, parse_override


# where a command's runs go unless told: the current folder's store (`mlflow ui` there shows it)
TRACKING_HELP = ("MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db in the current "
                 "folder, or in $FDP_PROJECT_ROOT).")


def parse_sets(sets: tuple[str, ...]) -> dict[str, Any]:
    return dict(parse_override(s) for s in sets)


def fail(*problems: object) -> NoReturn:
    """`error: <problem>` on stderr, one line each, and exit status 2."""
    for p in problems:
        click.echo(f"error: {p}", err=True)
    sys.exit(2)


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors whose message is a complete explanation for the user (no traceback)."""
    from fdp.data.samples import DataError
    from fdp.fold import TrainingError
    from orchestrator.spec.sweep import SpecError

    return (ConfigError, DataError, TrainingError, FileNotFoundError, SpecError)


def fail_on_errors(fn: Callable) -> Callable:
    """Turn expected errors into `error: ...` lines on stderr and exit status 2: one line, or one
    per problem of a sweep spec (`SpecError.problems`)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except expected_errors() as e:
            fail(*getattr(e, "problems", [e]))

    return wrapper
