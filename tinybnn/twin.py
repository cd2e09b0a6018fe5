"""The full-precision twin of a tinybnn model: same layers and sizes, float weights and
activations.

It answers "how much does binarisation cost?" on a data set, and it is the teacher for
knowledge distillation (`tinybnn.train.train(teacher="twin")`). Each tinybnn layer kind maps to its float
counterpart through `TWINS`:

    input_conv1d    -> per-channel standardisation, then Conv1d (float weights)
    binary_conv1d   -> Conv1d (float weights, zero padding)
    binary_linear / int8_linear -> Linear
    batchnorm_sign  -> BatchNorm1d + ReLU
    maxpool1d, flatten -> the same;  global_pool1d sum -> mean over time, max -> max

The twin is never compiled: it has float activations. Non-goals: a twin that is itself
deployable, architectures other than tinybnn `Sequential` layer sequences.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import nn

from . import nn as tnn
from .data import Dataset
from .models import conv_classifier

if TYPE_CHECKING:
    from .train import TrainResult  # tinybnn.train imports this module

TWIN_LR = 1e-2  # peak lr of a twin: float weights need no sign flips


class Standardize(nn.Module):
    """(x - mean_c) / sd_c, fitted on the training data (`fit_normalization`)."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(channels))
        self.register_buffer("sd", torch.ones(channels))

    @torch.no_grad()
    def fit_normalization(self, x: torch.Tensor) -> None:
        x = x.double().transpose(0, 1).reshape(x.shape[1], -1)
        self.mean.copy_(x.mean(1).float())
        self.sd.copy_(x.std(1).clamp_min(1.0).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() - self.mean[:, None]) / self.sd[:, None]


class GlobalMean(nn.Module):
    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(-1) if self.mode == "sum" else x.amax(-1)


def _conv(layer) -> nn.Module:
    return nn.Conv1d(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        stride=layer.stride,
        padding=layer.pad,
        bias=False,
    )


def _input_conv(layer: tnn.InputConv1d) -> nn.Module:
    return nn.Sequential(Standardize(layer.in_channels), _conv(layer))


TWINS: dict[str, Callable[[nn.Module], nn.Module]] = {
    "input_conv1d": _input_conv,
    "binary_conv1d": _conv,
    "binary_linear": lambda m: nn.Linear(m.in_features, m.out_features, bias=m.bias is not None),
    "int8_linear": lambda m: nn.Linear(m.in_features, m.out_features, bias=m.bias is not None),
    "batchnorm_sign": lambda m: nn.Sequential(nn.BatchNorm1d(m.num_features), nn.ReLU()),
    "maxpool1d": lambda m: nn.MaxPool1d(m.kernel_size, m.stride),
    "flatten": lambda m: nn.Flatten(),
    "global_pool1d": lambda m: GlobalMean(m.mode),
}


class FloatTwin(nn.Module):
    """A float network with the layer sizes of a tinybnn `Sequential`; returns logits.

    It offers what the training loop uses of a `Sequential`: `layers` (the first fits the
    input normalisation), `logits`, `num_classes`, `class_names`, `input_shape`.
    """

    def __init__(self, model: tnn.Sequential):
        super().__init__()
        self.layers = nn.ModuleList(TWINS[layer.kind](layer) for layer in model.layers)
        self.input_shape = model.input_shape
        self.class_names = list(model.class_names)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def fit_normalization(self, x: torch.Tensor) -> None:
        self.layers[0][0].fit_normalization(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def logits(self, scores: torch.Tensor) -> torch.Tensor:
        return scores

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def twin_for(data: Dataset, **architecture) -> FloatTwin:
    """The float twin of `conv_classifier(**architecture)` built for `data`."""
    return FloatTwin(
        conv_classifier(*data.input_shape, data.num_classes, data.class_names, **architecture)
    )


def train_twin(
    data: str | os.PathLike | Dataset,
    twin: FloatTwin | tnn.Sequential | None = None,
    *,
    epochs: int = 30,
    lr: float = TWIN_LR,
    **options,
) -> TrainResult:
    """Train a float twin with tinybnn's loop (`tinybnn.train.train(twin=True)`: Adam,
    one-cycle, best epoch on validation) and return its result; `result.val_accuracy` is its
    accuracy.

    twin: a `FloatTwin`, a tinybnn `Sequential` to mirror, or None for the twin of the default
    `conv_classifier` (architecture keywords such as `widths` pass through `options`).
    The peak lr is lower than the binary network's: float weights need no sign flips.
    """
    from .train import train

    options.setdefault("progress", False)
    return train(data, twin, epochs=epochs, lr=lr, twin=True, **options)
