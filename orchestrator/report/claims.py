"""The demo's claims, computed from its runs: each one a statement, the criterion that decides it
(written down in docs/demo.md before the runs that confirmed the design), the number behind it and
whether it holds -- so the demo prints "FDP above the shuffled control: yes, +x pp [a, b]" from what
ran, never a sentence written in advance.

Every claim is on pooled UF1 (SPEC §5) with a 95 % interval from a bootstrap over test subjects
(paired where two configurations are compared; fdp.stats); a claim whose configurations did not all
run says so instead of holding or failing. The parent run keeps them: metrics `claims/<key>/holds`
(1 or 0), `/estimate`, `/low`, `/high` (fractions), `claims.json` and `claims.md`, and the tag
`fdp.claims` ("5 of 6 hold"), so a run's conclusions are read back from MLflow like its numbers.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from fdp.metrics import pooled_metrics
from fdp.stats import SeedPredictions, paired_subject_bootstrap, subject_bootstrap_ci
from fdp.test_selected import LABEL
from orchestrator.report.analysis import ALPHA, N_BOOT
from orchestrator.report.protocol import ProtocolRow

CONTROLS = ("ststnet_shuffled", "fdp_shuffled")  # shuffled-label controls a learning claim is measured against
SINGLE_FRAME_MAX = 0.30  # the benchmark's rule: one frame carries little of the class (docs/demo.md)
JSON_NAME, MD_NAME = "claims.json", "claims.md"
PREFIX = "claims"  # metric prefix on the parent run


@dataclass(frozen=True)
class Claim:
    key: str  # metric-safe name: fdp_above_control
    statement: str  # "FDP above the shuffled control"
    criterion: str  # what decides it, in words
    holds: bool | None  # None: its configurations did not all run
    estimate: float | None = None  # the number behind it (UF1 or a UF1 difference), fraction
    low: float | None = None  # its 95 % interval
    high: float | None = None
    difference: bool = False  # a difference (printed in pp with a sign) or a level (printed in %)
    missing: str = ""  # what did not run, when holds is None

    def line(self) -> str:
        """'FDP above the shuffled control: yes, +21.3 pp [12.0, 30.1]'."""
        if self.holds is None:
            return f"{self.statement}: not measured ({self.missing})"
        if self.difference:
            number = f"{100 * self.estimate:+.1f} pp [{100 * self.low:+.1f}, {100 * self.high:+.1f}]"
        else:
            number = f"UF1 {100 * self.estimate:.2f} [{100 * self.low:.2f}, {100 * self.high:.2f}]"
        return f"{self.statement}: {'yes' if self.holds else 'NO'}, {number}"


def _uf1(num_classes: int) -> Callable:
    return lambda y, p: pooled_metrics(y, p, num_classes)["uf1"]


def _above(key: str, statement: str, a: Sequence[SeedPredictions] | None, b: Sequence[SeedPredictions] | None,
           m: int, missing: str) -> Claim:
    """a above b: the paired subject-bootstrap interval of UF1(a) - UF1(b) lies above 0."""
    criterion = "the paired subject-bootstrap 95 % interval of the UF1 difference lies above 0"
    if not a or not b:
        return Claim(key, statement, criterion, None, difference=True, missing=missing)
    ci = paired_subject_bootstrap(a, b, _uf1(m), n_boot=N_BOOT, alpha=ALPHA)
    return Claim(key, statement, criterion, ci.low > 0, ci.estimate, ci.low, ci.high, difference=True)


def demo_claims(rows: Sequence[ProtocolRow]) -> list[Claim]:
    """The demo's claims from the rows of its sweep (`report.protocol.collect_protocol`): honest
    predictions of every configuration, and the control's test-selected ones."""
    by = {r.variant: r for r in rows if r.honest}
    m = max((r.num_classes for r in by.values()), default=0) or 5
    chance = 1.0 / m
    control_name = control_of(by)
    control = by.get(control_name)
    ctrl = control.honest if control else None
    absent = control_name or " or ".join(CONTROLS)  # named in what did not run
    names = {"fdp": "FDP", "ststnet": "STSTNet", "lbp_top": "LBP-TOP"}
    claims = [_above(f"{v}_above_control", f"{name} above the shuffled control", by[v].honest if v in by else None,
                     ctrl, m, f"{v if v not in by else absent} did not run") for v, name in names.items()]
    statement = f"the shuffled control not above chance ({100 * chance:.2f})"
    criterion = "the lower end of its subject-bootstrap 95 % interval is at or below chance (1 / classes)"
    if ctrl:
        ci = subject_bootstrap_ci(ctrl, _uf1(m), n_boot=N_BOOT, alpha=ALPHA)
        claims.append(Claim("control_not_above_chance", statement, criterion, ci.low <= chance, ci.estimate, ci.low,
                            ci.high))
    else:
        claims.append(Claim("control_not_above_chance", statement, criterion, None, missing=f"{absent} did not run"))
    selected = control.selected.get("uf1") if control else None
    claims.append(_above("test_selection_lifts_control",
                         f"the control's {LABEL} UF1 (step chosen by test UF1) above its honest UF1", selected, ctrl,
                         m, f"{absent} did not run" if not ctrl else
                         f"no {LABEL} record (the sweep's protocol_probe.select_on_test lacks uf1)"))
    single = by.get("single_frame")
    statement = f"a single frame carries little of the class: single frame UF1 at most {100 * SINGLE_FRAME_MAX:.0f}"
    criterion = f"pooled UF1 of the single-frame regression <= {SINGLE_FRAME_MAX:.2f} (the benchmark's rule)"
    if single:
        ci = subject_bootstrap_ci(single.honest, _uf1(m), n_boot=N_BOOT, alpha=ALPHA)
        claims.append(Claim("single_frame_at_most_30", statement, criterion, ci.estimate <= SINGLE_FRAME_MAX,
                            ci.estimate, ci.low, ci.high))
    else:
        claims.append(Claim("single_frame_at_most_30", statement, criterion, None, missing="single_frame did not run"))
    return claims


