"""Binarized layers for 1-D signals, written so that each one lowers to integers exactly.

Tensors follow PyTorch: `[N, C, T]`. A model is a `Sequential` of the layers below; the
value kinds between them (``int``, ``acc``, ``bin``, ``count``, ``scores``) are described in
`tinybnn.ops.base`. Each layer kind lives in its op module under `tinybnn.ops`, with its
lowering, reference and C; this module gathers them for users and holds `Sequential`.

In eval mode every layer computes in float64 along the exact integer path that the compiler
emits (`tinybnn.compiler.lowering`), so PyTorch and the C agree bit for bit. In training
mode the same formulas run in float32 with straight-through gradients.

Non-goals: recurrent layers, attention, multi-bit activations, float layers between binary
ones (the compiler refuses them).
"""

from __future__ import annotations

import torch
from torch import nn

from .errors import ModelError
from .ops import LAYERS, Layer, Value
from .ops.base import INT16_MAX, INT16_MIN, register
from .ops.batchnorm_sign import BatchNormSign, RPReLU
from .ops.binary_conv import BinaryConv1d
from .ops.dense import BinaryLinear, Int8Linear
from .ops.flatten import Flatten
from .ops.input_conv import InputConv1d
from .ops.pool import GlobalPool1d, MaxPool1d
from .quantizers import sign

__all__ = [
    "INT16_MAX",
    "INT16_MIN",
    "LAYERS",
    "BatchNormSign",
    "BinaryConv1d",
    "BinaryLinear",
    "Flatten",
    "GlobalPool1d",
    "InputConv1d",
    "Int8Linear",
    "Layer",
    "MaxPool1d",
    "RPReLU",
    "Sequential",
    "Value",
    "clip_latent_",
    "describe",
    "infer",
    "register",
    "sign",
]


class Sequential(nn.Module):
    """A tinybnn model: raw int16 samples `[N, C, T]` in, integer class scores `[N, K]` out.

    `forward` returns scores (integers in eval mode); training uses
    `scores * temperature` as logits, with a learned positive temperature that argmax ignores.
    The layer sequence is checked on construction (`infer`).
    """

    def __init__(
        self, *layers: nn.Module, input_shape: tuple[int, int], class_names: list[str] | None = None
    ):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.input_shape = (int(input_shape[0]), int(input_shape[1]))
        self.values = infer(list(layers), self.input_shape)
        num_classes = self.values[-1].shape[0]
        if class_names is None:
            class_names = [f"class{i}" for i in range(num_classes)]
        if len(class_names) != num_classes:
            raise ModelError(f"{len(class_names)} class names for {num_classes} classes")
        self.class_names = [str(c) for c in class_names]
        self.log_temperature = nn.Parameter(torch.zeros(()))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def activations(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every layer, in order (for layer-by-layer checks)."""
        out = []
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out

    def logits(self, scores: torch.Tensor) -> torch.Tensor:
        return scores * self.log_temperature.exp()

    def spec(self) -> dict:
        """The architecture as plain data (what a model file stores besides the weights)."""
        return {
            "input_shape": list(self.input_shape),
            "class_names": list(self.class_names),
            "layers": [{"kind": layer.kind, **layer.config()} for layer in self.layers],
        }

    @classmethod
    def from_spec(cls, spec: dict) -> Sequential:
        layers = []
        for i, entry in enumerate(spec["layers"]):
            entry = dict(entry)
            kind = entry.pop("kind")
            if kind not in LAYERS:
                raise ModelError(f"layer {i}: unknown kind {kind!r}")
            if "input_range" in entry:
                entry["input_range"] = tuple(entry["input_range"])
            layers.append(LAYERS[kind](**entry))
        return cls(*layers, input_shape=tuple(spec["input_shape"]), class_names=spec["class_names"])


def describe(i: int, layer: nn.Module) -> str:
    return f"layer {i} ({getattr(layer, 'kind', type(layer).__name__)})"


def infer(layers: list[nn.Module], input_shape: tuple[int, int]) -> list[Value]:
    """Check a layer sequence and return the value after each layer."""
    if not layers:
        raise ModelError("the model has no layers")
    v = Value("int", tuple(input_shape))
    values = []
    for i, layer in enumerate(layers):
        where = describe(i, layer)
        if not isinstance(layer, Layer):
            raise ModelError(
                f"{where}: not a tinybnn layer; supported kinds are {', '.join(sorted(LAYERS))}"
            )
        v = layer.infer(v, where)
        values.append(v)
    if v.kind != "scores":
        raise ModelError(
            f"{describe(len(layers) - 1, layers[-1])}: the model must end in a classifier "
            f"(binary_linear or int8_linear with bias=True), but ends with {v}"
        )
    for i, v in enumerate(values[:-1]):
        if v.kind == "scores":
            raise ModelError(f"{describe(i, layers[i])}: a classifier must be the last layer")
    return values


@torch.no_grad()
def clip_latent_(model: nn.Module) -> None:
    """Clip the latent weights of binary layers to [-1, 1] (call after every optimizer step)."""
    for m in model.modules():
        if isinstance(m, Layer) and m.binary_weights:
            m.weight.clamp_(-1, 1)
