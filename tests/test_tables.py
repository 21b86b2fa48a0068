"""Reference numbers (checked against the paper text), the reproduction of Tables 12–13, and
rendering of Tables 4–14 in every format with our results beside the published ones."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from scipy import stats as st

from fdp.stats import paired_wilcoxon, paper_rank_sum
from orchestrator.report.reference import load_reference, reference
from orchestrator.report.analysis import ConfigResult, reproduce_significance
from orchestrator.report.tables import (PUBLISHED_PROTOCOL, RERUN_PROTOCOL, FORMATS, MISSING, TABLES,
                                        TIDY_COLUMNS, TableInput, build_table, loss_key, render_table, row_keys)

ROOT = Path(__file__).resolve().parents[1]
PAPER_CANDIDATES = [ROOT.parent / "shared" / "paper" / "fdp-paper.md",
                    ROOT / "shared" / "paper" / "fdp-paper.md"]
PAPER = next((p for p in PAPER_CANDIDATES if p.is_file()), None)


# ---------------------------------------------------------------------------------------------
# reference data


def test_reference_spot_checks():
    ref = reference()
    t4 = ref.tables[4]
    gacnn = next(r for r in t4.rows if r.method == "GACNN")
    assert gacnn.values == (81.30, 70.90, 88.24, 82.79)
    assert t4.paper_row.values == (88.42, 87.05, 86.69, 85.29)
    assert next(r for r in t4.rows if r.method == "HIGO+Mag").values == (67.21, None, None, None)
    assert len(t4.values("samm/5.uf1", ours=False)) == 13
    assert ref.tables[5].paper_row.values == (92.72, 90.71, 91.25, 86.67)
    assert ref.tables[6].paper_row.values == (83.67, 81.69)
    assert ref.tables[7].paper_row.values == (59.78, 57.84)
    assert ref.tables[8].paper_row.values == (58.2, 51.8, 62.2, 56.0, 60.2, 53.9)
    assert ref.tables[8].decimals == 1
    assert ref.tables[9].row("no_local_global").values == (60.70, 59.05)
    assert ref.tables[10].row("vit_base").values == (70.58, 67.24, 88.39)
    assert ref.tables[11].row(loss_key(1000, 0.1)).values == (50.73, 23.67)
    assert ref.tables[14].row("no_mer").values == (1.78,)
    assert [(r.statistic, r.pvalue) for r in ref.tests[13].rows] == [(2.611, 4.512e-3), (2.309, 1.046e-2)]
    assert ref.tests[12].rows[0].pvalue == 3.227e-7


def test_reference_loader_rejects_malformed(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("tables:\n  4:\n    caption: x\n    columns: [{key: a, header: A}]\n"
                   "    rows: [{method: m, values: [1, 2]}]\ntests: {}\n")
    with pytest.raises(ValueError, match="2 values for 1 columns"):
        load_reference(bad)


def _norm(s: str) -> str:
    s = re.sub(r"\$\\mathcal\{L\}_\{(\w+)\}\$", r"L_\1", s)
    s = re.sub(r"<[^>]+>", "", s).replace("’", "'").replace("$\\lambda_d$", "λ_d")
    return re.sub(r"[\s^]", "", s).lower()


def _paper_rows(text: str, n: int) -> list[list[str]]:
    """Data rows (tab-separated cells, HTML stripped) of table `n` in the paper markdown."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(f"Table {n}."))
    rows: list[list[str]] = []
    for line in lines[start + 1:]:
        if not line.strip():
            if rows:
                break
            continue
        if "\t" not in line:
            if rows:
                break
            continue
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in line.split("\t")]
        if cells[0] in ("", "Method", "Backbone", "Benchmark", "Ablation", "$\\lambda_d$"):
            continue
        rows.append(cells)
    return rows


def _num(cell: str) -> float | None:
    return None if cell == "-" else float(cell.rstrip("M"))


