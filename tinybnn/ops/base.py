"""What every op's training layer shares: the value kinds between layers, the `Layer` base
class and its registry, and the weight quantizers the layers use.

Tensors follow PyTorch: `[N, C, T]`. Every value flowing between layers has a *kind* that
says what the device will hold:

- ``int``: raw integer sensor samples (the model input, int16 on the device);
- ``acc``: a real-valued pre-activation that is a per-channel positive scale times an integer
  accumulator (the output of a convolution or a dense layer);
- ``sum``: an integer pre-activation in the unit of a +-1 dot product: the accumulator of a
  binary convolution without scaling, or such a sum plus a shortcut (`binary_residual1d`);
  int16 on the device where a shortcut keeps it between layers;
- ``bin``: activations in {-1, +1} (one bit each on the device);
- ``i8``: int8 activation codes (one byte each on the device, `int8_conv1d` with
  activation="int8");
- ``count``: integer sums over time (global sum pooling) of binary activations, each in
  [-T, T], or of int8 codes, each within T * 128 (the pooling's stage holds the bound);
- ``scores``: integer class scores (the output).

A layer kind is one class decorated with `register`; it declares what its config may hold
(`schema`, checked by `spec.check_config` in every constructor), says how it trains
(`forward`), how it lowers to the integer program (`lower`), and what its float twin is
(`twin`). Everything else about the op (its stage, reference, C and variants) sits beside it
in its op module.
"""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from ..compiler.contract import packed_words
from ..compiler.kernels import LIMITS
from ..errors import ModelError
from ..quantizers import SteSignFn
from .spec import SpecError, check_config, check_weight_size

if TYPE_CHECKING:
    from ..compiler.lowering import Lowerer


@dataclass(frozen=True)
class Value:
    """What flows between layers: its kind (see the module docstring) and shape per sample."""

    kind: str
    shape: tuple[int, ...]

    def __str__(self) -> str:
        return f"{self.kind}{list(self.shape)}"

    @property
    def device_bytes(self) -> int:
        """Bytes the value would take on the device: int16 samples, packed bits, int8 codes,
        or int32 (accumulators, sums, counts, scores)."""
        if self.kind == "bin":
            return 4 * packed_words(self.shape)
        n = 1
        for d in self.shape:
            n *= d
        return {"int": 2, "i8": 1}.get(self.kind, 4) * n


LAYERS: dict[str, type[Layer]] = {}


