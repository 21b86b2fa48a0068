"""The paper's Tables 4–14 from our results, with the published numbers beside them.

Layout and rendering: no MLflow, and no statistics of its own (intervals, paired comparisons and
the rank-sum tests come from `orchestrator.report.analysis`). A caller (``summarize``) collects our runs into a
`TableInput` and calls `render_table(n, ours, fmt)` with fmt ``md``, ``latex``, ``csv`` (the table
as printed) or ``tidy`` (one CSV row per number of ours, with its interval, the paper's value and
where it came from: `tidy_rows`).

Input (`TableInput.results`, one `ConfigResult` per configuration key):

* Tables 4–7 and 12 — the class setting FDP was trained on: ``casme2/5``, ``samm/5``,
  ``casme2/3``, ``samm/3``, ``casme_sq/4``, ``casme3/7``.
* Table 8 — the cross-dataset direction: ``casme2->samm``, ``samm->casme2``.
* Tables 9, 10, 13, 14 — the variant name (all on SAMM 5-class): ``fdp``, ``no_dic``,
  ``no_rank``, ``no_local``, ``no_global``, ``no_local_global``, ``no_mer``, ``vit_base``,
  ``conv_t``, ``convbnpw_t``, ``resnet18``.
* Table 11 — the loss weights, ``loss_key(lambda_d, lambda_r)``, e.g. ``lambda_d=100,lambda_r=0.1``.

One run can be filed under several keys (the full FDP on SAMM 5-class is ``samm/5``, ``fdp`` and
``lambda_d=100,lambda_r=0.1``). `row_keys(n)` lists the keys table n reads; any other key is an
error. A key that is absent, or a metric a result lacks, prints as "—".

Layouts follow the paper: Tables 4–8 keep the compared methods and the paper's FDP row and add a
row "FDP (ours)"; Tables 9–11 and 14 put our columns beside the paper's; Table 12 gives the
paper's statistic, our reproduction of it from the published F1 lists (`analysis.reproduce_significance`)
and the same test for our F1; Table 13 adds, for our runs, a one-sided Wilcoxon signed-rank test
paired by LOSO fold between FDP and each ablation / backbone. Our cells are mean ± sample std over
seeds where there are several (percent for Acc/F1/WAR/UAR, ×10⁻³ for the DI MSE).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import groupby

from fdp.stats import RankSumResult, WilcoxonResult, mean_std
from orchestrator.report.analysis import (ALPHA, N_BOOT, POWER, ConfigResult, compared_f1, comparisons,
                                          fold_signed_rank, rank_sum_rows, reproduce_significance, subject_interval)
from orchestrator.report.reference import Reference, RefTestRow, reference

TABLES: tuple[int, ...] = (4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14)
FORMATS: tuple[str, ...] = ("md", "latex", "csv", "tidy")
MISSING = "—"

_SCALE = {"acc": 100.0, "war": 100.0, "uf1": 100.0, "uar": 100.0, "di_mse": 1e3}


@dataclass
class TableInput:
    """Our results for all tables: configuration key (see the module docstring) -> result."""

    results: dict[str, ConfigResult] = field(default_factory=dict)
    # where the numbers come from (orchestrator.report.summarize.provenance): printed under the table
    provenance: list[str] = field(default_factory=list)
    # the data ours were computed on when it is not the paper's ("synthetic casme2/5"): named in the caption
    data_used: str | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.results) - set(all_row_keys()))
        if unknown:
            raise ValueError(f"unknown configuration keys {unknown}; known: {', '.join(all_row_keys())}")

    def get(self, key: str) -> ConfigResult | None:
        return self.results.get(key)


@dataclass
class Table:
    """A rendered-format-independent table: flat headers, optional spanning groups, text cells."""

    number: int
    caption: str
    header: list[str]
    rows: list[list[str]]
    groups: list[tuple[str, int]] = field(default_factory=list)  # (label, span) over all columns
    notes: list[str] = field(default_factory=list)
    n_text: int = 1  # leading text columns (left-aligned); the rest are numbers
    subtables: list["Table"] = field(default_factory=list)  # rendered below (paired comparisons)


# ---------------------------------------------------------------------------------------------
# keys


def loss_key(lambda_d: float, lambda_r: float) -> str:
    """Table 11 configuration key, e.g. loss_key(100, 0.1) == "lambda_d=100,lambda_r=0.1"."""
    return f"lambda_d={float(lambda_d):g},lambda_r={float(lambda_r):g}"


def rerun_key(experiment: str, variant: str) -> str:
    """Tables 4-8: the key of a method re-run here beside FDP ("samm/3|single_frame"); FDP's own
    runs keep the bare experiment key ("samm/3")."""
    return experiment if variant == "fdp" else f"{experiment}|{variant}"


def row_keys(n: int, ref: Reference | None = None, reruns: bool = False) -> list[str]:
    """Configuration keys table `n` reads from a `TableInput`; with `reruns`, Tables 4-8 also read
    every other registered variant re-run on their experiments (`rerun_key`)."""
    ref = ref or reference()
    if n in (4, 5, 6, 7, 8):  # Table 8's "avg" is the mean of its two directions, not a run
        keys = [k for k in dict.fromkeys(c.row_key for c in ref.tables[n].columns) if k != "avg"]
        return keys + [rerun_key(k, v) for v in _other_variants() for k in keys] if reruns else keys
    if n in (9, 10, 11, 14):
        keys = [r.key for r in ref.tables[n].rows]
        return keys + extra_keys(n, ref) if n in (9, 10) else keys
    if n == 12:
        return [r.key for r in ref.tests[12].rows]
    if n == 13:
        return list(dict.fromkeys(row_keys(9, ref) + row_keys(10, ref)))  # controls included
    raise ValueError(f"no table {n}; tables: {', '.join(map(str, TABLES))}")


def extra_keys(n: int, ref: Reference | None = None) -> list[str]:
    """Tables 9, 10: every registered variant that is not a row of the paper's table (the controls,
    the methods re-run here, another table's variants), in registry order; printed when it ran."""
    paper = {r.key for r in (ref or reference()).tables[n].rows}
    return [v for v in _other_variants() if v not in paper]


