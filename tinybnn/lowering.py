"""The arithmetic contract: how a tinybnn model becomes an integer-only program.

Everything that the numpy reference (`tinybnn.reference`) and the C kernels
(`templates/c/tinybnn_kernels.h`) compute is defined here once; docs/lowering.md is the
same contract in prose.

Bits. A binary activation or weight is one bit: bit 1 means -1, bit 0 means +1 (so sign(0)
= +1 is bit 0). Channels are packed along `uint32_t` words, channel c in word c // 32, bit
c % 32 (least significant first); the unused high bits of a last, partial word are 0 in
activations and in weights. A `[C, T]` activation is stored `[T][ceil(C/32)]`. For two
packed vectors of K real bits, dot = K - 2 * popcount(x ^ w): padding bits are 0 on both
sides, so they never count.

Thresholds. A convolution or dense layer yields an integer accumulator `acc`. What follows
it up to the sign (scaling alpha, input scale, BatchNorm, a learned RSign threshold) is one
monotone function f of acc, so its sign is one integer comparison per channel:

    output bit = (acc < th)   if the channel's direction is 0 (f increasing)
    output bit = (acc > th)   if the channel's direction is 1 (f decreasing, gamma < 0)

`th` is found by evaluating the PyTorch module's own eval-mode function on integers, so the
comparison reproduces it exactly; a channel whose f is constant gets a threshold outside
the accumulator range. Max pooling between a convolution and its sign pools the
pre-activation alpha * acc with alpha > 0, so it is the max of acc whatever the direction;
on output bits that is an AND over the window where the direction is 0 (the max of the
outputs) and an OR where it is 1 (their min, since f decreases).

Non-goals: padding of pooling layers, dilation, groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from . import nn as tnn
from .errors import ModelError

WORD_BITS = 32
INT32_MAX = 2**31 - 1


def words(bits: int) -> int:
    """Number of uint32 words that hold `bits` bits."""
    return (bits + WORD_BITS - 1) // WORD_BITS


def pack_bits(values: np.ndarray) -> np.ndarray:
    """Pack +-1 values along the last axis into uint32 words (bit 1 = -1, LSB first)."""
    values = np.asarray(values)
    n = values.shape[-1]
    bits = np.zeros(values.shape[:-1] + (words(n) * WORD_BITS,), dtype=np.uint64)
    bits[..., :n] = values < 0
    bits = bits.reshape(values.shape[:-1] + (words(n), WORD_BITS))
    return (bits << np.arange(WORD_BITS, dtype=np.uint64)).sum(-1).astype(np.uint32)


def unpack_bits(packed: np.ndarray, n: int) -> np.ndarray:
    """Inverse of `pack_bits`: +-1 int8 values, the last axis cut to `n`."""
    packed = np.asarray(packed, dtype=np.uint32)
    bits = (packed[..., None] >> np.arange(WORD_BITS, dtype=np.uint32)) & 1
    bits = bits.reshape(packed.shape[:-1] + (-1,))[..., :n]
    return (1 - 2 * bits.astype(np.int8)).astype(np.int8)


def int_ctype(lo: int, hi: int) -> str:
    """The smallest C integer type (int16 or int32) that holds [lo, hi]."""
    if -(2**15) <= lo and hi < 2**15:
        return "int16"
    if -(2**31) <= lo and hi <= INT32_MAX:
        return "int32"
    raise ValueError(f"[{lo}, {hi}] does not fit in int32")


@dataclass
class Threshold:
    """Per channel: output bit = (acc > th) if neg else (acc < th)."""

    th: np.ndarray  # int64 [C]
    neg: np.ndarray  # bool [C]
    ctype: str  # C type of th: "int16" or "int32"

    def bits(self, acc: np.ndarray) -> np.ndarray:
        """Output bits (1 = -1) for accumulators `acc` [..., C]."""
        return np.where(self.neg, acc > self.th, acc < self.th).astype(np.uint8)

    def arrays(self) -> dict[str, np.ndarray]:
        """As the C stores them: th in its C type, the directions packed like activations."""
        return {
            "th": self.th.astype(np.int16 if self.ctype == "int16" else np.int32),
            "neg": pack_bits(np.where(self.neg, -1, 1)),
        }


def fold_threshold(f, c: int, lo: int, hi: int) -> Threshold:
    """The integer thresholds for sign(f(acc)) over integer acc in [lo, hi].

    f maps a float64 tensor [1, C, R] of accumulators to the eval-mode pre-activation whose
    sign (with sign(0) = +1) is the output; it must be monotone in acc per channel, which
    every tinybnn chain is (products with positive scales, BatchNorm, shifts).
    """

    def evaluate(acc: np.ndarray) -> np.ndarray:  # acc [C] int -> f(acc) >= 0, [C] bool
        t = torch.tensor(acc, dtype=torch.float64).view(1, c, 1)
        with torch.no_grad():
            return (f(t).view(c) >= 0).numpy()

    lo_v = np.full(c, lo, np.int64)
    hi_v = np.full(c, hi, np.int64)
    with torch.no_grad():
        y_lo = f(torch.tensor(lo_v, dtype=torch.float64).view(1, c, 1)).view(c).numpy()
        y_hi = f(torch.tensor(hi_v, dtype=torch.float64).view(1, c, 1)).view(c).numpy()
    if not (np.isfinite(y_lo).all() and np.isfinite(y_hi).all()):
        raise ModelError("a BatchNorm or scale holds NaN or infinity")
    neg = y_hi < y_lo
    pos_lo, pos_hi = y_lo >= 0, y_hi >= 0
    # Bisect for the boundary: increasing f -> smallest acc with f >= 0 (+1 from there up);
    # decreasing f -> largest acc with f >= 0 (+1 from there down). Invariant: the answer
    # lies in (a, b] (increasing) or [a, b) (decreasing) of integers.
    a = np.where(neg, lo, lo - 1).astype(np.int64)
    b = np.where(neg, hi + 1, hi).astype(np.int64)
    while True:
        active = b - a > 1
        if not active.any():
            break
        mid = (a + b) // 2
        ok = evaluate(mid)
        # increasing: ok -> answer <= mid -> b = mid; else a = mid.
        # decreasing: ok -> answer >= mid -> a = mid; else b = mid.
        move_b = np.where(neg, ~ok, ok) & active
        b = np.where(move_b, mid, b)
        a = np.where(~move_b & active, mid, a)
    th = np.where(neg, a, b)
    # Constant channels (equal ends, or no crossing in range) get an out-of-range threshold.
    const = y_hi == y_lo
    th = np.where(const, np.where(pos_lo, lo, hi + 1), th)
    th = np.where(~const & ~neg & ~pos_hi, hi + 1, th)  # never reaches 0: always -1
    th = np.where(~const & neg & ~pos_lo, lo - 1, th)  # always -1
    neg = neg & ~const
    return Threshold(th=th.astype(np.int64), neg=neg, ctype=int_ctype(int(th.min()), int(th.max())))


# ---------------------------------------------------------------------------------------
# The lowered program: a list of stages, each a dataclass that the reference interprets and
# a template renders. `layers` are the indices of the PyTorch layers a stage implements;
# the stage's output equals the last of them (compared layer by layer in the tests).


@dataclass
class Stage:
    layers: list[int]
    in_shape: tuple[int, ...]  # [C, T] or [F]
    out_shape: tuple[int, ...]
    out_kind: str  # "bin", "count" or "scores"

    @property
    def kind(self) -> str:
        return type(self).__name__.lower()

    def out_bytes(self) -> int:
        """Bytes of this stage's output buffer."""
        if self.out_kind == "bin":
            return 4 * packed_words(self.out_shape)
        return 4 * self.out_shape[0]

    def arrays(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def macs(self) -> tuple[int, int]:
        """(binary MACs, integer MACs) per inference."""
        return 0, 0


def packed_words(shape: tuple[int, ...]) -> int:
    """Words of a packed binary value: [T][ceil(C/32)] for [C, T], ceil(F/32) for flat [F]."""
    if len(shape) == 2:
        return shape[1] * words(shape[0])
    return words(shape[0])


@dataclass
class InputConv(Stage):
    """int16 samples [T][C] -> clamp, (x - offset) * multiplier -> conv -> [pool] -> sign."""

    kernel_size: int = 0
    stride: int = 1
    pad: int = 0
    binary: bool = True
    weight: np.ndarray = field(default=None)  # int8 [O][k][C]: +-1 or int8 codes
    offset: np.ndarray = field(default=None)  # int16 [C]
    multiplier: np.ndarray = field(default=None)  # int16 [C]
    lo: int = -(2**15)
    hi: int = 2**15 - 1
    pool_k: int = 1
    pool_s: int = 1
    acc_bound: int = 0
    threshold: Threshold = field(default=None)

    def arrays(self):
        o = self.weight.shape[0]
        w = (
            pack_bits(self.weight.reshape(o, -1))  # [O][ceil(k*C/32)], tap-major
            if self.binary
            else self.weight.astype(np.int8)
        )
        return {
            "w": w,
            "offset": self.offset.astype(np.int16),
            "mult": self.multiplier.astype(np.int16),
            **self.threshold.arrays(),
        }

    def conv_length(self) -> int:
        return (self.in_shape[1] + 2 * self.pad - self.kernel_size) // self.stride + 1

    def macs(self):
        o, k, c = self.weight.shape
        return 0, o * k * c * self.conv_length()


@dataclass
class BinConv(Stage):
    """packed [T][CW] -> binary conv (declared pad value) -> [pool] -> sign -> packed."""

    kernel_size: int = 0
    stride: int = 1
    pad: int = 0
    pad_value: int = 1
    weight: np.ndarray = field(default=None)  # int8 +-1 [O][k][C]
    pool_k: int = 1
    pool_s: int = 1
    threshold: Threshold = field(default=None)

    def arrays(self):
        return {"w": pack_bits(self.weight), **self.threshold.arrays()}

    def conv_length(self) -> int:
        return (self.in_shape[1] + 2 * self.pad - self.kernel_size) // self.stride + 1

    def macs(self):
        o, k, c = self.weight.shape
        return o * k * c * self.conv_length(), 0


@dataclass
class BinDense(Stage):
    """packed vector -> binary dense -> sign -> packed vector.

    The input vector is a packed buffer of `in_words` words whose bit layout `layout` gives,
    for each flat input feature (PyTorch order), its bit index in the buffer.
    """

    weight: np.ndarray = field(default=None)  # uint32 [O][in_words], in the buffer's layout
    in_features: int = 0
    threshold: Threshold = field(default=None)

    def arrays(self):
        return {"w": self.weight, **self.threshold.arrays()}

    def macs(self):
        return self.weight.shape[0] * self.in_features, 0


@dataclass
class MaxPoolBits(Stage):
    """Max of +-1 over time windows = AND of bits, per word. Global max pooling is k = T."""

    kernel_size: int = 1
    stride: int = 1

    def arrays(self):
        return {}


@dataclass
class GlobalSum(Stage):
    """packed [T][CW] -> int32 [C]: sum over t of +-1 = T - 2 * (number of set bits)."""

    def arrays(self):
        return {}


@dataclass
class Classifier(Stage):
    """Integer class scores: dot(input, weights) + bias, int32 [K].

    Inputs are a packed binary value read as [in_t][ceil(in_c/32)] words, or int32 counts
    [F]. Binary weights are packed bits in the input's own layout, [K][in_t * ceil(in_c/32)]
    ([K][ceil(F/32)] on counts); int8 weights are [K][in_t][in_c] on binary input and [K][F]
    on counts.
    """

    binary_weights: bool = True
    binary_input: bool = True
    weight: np.ndarray = field(default=None)
    bias: np.ndarray = field(default=None)  # int32 [K]
    in_features: int = 0
    in_c: int = 0  # a binary input is read as [in_t][ceil(in_c/32)] words;
    in_t: int = 1  # int8 weights on it are stored [K][in_t][in_c]

    def arrays(self):
        w = self.weight if self.binary_weights else self.weight.astype(np.int8)
        return {"w": w, "bias": self.bias.astype(np.int32)}

    def macs(self):
        k = self.bias.shape[0]
        if self.binary_weights and self.binary_input:
            return k * self.in_features, 0
        return 0, k * self.in_features


@dataclass
class Program:
    """A lowered model: stages in order, input [C, T] int16, scores int32 [K]."""

    stages: list[Stage]
    in_channels: int
    length: int
    class_names: list[str]
    input_range: tuple[int, int]
    layer_kinds: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# ---------------------------------------------------------------------------------------
# Lowering a Sequential.


def flat_layout(shape: tuple[int, ...]) -> tuple[np.ndarray, int]:
    """For a packed binary value of `shape`, the bit index of each flat feature (PyTorch
    order: c * T + t for [C, T]) and the number of words of the buffer."""
    if len(shape) == 1:
        return np.arange(shape[0]), words(shape[0])
    c, t = shape
    cw = words(c)
    ci, ti = np.meshgrid(np.arange(c), np.arange(t), indexing="ij")
    return (ti * cw * WORD_BITS + ci).reshape(-1), t * cw


def place_bits(w: np.ndarray, layout: np.ndarray, n_words: int) -> np.ndarray:
    """Pack +-1 weights [O][F] into [O][n_words] words with feature f at bit layout[f]."""
    values = np.ones((w.shape[0], n_words * WORD_BITS), dtype=np.int8)
    values[:, layout] = w
    return pack_bits(values)


def _ints(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().round().astype(np.int64)


class _Lowerer:
    """Walks the layers, fusing conv/dense + [maxpool] + batchnorm_sign into one stage."""

    def __init__(self, model: tnn.Sequential):
        self.model = model
        self.layers = list(model.layers)
        self.values = model.values
        self.stages: list[Stage] = []
        self.i = 0

    def where(self, i: int) -> str:
        return tnn.describe(i, self.layers[i])

    def in_shape(self, i: int) -> tuple[int, ...]:
        return tuple(self.model.input_shape) if i == 0 else self.values[i - 1].shape

    def run(self) -> list[Stage]:
        while self.i < len(self.layers):
            layer = self.layers[self.i]
            handler = LOWER.get(type(layer))
            if handler is None:
                raise ModelError(f"{self.where(self.i)}: cannot be compiled in this position")
            handler(self, layer)
        return self.stages

    def take_pool_and_sign(self, conv_index: int, preact):
        """After a conv/dense at `conv_index`: optional maxpool on acc, then the required
        batchnorm_sign. Returns (pool_k, pool_s, last layer index, f), f the function of
        acc whose sign is the output."""
        j = conv_index + 1
        pool_k = pool_s = 1
        if j < len(self.layers) and isinstance(self.layers[j], tnn.MaxPool1d):
            pool_k, pool_s = self.layers[j].kernel_size, self.layers[j].stride
            j += 1
        if j >= len(self.layers) or not isinstance(self.layers[j], tnn.BatchNormSign):
            raise ModelError(
                f"{self.where(conv_index)}: must be followed by batchnorm_sign (optionally after "
                "maxpool1d); tinybnn compiles no float layers between binary ones"
            )
        bn = self.layers[j]

        def f(acc):
            return bn.eval_preact(preact(acc))

        return pool_k, pool_s, j, f

    def emit(self, stage: Stage, last: int) -> None:
        self.stages.append(stage)
        self.i = last + 1


def _lower_input_conv(lw: _Lowerer, layer: tnn.InputConv1d) -> None:
    i = lw.i
    if i != 0:
        raise ModelError(f"{lw.where(i)}: input_conv1d must be the first layer")
    wq, scale = layer.integer_weight()
    weight = _ints(wq).transpose(0, 2, 1)  # [O][k][C]
    offset, mult = _ints(layer.offset), _ints(layer.multiplier)
    lo, hi = layer.input_range
    if np.any(np.abs(offset) > 2**15 - 1) or np.any(mult < 1) or np.any(mult > 2**15 - 1):
        raise ModelError(
            f"{lw.where(i)}: input offsets must fit int16 and multipliers be in [1, 32767]"
        )
    xmax = np.maximum(np.abs(lo - offset), np.abs(hi - offset)) * mult  # max |x'| per channel
    bound = int((np.abs(weight) * xmax[None, None, :]).sum(axis=(1, 2)).max())
    if bound > INT32_MAX:
        raise ModelError(
            f"{lw.where(i)}: the int32 accumulator could overflow (bound {bound} > 2^31-1 for "
            f"input_range {layer.input_range}); narrow input_range or lower the multipliers"
        )
    pool_k, pool_s, last, f = lw.take_pool_and_sign(i, lambda acc: layer.to_preact(acc, scale))
    c_out = layer.out_channels
    lw.emit(
        InputConv(
            layers=list(range(i, last + 1)),
            in_shape=lw.in_shape(i),
            out_shape=lw.values[last].shape,
            out_kind="bin",
            kernel_size=layer.kernel_size,
            stride=layer.stride,
            pad=layer.pad,
            binary=layer.weights == "binary",
            weight=weight,
            offset=offset,
            multiplier=mult,
            lo=lo,
            hi=hi,
            pool_k=pool_k,
            pool_s=pool_s,
            acc_bound=bound,
            threshold=fold_threshold(f, c_out, -bound, bound),
        ),
        last,
    )


def _lower_bin_conv(lw: _Lowerer, layer: tnn.BinaryConv1d) -> None:
    i = lw.i
    weight = _ints(tnn.sign(layer.weight)).transpose(0, 2, 1)  # [O][k][C]
    k_bits = layer.in_channels * layer.kernel_size
    pool_k, pool_s, last, f = lw.take_pool_and_sign(i, layer.to_preact)
    lw.emit(
        BinConv(
            layers=list(range(i, last + 1)),
            in_shape=lw.in_shape(i),
            out_shape=lw.values[last].shape,
            out_kind="bin",
            kernel_size=layer.kernel_size,
            stride=layer.stride,
            pad=layer.pad,
            pad_value=layer.pad_value,
            weight=weight,
            pool_k=pool_k,
            pool_s=pool_s,
            threshold=fold_threshold(f, layer.out_channels, -k_bits, k_bits),
        ),
        last,
    )


def _lower_binary_linear(lw: _Lowerer, layer: tnn.BinaryLinear) -> None:
    i = lw.i
    in_shape = lw.values[i - 1].shape if i > 0 else None
    src_shape = _flat_source_shape(lw, i)
    w = _ints(tnn.sign(layer.weight))
    if layer.bias is not None:
        _emit_classifier(lw, i, binary_weights=True, weight=w, bias=_ints(layer.integer_bias()))
        return
    layout, n_words = flat_layout(src_shape)
    pool_k, pool_s, last, f = lw.take_pool_and_sign(i, layer.to_preact)
    if pool_k != 1:
        raise ModelError(f"{lw.where(i + 1)}: maxpool1d cannot follow a dense layer")
    lw.emit(
        BinDense(
            layers=list(range(i, last + 1)),
            in_shape=in_shape,
            out_shape=lw.values[last].shape,
            out_kind="bin",
            weight=place_bits(w, layout, n_words),
            in_features=layer.in_features,
            threshold=fold_threshold(f, layer.out_features, -layer.in_features, layer.in_features),
        ),
        last,
    )


def _lower_int8_linear(lw: _Lowerer, layer: tnn.Int8Linear) -> None:
    w = _ints(layer.integer_weight())
    _emit_classifier(lw, lw.i, binary_weights=False, weight=w, bias=_ints(layer.integer_bias()))


def _flat_source_shape(lw: _Lowerer, i: int) -> tuple[int, ...]:
    """The shape of the packed buffer behind a flat input: [C, T] through a flatten."""
    if i > 0 and isinstance(lw.layers[i - 1], tnn.Flatten):
        return lw.in_shape(i - 1)
    return lw.in_shape(i)


def _emit_classifier(
    lw: _Lowerer, i: int, binary_weights: bool, weight: np.ndarray, bias: np.ndarray
):
    v_in = lw.values[i - 1]
    binary_input = v_in.kind == "bin"
    k, n = weight.shape
    src = _flat_source_shape(lw, i)
    in_c, in_t = (src[0], src[1]) if len(src) == 2 else (src[0], 1)
    if binary_weights:  # in the input's bit layout (flat for counts)
        w = place_bits(weight, *flat_layout(src))
    elif binary_input:  # torch order c * T + t -> [K][t][c]
        w = weight.reshape(k, in_c, in_t).transpose(0, 2, 1).reshape(k, in_t * in_c)
    else:
        w = weight
    in_max = 1 if binary_input else lw.in_shape(i - 1)[1]  # |count| <= T
    bound = int((np.abs(weight).sum(1) * in_max + np.abs(bias)).max())
    if bound > INT32_MAX:
        raise ModelError(f"{lw.where(i)}: class scores could overflow int32 (bound {bound})")
    lw.emit(
        Classifier(
            layers=[i],
            in_shape=v_in.shape,
            out_shape=(k,),
            out_kind="scores",
            binary_weights=binary_weights,
            binary_input=binary_input,
            weight=w,
            bias=bias,
            in_features=n,
            in_c=in_c,
            in_t=in_t,
        ),
        i,
    )


def _lower_maxpool(lw: _Lowerer, layer: tnn.MaxPool1d) -> None:
    i = lw.i
    v_in = lw.values[i - 1] if i > 0 else None
    if v_in is None or v_in.kind != "bin":
        raise ModelError(
            f"{lw.where(i)}: maxpool1d on accumulators must sit between a conv and its batchnorm_sign"
        )
    lw.emit(
        MaxPoolBits(
            layers=[i],
            in_shape=v_in.shape,
            out_shape=lw.values[i].shape,
            out_kind="bin",
            kernel_size=layer.kernel_size,
            stride=layer.stride,
        ),
        i,
    )


def _lower_global_pool(lw: _Lowerer, layer: tnn.GlobalPool1d) -> None:
    i = lw.i
    v_in = lw.values[i - 1]
    c, t = v_in.shape
    if layer.mode == "max":
        stage = MaxPoolBits(
            layers=[i], in_shape=v_in.shape, out_shape=(c,), out_kind="bin", kernel_size=t, stride=t
        )
    else:
        stage = GlobalSum(layers=[i], in_shape=v_in.shape, out_shape=(c,), out_kind="count")
    lw.emit(stage, i)


def _lower_flatten(lw: _Lowerer, layer: tnn.Flatten) -> None:
    # No code: the packed [T][CW] buffer is the flat vector; dense weights follow its layout.
    nxt = lw.layers[lw.i + 1] if lw.i + 1 < len(lw.layers) else None
    if not isinstance(nxt, (tnn.BinaryLinear, tnn.Int8Linear)):
        raise ModelError(f"{lw.where(lw.i)}: flatten must be followed by a dense layer")
    lw.i += 1


def _lower_stray_sign(lw: _Lowerer, layer: tnn.BatchNormSign) -> None:
    raise ModelError(f"{lw.where(lw.i)}: batchnorm_sign must follow a conv or dense layer")


LOWER = {
    tnn.InputConv1d: _lower_input_conv,
    tnn.BinaryConv1d: _lower_bin_conv,
    tnn.BinaryLinear: _lower_binary_linear,
    tnn.Int8Linear: _lower_int8_linear,
    tnn.MaxPool1d: _lower_maxpool,
    tnn.GlobalPool1d: _lower_global_pool,
    tnn.Flatten: _lower_flatten,
    tnn.BatchNormSign: _lower_stray_sign,
}


def lower(model: tnn.Sequential) -> Program:
    """Lower a model (any mode; it is put in eval mode) to an integer program."""
    if not isinstance(model, tnn.Sequential):
        raise ModelError(f"can only compile a tinybnn.nn.Sequential, not {type(model).__name__}")
    tnn.infer(list(model.layers), model.input_shape)  # re-check: layers may have been swapped
    if not isinstance(model.layers[0], tnn.InputConv1d):
        raise ModelError(
            f"{tnn.describe(0, model.layers[0])}: the first layer must be input_conv1d"
        )
    for name, p in model.state_dict().items():
        if p.is_floating_point() and not torch.isfinite(p).all():
            raise ModelError(f"parameter {name} holds NaN or infinity")
    model.eval()
    stages = _Lowerer(model).run()
    first = model.layers[0]
    return Program(
        stages=stages,
        in_channels=model.input_shape[0],
        length=model.input_shape[1],
        class_names=list(model.class_names),
        input_range=first.input_range,
        layer_kinds=[layer.kind for layer in model.layers],
    )
