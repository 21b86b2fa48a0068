"""Uncertainty in the tables (issue #14): subject-bootstrap intervals on our cells, the control
rows, and the paired comparisons (effect, test, n, Holm P, minimal detectable difference) under
the ablation tables and in Table 13."""

from __future__ import annotations

import numpy as np
import pytest

from fdp.stats import SeedPredictions, holm
from orchestrator.report.analysis import ConfigResult, comparisons
from orchestrator.report.tables import TableInput, build_table, render_table

SUBJECTS = [f"s{i}" for i in range(6)]


def preds(right_per_subject: list[int], clips: int = 5) -> SeedPredictions:
    """Each subject has `clips` clips of labels 0..4; the first k of them are predicted right."""
    labels, out, subj = [], [], []
    for s, k in zip(SUBJECTS, right_per_subject):
        y = np.arange(clips) % 5
        p = np.where(np.arange(clips) < k, y, (y + 1) % 5)
        labels += y.tolist()
        out += p.tolist()
        subj += [s] * clips
    return SeedPredictions.of(labels, out, subj)


def result(right: list[int]) -> ConfigResult:
    from fdp.metrics import pooled_metrics

    sp = preds(right)
    m = pooled_metrics(sp.labels, sp.preds, 5)
    return ConfigResult(metrics={k: [v] for k, v in m.items()}, predictions=[sp])


# rows of ours without a paper row: the variant, its method, the control, the protocol (tables.variant_label)
SHUFFLED = "fdp_shuffled — FDP network on shuffled training labels (control); re-run here: model after the last step"
SINGLE = "single_frame — single frame + logistic regression; re-run here: fitted once, nothing to select"


def ours() -> TableInput:
    return TableInput({"fdp": result([5, 4, 5, 4, 5, 4]), "no_dic": result([3, 2, 3, 2, 3, 2]),
                       "fdp_shuffled": result([1, 1, 1, 1, 1, 1]), "single_frame": result([1, 2, 1, 0, 1, 1])})


def test_cells_carry_subject_intervals_and_controls_are_rows():
    t = build_table(9, ours())
    rows = {r[0]: r for r in t.rows}
    # every subject of the control has 1 of 5 right: no between-subject spread, the interval is the point
    ctrl = rows[SHUFFLED]
    assert ctrl[1:3] == ["—", "—"]  # no paper numbers for a control
    assert ctrl[3] == "20.00 [20.00, 20.00]"
    assert rows[SINGLE][3].startswith("20.00 [")
    lo, hi = (float(x) for x in rows["FDP"][3].split("[")[1].rstrip("]").split(","))
    assert 80.0 <= lo < 90.0 < hi <= 100.0  # acc 27/30 = 90 %; subjects of 4/5 and 5/5 right
    assert any("bootstrap over test SUBJECTS" in n for n in t.notes)


def test_every_variant_that_ran_is_a_row_with_its_comparison():
    """Tables 9 and 10 print a row for every registered variant that ran and is not a paper row --
    a compared method, a control of it -- labelled with its method and protocol (from the method
    registry, no list of names), each with its paired comparison against FDP; one that did not run
    is not printed."""
    from fdp.methods import get_method
    from fdp.variants import VARIANTS
    from orchestrator.report.tables import extra_keys, variant_label

    data = TableInput({**ours().results, "ststnet": result([3, 3, 3, 3, 3, 3]), "lbp_top": result([2, 3, 2, 3, 2, 3]),
                       "ststnet_shuffled": result([1, 1, 1, 1, 1, 1])})
    data.results["ststnet"].n_params = 2485
    assert set(extra_keys(9)) == set(VARIANTS) - {"fdp", "no_dic", "no_rank", "no_local", "no_global",
                                                  "no_local_global"}
    for n in (9, 10):
        t = build_table(n, data)
        rows = {r[0]: r for r in t.rows}
        for key in ("ststnet", "lbp_top", "ststnet_shuffled"):
            label = variant_label(key)
            assert label in rows and f"FDP vs {label}" in [r[0] for r in t.subtables[0].rows]
            assert label.startswith(f"{key} — {get_method(VARIANTS[key].method).title}")
        assert variant_label("off_apexnet") not in rows  # registered, not run: no row
        if n == 10:  # the count of what was fitted, a small one in units
            assert rows[variant_label("ststnet")][-1] == "2,485"
    assert variant_label("ststnet") == "ststnet — STSTNet; re-run here: model after the last step"
    assert variant_label("lbp_top") == "lbp_top — LBP-TOP + linear SVM; re-run here: fitted once, nothing to select"
    assert "on shuffled training labels (control)" in variant_label("ststnet_shuffled")


