"""pydantic's validation errors of a sweep file -> our lines: one line per mistake, each naming its
key path ("experiments[2].setting: ...", "grid: loss.lambda_d: ..."), all of them at once, in the
order of the keys (unknown keys, then missing ones, first).

A field says in `Expect` how a bad value of it is told; `problems(model, raw)` finds, for every
error pydantic reports, the field it concerns and that field's line, walks nested blocks on their
own, and adds each block's `checks` (rules beyond the types). The declaration itself is
`orchestrator.spec.schema`.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from pydantic import BaseModel, ValidationError

from fdp.config import suggest

Problem = tuple[tuple, str, int]  # (where: field names / indices / keys, line, rank: 0 unknown, 1 missing, 2 other)


@dataclass(frozen=True)
class Expect:
    """A field's line for a bad value: `text` gives "expected <text>, got <value>" (or, a function,
    the whole message); `each` the same for one bad item of a list or value of a mapping (named by
    its index or key); `key` the message for a bad key of a mapping."""

    text: str | Callable[[Any], str]
    each: str | Callable[[Any], str] | None = None
    key: Callable[[Any], str] | None = None


def _say(how: str | Callable[[Any], str], value: Any) -> str:
    return how(value) if callable(how) else f"expected {how}, got {value!r}"


def _mapping(raw: dict[str, Any], key: str) -> dict[str, Any]:
    return raw[key] if isinstance(raw.get(key), dict) else {}


def problems(model: type[BaseModel], raw: dict[str, Any], path: str = "") -> list[str]:
    """Every mistake of `raw` against `model`, one line each ("<key path>: <what>"), in the
    order of the keys (unknown keys, then missing ones, first)."""
    return [line for _, line in sorted(dict.fromkeys(_problems(model, raw, path, ())), key=lambda p: p[0])]


def _problems(model: type[BaseModel], raw: dict[str, Any], path: str, order: tuple) -> Iterator[tuple[tuple, str]]:
    """(sort key, line) for `raw` under `model` at `path`; nested blocks are walked here (each
    validated on its own), so that a line is found by the field it concerns."""
    try:
        model.model_validate(raw)
        errors: list[dict[str, Any]] = []
    except ValidationError as e:
        errors = e.errors()
    fields = list(model.model_fields)
    head = f"{path}: " if path else ""
    bad = set()
    for err in errors:
        name = err["loc"][0] if err["loc"] else None
        if err["type"] == "extra_forbidden" and len(err["loc"]) == 1:
            yield order + ((0, 0),), f"{head}unknown key {name!r}{suggest(str(name), fields)}"
        elif err["type"] == "missing" and len(err["loc"]) == 1:
            yield order + ((1, fields.index(name)),), f"{head}missing required key {name!r}"
        bad.add(name)
    for i, (name, info) in enumerate(model.model_fields.items()):
        if name not in raw or (name not in bad and _block_of(info.annotation)[0] is None):
            continue  # (a nested block is walked even when valid: its own checks)
        mine = [e for e in errors if e["loc"][:1] == (name,)]
        yield from _field(info, raw[name], mine, f"{path}{model.SEP}{name}" if path else name, order + ((2, i),))
    ok = {k: v for k, v in raw.items() if k in fields and k not in bad}
    for where, line, r in model.checks(raw, ok):
        sep = model.SEP if where and where[0] in fields and r != 1 else ": "
        key = [(r, fields.index(w) if w in fields else 0) for w in where[:1]]
        for w in where[1:]:  # an item of a list, or a key of a mapping, in the order the file gives them
            key.append((2, w if isinstance(w, int) else list(_mapping(raw, where[0])).index(w)))
        yield order + tuple(key), (f"{path}{sep}{line}" if path else line)


def _field(info: Any, value: Any, errors: list[dict[str, Any]], path: str, order: tuple) -> Iterator[tuple[tuple, str]]:
    """The lines of one field's errors."""
    expect = next((m for m in info.metadata if isinstance(m, Expect)), None) or _expect_of(info.annotation)
    sub, container = _block_of(info.annotation)
    if sub is not None and isinstance(value, dict) and container is None:
        yield from _problems(sub, value, path, order)
        return
    keys = list(value) if isinstance(value, dict) else list(range(len(value))) if isinstance(value, list) else []

    def item(k) -> str:  # one item, or a key's value
        return f"{path}[{k}]" if isinstance(k, int) else f"{path}: {k}"

    whole = False
    for err in errors:
        loc = err["loc"][1:]
        if err["type"] == "spec" and not loc:
            yield order, f"{path}: {err['msg']}"
        elif loc and loc[0] in keys and (expect.each or expect.key or container):
            k, at = loc[0], order + ((2, keys.index(loc[0])),)
            if loc[1:2] == ("[key]",):
                yield at, f"{path}: {expect.key(k)}"
            elif sub is not None and isinstance(value[k], dict):
                continue  # walked below
            elif expect.each is not None:
                label = path if isinstance(k, int) and sub is None else item(k)  # variants: say the name, not [i]
                yield at, f"{label}: {_say(expect.each, value[k])}"
        else:
            whole = True
    if whole:
        yield order, f"{path}: {_say(expect.text, value)}"
    if sub is not None and container is not None:
        for pos, k in enumerate(keys):
            if isinstance(value[k], dict):
                yield from _problems(sub, value[k], item(k), order + ((2, pos),))


def _block_of(annotation: Any) -> tuple[type[BaseModel] | None, type | None]:
    """(the block (a `schema.Block`) a field holds, list/dict when it holds several of them)."""
    for t in (annotation, *typing.get_args(annotation)):
        origin = typing.get_origin(t)
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t, None
        if origin in (list, dict) and isinstance(typing.get_args(t)[-1], type) and issubclass(typing.get_args(t)[-1], BaseModel):
            return typing.get_args(t)[-1], origin
    return None, None


def _expect_of(annotation: Any) -> Expect:
    for t in (annotation, *typing.get_args(annotation)):
        found = next((m for m in getattr(t, "__metadata__", ()) if isinstance(m, Expect)), None)
        if found is not None:
            return found
    return Expect("a valid value")
