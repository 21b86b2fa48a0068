"""Tables with neighbours: Tables 4-8 and the MEGC table print a "re-run here" row for every method
that ran, right below the published row of the same method where the table has one, and say each
row's protocol."""

from __future__ import annotations

import pytest

from fdp.variants import VARIANTS, Variant
from orchestrator.report.megc import MegcRow, build_megc_table
from orchestrator.report.tables import (PUBLISHED_PROTOCOL, RERUN_PROTOCOL, ConfigResult, TableInput, build_table,
                                        rerun_key, tidy_rows)


def _res(acc: float, uf1: float) -> ConfigResult:
    return ConfigResult(metrics={"acc": [acc], "uf1": [uf1]})


def test_rerun_rows_sit_beside_the_published_row_of_the_same_method(monkeypatch):
    # a method that is not registered on this branch yet, as fdp/methods will register it
    monkeypatch.setitem(VARIANTS, "off_apexnet", Variant("off_apexnet", "OFF-ApexNet", {"method": "off_apexnet"}))
    ours = TableInput({"casme2/3": _res(0.5, 0.4), rerun_key("casme2/3", "off_apexnet"): _res(0.6, 0.55),
                       rerun_key("samm/3", "authors_code"): _res(0.45, 0.3),
                       rerun_key("casme2/3", "single_frame"): _res(0.3, 0.2)})
    t = build_table(5, ours)
    names = [r[0] for r in t.rows]
    assert names == ["OFF-ApexNet [14]", "OFF-ApexNet (re-run here)", "AU-GACN [66]", "GACNN [27]", "MER-Supcon [76]",
                     "FDP (paper)", "FDP (ours)", "authors_code (re-run here)", "single_frame (re-run here)"]
    rows = {r[0]: r for r in t.rows}
    assert rows["OFF-ApexNet (re-run here)"][3:] == [RERUN_PROTOCOL, "60.00", "55.00", "—", "—"]
    assert rows["authors_code (re-run here)"][4:] == ["—", "—", "45.00", "30.00"]  # SAMM only
    assert rows["AU-GACN [66]"][3] == PUBLISHED_PROTOCOL
    assert "best TEST accuracy" in rows["FDP (paper)"][3]
    # tidy: the re-run cells with the published value of the same method beside them
    tidy = {(r["row"], r["metric"]): r for r in tidy_rows(5, ours)}
    assert tidy[("casme2/3|off_apexnet", "uf1")]["mean"] == pytest.approx(55.0)
    assert tidy[("casme2/3|off_apexnet", "uf1")]["published"] == 86.97
    assert tidy[("casme2/3|single_frame", "acc")]["published"] is None


def test_without_reruns_the_table_is_the_published_rows_and_fdp():
    t = build_table(7, TableInput({"casme3/7": _res(0.3, 0.2)}))
    assert [r[0] for r in t.rows][-2:] == ["FDP (paper)", "FDP (ours)"]
    assert all(r[3] for r in t.rows)  # every row says its protocol


def test_megc_rerun_row_below_the_published_lbp_top():
    seeds = {"0": {"composite": {"uf1": 0.5, "uar": 0.5}}}
    t = build_megc_table([MegcRow("fdp", "fdp", seeds), MegcRow("lbp_top", "lbp_top", seeds)])
    assert [r[0] for r in t.rows] == ["LBP-TOP (baseline)", "lbp_top (re-run here)", "fdp (re-run here)"]
    assert t.rows[0][1].startswith("as published") and t.rows[1][1] == RERUN_PROTOCOL
    assert t.rows[1][2:4] == ["50.00", "50.00"] and t.header[:2] == ["Method", "Protocol"]