@pytest.mark.skipif(PAPER is None, reason="paper text (../shared/paper/fdp-paper.md) not present")
@pytest.mark.parametrize("n", [4, 5, 6, 7, 8, 9, 10, 11, 14])
def test_reference_tables_match_paper_text(n):
    text = PAPER.read_text(encoding="utf-8")
    t = reference().tables[n]
    got = _paper_rows(text, n)
    assert len(got) == len(t.rows)
    for cells, r in zip(got, t.rows):
        if n in (4, 5, 6, 7, 8):
            m = re.match(r"(.*?)\s*(?:\[(\d+)\])?$", cells[0])
            assert _norm(m.group(1)) == _norm(r.method)
            assert (int(m.group(2)) if m.group(2) else None) == r.ref
            assert _norm(cells[1]) == _norm(r.printed.get("venue", r.venue))
            assert cells[2] == r.printed.get("type", r.type)
            vals = cells[3:]
        elif n == 10:
            assert _norm(re.sub(r"\[\d+\]", "", cells[0])) == _norm(r.method) and cells[1] == r.type
            vals = cells[2:]
        elif n == 11:
            assert (float(cells[0]), float(cells[1])) == (r.extra["lambda_d"], r.extra["lambda_r"])
            vals = cells[2:]
        else:
            assert _norm(cells[0]) == _norm(r.method)
            vals = cells[1:]
        assert tuple(_num(c) for c in vals if c != "") == r.values, r.method


@pytest.mark.skipif(PAPER is None, reason="paper text (../shared/paper/fdp-paper.md) not present")
@pytest.mark.parametrize("n", [12, 13])
def test_reference_tests_match_paper_text(n):
    got = _paper_rows(PAPER.read_text(encoding="utf-8"), n)
    rows = reference().tests[n].rows
    assert [(_norm(c[0]), float(c[1]), float(c[2])) for c in got] == \
        [(_norm(r.label), r.statistic, r.pvalue) for r in rows]


# ---------------------------------------------------------------------------------------------
# Tables 12–13 reproduction


def _sig(p: float) -> str:
    return f"{p:.3e}"


def test_tables_12_13_reproduced_to_printed_precision():
    rows = reproduce_significance()
    assert [r.table for r in rows] == [12] * 6 + [13] * 2
    for r in rows:
        assert round(r.result.statistic, 3) == r.paper_statistic, r.label
        assert r.result.pvalue == pytest.approx(st.norm.sf(r.result.statistic))
        if r.key == "samm/5":
            # the paper prints 1.106e-5; 1 - Phi(sqrt(18)) = 1.1045e-5: one unit in the last digit
            assert _sig(r.result.pvalue) == "1.105e-05"
            assert abs(float(_sig(r.result.pvalue)) - r.paper_pvalue) == pytest.approx(0.001e-5)
        else:
            assert _sig(r.result.pvalue) == _sig(r.paper_pvalue), r.label
    sizes = {r.key: (r.result.n_ours, r.result.n_others) for r in rows}
    assert sizes == {"casme2/5": (17, 17), "samm/5": (13, 12), "casme2/3": (4, 4), "samm/3": (4, 4),
                     "casme_sq/4": (3, 3), "casme3/7": (5, 5), "modules": (5, 5), "backbones": (4, 4)}


def test_samm_plain_n_vs_n_would_not_match():
    others = reference().tables[4].values("samm/5.uf1", ours=False)
    plain = st.ranksums([85.29] * len(others), others, alternative="greater")
    assert round(plain.statistic, 3) == 4.333 != 4.243


# ---------------------------------------------------------------------------------------------
# rendering


def _ours() -> TableInput:
    folds = [f"{i:03d}" for i in range(6, 14)]
    fdp_folds = {f: 0.80 + 0.01 * i for i, f in enumerate(folds)}
    res: dict[str, ConfigResult] = {
        "casme2/5": ConfigResult(metrics={"acc": [0.70, 0.80], "uf1": [0.60, 0.70], "uar": [0.5, 0.6]}),
        "samm/5": ConfigResult(metrics={"acc": [0.75], "uf1": [0.72]},
                               missing=["seed 0, fold 006: FAILED"]),
        "casme3/7": ConfigResult(metrics={"uf1": [0.40], "uar": [0.41]}),
        "casme2->samm": ConfigResult(metrics={"acc": [0.50, 0.60], "uar": [0.40, 0.50]}),
        "samm->casme2": ConfigResult(metrics={"war": [0.70, 0.80], "uar": [0.60, 0.70]}),
        "fdp": ConfigResult(metrics={"acc": [0.80], "uf1": [0.78], "di_mse": [0.00150]},
                            fold_metrics={"uf1": fdp_folds}, n_params=14_820_000),
        "no_dic": ConfigResult(metrics={"acc": [0.70], "uf1": [0.68]},
                               fold_metrics={"uf1": {f: v - 0.05 for f, v in fdp_folds.items()}}),
        "no_rank": ConfigResult(metrics={"acc": [0.72], "uf1": [0.70]}),
        "vit_base": ConfigResult(metrics={"acc": [0.60], "uf1": [0.55]}, n_params=88_390_000),
        loss_key(100, 0.1): ConfigResult(metrics={"acc": [0.80], "uf1": [0.78]}),
    }
    return TableInput(res)


