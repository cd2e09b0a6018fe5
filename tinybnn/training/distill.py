"""Knowledge distillation's loss (Hinton et al. 2015); `tinybnn.train.train(teacher=...)`
uses it.

    loss = (1 - w) * CE(logits, y) + w * tau^2 * KL(softmax(teacher / tau) || softmax(logits / tau))

The tau^2 keeps the soft term's gradients on the scale of the cross-entropy's as tau grows.
Non-goals: the training loop (it is `tinybnn.train`'s), other distillation losses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def distill_loss(
    logits: torch.Tensor,
    y: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    weight: float,
    temperature: float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy (with `label_smoothing`, Szegedy et al. 2016), blended with the
    soft-target KL divergence when there is a teacher."""
    ce = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    if teacher_logits is None or weight == 0:
        return ce
    t = temperature
    kl = F.kl_div(
        F.log_softmax(logits / t, dim=1),
        F.log_softmax(teacher_logits.float() / t, dim=1),
        log_target=True,
        reduction="batchmean",
    )
    return (1 - weight) * ce + weight * t * t * kl
