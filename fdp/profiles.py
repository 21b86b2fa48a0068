"""Named size profiles: one place for the sizes of the model and of its training budget that are
not the paper's (the paper's are the code defaults in fdp.config). A profile is a dict of dotted
config overrides, applied as one layer (`fdp-sweep train --smoke`, `profile:` in a sweep file or its
smoke block, the demo, the tests).

* `smoke` — a pipeline check in seconds: the paper's structure with narrow stages (dims 16-32-64-256,
  1.6 M parameters), batch 8, 20 CPU steps. Learns nothing in that budget. The compared small
  networks (STSTNet, OFF-ApexNet) get their CPU budget instead of the paper's (`compared.budget`).
* `laptop` — the smallest setting at which a full LOSO of the synthetic benchmark learns from
  motion on a 2-core CPU (what was chosen on what: docs/experiments/learnability.md):
  the smoke widths on 32 x 32 crops of 36 x 36 aligned frames (`LAPTOP_ALIGNED`; the paper's 64 of
  72 halved, so a training crop shifts the face by at most 1/9 of its side as there), t = 4 frames
  per clip (half the paper's 8: half the step time), batch 16, Adam at 5x the paper's rate for the
  short budget. Same structure as the paper's model: every stage, aggregator, the rank scorer, the
  3-D temporal pooling, MER and DIC are built. The compared small networks keep the smoke
  profile's CPU budget.
"""

from __future__ import annotations

from typing import Any

from fdp.config import ConfigError, suggest

SMOKE: dict[str, Any] = {
    "model.encoder.dims": [16, 32, 64, 256], "model.encoder.stem_channels": 16, "model.encoder.heads": 4,
    "model.encoder.vit_dim": 256, "model.encoder.vit_depth": 2, "model.encoder.vit_heads": 4,
    "model.temporal_channels": 32, "model.mer_hidden": 64, "model.dic_channels": [16, 16, 32, 32],
    # the authors' network (variant authors_code) at the same scale; read by no other variant
    "model.authors.stem": [16, 8, 16], "model.authors.depths": [1, 1, 1, 1], "model.authors.feature_side": 32,
    "model.authors.mer_hidden": 64, "model.authors.dic_widths": [8, 16, 16, 32, 32],
    "train.batch_size": 8, "train.steps": 20, "train.device": "cpu", "train.log_every": 5,
    "train.checkpoint_every": 10,
    "compared.budget": "cpu",  # STSTNet / OFF-ApexNet: the CPU profile of their module, not MEB's budget
}

LAPTOP_ALIGNED = 36  # side of the aligned frames the laptop profile's cache is prepared at (crop 32 + 2 x 2 px of shift)
LAPTOP: dict[str, Any] = {
    **SMOKE,
    "data.aligned_size": LAPTOP_ALIGNED, "data.crop": 32, "model.image_size": 32,  # 4x fewer pixels than 64
    "model.frames": 4,  # t: half the paper's 8, half the step time (the rank loss and dynamic image still span onset..offset)
    "train.batch_size": 16, "train.steps": 600, "train.lr": 5e-4,  # 600 steps: a laptop's budget for the demo's networks, past where their training loss leaves chance
    "train.log_every": 20, "train.checkpoint_every": 0,  # fold jobs of seconds: a retry reruns the fold
}

PROFILES: dict[str, dict[str, Any]] = {"smoke": SMOKE, "laptop": LAPTOP}


def profile(name: str) -> dict[str, Any]:
    """The overrides of profile `name` (a copy); ConfigError for an unknown name."""
    if name not in PROFILES:
        raise ConfigError(f"unknown profile {name!r}{suggest(name, sorted(PROFILES))}; known: {', '.join(PROFILES)}")
    return dict(PROFILES[name])