def test_paired_comparisons_holm_and_mdd_under_ablation_table():
    t = build_table(9, ours())
    (sub,) = t.subtables
    assert [r[0] for r in sub.rows] == ["FDP vs FDP w/o L_DIC", f"FDP vs {SHUFFLED}", f"FDP vs {SINGLE}"]
    comps = comparisons(ours().results, ["no_dic", "fdp_shuffled", "single_frame"])
    raw = [c.wilcoxon.pvalue for c in comps]
    # by hand: FDP wins every one of the 6 folds in each comparison: exact one-sided p = 1/64 each;
    # Holm with m = 3: 3/64, then max(3/64, 2/64), then max(., 1/64) -> 3/64 for all three
    assert raw == pytest.approx([1 / 64] * 3)
    assert [c.holm_p for c in comps] == pytest.approx([3 / 64] * 3)
    assert [c.holm_p for c in comps] == pytest.approx(holm(raw))
    assert all(c.n_folds == 6 and c.n_seeds == 1 for c in comps)
    no_dic = comps[0]
    assert no_dic.low <= no_dic.diff <= no_dic.high and no_dic.diff > 0
    assert sub.rows[0][1:3] == ["6", "1"] and sub.rows[0][7] == "4.688e-2"
    assert any(n.startswith("Smallest UF1 difference these 6 folds x 1 seed(s)") for n in sub.notes)
    assert "Holm P" in render_table(9, ours(), "md")


def test_table13_reports_effect_and_holm():
    g = build_table(13, ours()).rows
    no_dic = next(r for r in g if r[0] == "FDP vs FDP w/o L_DIC")
    assert no_dic[-1] == "4.688e-2"  # Holm over the three signed-rank rows with predictions
    assert no_dic[-2].startswith("+")
    assert any(r[0] == f"FDP vs {SHUFFLED}" for r in g)