def variant_label(key: str) -> str:
    """A row of ours without a paper row: the variant, what it runs (its `title`, else its method's:
    fdp.methods), whether it is the shuffled-label control, and the protocol of its number ("ststnet — STSTNet; re-run here: model
    after the last step")."""
    from fdp.methods import get_method
    from fdp.variants import VARIANTS

    v = VARIANTS.get(key)
    if v is None:
        return key
    m = get_method(v.method)
    control = " on shuffled training labels (control)" if v.overrides.get("train.shuffle_labels") else ""
    return f"{key} — {v.title or m.title or m.name}{control}; re-run here: {m.selection}"


def all_row_keys() -> list[str]:
    return list(dict.fromkeys(k for n in TABLES for k in row_keys(n, reruns=True)))


def _other_variants() -> list[str]:
    """Registered variants other than FDP, in registry order (the methods Tables 4-8 may re-run)."""
    from fdp.variants import VARIANTS

    return [v for v in VARIANTS if v != "fdp"]


# ---------------------------------------------------------------------------------------------
# formatting of cells


def _fmt(x: float | None, decimals: int) -> str:
    return MISSING if x is None else f"{x:.{decimals}f}"


def fmt_p(p: float | None) -> str:
    """P-value as the paper prints it: 3 decimals in scientific notation, e.g. 3.227e-7."""
    if p is None:
        return MISSING
    m, e = f"{p:.3e}".split("e")
    return f"{m}e{int(e)}"


def _ours_cell(res: ConfigResult | None, metric: str, decimals: int) -> str:
    if res is None:
        return MISSING
    if metric == "params":
        return _params_cell(res.n_params)
    v = res.values(metric)
    if not v:
        return MISSING
    scale = _SCALE.get(metric, 1.0)
    m, s = mean_std([x * scale for x in v])
    cell = f"{m:.{decimals}f}" if len(v) == 1 else f"{m:.{decimals}f} ± {s:.{decimals}f}"
    ci = subject_interval(res, metric)
    return cell if ci is None else f"{cell} [{ci[0] * scale:.{decimals}f}, {ci[1] * scale:.{decimals}f}]"


