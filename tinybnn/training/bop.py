"""Bop, the binary optimizer (Helwegen et al. 2019, "Latent weights do not exist").

Bop keeps the binary weights themselves (values +-1, stored in the layers' `weight`
tensors) and one exponential moving average of their gradients, m:

    m <- (1 - gamma) * m + gamma * g
    w <- -w   where |m| > tau and sign(m) == sign(w)

so a weight flips when its gradient has pushed consistently towards the other sign. gamma
(adaptivity) sets how fast m follows the gradient, tau (threshold) how strong the push must
be. Everything that is not a binary weight (BatchNorm, int8 weights, biases, thresholds,
the temperature) is trained by Adam. The weights stay exactly +-1, so `clip_latent_` and
the sign leave them unchanged and the model lowers as any other.

When it helps: long training runs where latent weights drift far from zero and stop
flipping; on small data sets with few steps, gamma must be large (the default 1e-2 against
the paper's 1e-4) and Adam on latent weights is usually as good.
"""

from __future__ import annotations

import torch

from ..errors import TinyBNNError
from ..nn import Layer


class Bop(torch.optim.Optimizer):
    """Flip binary weights whose gradient average exceeds `threshold` against their sign."""

    def __init__(self, params, threshold: float = 1e-6, gamma: float = 1e-2):
        if not threshold >= 0 or not 0 < gamma <= 1:
            raise ValueError(
                f"Bop needs threshold >= 0 and 0 < gamma <= 1 (got {threshold}, {gamma})"
            )
        super().__init__(params, dict(threshold=threshold, gamma=gamma))
        with torch.no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    p.copy_(torch.where(p >= 0, 1.0, -1.0))  # sign(0) = +1

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            tau, gamma = group["threshold"], group["gamma"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                m = self.state[p].setdefault("m", torch.zeros_like(p))
                m.mul_(1 - gamma).add_(p.grad, alpha=gamma)
                flip = (m.abs() > tau) & (torch.sign(m) == torch.sign(p))
                p.copy_(torch.where(flip, -p, p))
                m.masked_fill_(flip, 0.0)
        return None


def binary_weights(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The weight tensors that are binarised in the forward pass."""
    return [m.weight for m in model.modules() if isinstance(m, Layer) and m.binary_weights]


def optimizers(
    model: torch.nn.Module, lr: float, threshold: float = 1e-6, gamma: float = 1e-2
) -> list[torch.optim.Optimizer]:
    """[Bop on the binary weights, Adam(lr) on every other parameter]."""
    binary = binary_weights(model)
    if not binary:
        raise TinyBNNError("optimizer='bop' trains binary weights; this model has none")
    ids = {id(p) for p in binary}
    rest = [p for p in model.parameters() if id(p) not in ids]
    return [Bop(binary, threshold, gamma), torch.optim.Adam(rest, lr=lr)]
