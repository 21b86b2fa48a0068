"""OFF-ApexNet (Gan, Liong, Yau, Huang & Tan, "OFF-ApexNet on micro-expression recognition
system", Signal Processing: Image Communication 74, 2019) as the paper describes it: TWO streams,
one on the horizontal and one on the vertical optical flow between the onset and the apex, their
features concatenated and classified by fully connected layers. Not MEB's simplified single
stream (both flow channels in one 3 x 3 stream, one hidden layer: 807,909 parameters for 3
classes). Where each number comes from, and what is uncertain: docs/methods.md.

Input: (B, 2, 28, 28) = u and v (`fdp.features.flow`), each clip's each channel scaled to [0, 1].

    stream (one for u, one for v; LeNet-like):
        conv 5 x 5, 6 filters, 'same' padding, ReLU     (B, 6, 28, 28)
        max-pool 2 x 2, stride 2                        (B, 6, 14, 14)
        conv 5 x 5, 16 filters, 'same' padding, ReLU    (B, 16, 14, 14)
        max-pool 2 x 2, stride 2                        (B, 16, 7, 7) -> 784
    concatenate the two streams                         (B, 1568)
    FC 1024, ReLU, dropout 0.5; FC 1024, ReLU, dropout 0.5; FC classes

Parameters: 2 x (156 + 2,416) = 5,144 in the streams, 1,606,656 + 1,049,600 in the hidden layers,
1,024 C + C in the output: 2,664,475 for 3 classes, 2,666,525 for 5.
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

PAPER = "Gan et al., OFF-ApexNet, Signal Processing: Image Communication 2019"
INPUT = "TV-L1 flow u, v (one stream each), onset -> apex, 28 x 28"
FEATURE_KIND = "flow"
INPUT_CHANNELS = ("u", "v")  # rows 0 and 1 of the flow features
HIDDEN = 1024

# MEB's training of its OFF-ApexNet (notebook "Table 3. Early stopping", cell 6): Adam lr 1e-4,
# weight decay 1e-3, 3000 epochs, batch 32; steps = 3000 x ceil(n_train / 32)
PAPER_EPOCHS, PAPER_BATCH, PAPER_LR, PAPER_WEIGHT_DECAY = 3000, 32, 1e-4, 1e-3
# the CPU-sized budget of the synthetic benchmark (docs/methods.md: how it was set)
CPU_PROFILE = TrainProfile(steps=300, batch_size=32, lr=1e-3, weight_decay=1e-3)


def paper_profile(n_train: int) -> TrainProfile:
    """MEB's budget for `n_train` training clips, in steps."""
    return TrainProfile(steps_for_epochs(n_train, PAPER_EPOCHS, PAPER_BATCH), PAPER_BATCH, PAPER_LR,
                        PAPER_WEIGHT_DECAY)


def _stream() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Flatten())


class OffApexNet(nn.Module):
    def __init__(self, num_classes: int = 3, dropout: float = 0.5, size: int = 28, hidden: int = HIDDEN) -> None:
        super().__init__()
        self.horizontal = _stream()  # u
        self.vertical = _stream()  # v
        flat = 16 * (size // 4) ** 2
        self.head = nn.Sequential(
            nn.Linear(2 * flat, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Dropout(dropout),
            nn.Linear(hidden, num_classes))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, 2, 28, 28) -> (B, 1568)
        return torch.cat([self.horizontal(x[:, 0:1]), self.vertical(x[:, 1:2])], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))


def parameter_count(num_classes: int) -> int:
    """Exact trainable parameters for `num_classes` (2,664,475 for 3 classes)."""
    return count_parameters(OffApexNet(num_classes=num_classes))


def fit_off_apexnet(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, num_classes: int,
                    profile: TrainProfile | None = None, seed: int = 0, device: str = "cpu", eval_every: int = 0,
                    on_eval: EvalHook | None = None, log_every: int = 0,
                    on_loss: LossHook | None = None) -> FitOutput:
    """Train a fresh OFF-ApexNet on the flow features (n, 3, 28, 28 as stored; u and v are used)
    of the training clips and return the softmax of the last-step model on the test clips.
    `profile`: the training budget (default: MEB's, `paper_profile(len(x_train))`)."""
    return fit_flow_net("off_apexnet", lambda: OffApexNet(num_classes=num_classes), np.asarray(x_train)[:, :2],
                        y_train, np.asarray(x_test)[:, :2], profile=profile or paper_profile(len(x_train)),
                        input_words="TV-L1 u, v onset->apex, 28x28, min-max per clip and channel",
                        seed=seed, device=device, eval_every=eval_every, on_eval=on_eval, log_every=log_every,
                        on_loss=on_loss)


# ---------------------------------------------------------------------------------------------
# the method `off_apexnet` (fdp.methods.registry): its flow features from the feature cache, the budget
# `compared.budget` names (fitting.fit_fold_net)


def run(inputs: Any) -> Any:
    """Fit a fresh OffApexNet on the fold's training clips and predict its test clips (fdp.fold.FoldInputs)."""
    return fit_fold_net(inputs, sys.modules[__name__], fit_off_apexnet)


register(Method(
    name="off_apexnet", paper=PAPER, title="OFF-ApexNet",
    input=lambda cfg: f"{INPUT}; apex: the annotated one, else {APEX_RULE_MIDDLE}",
    params=lambda cfg: parameter_count(cfg.model.num_classes), params_note="trainable weights of the built network",
    run=run, selection="model after the last step", reads=("compared",),
    steps=lambda cfg: budget_steps(cfg, sys.modules[__name__])))
