"""The full-precision twin of a tinybnn model: same layers and sizes, float weights and
activations.

It answers "how much does binarisation cost?" on a data set, and it is the teacher for
knowledge distillation (`tinybnn.training.train.train(teacher="twin")`). Each layer kind
gives its float counterpart (`Layer.twin`, in its op module):

    input_conv1d    -> per-channel standardisation, then Conv1d (float weights)
    binary_conv1d   -> Conv1d (float weights, zero padding)
    binary_linear / int8_linear -> Linear
    batchnorm_sign  -> BatchNorm1d + ReLU
    maxpool1d, flatten -> the same;  global_pool1d sum -> mean over time, max -> max

The twin is never compiled: it has float activations. Non-goals: a twin that is itself
deployable, architectures other than tinybnn `Sequential` layer sequences.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import nn as tnn
from ..models import conv_classifier
from .data import Dataset


class FloatTwin(nn.Module):
    """A float network with the layer sizes of a tinybnn `Sequential`; returns logits.

    It offers what the training loop uses of a `Sequential`: `layers` (the first fits the
    input normalisation), `logits`, `num_classes`, `class_names`, `input_shape`.
    """

    def __init__(self, model: tnn.Sequential):
        super().__init__()
        self.layers = nn.ModuleList(layer.twin() for layer in model.layers)
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
