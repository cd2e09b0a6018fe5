"""Dense layers: a hidden layer (`BinaryLinear` or `Int8Linear` without a bias, before a
batchnorm_sign) and the classifier (`BinaryLinear` or `Int8Linear` with a bias), over binary
activations or counts.

One home for the three ops: the training layers, their lowering to the `BinDense`,
`Int8Dense` and `Classifier` stages, the numpy reference, and the C kernels
`tb_bdense_*_b32` (reference, `vst` subset tables, `lanes`), `tb_i8dense_*` (reference loops
over bits and counts) and `tb_classifier_*` (one reference loop per weight and input kind,
`lanes` for binary on binary).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..compiler.contract import (
    WORD_BITS,
    flat_layout,
    fold_threshold,
    place_bits,
    popcount,
    unpack_bits,
    words,
)
from ..compiler.program import Stage
from ..compiler.variants import Variant
from ..errors import ModelError
from ..quantizers import sign
from . import sliced
from .base import (
    Layer,
    RoundSte,
    Value,
    binarize_weight,
    channel_view,
    expect,
    quantize_int8,
    register,
    scaling_factor,
)
from .spec import CHANNELS, INT32_MAX, INT32_MIN, Bool, SpecError, ints


class _Dense(Layer):
    """What both dense kinds share: shapes, the classifier's integer bias, the twin."""

    def config(self) -> dict:
        return dict(
            in_features=self.in_features,
            out_features=self.out_features,
            bias=self.bias is not None,
        )

    @property
    def note(self) -> str:
        return "classifier" if self.bias is not None else ""

    def integer_bias(self) -> torch.Tensor:
        if self.bias is None:
            return torch.zeros(self.out_features)
        return RoundSte.apply(self.bias)

    def twin(self) -> nn.Module:
        return nn.Linear(self.in_features, self.out_features, bias=self.bias is not None)


@register
class BinaryLinear(_Dense):
    """Dense layer with {-1, +1} weights: acc = sum(x * sign(w)) over binary or count inputs.

    As a hidden layer it is followed by `BatchNormSign` (optionally `scaling=True`). As the
    classifier (`bias=True`), it returns integer scores acc + round(b): the bias is learned in
    accumulator units and rounded (straight-through), so scores are integers on the device.
    """

    kind = "binary_linear"
    schema = dict(in_features=CHANNELS, out_features=CHANNELS, bias=Bool(), scaling=Bool())

    @staticmethod
    def weight_bits(config: dict) -> int:
        return config["out_features"] * config["in_features"]

    def __init__(
        self, in_features: int, out_features: int, bias: bool = False, scaling: bool = False
    ):
        super().__init__()
        if bias and scaling:
            raise SpecError(self.kind, "a classifier (bias=True) cannot use scaling")
        self.in_features, self.out_features = in_features, out_features
        self.scaling = scaling
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.uniform_(self.weight, -1, 1)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    def config(self) -> dict:
        return dict(super().config(), scaling=self.scaling)

    @property
    def binary_weights(self) -> bool:
        return True

    def infer(self, v: Value, where: str) -> Value:
        kinds = ("bin", "count") if self.bias is not None else ("bin",)
        expect(
            v, kinds, 1, where, "flat binary activations" + (" or counts" if len(kinds) > 1 else "")
        )
        if v.shape[0] != self.in_features:
            raise ModelError(f"{where}: in_features={self.in_features}, but the input is {v}")
        return Value("scores" if self.bias is not None else "acc", (self.out_features,))

    def scale(self) -> torch.Tensor:
        return scaling_factor(self.weight) if self.scaling else torch.ones_like(self.weight[:, 0])

    def to_preact(self, acc: torch.Tensor) -> torch.Tensor:
        """alpha_o * acc with scaling (channel dim 1: [N, O], or [1, O, R] in
        `fold_threshold`), else acc."""
        return acc * channel_view(self.scale(), acc) if self.scaling else acc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self._eval_dtype()
        acc = x.to(dtype) @ binarize_weight(self.weight).to(dtype).T
        if self.bias is not None:
            return acc + self.integer_bias().to(dtype)
        return self.to_preact(acc)

    def lower(self, lw) -> None:
        i = lw.i
        w = ints(sign(self.weight), f"{lw.where(i)}: weights", -1, 1)
        if self.bias is not None:
            _lower_classifier(lw, i, binary_weights=True, weight=w, bias=self.integer_bias())
            return
        layout, n_words = flat_layout(lw.flat_source_shape(i))
        pool_k, _, last, f = lw.take_pool_and_sign(i, self.to_preact)
        if pool_k != 1:
            raise ModelError(f"{lw.where(i + 1)}: maxpool1d cannot follow a dense layer")
        lw.emit(
            BinDense(
                layers=list(range(i, last + 1)),
                in_shape=lw.values[i - 1].shape if i > 0 else None,
                out_shape=lw.values[last].shape,
                out_kind="bin",
                weight=place_bits(w, layout, n_words),
                in_features=self.in_features,
                threshold=fold_threshold(
                    f, self.out_features, -self.in_features, self.in_features, lw.where(i)
                ),
            ),
            last,
        )


