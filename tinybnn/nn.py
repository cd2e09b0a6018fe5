"""Binarized layers for 1-D signals, written so that each one lowers to integers exactly.

Tensors follow PyTorch: `[N, C, T]`. A model is a `Sequential` of the layers below; every
value flowing between them has a *kind* that says what the device will hold:

- ``int``: raw integer sensor samples (the model input, int16 on the device);
- ``acc``: a real-valued pre-activation that is a per-channel positive scale times an integer
  accumulator (the output of a convolution or a dense layer);
- ``bin``: activations in {-1, +1} (one bit each on the device);
- ``count``: integer sums of binary activations (global sum pooling);
- ``scores``: integer class scores (the output).

In eval mode every layer computes in float64 along the exact integer path that the compiler
emits (`tinybnn.lowering`), so PyTorch and the C agree bit for bit. In training mode the
same formulas run in float32 with straight-through gradients.

Non-goals: recurrent layers, attention, multi-bit activations, float layers between binary
ones (the compiler refuses them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ModelError
from .quantizers import QUANTIZERS, RSign, SteSignFn, sign

INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1


@dataclass(frozen=True)
class Value:
    """What flows between layers: its kind (see the module docstring) and shape per sample."""

    kind: str
    shape: tuple[int, ...]

    def __str__(self) -> str:
        return f"{self.kind}{list(self.shape)}"


LAYERS: dict[str, type[Layer]] = {}


def register(cls: type[Layer]) -> type[Layer]:
    """Class decorator: make a layer kind known to model files and the compiler."""
    LAYERS[cls.kind] = cls
    return cls


class RoundSte(torch.autograd.Function):
    """round(x) forward, identity gradient."""

    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad):
        return grad


class Layer(nn.Module):
    """Base of tinybnn layers: a registered kind, a JSON-able config, and type inference."""

    kind: ClassVar[str]

    def config(self) -> dict:
        """Constructor arguments, enough to rebuild the layer (weights come separately)."""
        raise NotImplementedError

    def infer(self, v: Value, where: str) -> Value:
        """The value this layer produces from `v`, or a `ModelError` that starts with `where`."""
        raise NotImplementedError

    def _eval_dtype(self) -> torch.dtype:
        return torch.float32 if self.training else torch.float64


def _expect(v: Value, kinds: tuple[str, ...], ndim: int, where: str, what: str) -> None:
    if v.kind not in kinds or len(v.shape) != ndim:
        dims = "[C, T]" if ndim == 2 else "[F]"
        raise ModelError(f"{where}: takes {what} of shape {dims}, but gets {v}")


def _conv_length(where: str, t: int, k: int, stride: int, pad: int) -> int:
    out = (t + 2 * pad - k) // stride + 1
    if t + 2 * pad < k:
        raise ModelError(
            f"{where}: kernel_size {k} is longer than its padded input ({t + 2 * pad})"
        )
    return out


def _padding(padding: int | str, kernel_size: int, stride: int) -> int:
    """Padding on each side: an int, 'valid' (0) or 'same' (odd kernels, stride 1)."""
    if padding == "valid":
        return 0
    if padding == "same":
        if kernel_size % 2 == 0 or stride != 1:
            raise ModelError("padding='same' needs an odd kernel_size and stride 1")
        return kernel_size // 2
    if not isinstance(padding, int) or padding < 0:
        raise ModelError(f"padding must be a non-negative int, 'valid' or 'same', not {padding!r}")
    return padding


def binarize_weight(w: torch.Tensor) -> torch.Tensor:
    """sign(w) with the straight-through estimator (gradient cancelled where |w| > 1)."""
    return SteSignFn.apply(w)


def scaling_factor(w: torch.Tensor) -> torch.Tensor:
    """XNOR-Net's alpha: mean |w| per output channel, kept strictly positive."""
    return w.abs().flatten(1).mean(1).clamp_min(1e-8)


