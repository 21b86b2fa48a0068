"""The paper's published numbers (Tables 4–14) as data: loader for `reference/paper.yaml`.

`summarize` prints these beside our results (SPEC §6: published numbers are data, never typed
into table code). Values are kept as printed: percentages, Table 10 parameters in millions,
Table 14 MSE in units of 1e-3; `None` where the paper prints "-".
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REFERENCE_PATH = Path(__file__).with_name("reference") / "paper.yaml"


@dataclass(frozen=True)
class RefColumn:
    key: str  # "<row key>.<metric>" (Tables 4–8) or "<metric>" (Tables 9–11, 14)
    header: str  # as printed, e.g. "F1"
    group: str = ""  # spanning header, e.g. "CASME II"

    @property
    def metric(self) -> str:
        """Our metric name of the column (acc, war, uf1, uar, di_mse, params)."""
        return self.key.rsplit(".", 1)[-1]

    @property
    def row_key(self) -> str:
        """The configuration key of Tables 4–8 columns ("casme2/5"); "" for Tables 9–14."""
        return self.key.rsplit(".", 1)[0] if "." in self.key else ""


@dataclass(frozen=True)
class RefRow:
    method: str
    values: tuple[float | None, ...]  # in column order; None = not reported ("-")
    ours: bool = False  # a result of the paper's own FDP (or its variants)
    key: str = ""  # configuration key of our matching run (Tables 9–11, 14)
    ref: int | None = None  # reference number in the paper's bibliography
    venue: str = ""
    type: str = ""  # DL / NDL / PF / RI / KF (Tables 4–8); backbone type (Table 10)
    printed: dict[str, str] = field(default_factory=dict)  # labels the paper prints differently
    extra: dict[str, Any] = field(default_factory=dict)  # other fields (lambda_d, lambda_r)


@dataclass(frozen=True)
class RefTable:
    number: int
    caption: str
    columns: tuple[RefColumn, ...]
    rows: tuple[RefRow, ...]
    decimals: int = 2  # decimals the paper prints

    def column(self, key: str) -> int:
        """Index of the column with this key."""
        for i, c in enumerate(self.columns):
            if c.key == key:
                return i
        raise KeyError(f"table {self.number} has no column {key!r}; "
                       f"columns: {', '.join(c.key for c in self.columns)}")

    def values(self, key: str, ours: bool | None = None) -> list[float]:
        """Reported (non-null) values of a column, optionally only the paper's own / others."""
        i = self.column(key)
        return [r.values[i] for r in self.rows
                if r.values[i] is not None and (ours is None or r.ours == ours)]

    def row(self, key: str) -> RefRow:
        """The row filed under configuration key `key` (Tables 9–11, 14)."""
        for r in self.rows:
            if r.key == key:
                return r
        raise KeyError(f"table {self.number} has no row {key!r}")

    @property
    def paper_row(self) -> RefRow:
        """The paper's FDP row of a comparison table (Tables 4–8)."""
        mine = [r for r in self.rows if r.ours]
        if len(mine) != 1:
            raise KeyError(f"table {self.number} has {len(mine)} rows of the paper's own")
        return mine[0]


@dataclass(frozen=True)
class RefTestRow:
    label: str  # as printed, e.g. "CASME II (Five Categories)"
    key: str  # configuration key of ours (Table 12) or "modules" / "backbones" (Table 13)
    table: int  # table the F1 list comes from
    column: str  # column key of that table
    ours_key: str  # Table 13: row key of the full FDP inside `table`; "" for Table 12
    statistic: float  # as printed
    pvalue: float  # as printed


@dataclass(frozen=True)
class RefTests:
    number: int
    caption: str
    rows: tuple[RefTestRow, ...]


@dataclass(frozen=True)
class Reference:
    source: str
    tables: dict[int, RefTable]  # 4–11, 14
    tests: dict[int, RefTests]  # 12, 13


def _num(v: Any, where: str) -> float | None:
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise ValueError(f"{where}: not a number: {v!r}")
    try:
        return float(v)
    except ValueError:
        raise ValueError(f"{where}: not a number: {v!r}") from None


def _table(n: int, d: dict[str, Any], where: str) -> RefTable:
    cols = tuple(RefColumn(str(c["key"]), str(c["header"]), str(c.get("group", "")))
                 for c in d["columns"])
    rows = []
    known = {"method", "values", "ours", "key", "ref", "venue", "type", "printed"}
    for i, r in enumerate(d["rows"]):
        w = f"{where}: table {n} row {i + 1}"
        vals = tuple(_num(v, w) for v in r["values"])
        if len(vals) != len(cols):
            raise ValueError(f"{w}: {len(vals)} values for {len(cols)} columns")
        rows.append(RefRow(str(r["method"]), vals, bool(r.get("ours", False)), str(r.get("key", "")),
                           r.get("ref"), str(r.get("venue", "")), str(r.get("type", "")),
                           dict(r.get("printed", {})),
                           {k: v for k, v in r.items() if k not in known}))
    return RefTable(n, str(d["caption"]), cols, tuple(rows), int(d.get("decimals", 2)))


def _tests(n: int, d: dict[str, Any], where: str) -> RefTests:
    rows = []
    for i, r in enumerate(d["rows"]):
        w = f"{where}: table {n} row {i + 1}"
        src = r["source"]
        rows.append(RefTestRow(str(r["label"]), str(r["key"]), int(src["table"]), str(src["column"]),
                               str(src.get("ours", "")), _num(r["statistic"], w),
                               _num(r["pvalue"], w)))
    return RefTests(n, str(d["caption"]), tuple(rows))


def load_reference(path: str | Path | None = None) -> Reference:
    """Parse the reference file (default: the packaged `reference/paper.yaml`)."""
    p = Path(path) if path is not None else REFERENCE_PATH
    try:
        d = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{p}: cannot read reference numbers: {e}") from None
    try:
        tables = {int(k): _table(int(k), v, str(p)) for k, v in d["tables"].items()}
        tests = {int(k): _tests(int(k), v, str(p)) for k, v in d["tests"].items()}
    except (KeyError, TypeError) as e:
        raise ValueError(f"{p}: malformed reference file ({e!r})") from None
    return Reference(str(d.get("source", "")), tables, tests)


@functools.cache
def reference() -> Reference:
    """The packaged reference, parsed once."""
    return load_reference()