def _params_cell(n: int | None) -> str:
    """A parameter count as Table 10 prints it (millions), a small one in units ("2,485")."""
    if n is None:
        return MISSING
    return f"{n:,}" if n < 10_000 else f"{n / 1e6:.2f}M"


def _avg_result(a: ConfigResult | None, b: ConfigResult | None) -> ConfigResult | None:
    """Table 8 "Avg.": per-seed mean of the two directions (mean of the means when the seed
    counts differ, then without a spread)."""
    if a is None or b is None:
        return None
    out: dict[str, list[float]] = {}
    for m in ("war", "uar"):
        va, vb = a.values(m), b.values(m)
        if va and vb:
            if len(va) == len(vb):
                out[m] = [(x + y) / 2 for x, y in zip(va, vb)]
            else:
                out[m] = [(mean_std(va)[0] + mean_std(vb)[0]) / 2]
    return ConfigResult(metrics=out)


def _missing_notes(ours: TableInput, keys: Sequence[str]) -> tuple[list[str], set[str]]:
    notes, partial = [], set()
    for k in keys:
        r = ours.get(k)
        if r is not None and r.missing:
            partial.add(k)
            more = f"; … {len(r.missing) - 5} more" if len(r.missing) > 5 else ""
            shown = "; ".join(r.missing[:5]) + more
            notes.append(f"* {k}: {len(r.missing)} job(s) missing ({shown}); values use the finished ones.")
    return notes, partial


def _seed_note(ours: TableInput, keys: Sequence[str]) -> list[str]:
    counts = sorted({len(v) for k in keys if (r := ours.get(k)) for v in r.metrics.values() if v})
    if not counts:
        return [f"Ours: no results yet ({MISSING} = not run)."]
    seeds = "/".join(map(str, counts))
    lines = [f"Ours: mean ± sample std over {seeds} seed(s) where several; {MISSING} = not run."]
    if any((r := ours.get(k)) is not None and r.predictions for k in keys):
        lines.append(f"[a, b]: {100 * (1 - ALPHA):g} % interval of the pooled value (mean over seeds) from a "
                     f"bootstrap over test SUBJECTS ({N_BOOT} resamples; a subject's clips stay together).")
    return lines


# ---------------------------------------------------------------------------------------------
# significance (Tables 12, 13)


def _versus(ref: Reference, key: str) -> str:
    """"FDP vs ..." of a paired comparison: the variant's name in Tables 9, 14, 10, else the control's label."""
    for n in (9, 14, 10):
        for r in ref.tables[n].rows:
            if r.key == key:
                return f"FDP vs {r.type} backbone" if n == 10 and r.method == "Ours" else f"FDP vs {r.method}"
    return f"FDP vs {variant_label(key)}"


def _comparison_subtable(n: int, ours: TableInput, ref: Reference, keys: Sequence[str]) -> Table | None:
    """Under an ablation table: FDP against each other row of ours, with test, n, effect and
    Holm-adjusted p, and one line with the minimal detectable difference."""
    comps = comparisons(ours.results, keys)
    if not comps:
        return None
    header = ["Comparison", "Folds", "Seeds", "Δ UF1 (pp)", f"{100 * (1 - ALPHA):g} % CI (pp)",
              "Signed-rank W+", "P (one-sided)", "Holm P"]
    rows = [[_versus(ref, c.key), str(c.n_folds), str(c.n_seeds), f"{100 * c.diff:+.2f}",
             f"[{100 * c.low:+.2f}, {100 * c.high:+.2f}]"] + _stat_cells(c.wilcoxon, 1) + [fmt_p(c.holm_p)]
            for c in comps]
    mdds = [f"vs {c.key} {100 * c.mdd:.1f}" for c in comps if c.mdd is not None]
    notes = [
        "Δ UF1: FDP's pooled UF1 minus the other's (mean over seeds); CI from a paired bootstrap over test "
        f"subjects ({N_BOOT} resamples: both rows scored on the same drawn subjects).",
        "Test: Wilcoxon signed-rank on per-fold UF1 (mean over seeds), one-sided, H1: FDP better, paired by "
        "LOSO fold (fdp.stats.paired_wilcoxon); Holm P: Holm–Bonferroni across this table's comparisons.",
    ]
    c0 = comps[0]
    if not mdds:
        notes.append(f"Smallest detectable UF1 difference: not estimable with {c0.n_folds} fold(s) "
                     f"(a paired t-test of so few folds does not reach power {POWER:g}).")
    else:
        notes.append(f"Smallest UF1 difference these {c0.n_folds} folds x {c0.n_seeds} seed(s) could detect "
                     f"(α = {ALPHA:g}, power {POWER:g}; two-sided paired t over folds, noncentral t, from the fold-level "
                     f"spread of the paired differences; fdp.stats.detectable_difference), pp: " + "; ".join(mdds) + ".")
    return Table(n, "paired comparisons of ours (FDP vs each row)", header, rows, notes=notes)