def control_of(variants) -> str | None:
    """The negative control the claims are measured against: the first of `CONTROLS` among the
    variants that ran (the demo runs one, sweeps/demo.yaml's), None when none did."""
    return next((v for v in CONTROLS if v in variants), None)


def summary(claims: Sequence[Claim]) -> str:
    """'5 of 6 hold' (+ ', 1 not measured')."""
    measured = [c for c in claims if c.holds is not None]
    text = f"{sum(bool(c.holds) for c in measured)} of {len(measured)} hold"
    return text + (f", {len(claims) - len(measured)} not measured" if len(measured) < len(claims) else "")


def markdown(claims: Sequence[Claim]) -> str:
    out = ["| claim | holds | UF1 or difference [95 % interval] | criterion |", "|---|---|---|---|"]
    for c in claims:
        number = c.line().split(": ", 1)[1].split(", ", 1)[-1] if c.holds is not None else c.missing
        out.append(f"| {c.statement} | {'-' if c.holds is None else ('yes' if c.holds else 'NO')} | {number} | "
                   f"{c.criterion} |")
    return "\n".join(out) + f"\n\n{summary(claims)}; pooled UF1, {N_BOOT} subject-bootstrap resamples, seed 0.\n"


def metrics(claims: Sequence[Claim]) -> dict[str, float]:
    """`claims/<key>/holds|estimate|low|high` of the measured claims."""
    out: dict[str, float] = {}
    for c in claims:
        if c.holds is None:
            continue
        out[f"{PREFIX}/{c.key}/holds"] = float(c.holds)
        for name in ("estimate", "low", "high"):
            out[f"{PREFIX}/{c.key}/{name}"] = float(getattr(c, name))
    return out


def log_claims(tracker: Any, parent_id: str, claims: Sequence[Claim]) -> None:
    """Keep the claims on the sweep's parent run (metrics, claims.json / claims.md, tag fdp.claims).
    A metric keeps its first value: a second demo into the same store adds nothing twice."""
    from orchestrator.track.store import unlogged_metrics, with_retry

    new = unlogged_metrics(tracker.client, parent_id, metrics(claims))
    if new:
        with_retry(tracker.client.log_batch, parent_id, metrics=new)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / JSON_NAME).write_text(json.dumps({"summary": summary(claims), "claims": [asdict(c) for c in claims]},
                                              indent=1))
        (d / MD_NAME).write_text(markdown(claims))
        with_retry(tracker.client.log_artifacts, parent_id, str(d))
    with_retry(tracker.client.set_tag, parent_id, "fdp.claims", summary(claims))
