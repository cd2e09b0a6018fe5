"""The binary activation: BatchNorm, optionally RPReLU and a learned threshold, then sign.

It has no stage of its own: the convolution or dense layer before it lowers it into one
integer threshold per channel (`tinybnn.compiler.contract.fold_threshold`, which evaluates
`eval_preact` below on integers), so it computes in the C kernel of that layer.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ModelError
from ..quantizers import QUANTIZERS, RSign, sign
from .base import PREACT_KINDS, Layer, Value, register
from .spec import CHANNELS, INT64_MAX, Bool, Choice, Either, Int, Null, Real


class RPReLU(nn.Module):
    r"""ReActNet's RPReLU: a PReLU between two learned per-channel shifts,

        f(x)_c = x_c - g_c + z_c              where x_c >= g_c
        f(x)_c = b_c * (x_c - g_c) + z_c      elsewhere,

    with the slope b_c kept >= 0.01, so f is strictly increasing: before a sign it reshapes
    the gradient and moves the threshold, and still folds into one integer threshold.
    """

    MIN_SLOPE = 0.01

    def __init__(self, num_channels: int):
        super().__init__()
        self.shift_in = nn.Parameter(torch.zeros(num_channels))
        self.shift_out = nn.Parameter(torch.zeros(num_channels))
        self.slope = nn.Parameter(torch.full((num_channels,), 0.25))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        g, z = self.shift_in.to(x.dtype).view(shape), self.shift_out.to(x.dtype).view(shape)
        b = self.slope.clamp(min=self.MIN_SLOPE).to(x.dtype).view(shape)
        u = x - g
        return torch.where(u >= 0, u, b * u) + z


@register
class BatchNormSign(Layer):
    """BatchNorm1d followed by sign: the binary activation of a pre-activation.

    quantizer: 'ste' or 'approx' (gradient estimators, see `tinybnn.quantizers`);
    learnable_threshold=True subtracts a learned per-channel threshold first (RSign);
    rprelu=True applies ReActNet's RPReLU between the BatchNorm and the sign.

    Training uses batch statistics (float32). Eval computes, in float64 and in this order,
    y = (x - running_mean) * (gamma / sqrt(running_var + eps)) + beta, then RPReLU, then
    y - threshold, and returns +1 where y >= 0, else -1. The compiler folds this into one
    integer threshold per channel, checked against this very function.
    """

    kind = "batchnorm_sign"
    schema = dict(
        num_features=CHANNELS,
        quantizer=Choice(tuple(QUANTIZERS)),
        learnable_threshold=Bool(),
        momentum=Either((Real(0.0, 1.0), Null())),  # None: a cumulative average, as in torch
        eps=Real(0.0, 1.0, lo_open=True),
        rprelu=Bool(),
    )
    tensors = {"bn.running_var": Real(0.0), "bn.num_batches_tracked": Int(0, INT64_MAX)}

    def __init__(
        self,
        num_features: int,
        quantizer: str = "ste",
        learnable_threshold: bool = False,
        momentum: float = 0.1,
        eps: float = 1e-5,
        rprelu: bool = False,
    ):
        super().__init__()
        self.num_features, self.quantizer = num_features, quantizer
        self.momentum, self.eps = momentum, eps
        self.bn = nn.BatchNorm1d(num_features, eps=eps, momentum=momentum)
        self.rsign = RSign(num_features, quantizer) if learnable_threshold else None
        self.rprelu = RPReLU(num_features) if rprelu else None

    def config(self) -> dict:
        return dict(
            num_features=self.num_features,
            quantizer=self.quantizer,
            learnable_threshold=self.rsign is not None,
            momentum=self.momentum,
            eps=self.eps,
            rprelu=self.rprelu is not None,
        )

    def infer(self, v: Value, where: str) -> Value:
        if v.kind not in PREACT_KINDS:
            raise ModelError(
                f"{where}: follows a convolution or dense layer (an accumulator), not {v}"
            )
        if v.shape[0] != self.num_features:
            raise ModelError(f"{where}: num_features={self.num_features}, but the input is {v}")
        return Value("bin", v.shape)

    def eval_preact(self, x: torch.Tensor) -> torch.Tensor:
        """The eval-mode value whose sign is the output (float64, channel dim 1)."""
        shape = (1, -1) + (1,) * (x.dim() - 2)
        d = torch.float64
        s = self.bn.weight.to(d) / torch.sqrt(self.bn.running_var.to(d) + self.eps)
        y = (x.to(d) - self.bn.running_mean.to(d).view(shape)) * s.view(shape) + self.bn.bias.to(
            d
        ).view(shape)
        if self.rprelu is not None:
            y = self.rprelu(y)
        if self.rsign is not None:
            y = y - self.rsign.threshold.to(d).view(shape)
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return sign(self.eval_preact(x))
        y = self.bn(x)
        if self.rprelu is not None:
            y = self.rprelu(y)
        if self.rsign is not None:
            return self.rsign(y)
        return QUANTIZERS[self.quantizer].apply(y)

    def twin(self) -> nn.Module:
        return nn.Sequential(nn.BatchNorm1d(self.num_features), nn.ReLU())

    def lower(self, lw) -> None:
        raise ModelError(f"{lw.where(lw.i)}: batchnorm_sign must follow a conv or dense layer")