# ---------------------------------------------------------------------------------------------
# table builders


PUBLISHED_PROTOCOL = "as published (selection not stated)"  # a compared method's row without `protocol:`
RERUN_PROTOCOL = "re-run here: model after the last step"  # every row of ours (SPEC §5)


def _comparison_table(n: int, ours: TableInput, ref: Reference) -> Table:
    """Tables 4-8: the published rows, each with the protocol it was made under, and beside a
    published row the re-run of the same method where one ran here (`rerun:` in paper.yaml names
    the variant): FDP (ours) beside FDP (paper), and after it the other methods that ran."""
    t = ref.tables[n]
    d = t.decimals
    header = ["Method", "Paper", "Type", "Protocol"] + [f"{c.group} {c.header}".strip() for c in t.columns]
    groups = [("", 4)] + [(g, len(list(cs))) for g, cs in groupby(t.columns, key=lambda c: c.group)]
    keys = row_keys(n, ref)
    ran = [v for v in _other_variants() if any(ours.get(rerun_key(k, v)) is not None for k in keys)]
    notes, partial = _missing_notes(ours, row_keys(n, ref, reruns=True))

    def rerun_row(variant: str, name: str, typ: str) -> list[str]:
        rk = [rerun_key(k, variant) for k in keys]
        avg = _avg_result(*map(ours.get, rk)) if n == 8 else None
        cells = [_ours_cell(avg if c.row_key == "avg" else ours.get(rerun_key(c.row_key, variant)), c.metric, d)
                 for c in t.columns]
        star = "*" if any(k in partial for k in rk) else ""
        return [name + star, "this run", typ, RERUN_PROTOCOL] + cells

    rows, placed = [], set()
    for r in t.rows:
        name = "FDP (paper)" if r.ours else (f"{r.method} [{r.ref}]" if r.ref else r.method)
        rows.append([name, r.venue, r.type, str(r.extra.get("protocol", PUBLISHED_PROTOCOL))]
                    + [_fmt(v, d) for v in r.values])
        for variant in [v for v in str(r.extra.get("rerun", "")).split(",") if v]:
            if variant == "fdp":
                rows.append(rerun_row("fdp", "FDP (ours)", t.paper_row.type))
            elif variant in ran:
                rows.append(rerun_row(variant, f"{r.method if not r.ours else variant} (re-run here)", r.type))
            placed.add(variant)
    rows += [rerun_row(v, f"{v} (re-run here)", "") for v in ran if v not in placed]
    if "fdp" not in placed:  # a reference file without `rerun:` on the paper's row
        rows.append(rerun_row("fdp", "FDP (ours)", t.paper_row.type))
    return Table(n, t.caption, header, rows, groups, _seed_note(ours, keys) + notes, n_text=4)