def _grid(text: str) -> list[list[str]]:
    return list(csv.reader(line for line in io.StringIO(text) if not line.startswith("# ")))


EXPECTED_HEADER = {
    4: ["Method", "Paper", "Type", "Protocol", "CASME II Acc", "CASME II F1", "SAMM Acc", "SAMM F1"],
    7: ["Method", "Paper", "Type", "Protocol", "CAS(ME)^3 F1", "CAS(ME)^3 UAR"],
    9: ["Method", "Paper Acc", "Paper F1", "Ours Acc", "Ours F1"],
    10: ["Backbone", "Type", "Paper Acc", "Paper F1", "Paper #Params.", "Ours Acc", "Ours F1",
         "Ours #Params."],
    11: ["λ_d", "λ_r", "Paper Acc", "Paper F1", "Ours Acc", "Ours F1"],
    14: ["Method", "Paper Average MSE (×10⁻³)", "Ours Average MSE (×10⁻³)"],
}
# Tables 9, 10: the paper's rows, then a row for every other variant of ours that ran (`_ours` ran
# vit_base, a Table 10 row, and no_dic, no_rank, Table 9 rows)
EXPECTED_ROWS = {4: 20, 5: 6, 6: 6, 7: 7, 8: 8, 9: 6 + 1, 10: 5 + 2, 11: 7, 12: 6, 13: 11, 14: 5}


