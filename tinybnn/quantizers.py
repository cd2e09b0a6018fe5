"""Sign quantizers: the forward is always sign with sign(0) = +1; they differ in the gradient.

Each quantizer is a `torch.autograd.Function` with a thin `nn.Module` wrapper, registered by
name in `QUANTIZERS` so a model spec can refer to it as a string. Non-goal: multi-bit
quantizers; tinybnn's activations are in {-1, +1}.
"""

from __future__ import annotations

import torch
from torch import nn


def sign(x: torch.Tensor) -> torch.Tensor:
    """sign(x) = +1 if x >= 0 else -1, so sign(0) = +1 (unlike `torch.sign`)."""
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


class SteSignFn(torch.autograd.Function):
    r"""Straight-through estimator with the gradient cancelled outside [-1, 1].

    forward:  q(x) = +1 if x >= 0 else -1
    backward: dq/dx = 1 if |x| <= 1 else 0

    (Courbariaux et al. 2016, "Binarized Neural Networks".)
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return sign(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


class ApproxSignFn(torch.autograd.Function):
    r"""ApproxSign: Bi-Real Net's piecewise-quadratic approximation of sign, for the gradient.

    forward:  q(x) = +1 if x >= 0 else -1
    backward: dq/dx = 2 - 2|x| if |x| <= 1 else 0

    (Liu et al. 2018, "Bi-Real Net"; the derivative of the piecewise quadratic
    2x + x^2 on [-1, 0) and 2x - x^2 on [0, 1).)
    """

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return sign(x)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.clamp(2 - 2 * x.abs(), min=0)


class SteSign(nn.Module):
    """Module form of `SteSignFn`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return SteSignFn.apply(x)


class ApproxSign(nn.Module):
    """Module form of `ApproxSignFn`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ApproxSignFn.apply(x)


class RSign(nn.Module):
    r"""Sign with a learnable per-channel threshold (ReActNet's RSign).

    forward:  q(x)_c = +1 if x_c - b_c >= 0 else -1
    backward: dq/dx_c = g(x_c - b_c),  dq/db_c = -g(x_c - b_c)

    where g is the gradient of the wrapped estimator (`ste` or `approx`). At export b_c folds
    into the layer's integer threshold, so it costs nothing on the device.
    """

    def __init__(self, num_channels: int, estimator: str = "approx"):
        super().__init__()
        if estimator not in ("ste", "approx"):
            raise ValueError(f"RSign estimator must be 'ste' or 'approx', not {estimator!r}")
        self.estimator = estimator
        self.threshold = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fn = SteSignFn if self.estimator == "ste" else ApproxSignFn
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return fn.apply(x - self.threshold.view(shape).to(x.dtype))


# name -> estimator Function, for the layers that take `quantizer="..."`.
QUANTIZERS = {"ste": SteSignFn, "approx": ApproxSignFn}