def _side_by_side_table(n: int, ours: TableInput, ref: Reference) -> Table:
    """Tables 9, 10, 11, 14: the paper's columns, then ours, on the paper's rows."""
    t = ref.tables[n]
    d = t.decimals
    lead = {10: ["Backbone", "Type"], 11: ["λ_d", "λ_r"]}.get(n, ["Method"])
    heads = [c.header for c in t.columns]
    header = lead + [f"Paper {h}" for h in heads] + [f"Ours {h}" for h in heads]
    groups = [("", len(lead)), ("Paper", len(heads)), ("Ours", len(heads))]
    keys = row_keys(n, ref)
    notes, partial = _missing_notes(ours, keys)
    rows = []
    for r in t.rows:
        if n == 10:
            first = [r.method, r.type]
        elif n == 11:
            first = [f"{r.extra['lambda_d']:g}", f"{r.extra['lambda_r']:g}"]
        else:
            first = [r.method]
        first[0] += "*" if r.key in partial else ""
        paper = [_fmt(v, d) if c.key != "params" or v is None else f"{v:.2f}M" for c, v in zip(t.columns, r.values)]
        rows.append(first + paper + [_ours_cell(ours.get(r.key), c.metric, d) for c in t.columns])
    if n in (9, 10):  # every other variant of ours that ran: no paper numbers, its method and protocol said
        for key in extra_keys(n, ref):
            if (res := ours.get(key)) is not None:
                mine = [_ours_cell(res, c.metric, d) for c in t.columns]
                rows.append([variant_label(key) + ("*" if key in partial else "")] + [""] * (len(lead) - 1)
                            + [MISSING] * len(t.columns) + mine)
    sub = _comparison_subtable(n, ours, ref, keys) if n in (9, 10) else None
    return Table(n, t.caption, header, rows, groups, _seed_note(ours, keys) + notes,
                 n_text=2 if n == 10 else 1, subtables=[sub] if sub else [])


def _stat_cells(res: RankSumResult | WilcoxonResult | None, decimals: int) -> list[str]:
    """A test's statistic and P-value cells ("—" for a test not run)."""
    return [MISSING, MISSING] if res is None else [f"{res.statistic:.{decimals}f}", fmt_p(res.pvalue)]


def _published_cells(tr: RefTestRow, ref: Reference) -> list[str]:
    """The paper's statistic and P-value of a Table 12/13 row, then both recomputed from the published F1 lists."""
    again = next(r.result for r in reproduce_significance(ref) if r.key == tr.key)
    return [f"{tr.statistic:.3f}", fmt_p(tr.pvalue)] + _stat_cells(again, 3)


def _table12(ours: TableInput, ref: Reference) -> Table:
    header = ["Benchmark", "Paper statistic", "Paper P-value", "Reproduced statistic",
              "Reproduced P-value", "Ours F1", "Ours statistic", "Ours P-value"]
    groups = [("", 1), ("Paper", 2), ("Recomputed from Tables 4-7", 2), ("Ours", 3)]
    rows = []
    for tr, mine in zip(ref.tests[12].rows, rank_sum_rows(ours.results, 12, ref)):
        rows.append([tr.label] + _published_cells(tr, ref) + [_fmt(mine.f1, 2)] + _stat_cells(mine.result, 3))
    notes = [
        "One-sided Wilcoxon rank-sum (H1: FDP superior), normal approximation: FDP's F1 repeated "
        "once per compared method vs the distinct published F1 values (fdp.stats.paper_rank_sum). "
        "Ours uses our mean F1 over seeds against the same published lists.",
        "SAMM (Five Categories): the paper prints P = 1.106e-5; 1 - Φ(4.243) is 1.105e-5.",
    ] + _missing_notes(ours, row_keys(12, ref))[0]
    return Table(12, ref.tests[12].caption, header, rows, groups, notes)


