"""Small helpers shared by the CLI commands: one-line errors, KEY=VALUE parsing."""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import click

from fdp.config import ConfigError, parse_override


def parse_sets(sets: tuple[str, ...]) -> dict[str, Any]:
    return dict(parse_override(s) for s in sets)


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors whose message is a complete one-line explanation for the user (no traceback)."""
    from fdp.data.samples import DataError
    from fdp.train import TrainingError

    return (ConfigError, DataError, TrainingError, FileNotFoundError)


def fail_on_errors(fn: Callable) -> Callable:
    """Turn expected errors into `error: <one line>` on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except expected_errors() as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)

    return wrapper
