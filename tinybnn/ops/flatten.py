"""Flatten: [C, T] -> [C * T] in PyTorch order. It costs nothing on the device: the packed
[T][CW] buffer is the flat vector, and the dense layer after it places its weights at the
bit of each feature (`tinybnn.compiler.contract.flat_layout`)."""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ModelError
from .base import Layer, Value, expect, register


@register
class Flatten(Layer):
    """[C, T] -> [C * T] in PyTorch order (index c * T + t)."""

    kind = "flatten"

    def __init__(self):
        super().__init__()

    def config(self) -> dict:
        return {}

    def infer(self, v: Value, where: str) -> Value:
        expect(v, ("bin",), 2, where, "binary activations")
        return Value("bin", (v.shape[0] * v.shape[1],))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def twin(self) -> nn.Module:
        return nn.Flatten()

    def lower(self, lw) -> None:
        # No code: the dense layer after it reads the packed buffer in its layout.
        nxt = lw.layer(lw.i + 1)
        if nxt is None or nxt.kind not in ("binary_linear", "int8_linear"):
            raise ModelError(f"{lw.where(lw.i)}: flatten must be followed by a dense layer")
        lw.i += 1