def _table13(ours: TableInput, ref: Reference, paired_metric: str = "uf1") -> Table:
    header = ["Comparison", "Test", "Paper statistic", "Paper P-value", "Reproduced statistic",
              "Reproduced P-value", "Ours statistic", "Ours P-value", "Ours n", "Ours Δ UF1 [95 % CI] (pp)",
              "Ours Holm P"]
    groups = [("", 2), ("Paper", 2), ("Recomputed from Tables 9-10", 2), ("Ours", 5)]
    keys = row_keys(13, ref)
    extra = set(extra_keys(9, ref)) & set(extra_keys(10, ref))  # no row of the paper's Tables 9, 10
    comps = {c.key: c for c in comparisons(ours.results, keys)}
    rows = []
    full = ours.get("fdp")
    for tr, mine in zip(ref.tests[13].rows, rank_sum_rows(ours.results, 13, ref)):
        res = mine.result
        n = MISSING if res is None else f"{res.n_ours} vs {res.n_others}"
        rows.append([tr.label, "rank-sum"] + _published_cells(tr, ref) + _stat_cells(res, 3) + [n, MISSING, MISSING])
    for key in keys:
        other = ours.get(key)
        if key == "fdp" or (key in extra and other is None):  # rows of ours alone: only when run
            continue
        w = fold_signed_rank(full, other, paired_metric)
        c = comps.get(key)
        effect = MISSING if c is None else f"{100 * c.diff:+.2f} [{100 * c.low:+.2f}, {100 * c.high:+.2f}]"
        rows.append([_versus(ref, key), "signed-rank"] + [MISSING] * 4 + _stat_cells(w, 1)
                    + [MISSING if w is None else str(w.n), effect, fmt_p(None if c is None else c.holm_p)])
    notes = [
        "rank-sum: one-sided Wilcoxon rank-sum on F1 as in the paper (fdp.stats.paper_rank_sum); "
        "ours: our FDP mean F1 vs our variants' mean F1.",
        f"signed-rank: one-sided Wilcoxon signed-rank (H1: FDP better) on per-fold {paired_metric}, "
        "paired by LOSO fold (folds both runs have); statistic W+; n = folds.",
        "Δ UF1: our FDP's pooled UF1 minus the other's, interval from a paired bootstrap over test subjects; "
        "Holm P: Holm–Bonferroni across the signed-rank rows with predictions (fdp.stats.holm).",
    ] + _missing_notes(ours, keys)[0]
    return Table(13, ref.tests[13].caption, header, rows, groups, notes, n_text=2)


def build_table(n: int, ours: TableInput | Mapping[str, ConfigResult] | None = None,
                ref: Reference | None = None) -> Table:
    """Table `n` (4–14) as a format-independent `Table`."""
    ref = ref or reference()
    data = ours if isinstance(ours, TableInput) else TableInput(dict(ours or {}))
    if n in (4, 5, 6, 7, 8):
        table = _comparison_table(n, data, ref)
    elif n in (9, 10, 11, 14):
        table = _side_by_side_table(n, data, ref)
    elif n == 12:
        table = _table12(data, ref)
    elif n == 13:
        table = _table13(data, ref)
    else:
        raise ValueError(f"no table {n}; tables: {', '.join(map(str, TABLES))}")
    return with_provenance(table, data)


# the paper's data as captions name it; ours may be other data (a smoke run on the synthetic benchmark)
_PAPER_DATA_IN_CAPTION = re.compile(r"\bon (CASME II and SAMM|SAMM|CASME II|CAS\(ME\)\^2|CAS\(ME\)\^3)\b")


def with_provenance(table: Table, ours: TableInput) -> Table:
    """Name the data ours were computed on in the caption when it is not the paper's ("on
    synthetic casme2/5 (ours; the paper's columns: SAMM)"), and append the provenance lines
    (data, fingerprint, sweep, parent run, smoke, steps, folds, seeds, commit) to the notes,
    which every format prints under the table (md list, LaTeX footnote, CSV '#' lines)."""
    caption = table.caption
    if ours.data_used:
        m = _PAPER_DATA_IN_CAPTION.search(caption)
        if m:
            caption = (caption[:m.start()] + f"on {ours.data_used} (ours; the paper's columns: {m.group(1)})"
                       + caption[m.end():])
        else:
            caption = caption.rstrip() + f" Ours on {ours.data_used}."
    if caption == table.caption and not ours.provenance:
        return table
    return dataclasses.replace(table, caption=caption, notes=list(table.notes) + list(ours.provenance))


# ---------------------------------------------------------------------------------------------
# rendering


def _md(t: Table) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    align = ["---"] * t.n_text + ["---:"] * (len(t.header) - t.n_text)
    out = [f"**Table {t.number}.** {t.caption}", "", line(t.header), "| " + " | ".join(align) + " |"]
    out += [line(r) for r in t.rows]
    if t.notes:
        out += [""] + [f"- {n}" for n in t.notes]
    return "\n".join(out) + "\n"


def _tex(s: str) -> str:
    s = s.replace("\\", "\0")
    for ch in "&%$#_{}":
        s = s.replace(ch, "\\" + ch)
    s = s.replace("~", r"\textasciitilde{}").replace("\0", r"\textbackslash{}")
    s = re.sub(r"\^(\w+)", "\x01{\\1}$", s)  # CAS(ME)^2 -> CAS(ME)$^{2}$
    s = s.replace("^", r"\textasciicircum{}").replace("\x01", "$^")
    return (s.replace("±", r"$\pm$").replace("—", "--").replace("->", r"$\rightarrow$")
            .replace("×", r"$\times$").replace("⁻³", "$^{-3}$").replace("λ", r"$\lambda$")
            .replace("Φ", r"$\Phi$"))