@register
class Int8Linear(_Dense):
    """Dense layer with int8 weights over binary activations or counts: acc = sum(x * q).

    As the classifier (`bias=True`): scores = acc + round(b), integers on the device, with
    q = clamp(round(w / delta), -127, 127) and one delta for the whole matrix (a per-class
    scale would change the argmax). As a hidden layer (`bias=False`, as `BinaryLinear`): the
    pre-activation delta_o * acc with one delta_o = max |w_o| / 127 per output, followed by
    a batchnorm_sign, which folds into one integer threshold per output.
    """

    kind = "int8_linear"
    schema = dict(in_features=CHANNELS, out_features=CHANNELS, bias=Bool())

    @staticmethod
    def weight_bits(config: dict) -> int:
        return 8 * config["out_features"] * config["in_features"]

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        nn.init.uniform_(self.weight, -1, 1)
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None

    @property
    def note(self) -> str:
        return "classifier" if self.bias is not None else "int8"

    def infer(self, v: Value, where: str) -> Value:
        expect(v, ("bin", "count"), 1, where, "flat binary activations or counts")
        if v.shape[0] != self.in_features:
            raise ModelError(f"{where}: in_features={self.in_features}, but the input is {v}")
        return Value("scores" if self.bias is not None else "acc", (self.out_features,))

    def quantized(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(q, delta): int8 codes [O, F] (straight-through) and the scale: one for the
        classifier, one per output for a hidden layer."""
        return quantize_int8(self.weight, per_channel=self.bias is None)

    def integer_weight(self) -> torch.Tensor:
        return self.quantized()[0]

    def to_preact(self, acc: torch.Tensor) -> torch.Tensor:
        """Hidden: delta_o * acc (channel dim 1: [N, O], or [1, O, R] in `fold_threshold`)."""
        return acc * channel_view(self.quantized()[1], acc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = self._eval_dtype()
        acc = x.to(dtype) @ self.integer_weight().to(dtype).T
        if self.bias is None:
            return self.to_preact(acc)
        return acc + self.integer_bias().to(dtype)

    def lower(self, lw) -> None:
        i = lw.i
        w = ints(self.integer_weight(), f"{lw.where(i)}: weights", -127, 127)
        if self.bias is not None:
            _lower_classifier(lw, i, binary_weights=False, weight=w, bias=self.integer_bias())
            return
        v_in = lw.values[i - 1]
        src = lw.flat_source_shape(i)
        in_c, in_t = (src[0], src[1]) if len(src) == 2 else (src[0], 1)
        in_max = 1 if v_in.kind == "bin" else lw.stages[-1].bound  # |count| of the pooling
        bound = 127 * self.in_features * in_max  # Python integers: nothing wraps
        if bound > INT32_MAX:
            raise ModelError(f"{lw.where(i)}: its accumulators could reach +-{bound}, beyond int32")
        pool_k, _, last, f = lw.take_pool_and_sign(i, self.to_preact)
        if pool_k != 1:
            raise ModelError(f"{lw.where(i + 1)}: maxpool1d cannot follow a dense layer")
        if v_in.kind == "bin":  # torch order c * T + t -> [O][t][c], as the buffer holds it
            k = self.out_features
            w = w.reshape(k, in_c, in_t).transpose(0, 2, 1).reshape(k, in_t * in_c)
        lw.emit(
            Int8Dense(
                layers=list(range(i, last + 1)),
                in_shape=v_in.shape,
                out_shape=lw.values[last].shape,
                out_kind="bin",
                binary_input=v_in.kind == "bin",
                weight=w,
                in_c=in_c,
                in_t=in_t,
                threshold=fold_threshold(f, self.out_features, -bound, bound, lw.where(i)),
            ),
            last,
        )


def _lower_classifier(lw, i: int, binary_weights: bool, weight: np.ndarray, bias: torch.Tensor):
    """The classifier's stage, once its integer scores are known to fit int32: the bias
    and the bound on |scores| are checked as exact integers."""
    bias = ints(bias, f"{lw.where(i)}: bias", INT32_MIN, INT32_MAX)
    v_in = lw.values[i - 1]
    binary_input = v_in.kind == "bin"
    k, n = weight.shape
    src = lw.flat_source_shape(i)
    in_c, in_t = (src[0], src[1]) if len(src) == 2 else (src[0], 1)
    if binary_weights:  # in the input's bit layout (flat for counts)
        w = place_bits(weight, *flat_layout(src))
    elif binary_input:  # torch order c * T + t -> [K][t][c]
        w = weight.reshape(k, in_c, in_t).transpose(0, 2, 1).reshape(k, in_t * in_c)
    else:
        w = weight
    in_max = 1 if binary_input else lw.stages[-1].bound  # |count| <= T (T * 128 of codes)
    bound = max(  # Python integers: nothing can wrap
        s * in_max + abs(b)
        for s, b in zip(np.abs(weight).sum(1).tolist(), bias.tolist(), strict=True)
    )
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


@dataclass
class BinDense(Stage):
    """packed vector -> binary dense -> sign -> packed vector.

    The input vector is a packed buffer of `in_words` words whose bit layout follows its
    source (`flat_layout`): the weights sit at the bit of each flat input feature.
    """

    kernel = "bdense"
    ctype = "tb_bdense_t"
    # Streaming: runs once per decision, on the window's global pooling (a dense layer that
    # reads a flattened window is refused by `streaming.plan`: it has no pooling before it).
    stream_role = "decision"

    weight: np.ndarray = field(default=None)  # uint32 [O][in_words], in the buffer's layout
    in_features: int = 0
    threshold: object = field(default=None)  # contract.Threshold

    def arrays(self):
        return {"w": self.weight, **self.threshold.arrays()}

    def macs(self):
        return self.weight.shape[0] * self.in_features, 0

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: packed vector (any shape, read flat) -> packed [OW]."""
        acc = self.in_features - 2 * popcount(x.reshape(-1)[None] ^ self.weight).sum(1)
        return self.threshold.packed(acc)

    def comment(self, index: int) -> str:
        return f"L{index} bdense: {self.in_features}b -> {self.weight.shape[0]}b"


@dataclass
class Int8Dense(Stage):
    """packed vector or counts -> dense with int8 weights -> sign -> packed vector.

    A binary input is read as [in_t][ceil(in_c/32)] words (a flatten's [C, T] buffer, or a
    vector: in_t = 1) and the weights are [O][in_t][in_c]; counts are int32 [F] and the
    weights [O][F]. |acc| <= 127 * F (bits) or 127 * F * T (counts of T steps)."""

    kernel = "i8dense"
    ctype = "tb_i8dense_t"
    stream_role = "decision"  # as BinDense

    binary_input: bool = True
    weight: np.ndarray = field(default=None)  # int8 codes [O][F]
    in_c: int = 0
    in_t: int = 1
    threshold: object = field(default=None)  # contract.Threshold

    @property
    def in_kind(self) -> str:
        return "bin" if self.binary_input else "count"

    def arrays(self):
        return {"w": self.weight.astype(np.int8), **self.threshold.arrays()}

    def macs(self):
        return 0, self.weight.size

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: packed [in_t * ceil(in_c/32)] or int32 counts [F] -> packed [OW]."""
        if self.binary_input:
            packed = x.reshape(self.in_t, words(self.in_c))
            x = unpack_bits(packed, self.in_c).reshape(-1)  # [t][c]
        acc = (self.weight.astype(np.int64) * np.asarray(x, np.int64)[None]).sum(1)
        return self.threshold.packed(acc)

    def comment(self, index: int) -> str:
        what = "b" if self.binary_input else " counts"
        return (
            f"L{index} i8dense: {self.weight.shape[1]}{what} -> {self.weight.shape[0]}b, "
            "int8 weights"
        )


def _i8dense_fields(cs, st: Int8Dense) -> int:
    o, n = st.weight.shape
    cs.fields = dict(in_features=n, in_c=st.in_c, in_t=st.in_t, c_out=o)
    cs.fields["w"] = cs.array("w", st.arrays()["w"], f"int8 [{o}][{n}]")
    cs.fields["th"] = cs.threshold(st.threshold)
    return 0


Int8Dense.variants = (
    Variant("ref", "tb_i8dense_b32", _i8dense_fields, lambda st, c, o: st.binary_input),
    Variant("ref", "tb_i8dense_s32", _i8dense_fields, lambda st, c, o: not st.binary_input),
)


@dataclass
class Classifier(Stage):
    """Integer class scores: dot(input, weights) + bias, int32 [K].

    Inputs are a packed binary value read as [in_t][ceil(in_c/32)] words, or int32 counts
    [F]. Binary weights are packed bits in the input's own layout, [K][in_t * ceil(in_c/32)]
    ([K][ceil(F/32)] on counts); int8 weights are [K][in_t][in_c] on binary input and [K][F]
    on counts.
    """

    kernel = "classifier"
    ctype = "tb_classifier_t"
    stream_role = "decision"  # as BinDense

    binary_weights: bool = True
    binary_input: bool = True
    weight: np.ndarray = field(default=None)
    bias: np.ndarray = field(default=None)  # int32 [K]
    in_features: int = 0
    in_c: int = 0  # a binary input is read as [in_t][ceil(in_c/32)] words;
    in_t: int = 1  # int8 weights on it are stored [K][in_t][in_c]

    @property
    def in_kind(self) -> str:
        return "bin" if self.binary_input else "count"

    def arrays(self):
        w = self.weight if self.binary_weights else self.weight.astype(np.int8)
        return {"w": w, "bias": self.bias.astype(np.int32)}

    def macs(self):
        k = self.bias.shape[0]
        if self.binary_weights and self.binary_input:
            return k * self.in_features, 0
        return 0, k * self.in_features

    def run(self, x: np.ndarray) -> np.ndarray:
        if self.binary_input and self.binary_weights:
            acc = self.in_features - 2 * popcount(x.reshape(-1)[None] ^ self.weight).sum(1)
        elif self.binary_input:
            packed = x.reshape(self.in_t, words(self.in_c))
            values = unpack_bits(packed, self.in_c).reshape(-1)  # [t][c]
            acc = (self.weight.astype(np.int64) * values[None]).sum(1)
        else:
            w = unpack_bits(self.weight, self.in_features) if self.binary_weights else self.weight
            acc = (w.astype(np.int64) * x[None]).sum(1)
        return acc + self.bias

    def comment(self, index: int) -> str:
        return (
            f"L{index} classifier: {self.in_features} "
            f"{'bits' if self.binary_input else 'counts'} -> {self.bias.shape[0]} scores, "
            f"{'binary' if self.binary_weights else 'int8'} weights"
        )


# ---------------------------------------------------------------------------------------
# The C: descriptor fields per variant (tb_bdense_t, tb_classifier_t).


def _bdense_fields(cs, st: BinDense) -> int:
    o, n_words = st.weight.shape
    cs.fields = dict(in_words=n_words, in_features=st.in_features, c_out=o)
    cs.fields["w"] = cs.array("w", st.weight, f"[{o}][{n_words}]")
    cs.fields["th"] = cs.threshold(st.threshold)
    return 0


def _bdense_vst_fields(cs, st: BinDense) -> int:
    """Subset tables over every bit of the buffer, as a row of n_words * 32 channels."""
    o, n_words = st.weight.shape
    cs.fields = dict(in_words=n_words, in_features=st.in_features, c_out=o)
    sliced.threshold_fields(cs, st.threshold, st.in_features, o)
    weight = unpack_bits(st.weight, n_words * WORD_BITS)[:, None, :]  # [O][1][bits]
    tab = sliced.subset_tables(sliced.lanes(weight))
    cs.fields["tab"] = cs.array(
        "tab",
        tab,
        f"[{words(o)}][{n_words}][{tab.shape[2] // n_words}][8][2]: subset sums (l, h) of 3 inputs",
    )
    return 0


BinDense.variants = (
    Variant(
        "vst",
        "tb_bdense_vst_b32",
        _bdense_vst_fields,
        lambda st, core, optimize: optimize == "speed" and sliced.slices_fit(st.in_features),
    ),
    Variant("lanes", "tb_bdense_lanes_b32", _bdense_fields),  # byte-lane popcount
    Variant("ref", "tb_bdense_b32", _bdense_fields),
)


def _classifier_fields(cs, st: Classifier) -> int:
    w = cs.array("w", st.arrays()["w"], "binary" if st.binary_weights else "int8")
    cs.fields = dict(
        num_classes=st.bias.shape[0],
        in_features=st.in_features,
        in_c=st.in_c,
        in_t=st.in_t,
    )
    cs.fields["wb" if st.binary_weights else "wq"] = w
    cs.fields["bias"] = cs.array("bias", st.bias.astype(np.int32))
    return 0


def _kinds(binary_weights: bool, binary_input: bool):
    """serves: a classifier with these weight and input kinds."""
    return lambda st, core, optimize: (
        (st.binary_weights, st.binary_input)
        == (
            binary_weights,
            binary_input,
        )
    )


Classifier.variants = (
    Variant("lanes", "tb_classifier_lanes_b32", _classifier_fields, _kinds(True, True)),
    Variant("ref", "tb_classifier_b32", _classifier_fields, _kinds(True, True)),
    Variant("ref", "tb_classifier_q8_b32", _classifier_fields, _kinds(False, True)),
    Variant("ref", "tb_classifier_q8_s32", _classifier_fields, _kinds(False, False)),
    Variant("ref", "tb_classifier_b_s32", _classifier_fields, _kinds(True, False)),
)