def quantize_int8(w: torch.Tensor, per_channel: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8: q = clamp(round(w / delta), -127, 127), delta = max|w| / 127.

    Returns (q, delta); q carries a straight-through gradient, delta is a constant.
    """
    if per_channel:
        delta = w.detach().abs().flatten(1).amax(1).clamp_min(1e-8) / 127
        d = delta.view((-1,) + (1,) * (w.dim() - 1))
    else:
        delta = w.detach().abs().amax().clamp_min(1e-8) / 127
        d = delta
    return torch.clamp(RoundSte.apply(w / d), -127, 127), delta


@register
class InputConv1d(Layer):
    """First layer: raw integer samples in, a convolution with binary or int8 weights.

    The input is normalised as integer arithmetic: x' = (clamp(x, lo, hi) - offset_c) *
    multiplier_c, a per-channel integer offset and integer multiplier, and the network sees
    x' * 2^-shift. Padding, if any, holds x' = 0 (the channel's offset in raw units).

    The accumulator is sum(w_q * x') with w_q = sign(w) (weights="binary") or int8 codes
    (weights="int8", one scale per output channel); the pre-activation is
    acc * scale_o * 2^-shift with scale_o = alpha_o (binary, scaling=True), delta_o (int8) or 1.
    `fit_normalization` sets offset, multiplier and shift from data.
    """

    kind = "input_conv1d"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | str = 0,
        weights: str = "binary",
        scaling: bool = False,
        input_range: tuple[int, int] = (INT16_MIN, INT16_MAX),
    ):
        super().__init__()
        if weights not in ("binary", "int8"):
            raise ModelError(f"input_conv1d: weights must be 'binary' or 'int8', not {weights!r}")
        lo, hi = (int(v) for v in input_range)
        if not INT16_MIN <= lo < hi <= INT16_MAX:
            raise ModelError(f"input_conv1d: input_range {input_range} is not within int16")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.padding = padding
        self.pad = _padding(padding, kernel_size, stride)
        self.weights, self.scaling = weights, scaling
        self.input_range = (lo, hi)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size))
        nn.init.uniform_(self.weight, -1, 1)
        self.register_buffer("offset", torch.zeros(in_channels, dtype=torch.int64))
        self.register_buffer("multiplier", torch.ones(in_channels, dtype=torch.int64))
        self.register_buffer("shift", torch.zeros((), dtype=torch.int64))

    def config(self) -> dict:
        return dict(
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            weights=self.weights,
            scaling=self.scaling,
            input_range=list(self.input_range),
        )

    def infer(self, v: Value, where: str) -> Value:
        _expect(v, ("int",), 2, where, "raw integer samples")
        if v.shape[0] != self.in_channels:
            raise ModelError(f"{where}: in_channels={self.in_channels}, but the input has {v}")
        t = _conv_length(where, v.shape[1], self.kernel_size, self.stride, self.pad)
        return Value("acc", (self.out_channels, t))

    @torch.no_grad()
    def fit_normalization(self, x: torch.Tensor, multiplier_bits: int | None = None) -> None:
        """Offsets = rounded channel means; multiplier_c / 2^shift ~ 1 / std_c.

        Multipliers are integers in [1, 2^bits - 1]: 8 bits with binary weights, 3 with int8
        (whose per-channel weight scales already absorb most of the normalisation), which
        keeps the int32 accumulator bound (checked by the compiler) well clear of overflow.
        """
        bits = multiplier_bits or (8 if self.weights == "binary" else 3)
        x = x.double().clamp(*self.input_range).transpose(0, 1).reshape(self.in_channels, -1)
        off = torch.round(x.mean(1))
        std = x.std(1).clamp_min(1.0)
        # Largest shift such that every multiplier stays within the bit budget.
        shift = math.floor(math.log2((2**bits - 1) * std.min().item()))
        shift = max(shift, 0)
        mult = torch.round(2.0**shift / std).clamp(1, 2**bits - 1)
        self.offset.copy_(off.to(torch.int64))
        self.multiplier.copy_(mult.to(torch.int64))
        self.shift.fill_(shift)

    def integer_weight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(w_q, scale_o): integer-valued weights and the per-output-channel real scale."""
        if self.weights == "binary":
            wq = binarize_weight(self.weight)
            scale = (
                scaling_factor(self.weight)
                if self.scaling
                else torch.ones_like(self.weight[:, 0, 0])
            )
        else:
            wq, scale = quantize_int8(self.weight, per_channel=True)
        return wq, scale

    def normalize(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """x' = (clamp(x) - offset) * multiplier: integer-valued, exact in float64."""
        x = x.to(dtype).clamp(*self.input_range)
        return (x - self.offset.to(dtype)[:, None]) * self.multiplier.to(dtype)[:, None]

    def to_preact(self, acc: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
        """acc * scale_o * 2^-shift (channel dim 1), the real value the next layer sees."""
        factor = scale.to(acc.dtype) * 2.0 ** -int(self.shift)
        return acc * factor.view((1, -1) + (1,) * (acc.dim() - 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self._eval_dtype()
        wq, scale = self.integer_weight()
        xn = F.pad(self.normalize(x, dtype), (self.pad, self.pad))
        acc = F.conv1d(xn, wq.to(dtype), stride=self.stride)
        return self.to_preact(acc, scale)


@register
class BinaryConv1d(Layer):
    """Convolution of {-1, +1} inputs with {-1, +1} weights: acc = sum(x * sign(w)).

    Padding is a declared binary value: `pad_value` +1 or -1 fills `padding` steps each side
    ('valid' for none, 'same' for odd kernels at stride 1); zeros are never used. With
    `scaling=True` the output is alpha_o * acc (XNOR-Net), folded into the next threshold.
    """

    kind = "binary_conv1d"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | str = 0,
        pad_value: int = 1,
        scaling: bool = False,
    ):
        super().__init__()
        if pad_value not in (1, -1):
            raise ModelError(f"binary_conv1d: pad_value must be +1 or -1, not {pad_value!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.padding, self.pad_value = padding, pad_value
        self.pad = _padding(padding, kernel_size, stride)
        self.scaling = scaling
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size))
        nn.init.uniform_(self.weight, -1, 1)

    def config(self) -> dict:
        return dict(
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            kernel_size=self.kernel_size,
            stride=self.stride,
            padding=self.padding,
            pad_value=self.pad_value,
            scaling=self.scaling,
        )

    def infer(self, v: Value, where: str) -> Value:
        _expect(v, ("bin",), 2, where, "binary activations")
        if v.shape[0] != self.in_channels:
            raise ModelError(f"{where}: in_channels={self.in_channels}, but the input is {v}")
        t = _conv_length(where, v.shape[1], self.kernel_size, self.stride, self.pad)
        return Value("acc", (self.out_channels, t))

    def scale(self) -> torch.Tensor:
        return (
            scaling_factor(self.weight) if self.scaling else torch.ones_like(self.weight[:, 0, 0])
        )

    def to_preact(self, acc: torch.Tensor) -> torch.Tensor:
        if not self.scaling:
            return acc
        return acc * self.scale().to(acc.dtype).view((1, -1) + (1,) * (acc.dim() - 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self._eval_dtype()
        x = F.pad(x.to(dtype), (self.pad, self.pad), value=float(self.pad_value))
        acc = F.conv1d(x, binarize_weight(self.weight).to(dtype), stride=self.stride)
        return self.to_preact(acc)


@register
class BinaryLinear(Layer):
    """Dense layer with {-1, +1} weights: acc = sum(x * sign(w)) over binary or count inputs.

    As a hidden layer it is followed by `BatchNormSign` (optionally `scaling=True`). As the
    classifier (`bias=True`), it returns integer scores acc + round(b): the bias is learned in
    accumulator units and rounded (straight-through), so scores are integers on the device.
    """

    kind = "binary_linear"

    def __init__(
        self, in_features: int, out_features: int, bias: bool = False, scaling: bool = False
    ):
        super().__init__()
        if bias and scaling:
            raise ModelError("binary_linear: a classifier (bias=True) cannot use scaling")
        self.in_features, self.out_features = in_features, out_features
        self.scaling = scaling
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.uniform_(self.weight, -1, 1)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def config(self) -> dict:
        return dict(
            in_features=self.in_features,
            out_features=self.out_features,
            bias=self.bias is not None,
            scaling=self.scaling,
        )

    def infer(self, v: Value, where: str) -> Value:
        kinds = ("bin", "count") if self.bias is not None else ("bin",)
        _expect(
            v, kinds, 1, where, "flat binary activations" + (" or counts" if len(kinds) > 1 else "")
        )
        if v.shape[0] != self.in_features:
            raise ModelError(f"{where}: in_features={self.in_features}, but the input is {v}")
        return Value("scores" if self.bias is not None else "acc", (self.out_features,))

    def scale(self) -> torch.Tensor:
        return scaling_factor(self.weight) if self.scaling else torch.ones_like(self.weight[:, 0])

    def to_preact(self, acc: torch.Tensor) -> torch.Tensor:
        return acc * self.scale().to(acc.dtype) if self.scaling else acc

    def integer_bias(self) -> torch.Tensor:
        return RoundSte.apply(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self._eval_dtype()
        acc = x.to(dtype) @ binarize_weight(self.weight).to(dtype).T
        if self.bias is not None:
            return acc + self.integer_bias().to(dtype)
        return self.to_preact(acc)


@register
class Int8Linear(Layer):
    """Classifier with int8 weights: scores = sum(x * q) + round(b), integers on the device.

    q = clamp(round(w / delta), -127, 127) with one delta for the whole matrix (a per-class
    scale would change the argmax). Inputs are binary activations or counts.
    """

    kind = "int8_linear"

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.uniform_(self.weight, -1, 1)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def config(self) -> dict:
        return dict(
            in_features=self.in_features, out_features=self.out_features, bias=self.bias is not None
        )

    def infer(self, v: Value, where: str) -> Value:
        _expect(v, ("bin", "count"), 1, where, "flat binary activations or counts")
        if v.shape[0] != self.in_features:
            raise ModelError(f"{where}: in_features={self.in_features}, but the input is {v}")
        return Value("scores", (self.out_features,))

    def integer_weight(self) -> torch.Tensor:
        return quantize_int8(self.weight, per_channel=False)[0]

    def integer_bias(self) -> torch.Tensor:
        if self.bias is None:
            return torch.zeros(self.out_features)
        return RoundSte.apply(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self._eval_dtype()
        return x.to(dtype) @ self.integer_weight().to(dtype).T + self.integer_bias().to(dtype)


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
    y - threshold, and returns +1 where y >= 0, else -1. The compiler folds this into one integer threshold
    per channel, checked against this very function.
    """

    kind = "batchnorm_sign"

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
        if quantizer not in QUANTIZERS:
            raise ModelError(
                f"batchnorm_sign: quantizer must be one of {sorted(QUANTIZERS)}, not {quantizer!r}"
            )
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
        if v.kind != "acc":
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


@register
class MaxPool1d(Layer):
    """Max pooling over time, of binary activations or of pre-activations (before the sign).

    No padding; stride defaults to kernel_size. A trailing partial window is dropped, as in
    `torch.nn.MaxPool1d`.
    """

    kind = "maxpool1d"

    def __init__(self, kernel_size: int, stride: int | None = None):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride or kernel_size

    def config(self) -> dict:
        return dict(kernel_size=self.kernel_size, stride=self.stride)

    def infer(self, v: Value, where: str) -> Value:
        _expect(v, ("acc", "bin"), 2, where, "activations or pre-activations")
        t = _conv_length(where, v.shape[1], self.kernel_size, self.stride, 0)
        return Value(v.kind, (v.shape[0], t))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool1d(x, self.kernel_size, self.stride)


@register
class GlobalPool1d(Layer):
    """Pooling over all of time: mode='sum' gives counts (sum of +-1, in [-T, T]) for an int8
    or binary classifier; mode='max' gives binary activations (+1 if any step is +1).

    Sum rather than mean keeps the value an integer; the classifier's temperature absorbs 1/T.
    """

    kind = "global_pool1d"

    def __init__(self, mode: str = "sum"):
        super().__init__()
        if mode not in ("sum", "max"):
            raise ModelError(f"global_pool1d: mode must be 'sum' or 'max', not {mode!r}")
        self.mode = mode

    def config(self) -> dict:
        return dict(mode=self.mode)

    def infer(self, v: Value, where: str) -> Value:
        _expect(v, ("bin",), 2, where, "binary activations")
        return Value("count" if self.mode == "sum" else "bin", (v.shape[0],))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(-1) if self.mode == "sum" else x.amax(-1)


@register
class Flatten(Layer):
    """[C, T] -> [C * T] in PyTorch order (index c * T + t)."""

    kind = "flatten"

    def config(self) -> dict:
        return {}

    def infer(self, v: Value, where: str) -> Value:
        _expect(v, ("bin",), 2, where, "binary activations")
        return Value("bin", (v.shape[0] * v.shape[1],))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


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
        if isinstance(m, (BinaryConv1d, BinaryLinear)) or (
            isinstance(m, InputConv1d) and m.weights == "binary"
        ):
            m.weight.clamp_(-1, 1)
