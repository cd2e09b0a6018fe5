"""The int8 codes-out activation a convolution may end in: BatchNorm, a ReLU (or none) and
int8 fake quantisation in training; in eval mode the integer requantisation
`contract.Requant` of the convolution's accumulator (docs/lowering.md, "int8 activations
between layers").

One home for it, shared by the convolutions that hand int8 codes to the next layer: the
int8 one (`int8_conv1d`, "8a8") and the binary one (`binary_conv1d`, "1a8"). A layer mixes
in `CodesOut`, calls `init_codes_out` in its constructor when activation="int8", and
provides `acc_bound` (|acc| of its integer accumulator, exact) and `preact_scale()` (the
positive per-channel scale of its pre-activation, delta_o * acc or alpha_o * acc).

Codes are symmetric, zero point 0: [0, 127] after a ReLU, else [-128, 127]; the scale is
s = m / 127, m a running average (momentum `ACT_MOMENTUM`) of the training batches' largest
|y| (1/s = 1 before any training step). Non-goals: asymmetric codes (a zero point).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..compiler.contract import Requant, fold_requant
from ..compiler.kernels import LIMITS
from .base import RoundSte
from .spec import INT64_MAX, Bool, Choice, Int, Real

INT8_MAX = 127
ACT_MOMENTUM = 0.1  # the activation range's running average, as BatchNorm's statistics

# The schema and tensor entries of a layer with the codes-out activation.
CODES_SCHEMA = dict(activation=Choice(("none", "int8")), relu=Bool())
CODES_TENSORS = {
    "bn.running_var": Real(0.0),
    "bn.num_batches_tracked": Int(0, INT64_MAX),
    "act_max": Real(0.0),
}


class CodesOut:
    """Mixin of a convolution with `activation` ("none" or "int8") and `relu`."""

    activation: str
    relu: bool
    bn: nn.BatchNorm1d
    act_max: torch.Tensor
    training: bool

    def init_codes_out(self, channels: int) -> None:
        """The BatchNorm and the running range (activation="int8")."""
        self.bn = nn.BatchNorm1d(channels)
        self.register_buffer("act_max", torch.zeros(()))

    @property
    def codes_note(self) -> str:
        return f", int8 out{' relu' if self.relu else ''}" if self.activation == "int8" else ""

    @property
    def code_range(self) -> tuple[int, int]:
        """[lo, hi] of the int8 codes it produces (activation="int8")."""
        return (0, INT8_MAX) if self.relu else (-INT8_MAX - 1, INT8_MAX)

    @property
    def acc_bound(self) -> int:
        """|acc| of the layer's integer accumulator, on exact integers."""
        raise NotImplementedError

    def preact_scale(self) -> torch.Tensor:
        """The positive per-channel scale of the pre-activation: preact = scale_o * acc."""
        raise NotImplementedError

    def act_scale(self) -> float:
        """s: a code is y / s (activation="int8")."""
        m = float(self.act_max)
        return m / INT8_MAX if m > 0 else 1.0

    def requant(self, where: str | None = None) -> Requant:
        """The integer requantisation of eval mode, from the running statistics, the
        pre-activation's scale_o and s: codes = clamp(floor(acc * scale_o * g / (sqrt(var +
        eps) s) + (beta - mean * g / sqrt(var + eps)) / s + 1/2), lo, hi), its multiplier and
        offset rounded to integers by `contract.fold_requant` (the integers are the
        definition)."""
        d = torch.float64
        with torch.no_grad():
            bn = self.bn
            inv = bn.weight.to(d) / torch.sqrt(bn.running_var.to(d) + bn.eps)
            s = self.act_scale()
            scale = self.preact_scale().to(d) * inv / s
            offset = (bn.bias.to(d) - bn.running_mean.to(d) * inv) / s
        lo, hi = self.code_range
        return fold_requant(
            scale.numpy(),
            offset.numpy(),
            lo,
            hi,
            self.acc_bound,
            LIMITS["TB_RQ_MAX_SHIFT"],
            where or self.kind,
        )

    @staticmethod
    def requantize(acc: torch.Tensor, rq: Requant) -> torch.Tensor:
        """Codes of integer accumulators acc [N, O, T] (eval mode), computed in int64 tensors."""
        a = acc.round().to(torch.int64)

        def view(v):
            return torch.from_numpy(v).view(1, -1, 1)

        v = a * view(rq.mult) + view(rq.bias)
        q = torch.div(v, view(np.left_shift(1, rq.shift)), rounding_mode="floor")
        return torch.clamp(q, rq.lo, rq.hi).to(torch.float64)

    def quantize(self, y: torch.Tensor) -> torch.Tensor:
        """Training: update the running range, then codes with a straight-through gradient."""
        with torch.no_grad():
            m = (y.amax() if self.relu else y.abs().amax()).clamp_min(0).to(self.act_max.dtype)
            fresh = self.act_max <= 0
            self.act_max.copy_(torch.where(fresh, m, torch.lerp(self.act_max, m, ACT_MOMENTUM)))
        lo, hi = self.code_range
        return torch.clamp(RoundSte.apply(y / self.act_scale()), lo, hi)

    def codes_out(self, acc: torch.Tensor) -> torch.Tensor:
        """The codes of integer accumulators acc [N, O, T]: the integer requantisation in eval
        mode; BatchNorm, ReLU (in the clamp to [0, 127]) and fake quantisation in training."""
        if not self.training:
            return self.requantize(acc, self.requant())
        scale = self.preact_scale()
        return self.quantize(self.bn(acc * scale.to(acc.dtype).view(1, -1, 1)))

    def codes_twin(self, conv: nn.Module) -> nn.Module:
        """The float twin: the convolution, BatchNorm, and the ReLU where the codes have one."""
        act = [nn.ReLU()] if self.relu else []
        return nn.Sequential(conv, nn.BatchNorm1d(self.bn.num_features), *act)


def requant_fields(cs, rq: Requant, blocks: bool = False) -> dict:
    """The tb_requant_t record of a stage with codes out (its arrays added to `cs`), and the
    shift limit it relies on; with `blocks`, the arrays padded to whole blocks of 4
    channels (the xs kernels read them four at a time)."""
    a = rq.arrays()
    if blocks:
        extra = -len(a["mult"]) % 4
        a = {k: np.concatenate([v, np.zeros(extra, v.dtype)]) for k, v in a.items()}
    names = {k: cs.array(f"rq_{k}", v, f"requantisation: {k}") for k, v in a.items()}
    cs.require("TB_RQ_MAX_SHIFT", int(rq.shift.max()))
    return dict(names, lo=rq.lo, hi=rq.hi)