def register(cls: type[Layer]) -> type[Layer]:
    """Class decorator: make a layer kind known to model files, the compiler and the twin,
    and make its constructor check its arguments against `cls.schema` (and the size of its
    weights, `cls.weight_bits`) before it allocates anything.

    The constructor then receives each argument as the schema stores it (a Python int,
    float, bool, str or tuple); a refusal is a `spec.SpecError` naming the kind and field.
    """
    init = cls.__init__
    signature = inspect.signature(init)
    fields = [name for name in signature.parameters if name != "self"]
    if set(fields) != set(cls.schema):
        raise TypeError(
            f"{cls.__name__}: the schema's fields {sorted(cls.schema)} are not its "
            f"constructor's {sorted(fields)}"
        )
    cls.defaults = {
        name: p.default
        for name, p in signature.parameters.items()
        if name != "self" and p.default is not p.empty
    }

    @functools.wraps(init)
    def checked_init(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        config = check_config(cls.kind, cls.schema, dict(list(bound.arguments.items())[1:]))
        check_weight_size(cls.kind, cls.weight_bits(config))
        init(self, **config)

    cls.__init__ = checked_init
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
    """Base of tinybnn layers: a registered kind, a JSON-able config, type inference, its
    lowering and its float twin."""

    kind: ClassVar[str]
    # field -> its type and range (`spec.Int`, `spec.Choice`, ...), one per constructor argument
    schema: ClassVar[dict[str, Any]] = {}
    # tensor name (as in its state_dict) -> the range of its values, where more than finite
    tensors: ClassVar[dict[str, Any]] = {}
    # constructor arguments with a default (set by `register`)
    defaults: ClassVar[dict[str, Any]] = {}

    @staticmethod
    def weight_bits(config: dict) -> int:
        """Bits the weights of a layer of this config take on the device (`register` bounds it
        before the constructor allocates them)."""
        return 0

    def config(self) -> dict:
        """Constructor arguments, enough to rebuild the layer (weights come separately)."""
        raise NotImplementedError

    def infer(self, v: Value, where: str) -> Value:
        """The value this layer produces from `v`, or a `ModelError` that starts with `where`."""
        raise NotImplementedError

    def lower(self, lw: Lowerer) -> None:
        """Emit this layer's stage (taking the layers it fuses) at `lw.i`, or refuse."""
        raise ModelError(f"{lw.where(lw.i)}: cannot be compiled in this position")

    def twin(self) -> nn.Module:
        """The full-precision counterpart of this layer (`tinybnn.training.twin`)."""
        raise NotImplementedError

    @property
    def binary_weights(self) -> bool:
        """True when `weight` is binarised in the forward pass (Bop flips it, training clips it)."""
        return False

    @property
    def note(self) -> str:
        """A few words for the summary table (kernel size, weight kind, ...)."""
        return ""

    def _eval_dtype(self) -> torch.dtype:
        return torch.float32 if self.training else torch.float64


def check_sum_bound(bound: int, where: str) -> int:
    """`bound` (exact) if sums of at most that size fit the device's int16 sum buffers
    (`TB_SUM_MAX` of the kernels header), else a `ModelError` naming the layer."""
    if bound > LIMITS["TB_SUM_MAX"]:
        raise ModelError(
            f"{where}: its sums reach +-{bound}, beyond the +-{LIMITS['TB_SUM_MAX']} "
            "(TB_SUM_MAX) that the int16 buffers of a shortcut hold"
        )
    return bound


PREACT_KINDS = ("acc", "sum")  # pre-activations: what max pooling and batchnorm_sign take


def expect(v: Value, kinds: tuple[str, ...], ndim: int, where: str, what: str) -> None:
    if v.kind not in kinds or len(v.shape) != ndim:
        dims = "[C, T]" if ndim == 2 else "[F]"
        raise ModelError(f"{where}: takes {what} of shape {dims}, but gets {v}")


def conv_length(where: str, t: int, k: int, stride: int, pad: int) -> int:
    out = (t + 2 * pad - k) // stride + 1
    if t + 2 * pad < k:
        raise ModelError(
            f"{where}: kernel_size {k} is longer than its padded input ({t + 2 * pad})"
        )
    return out


def pad_steps(kind: str, padding: int | str, kernel_size: int, stride: int) -> int:
    """Padding on each side of a checked `padding` (`spec.PADDING`): an int, 'valid' (0) or
    'same' (odd kernels, stride 1)."""
    if padding == "valid":
        return 0
    if padding == "same":
        if kernel_size % 2 == 0 or stride != 1:
            raise SpecError(kind, "padding='same' needs an odd kernel_size and stride 1")
        return kernel_size // 2
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


def channel_view(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-channel vector [C] shaped to broadcast over `like` (channel dim 1)."""
    return t.to(like.dtype).view((1, -1) + (1,) * (like.dim() - 2))


def conv_weight_bits(config: dict, bits_per_weight: int = 1) -> int:
    """`weight_bits` of a convolution: out_channels x in_channels x kernel_size weights."""
    return config["out_channels"] * config["in_channels"] * config["kernel_size"] * bits_per_weight


def conv_config(layer, **more) -> dict:
    """The config of a convolution layer: its shape arguments, then `more`."""
    return dict(
        in_channels=layer.in_channels,
        out_channels=layer.out_channels,
        kernel_size=layer.kernel_size,
        stride=layer.stride,
        padding=layer.padding,
        **more,
    )


def conv_infer(layer, v: Value, where: str, kind: str, what: str) -> Value:
    """The output of a convolution layer (`in_channels`, `out_channels`, `kernel_size`,
    `stride`, `pad`) on `v`, which must be of `kind`: acc [out_channels, T']."""
    expect(v, (kind,), 2, where, what)
    if v.shape[0] != layer.in_channels:
        raise ModelError(f"{where}: in_channels={layer.in_channels}, but the input is {v}")
    t = conv_length(where, v.shape[1], layer.kernel_size, layer.stride, layer.pad)
    return Value("acc", (layer.out_channels, t))


def float_conv(layer) -> nn.Module:
    """The float twin of a convolution: the same shape, float weights, zero padding."""
    return nn.Conv1d(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        stride=layer.stride,
        padding=layer.pad,
        bias=False,
    )
