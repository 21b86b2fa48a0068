"""The demo's claims from constructed predictions: each decided by its written criterion, its
number computed (hand-checkable values), a claim whose configurations did not run said so."""

from __future__ import annotations

import numpy as np
import pytest

from fdp.stats import SeedPredictions
from orchestrator.report.claims import Claim, control_of, demo_claims, markdown, metrics, summary
from orchestrator.report.protocol import ProtocolRow

SUBJECTS = ["s1", "s2", "s3"]
Y = np.tile(np.arange(5), 3)  # one clip per class per subject
S = np.repeat(SUBJECTS, 5)
ONE_CLASS_UF1 = (2 * 0.2 / 1.2) / 5  # always class 0: F1 of class 0 = 2 * (1/5 * 1) / (1/5 + 1), others 0


def seeds(preds) -> list[SeedPredictions]:
    return [SeedPredictions.of(Y, preds, S)]


def row(variant: str, preds, selected=None) -> ProtocolRow:
    r = ProtocolRow(variant, variant, num_classes=5, honest=seeds(preds))
    if selected is not None:
        r.selected = {"uf1": seeds(selected), "acc": seeds(selected)}
    return r


def by_key(claims: list[Claim]) -> dict[str, Claim]:
    return {c.key: c for c in claims}


@pytest.mark.parametrize("control", ["ststnet_shuffled", "fdp_shuffled"])
def test_claims_hold_on_a_learner_a_dead_control_and_a_test_selected_lift(control):
    zeros = np.zeros_like(Y)
    rows = [row("fdp", Y), row(control, zeros, selected=Y), row("ststnet", Y), row("lbp_top", Y),
            row("single_frame", zeros)]
    assert control_of({r.variant for r in rows}) == control
    c = by_key(demo_claims(rows))
    assert list(c) == ["fdp_above_control", "ststnet_above_control", "lbp_top_above_control",
                       "control_not_above_chance", "test_selection_lifts_control", "single_frame_at_most_30"]
    # every subject looks alike, so every bootstrap resample gives the full-sample value
    for k in ("fdp_above_control", "ststnet_above_control", "lbp_top_above_control", "test_selection_lifts_control"):
        assert c[k].holds and c[k].difference
        assert (c[k].estimate, c[k].low, c[k].high) == pytest.approx((1 - ONE_CLASS_UF1,) * 3)
    assert c["control_not_above_chance"].holds and c["control_not_above_chance"].estimate == pytest.approx(ONE_CLASS_UF1)
    assert c["single_frame_at_most_30"].holds
    assert c["fdp_above_control"].line() == "FDP above the shuffled control: yes, +93.3 pp [+93.3, +93.3]"
    assert c["control_not_above_chance"].line() == (
        "the shuffled control not above chance (20.00): yes, UF1 6.67 [6.67, 6.67]")
    assert summary(list(c.values())) == "6 of 6 hold"
    m = metrics(list(c.values()))
    assert m["claims/fdp_above_control/holds"] == 1.0 and len(m) == 6 * 4
    assert m["claims/single_frame_at_most_30/estimate"] == pytest.approx(ONE_CLASS_UF1)


def test_claims_fail_where_the_numbers_say_so_and_missing_runs_are_named():
    zeros = np.zeros_like(Y)
    rows = [row("fdp", zeros), row("fdp_shuffled", Y, selected=Y), row("single_frame", Y)]
    claims = demo_claims(rows)
    c = by_key(claims)
    assert c["fdp_above_control"].holds is False  # below the control: the interval is not above 0
    assert c["fdp_above_control"].line() == "FDP above the shuffled control: NO, -93.3 pp [-93.3, -93.3]"
    assert c["control_not_above_chance"].holds is False  # a "control" that is perfect is above chance
    assert c["test_selection_lifts_control"].holds is False  # the same predictions: +0.0, not above 0
    assert c["single_frame_at_most_30"].holds is False and c["single_frame_at_most_30"].estimate == 1.0
    assert c["ststnet_above_control"].holds is None
    assert c["ststnet_above_control"].line() == "STSTNet above the shuffled control: not measured (ststnet did not run)"
    assert summary(claims) == "0 of 4 hold, 2 not measured"
    assert "claims/ststnet_above_control/holds" not in metrics(claims)
    assert "| LBP-TOP above the shuffled control | - | lbp_top did not run |" in markdown(claims)


def test_no_test_selected_record_is_said_not_invented():
    rows = [row("fdp", Y), row("fdp_shuffled", np.zeros_like(Y))]  # the sweep asked for no probe
    c = by_key(demo_claims(rows))["test_selection_lifts_control"]
    assert c.holds is None and "protocol_probe.select_on_test lacks uf1" in c.missing


def test_the_demo_s_control_is_picked_over_another_and_its_absence_is_named():
    zeros = np.zeros_like(Y)
    # both controls ran: the claims read the demo's (ststnet_shuffled), the one that learned nothing here
    rows = [row("fdp", Y), row("fdp_shuffled", Y, selected=Y), row("ststnet_shuffled", zeros, selected=Y)]
    c = by_key(demo_claims(rows))
    assert c["control_not_above_chance"].holds and c["fdp_above_control"].holds
    assert control_of({"fdp", "lbp_top"}) is None
    c = by_key(demo_claims([row("fdp", Y)]))
    assert c["fdp_above_control"].missing == "ststnet_shuffled or fdp_shuffled did not run"
    assert c["control_not_above_chance"].missing == "ststnet_shuffled or fdp_shuffled did not run"