def _latex(t: Table) -> str:
    spec = "l" * t.n_text + "r" * (len(t.header) - t.n_text)
    out = [r"\begin{table}[t]", r"\centering", rf"\caption{{Table {t.number}. {_tex(t.caption)}}}",
           rf"\begin{{tabular}}{{{spec}}}", r"\toprule"]
    if any(g for g, _ in t.groups):
        cells = [rf"\multicolumn{{{span}}}{{c}}{{{_tex(g)}}}" if g else " & ".join([""] * span)
                 for g, span in t.groups]
        out.append(" & ".join(cells) + r" \\")
        col, rules = 1, []
        for g, span in t.groups:
            if g:
                rules.append(rf"\cmidrule(lr){{{col}-{col + span - 1}}}")
            col += span
        out.append(" ".join(rules))
    out.append(" & ".join(_tex(h) for h in t.header) + r" \\")
    out.append(r"\midrule")
    out += [" & ".join(_tex(c) for c in r) + r" \\" for r in t.rows]
    out += [r"\bottomrule", r"\end{tabular}"]
    if t.notes:
        out.append(r"\par\footnotesize " + r" \\ ".join(_tex(n) for n in t.notes))
    out.append(r"\end{table}")
    return "\n".join(out) + "\n"


def _csv(t: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(t.header)
    w.writerows(t.rows)
    for n in t.notes:
        buf.write(f"# {n}\n")
    return buf.getvalue()


def render(table: Table, fmt: str = "md") -> str:
    """Render a built table as Markdown, LaTeX (booktabs) or CSV (notes as trailing '# ' lines);
    its subtables (paired comparisons) follow, separated by a blank line."""
    one = {"md": _md, "latex": _latex, "csv": _csv}.get(fmt)
    if one is None:
        raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    return "\n".join(one(t) for t in [table] + list(table.subtables))


def render_table(n: int, ours: TableInput | Mapping[str, ConfigResult] | None = None,
                 fmt: str = "md", ref: Reference | None = None) -> str:
    """Table `n` (4–14) in the paper's layout with our results beside the published ones."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
    if fmt == "tidy":
        return tidy_csv(tidy_rows(n, ours, ref))
    return render(build_table(n, ours, ref), fmt)


# ---------------------------------------------------------------------------------------------
# tidy: one row per number, for pandas / R (`pd.read_csv`), each naming the data and code behind it

TIDY_COLUMNS = ("table", "row", "metric", "unit", "mean", "std", "seeds", "ci_low", "ci_high", "folds", "subjects",
                "clips", "published", "p", "holm_p", "sweep", "data", "data_fingerprint", "commit", "version", "smoke",
                "selection")  # selection: which protocol chose the predictions (empty: the honest one)
_UNITS = {"acc": "%", "war": "%", "uf1": "%", "uar": "%", "di_mse": "1e-3", "params": "M"}


def tidy_cell(table: int | str, key: str, metric: str, res: ConfigResult | None, published: float | None = None
              ) -> dict[str, object]:
    """One tidy row: our mean over seeds in the paper's units (std over seeds from 2 seeds on), the
    subject-bootstrap interval, the pooled folds / subjects / clips (first seed) and the source.
    `metric` may name a part of the data after '@' (MEGC's "uf1@samm"): its unit is the metric's."""
    base = metric.split("@")[0]
    row: dict[str, object] = {"table": table, "row": key, "metric": metric, "unit": _UNITS.get(base, ""),
                              "published": published}
    if res is None:
        return row
    row.update(res.source)
    if res.predictions:
        sp = res.predictions[0]
        row.update(subjects=len(set(sp.subjects)), clips=len(sp.labels))
    if res.fold_metrics.get("uf1"):
        row["folds"] = len(res.fold_metrics["uf1"])
    if metric == "params":
        row["mean"] = None if res.n_params is None else res.n_params / 1e6
    elif v := res.values(metric):
        scale = _SCALE.get(base, 1.0)
        mean, std = mean_std([x * scale for x in v])
        row.update(mean=mean, std=std if len(v) > 1 else None, seeds=len(v))
        if (ci := subject_interval(res, metric)) is not None:
            row.update(ci_low=ci[0] * scale, ci_high=ci[1] * scale)
    return row


def tidy_rows(n: int, ours: TableInput | Mapping[str, ConfigResult] | None = None,
              ref: Reference | None = None) -> list[dict[str, object]]:
    """Table `n` as tidy rows: every (configuration key, metric) cell of ours the table shows, with
    the paper's value of that cell as `published` (its FDP row in Tables 4–8, the matching row in 9–11 and 14, FDP's
    F1 in 12, the variant's F1 in 13; empty for our controls), then, under Tables 9, 10 and 13, one
    row per paired comparison (`uf1_diff`: FDP minus the row, percentage points, with p and Holm p)."""
    ref = ref or reference()
    data = ours if isinstance(ours, TableInput) else TableInput(dict(ours or {}))
    cells: list[tuple[str, str, float | None]] = []
    if n in (4, 5, 6, 7, 8):
        t = ref.tables[n]
        cells = [(c.row_key, c.metric, v) for c, v in zip(t.columns, t.paper_row.values)]
        # methods re-run here, beside the published values of the same method where the table has them
        published = {v: r for r in t.rows for v in str(r.extra.get("rerun", "")).split(",") if v}
        for v in _other_variants():
            if any(data.get(rerun_key(k, v)) is not None for k in row_keys(n, ref)):
                r = published.get(v)
                cells += [(rerun_key(c.row_key, v), c.metric, r.values[i] if r is not None else None)
                          for i, c in enumerate(t.columns) if c.row_key != "avg"]
    elif n in (9, 10, 11, 14):
        t = ref.tables[n]
        cells = [(r.key, c.metric, v) for r in t.rows for c, v in zip(t.columns, r.values)]
        cells += [(k, c.metric, None) for k in (extra_keys(n, ref) if n in (9, 10) else []) if data.get(k) is not None
                  for c in t.columns]
    elif n == 12:
        cells = [(tr.key, "uf1", compared_f1(ref, tr)[0]) for tr in ref.tests[12].rows]
    elif n == 13:
        paper = {r.key: v for t in (9, 10) for r in ref.tables[t].rows
                 for c, v in zip(ref.tables[t].columns, r.values) if c.metric == "uf1"}
        cells = [(k, "uf1", paper.get(k)) for k in row_keys(13, ref)]
    else:
        raise ValueError(f"no table {n}; tables: {', '.join(map(str, TABLES))}")
    avg = _avg_result(*map(data.get, row_keys(8, ref))) if n == 8 else None
    rows = [tidy_cell(n, k, m, avg if k == "avg" else data.get(k), p) for k, m, p in cells]
    for c in comparisons(data.results, row_keys(n, ref)) if n in (9, 10, 13) else []:
        a, b = (data.get(k).source for k in ("fdp", c.key))  # type: ignore[union-attr]
        rows.append({"table": n, "row": f"fdp-{c.key}", "metric": "uf1_diff", "unit": "pp", "mean": 100 * c.diff,
                     "seeds": c.n_seeds, "ci_low": 100 * c.low, "ci_high": 100 * c.high, "folds": c.n_folds,
                     "p": c.wilcoxon.pvalue, "holm_p": c.holm_p, **merge_sources(a, b)})
    return rows


def merge_sources(*sources: Mapping[str, str]) -> dict[str, str]:
    """`ConfigResult.source`s joined column by column, each value once, in order ("abc; def")."""
    cols: dict[str, dict[str, None]] = {}
    for src in sources:
        for k, v in src.items():
            cols.setdefault(k, {}).update(dict.fromkeys(v.split("; ") if v else ()))
    return {k: "; ".join(v) for k, v in cols.items() if v}


def tidy_csv(rows: Sequence[Mapping[str, object]]) -> str:
    """Tidy rows as CSV: a header of `TIDY_COLUMNS`, empty cells where a value does not apply."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, TIDY_COLUMNS, restval="", lineterminator="\n")
    w.writeheader()
    w.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    return buf.getvalue()
