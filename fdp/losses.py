"""Loss terms of eq. 5-8, computed from the model's named outputs.

L = lambda_mer L_MER + lambda_d L_DIC + lambda_r L_rank   (eq. 8; lambda_mer = 1 in the paper)
L_MER  = cross-entropy (eq. 7), mean over clips
L_DIC  = MSE(D^, D) (eq. 6), mean over pixels and clips
L_rank = sum_k |K(k) - S(F_k)| (eq. 5), summed over the t frames, mean over clips
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fdp.config import LossConfig


def rank_loss(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Eq. 5 per clip, averaged over the batch. scores (B, T), targets (T,) = K(0..T-1)."""
    return (targets.unsqueeze(0) - scores.float()).abs().sum(dim=1).mean()


def loss_terms(outputs: dict[str, torch.Tensor | None], labels: torch.Tensor, di_target: torch.Tensor | None,
               cfg: LossConfig, model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Named, unweighted terms of the modules that are built, plus their weighted `total`."""
    terms: dict[str, torch.Tensor] = {}
    total = torch.zeros((), device=labels.device)
    if outputs.get("logits") is not None:
        terms["mer"] = F.cross_entropy(outputs["logits"].float(), labels)
        total = total + cfg.lambda_mer * terms["mer"]
    if outputs.get("di") is not None:
        if di_target is None:
            raise ValueError("loss: the DIC module is on but no ground-truth dynamic image was given")
        terms["dic"] = F.mse_loss(outputs["di"].float(), di_target.float())
        total = total + cfg.lambda_d * terms["dic"]
    if outputs.get("rank_scores") is not None:
        scores = outputs["rank_scores"]
        terms["rank"] = rank_loss(scores, model.rank.targets(scores.shape[1], scores.device))
        total = total + cfg.lambda_r * terms["rank"]
    terms["total"] = total
    return terms
