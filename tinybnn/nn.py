"""Binarized layers for 1-D signals, written so that each one lowers to integers exactly.

Tensors follow PyTorch: `[N, C, T]`. A model is a `Sequential` of the layers below; the
value kinds between them (``int``, ``acc``, ``sum``, ``bin``, ``count``, ``scores``) are described in
`tinybnn.ops.base`. Each layer kind lives in its op module under `tinybnn.ops`, with its
lowering, reference and C; this module gathers them for users and holds `Sequential`.

In eval mode every layer computes in float64 along the exact integer path that the compiler
emits (`tinybnn.compiler.lowering`), so PyTorch and the C agree bit for bit. In training
mode the same formulas run in float32 with straight-through gradients.

Non-goals: recurrent layers, attention, multi-bit activations, float layers between binary
ones (the compiler refuses them).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .errors import ModelError
from .ops import LAYERS, Layer, Value
from .ops.base import register
from .ops.batchnorm_sign import BatchNormSign, RPReLU
from .ops.binary_conv import BinaryConv1d
from .ops.dense import BinaryLinear, Int8Linear
from .ops.flatten import Flatten
from .ops.input_conv import InputConv1d
from .ops.int8_conv import Int8Conv1d
from .ops.pool import GlobalPool1d, MaxPool1d
from .ops.residual import BinaryResidual1d
from .ops.spec import (
    INT16_MAX,
    INT16_MIN,
    MAX_CLASSES,
    MAX_LAYERS,
    MAX_RAM_BYTES,
    SpecError,
    check_class_names,
    check_fields,
    check_input_shape,
    check_tensors,
    shown,
    size_text,
)
from .quantizers import sign

__all__ = [
    "INT16_MAX",
    "INT16_MIN",
    "LAYERS",
    "BatchNormSign",
    "BinaryConv1d",
    "BinaryLinear",
    "BinaryResidual1d",
    "Flatten",
    "GlobalPool1d",
    "InputConv1d",
    "Int8Conv1d",
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
    The layer sequence is checked on construction (`infer`), and so are `input_shape`
    ([channels, length]) and `class_names` (strings, one per class; see `tinybnn.ops.spec`).
    """

    def __init__(
        self, *layers: nn.Module, input_shape: tuple[int, int], class_names: list[str] | None = None
    ):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.input_shape = check_input_shape(input_shape)
        self.values = infer(list(layers), self.input_shape)
        num_classes = self.values[-1].shape[0]
        if num_classes > MAX_CLASSES:
            raise ModelError(
                f"{describe(len(layers) - 1, layers[-1])}: {num_classes} classes; tinybnn "
                f"classifies into at most {MAX_CLASSES}"
            )
        if class_names is None:
            class_names = [f"class{i}" for i in range(num_classes)]
        class_names = check_class_names(class_names)
        if len(class_names) != num_classes:
            raise ModelError(f"{len(class_names)} class names for {num_classes} classes")
        self.class_names = class_names
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
    def from_spec(cls, spec: object) -> Sequential:
        """The model that `spec()` describes (weights freshly initialised), every field
        checked against its layer kind's schema; a one-line `ModelError` naming the layer."""
        if not isinstance(spec, Mapping):
            raise ModelError(f"the spec must be a dict, not {type(spec).__name__}")
        fields = ("input_shape", "class_names", "layers")
        for name in spec:
            if name not in fields:
                raise ModelError(f"the spec holds an unknown field {shown(name)}")
        for name in fields:
            if name not in spec:
                raise ModelError(f"the spec's {name} is missing")
        entries = spec["layers"]
        if not isinstance(entries, (list, tuple)) or not 1 <= len(entries) <= MAX_LAYERS:
            raise ModelError(f"the spec's layers must be a list of 1 to {MAX_LAYERS} layers")
        layers = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, Mapping):
                raise ModelError(f"layer {i}: must be a dict of fields, not {shown(entry)}")
            entry = dict(entry)
            kind = entry.pop("kind", None)
            if not isinstance(kind, str) or kind not in LAYERS:
                raise ModelError(
                    f"layer {i}: unknown kind {shown(kind)}; the kinds are "
                    f"{', '.join(sorted(LAYERS))}"
                )
            layer_cls = LAYERS[kind]
            try:
                check_fields(kind, layer_cls.schema, layer_cls.defaults, entry)
                layers.append(layer_cls(**entry))
            except SpecError as e:
                raise e.at(f"layer {i} ({kind})") from None
        return cls(*layers, input_shape=spec["input_shape"], class_names=spec["class_names"])

    def check_state(self, state: Mapping | None = None) -> dict[str, torch.Tensor]:
        """`state` (default: this model's own state_dict) checked as this model's weights and
        converted to its dtypes (`tinybnn.ops.spec.check_tensors`: names, shapes, finite
        values, the integer buffers and their ranges as exact integers). A one-line
        `ModelError` names the layer and the tensor."""
        own = self.state_dict()
        if state is None:
            state = own
        if not isinstance(state, Mapping) or not all(isinstance(k, str) for k in state):
            raise ModelError("the state_dict must map tensor names to tensors")
        groups = [
            (f"layers.{i}.", describe(i, layer), layer.tensors)
            for i, layer in enumerate(self.layers)
        ]
        out: dict[str, torch.Tensor] = {}
        taken: set[str] = set()
        for prefix, where, rules in groups:
            mine = {k[len(prefix) :]: v for k, v in own.items() if k.startswith(prefix)}
            given = {k[len(prefix) :]: state[k] for k in state if k.startswith(prefix)}
            taken.update(prefix + k for k in given)
            checked = check_tensors(where, mine, given, rules)
            out.update((prefix + k, v) for k, v in checked.items())
        top = {k: v for k, v in own.items() if k not in out}
        rest = {k: state[k] for k in state if k not in taken}
        out.update(check_tensors("the model", top, rest, {}))
        return out


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
        if v.device_bytes > MAX_RAM_BYTES:
            raise ModelError(
                f"{where}: its output {v} would take {size_text(v.device_bytes)} of RAM, more "
                f"than the {size_text(MAX_RAM_BYTES)} tinybnn allows a microcontroller model"
            )
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
