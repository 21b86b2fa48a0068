"""STSTNet (Liong, Gan, See, Khor & Huang, "Shallow Triple Stream Three-dimensional CNN (STSTNet)
for Micro-expression Recognition", FG 2019), as its authors' PyTorch release builds it
(docs/methods.md: sources, and where ours could differ).

Input: (B, 3, 28, 28) = horizontal flow u, vertical flow v and optical strain between the onset
and the apex (`fdp.features.flow`), each clip's each channel scaled to [0, 1].

    stream k (k = 3, 5, 8 filters), all three on the same input:
        conv 3 x 3, padding 2            (B, k, 30, 30)
        ReLU, batch norm                 (the authors' release and MEB: BN after the ReLU)
        max-pool 3 x 3, stride 3, pad 1  (B, k, 10, 10)
        dropout 0.5
    concatenate the streams              (B, 16, 10, 10)
    average pool 2 x 2, stride 2         (B, 16, 5, 5)
    flatten, one fully connected layer   (B, classes)

Parameters: 28 x (3 + 5 + 8) = 448 in the convolutions, 2 x 16 = 32 in batch norm, 400 C + C in
the classifier: 1,683 for 3 classes (MEB's count: the same layers), 2,485 for 5.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch
from torch import nn

from fdp.features.keyframes import APEX_RULE_MIDDLE
from fdp.methods.fitting import (EvalHook, FitOutput, LossHook, TrainProfile, budget_steps, count_parameters,
                                 fit_flow_net, fit_fold_net, steps_for_epochs)
from fdp.methods.registry import Method, register

# what a method listing shows, and the stored features it reads (fdp.features.store.load_features)
PAPER = "Liong et al., STSTNet, FG 2019"
INPUT = "TV-L1 flow u, v + optical strain, onset -> apex, 28 x 28"
FEATURE_KIND = "flow"
STREAM_FILTERS = (3, 5, 8)
INPUT_CHANNELS = ("u", "v", "strain")  # rows of the flow features this network reads, in order

# MEB's training of STSTNet (notebook "Table 3. Early stopping", cell 3): Adam lr 5e-5, weight decay
# 1e-3, 500 epochs, batch 32 (meb.core.Config's default); steps = 500 x ceil(n_train / 32)
PAPER_EPOCHS, PAPER_BATCH, PAPER_LR, PAPER_WEIGHT_DECAY = 500, 32, 5e-5, 1e-3
# the CPU-sized budget of the synthetic benchmark (docs/methods.md: how it was set)
CPU_PROFILE = TrainProfile(steps=300, batch_size=32, lr=1e-3, weight_decay=1e-3)


def paper_profile(n_train: int) -> TrainProfile:
    """MEB's budget for `n_train` training clips, in steps."""
    return TrainProfile(steps_for_epochs(n_train, PAPER_EPOCHS, PAPER_BATCH), PAPER_BATCH, PAPER_LR,
                        PAPER_WEIGHT_DECAY)


class STSTNet(nn.Module):
    def __init__(self, num_classes: int = 3, in_channels: int = 3, batch_norm: bool = True, dropout: float = 0.5,
                 size: int = 28) -> None:
        super().__init__()
        self.streams = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_channels, k, kernel_size=3, padding=2), nn.ReLU(),
                          nn.BatchNorm2d(k) if batch_norm else nn.Identity(),
                          nn.MaxPool2d(kernel_size=3, stride=3, padding=1), nn.Dropout(dropout))
            for k in STREAM_FILTERS)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)
        side = ((size + 2) + 2 - 3) // 3 + 1  # after the padded conv (size + 2) and the max-pool
        self.classifier = nn.Linear(sum(STREAM_FILTERS) * (side // 2) ** 2, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([s(x) for s in self.streams], dim=1)  # (B, 16, 10, 10)
        return self.pool(x).flatten(1)  # (B, 400)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))


def parameter_count(num_classes: int) -> int:
    """Exact trainable parameters for `num_classes` (1,683 for 3 classes)."""
    return count_parameters(STSTNet(num_classes=num_classes))


def fit_ststnet(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, num_classes: int,
                profile: TrainProfile | None = None, seed: int = 0, device: str = "cpu", eval_every: int = 0,
                on_eval: EvalHook | None = None, log_every: int = 0, on_loss: LossHook | None = None) -> FitOutput:
    """Train a fresh STSTNet on the flow features (n, 3, 28, 28: u, v, strain as stored by
    `fdp.features.store.load_features(cache, "flow")`) of the training clips with labels y_train
    (the true ones, or a shuffled control's), and return the softmax of the last-step model on
    the test clips. `profile`: the training budget (default: MEB's, `paper_profile(len(x_train))`)."""
    return fit_flow_net("ststnet", lambda: STSTNet(num_classes=num_classes), x_train, y_train, x_test,
                        profile=profile or paper_profile(len(x_train)),
                        input_words="TV-L1 u, v, optical strain onset->apex, 28x28, min-max per clip and channel",
                        seed=seed, device=device, eval_every=eval_every, on_eval=on_eval, log_every=log_every,
                        on_loss=on_loss)


# ---------------------------------------------------------------------------------------------
# the method `ststnet` (fdp.methods.registry): its flow features from the feature cache, the budget
# `compared.budget` names (fitting.fit_fold_net)


def run(inputs: Any) -> Any:
    """Fit a fresh STSTNet on the fold's training clips and predict its test clips (fdp.fold.FoldInputs)."""
    return fit_fold_net(inputs, sys.modules[__name__], fit_ststnet)


register(Method(
    name="ststnet", paper=PAPER, title="STSTNet",
    input=lambda cfg: f"{INPUT}; apex: the annotated one, else {APEX_RULE_MIDDLE}",
    params=lambda cfg: parameter_count(cfg.model.num_classes), params_note="trainable weights of the built network",
    run=run, selection="model after the last step", reads=("compared",),
    steps=lambda cfg: budget_steps(cfg, sys.modules[__name__])))