@pytest.mark.parametrize("n", TABLES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_table_renders_in_every_format(n, fmt):
    out = render_table(n, _ours(), fmt)
    t = build_table(n, _ours())
    assert len(t.rows) == EXPECTED_ROWS[n]
    assert all(len(r) == len(t.header) for r in t.rows)
    if fmt == "csv":
        grid = _grid(out)
        assert grid[0] == t.header and grid[1:] == t.rows
    elif fmt == "md":
        assert out.startswith(f"**Table {n}.**")
        table_lines = [line for line in out.splitlines() if line.startswith("|")]
        assert len(table_lines) == 2 + EXPECTED_ROWS[n]
        assert all(line.count(" | ") == len(t.header) - 1 for line in table_lines)
    elif fmt == "tidy":  # one row per number, every one of this table, with its unit (values: test_tables_uncertainty)
        rows = list(csv.DictReader(io.StringIO(out)))
        assert tuple(rows[0]) == TIDY_COLUMNS and {r["table"] for r in rows} == {str(n)}
        assert len({(r["row"], r["metric"]) for r in rows}) == len(rows)
        assert all(r["unit"] for r in rows)
        assert any(r["mean"] for r in rows) == any(k in _ours().results for k in row_keys(n))  # none of ours in 5, 6
        assert {r["row"] for r in rows} - {"avg"} <= set(row_keys(n)) | {f"fdp-{k}" for k in row_keys(n)}
    else:
        assert out.startswith("\\begin{table}") and out.rstrip().endswith("\\end{table}")
        body = out.split("\\midrule\n", 1)[1].split("\\bottomrule", 1)[0].strip().splitlines()
        assert len(body) == EXPECTED_ROWS[n]
        assert all(line.endswith("\\\\") for line in body)
        assert "±" not in out and "—" not in out and not re.search(r"(?<!\\)[#&_%]\w", out)


@pytest.mark.parametrize("n", sorted(EXPECTED_HEADER))
def test_headers(n):
    assert build_table(n).header == EXPECTED_HEADER[n]


def test_comparison_table_has_published_rows_and_ours():
    g = _grid(render_table(4, _ours(), "csv"))
    assert g[1] == ["SparseSampling [28]", "TAFFC'17", "NDL", PUBLISHED_PROTOCOL, "49.00", "51.00", MISSING, MISSING]
    assert g[-2] == ["FDP (paper)", "Ours", "DL+RI", "as published; the authors' code keeps each fold's epoch of best "
                     "TEST accuracy", "88.42", "87.05", "86.69", "85.29"]
    # casme2/5 over 2 seeds: mean ± sample std in percent; samm/5 one seed, a job missing -> *
    assert g[-1] == ["FDP (ours)*", "this run", "DL+RI", RERUN_PROTOCOL, "75.00 ± 7.07", "65.00 ± 7.07", "75.00",
                     "72.00"]
    md = render_table(4, _ours(), "md")
    assert "samm/5: 1 job(s) missing (seed 0, fold 006: FAILED)" in md


def test_table8_average_of_directions():
    g = _grid(render_table(8, _ours(), "csv"))
    # war falls back to acc; Avg. per seed: WAR (0.5+0.7)/2, (0.6+0.8)/2 -> 60.0 ± 7.1
    assert g[-1][4:] == ["55.0 ± 7.1", "45.0 ± 7.1", "75.0 ± 7.1", "65.0 ± 7.1", "65.0 ± 7.1", "55.0 ± 7.1"]
    assert render_table(8, {"casme2->samm": ConfigResult(metrics={"acc": [0.5]})}, "csv") \
        .splitlines()[-2].endswith(f"{MISSING},{MISSING}")


def test_side_by_side_tables():
    g = _grid(render_table(10, _ours(), "csv"))
    assert g[1] == ["ViT-Base", "T", "70.58", "67.24", "88.39M", "60.00", "55.00", "88.39M"]
    assert g[4] == ["Ours", "C*+T", "86.69", "85.29", "14.82M", "80.00", "78.00", "14.82M"]
    assert g[2][5:] == [MISSING] * 3
    g14 = _grid(render_table(14, _ours(), "csv"))
    assert g14[1] == ["FDP", "1.44", "1.50"]
    g11 = _grid(render_table(11, _ours(), "csv"))
    assert g11[3] == ["100", "0.1", "86.69", "85.29", "80.00", "78.00"]


def test_table12_ours_uses_the_paper_rule():
    g = _grid(render_table(12, _ours(), "csv"))
    assert g[1][:5] == ["CASME II (Five Categories)", "4.977", "3.227e-7", "4.977", "3.227e-7"]
    others = reference().tables[4].values("casme2/5.uf1", ours=False)
    r = paper_rank_sum(65.0, others)
    assert g[1][5:] == ["65.00", f"{r.statistic:.3f}", g[1][7]]
    assert float(g[1][7]) == pytest.approx(r.pvalue, rel=1e-3)
    assert g[2][3:5] == ["4.243", "1.105e-5"]
    assert g[3][5:] == [MISSING] * 3  # casme2/3 not run


def test_table13_rank_sum_and_paired_tests():
    g = _grid(render_table(13, _ours(), "csv"))
    modules = g[1]
    r = paper_rank_sum(78.0, [68.0, 70.0])  # our variants present: no_dic, no_rank
    assert modules[:6] == ["Modules", "rank-sum", "2.611", "4.512e-3", "2.611", "4.512e-3"]
    assert modules[6:9] == [f"{r.statistic:.3f}", modules[7], "2 vs 2"]
    backbones = g[2]
    assert backbones[8] == "1 vs 1"  # only vit_base
    no_dic = g[3]
    folds = _ours().results["fdp"].fold_metrics["uf1"]
    w = paired_wilcoxon(folds, {f: v - 0.05 for f, v in folds.items()}, "greater")
    assert no_dic[0] == "FDP vs FDP w/o L_DIC" and no_dic[1] == "signed-rank"
    assert no_dic[6:9] == [f"{w.statistic:.1f}", f"{w.pvalue:.3e}".replace("e-03", "e-3"), "8"]
    assert w.pvalue == pytest.approx(1 / 256)
    assert g[4][6:9] == [MISSING] * 3  # no_rank has no per-fold values
    assert no_dic[9:] == [MISSING] * 2  # no predictions in this input: no effect interval, no Holm P


def test_input_validation():
    with pytest.raises(ValueError, match="unknown configuration keys"):
        TableInput({"casme2/6": ConfigResult()})
    with pytest.raises(ValueError, match="list of per-seed values"):
        ConfigResult(metrics={"acc": 0.5})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="no table 3"):
        render_table(3)
    with pytest.raises(ValueError, match="unknown format"):
        render_table(4, fmt="html")
    assert loss_key(100.0, 0.10) == "lambda_d=100,lambda_r=0.1"
    assert row_keys(13)[:2] == ["fdp", "no_dic"]
    assert set(row_keys(4)) == {"casme2/5", "samm/5"}


def test_empty_input_renders_published_numbers_only():
    md = render_table(9, None, "md")
    assert "| FDP | 86.69 | 85.29 | — | — |" in md
    assert "Ours: no results yet" in md