def test_tidy_rows_are_the_tables_numbers_with_intervals_published_values_and_tests():
    import io

    import pandas as pd

    from orchestrator.report.reference import reference
    from orchestrator.report.tables import TIDY_COLUMNS, row_keys, tidy_csv, tidy_rows

    data = ours()
    data.results["fdp"].source = {"sweep": "ablation", "commit": "abc123", "data_fingerprint": "f1"}
    data.results["no_dic"].source = {"sweep": "ablation", "commit": "def456", "data_fingerprint": "f1"}
    df = pd.read_csv(io.StringIO(render_table(9, data, "tidy")), dtype={"commit": str, "data_fingerprint": str})
    assert tuple(df.columns) == TIDY_COLUMNS and len(df) == len(tidy_rows(9, data))
    cell = df[(df["row"] == "fdp") & (df["metric"] == "acc")].iloc[0]
    # the same numbers as the printed table: 27/30 right, the cell's interval, the paper's value beside
    printed = next(r for r in build_table(9, data).rows if r[0] == "FDP")[3]
    assert cell["mean"] == pytest.approx(90.0) and printed == f"90.00 [{cell['ci_low']:.2f}, {cell['ci_high']:.2f}]"
    assert cell["published"] == reference().tables[9].row("fdp").values[0]
    assert (cell["seeds"], cell["subjects"], cell["clips"]) == (1, 6, 30)
    assert (cell["sweep"], cell["commit"]) == ("ablation", "abc123")
    ctrl = df[df["row"] == "fdp_shuffled"]
    assert list(ctrl["metric"]) == ["acc", "uf1"] and ctrl["published"].isna().all()
    shuffled_uf1 = 100 * data.results["fdp_shuffled"].values("uf1")[0]
    assert ctrl["mean"].tolist() == pytest.approx([20.0, shuffled_uf1]) and ctrl["ci_low"].iloc[0] == 20.0
    assert df.loc[df["row"] == "no_rank", "mean"].isna().all()  # a row we did not run: the paper's value only
    # the paired comparisons as rows: FDP minus the row in pp, p by hand (6 of 6 folds won: 1/64), Holm 3/64
    comp = df[df["metric"] == "uf1_diff"].set_index("row")
    assert list(comp.index) == ["fdp-no_dic", "fdp-fdp_shuffled", "fdp-single_frame"]
    assert comp["p"].tolist() == pytest.approx([1 / 64] * 3) and comp["holm_p"].tolist() == pytest.approx([3 / 64] * 3)
    assert (comp["unit"] == "pp").all() and (comp["folds"] == 6).all()
    no_dic = comparisons(data.results, ["no_dic"])[0]
    assert comp.loc["fdp-no_dic", "mean"] == pytest.approx(100 * no_dic.diff)
    assert comp.loc["fdp-no_dic", "commit"] == "abc123; def456"  # both rows' sources
    # Table 13: each key's F1 beside the paper's F1 of that variant; Table 8's average of the two directions
    t13 = tidy_rows(13, data)
    assert [r["row"] for r in t13 if r["metric"] == "uf1"] == row_keys(13)
    assert next(r for r in t13 if r["row"] == "no_dic")["published"] == reference().tables[9].row("no_dic").values[1]
    cross = {"casme2->samm": ConfigResult({"war": [0.4], "uar": [0.3]}),
             "samm->casme2": ConfigResult({"war": [0.5], "uar": [0.2]})}
    t8 = {(r["row"], r["metric"]): r for r in tidy_rows(8, cross)}
    assert t8[("avg", "war")]["mean"] == pytest.approx(45.0) and t8[("avg", "uar")]["mean"] == pytest.approx(25.0)
    assert tidy_csv([]).strip() == ",".join(TIDY_COLUMNS)


def test_no_predictions_no_interval():
    t = build_table(9, {"fdp": ConfigResult(metrics={"acc": [0.5], "uf1": [0.4]})})
    assert t.rows[0][3] == "50.00" and not t.subtables


def test_a_class_no_clip_has_still_counts_in_intervals_and_comparisons():
    """UF1 is a mean over every class of the setting (SPEC §5): with class 4 neither a label nor a
    prediction, the comparison's effect is the difference of the pooled 5-class UF1 values, not of
    4-class ones counted from what the clips happen to hold."""
    from fdp.metrics import pooled_metrics

    def four(right: list[int]) -> ConfigResult:
        labels, out, subj = [], [], []
        for s, k in zip(SUBJECTS, right):
            y = np.arange(4) % 4  # classes 0..3 only
            labels += y.tolist()
            out += np.where(np.arange(4) < k, y, (y + 1) % 4).tolist()
            subj += [s] * 4
        sp = SeedPredictions.of(labels, out, subj)
        return ConfigResult(metrics={k: [v] for k, v in pooled_metrics(sp.labels, sp.preds, 5).items()},
                            predictions=[sp], num_classes=5)

    a, b = four([4, 3, 4, 3, 4, 3]), four([2, 1, 2, 1, 2, 1])
    (c,) = comparisons({"fdp": a, "no_dic": b}, ["no_dic"])
    assert c.diff == pytest.approx(a.metrics["uf1"][0] - b.metrics["uf1"][0])
    # the same clips counted over 4 classes would give 5/4 of it
    assert c.diff != pytest.approx(1.25 * (a.metrics["uf1"][0] - b.metrics["uf1"][0]))

