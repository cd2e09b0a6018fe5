"""Real-valued shortcuts (Bi-Real Net, ReActNet) on integers: `BinaryResidual1d`.

A binary convolution without scaling produces sums of +-1 products, integers in one unit
shared by every such convolution. A residual block keeps them: with `a` the sums before it,

    out = a + bconv(sign(bn(a)))

and a max-pool after it (a separate `maxpool1d` layer) pools `out`. The add is on integers,
so it is exact in PyTorch (float32 up to 2^24) and on the device; the block's
batchnorm_sign folds into one integer threshold per channel on `a`, as every sign does.
The sums stay within an exact bound (that of the sums before the block plus
kernel_size * channels), proved in Python and held in int16 buffers (`TB_SUM_MAX`).

One home for the op: the training layer, its lowering to the `Residual` stage (with the
max-pool and the batchnorm_sign after it, when they follow), the numpy reference and the C
kernels `tb_bresidual1d_s16` (the reference loop) and `tb_bresidual1d_lanes_s16` (byte-lane
popcounts, on the fast targets). The sums it starts from come from a binary convolution that
keeps them (`binary_conv.BinConvSum`) or from the block before.

Non-goals: shortcuts where the channel count or the length changes (a projection), and
around the first layer (its accumulator is in another unit).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from torch import nn

from ..compiler.contract import Threshold, fold_threshold, pack_bits, words
from ..compiler.variants import Variant
from ..errors import ModelError
from .base import Layer, Value, check_sum_bound, register
from .batchnorm_sign import BatchNormSign
from .binary_conv import BinaryConv1d, BinConvWindow
from .spec import CHANNELS, STEPS, Choice, SpecError


@register
class BinaryResidual1d(Layer):
    """A binary convolution with an integer shortcut: a -> a + bconv(sign(bn(a))).

    Takes and gives sums [channels, T] (`sum` values): the output of a `BinaryConv1d`
    without scaling (optionally max-pooled), or of another block. The convolution is
    channels -> channels, kernel_size odd, stride 1, 'same' padding with `pad_value`; its
    sign is a `BatchNormSign` of the other arguments (see there).
    """

    kind = "binary_residual1d"
    schema = dict(
        channels=CHANNELS,
        kernel_size=STEPS,
        pad_value=Choice((1, -1)),
        **{k: v for k, v in BatchNormSign.schema.items() if k != "num_features"},
    )
    tensors = {f"sign.{k}": v for k, v in BatchNormSign.tensors.items()}

    @staticmethod
    def weight_bits(config: dict) -> int:
        return config["channels"] ** 2 * config["kernel_size"]

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        pad_value: int = 1,
        quantizer: str = "ste",
        learnable_threshold: bool = False,
        momentum: float = 0.1,
        eps: float = 1e-5,
        rprelu: bool = False,
    ):
        if kernel_size % 2 == 0:
            raise SpecError(
                self.kind, f"kernel_size must be odd ('same' padding), not {kernel_size}"
            )
        super().__init__()
        self.channels, self.kernel_size, self.pad_value = channels, kernel_size, pad_value
        self.sign = BatchNormSign(channels, quantizer, learnable_threshold, momentum, eps, rprelu)
        self.conv = BinaryConv1d(channels, channels, kernel_size, 1, "same", pad_value)

    def config(self) -> dict:
        bn = self.sign.config()
        del bn["num_features"]
        return dict(
            channels=self.channels, kernel_size=self.kernel_size, pad_value=self.pad_value, **bn
        )

    @property
    def note(self) -> str:
        return f"k={self.kernel_size}, shortcut"

    def infer(self, v: Value, where: str) -> Value:
        if v.kind != "sum" or len(v.shape) != 2:
            raise ModelError(
                f"{where}: takes sums of +-1 products (a binary_conv1d without scaling, or "
                f"another binary_residual1d), not {v}"
            )
        if v.shape[0] != self.channels:
            raise ModelError(f"{where}: channels={self.channels}, but the input is {v}")
        return v  # 'same' padding, stride 1: the shape stays

    def forward(self, a):
        return a + self.conv(self.sign(a))

    def twin(self) -> nn.Module:
        return FloatResidual(nn.Sequential(self.sign.twin(), self.conv.twin()))

    def lower(self, lw) -> None:
        i = lw.i
        before = lw.stages[-1] if lw.stages else None
        if before is None or before.out_kind != "sum":
            raise ModelError(f"{lw.where(i)}: must follow the sums of a binary convolution")
        bound_in = before.bound
        bound = check_sum_bound(bound_in + self.kernel_size * self.channels, lw.where(i))
        pool_k, pool_s, last, f = lw.take_pool_and_sign(i, lambda a: a, sign_optional=True)
        where = lw.where(i)
        lw.emit(
            Residual(
                layers=list(range(i, last + 1)),
                in_shape=lw.in_shape(i),
                out_shape=lw.values[last].shape,
                out_kind="sum" if f is None else "bin",
                kernel_size=self.kernel_size,
                pad=self.kernel_size // 2,
                pad_value=self.pad_value,
                weight=self.conv.lowered_weight(where),
                pool_k=pool_k,
                pool_s=pool_s,
                threshold=None
                if f is None
                else fold_threshold(f, self.channels, -bound, bound, where),
                in_threshold=fold_threshold(
                    self.sign.eval_preact, self.channels, -bound_in, bound_in, where
                ),
                bound=bound,
            ),
            last,
        )


class FloatResidual(nn.Module):
    """The twin of a residual block: a + body(a), in float."""

    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, a):
        return a + self.body(a)


@dataclass
class Residual(BinConvWindow):
    """int16 sums [T][C] -> sign -> binary conv, + the sums -> [pool] -> [sign] -> out."""

    kernel = "bresidual1d"
    ctype = "tb_bresidual1d_t"

    in_threshold: Threshold = field(default=None)
    bound: int = 0  # |output sums| <= bound (before the sign, when there is one)

    stream_role = None  # its sums are not streamed

    def stream_refusal(self) -> str | None:
        return "a shortcut's integer sums do not stream (train without --shortcuts)"

    @property
    def in_kind(self) -> str:
        return "sum"

    def arrays(self):
        a = self.in_threshold.arrays()
        out = {"w": pack_bits(self.weight), "in_th": a["th"], "in_neg": a["neg"]}
        if self.threshold is not None:
            out.update(self.threshold.arrays())
        return out

    def run(self, x: np.ndarray) -> np.ndarray:
        """x: int [T][C] -> int [T_out][C] sums, or packed bits [T_out][CW]."""
        x = np.asarray(x, dtype=np.int64)
        out = self.pool(x + self.accumulate(self.in_threshold.packed(x)))
        return out if self.threshold is None else self.threshold.packed(out)

    def comment(self, index: int) -> str:
        c, t = self.in_shape
        out = f"{self.out_shape[1]}x{c}" + ("b" if self.out_kind == "bin" else " int16")
        return (
            f"L{index} bresidual1d: {t}x{c} int16 -> sign, bconv1d k={self.kernel_size} "
            f"pad={self.pad}x({self.pad_value:+d}), + shortcut (|sum| <= {self.bound})"
            f"{self.pool_note()} -> {out}"
        )


def _residual_fields(cs, st: Residual) -> int:
    """The convolution's record, the input's thresholds, the output's (when bits leave)."""
    cs.fields = st.binary_input_fields(cs)
    o, k, c = st.weight.shape
    conv = dict(cs.fields)
    conv["w"] = cs.array("w", st.arrays()["w"], f"[{o}][{k}][{words(c)}]")
    arrays = st.in_threshold.arrays()
    in_th = {
        "th16" if st.in_threshold.ctype == "int16" else "th32": cs.array(
            "in_th", arrays["th"], "thresholds of the input sums"
        ),
        "neg": cs.array("in_neg", arrays["neg"], "1 = the input's sign is -1 above th"),
    }
    cs.fields = dict(conv=conv, in_th=in_th, out_bits=int(st.out_kind == "bin"))
    if st.threshold is not None:
        cs.fields["th"] = cs.threshold(st.threshold)
    cs.require("TB_SUM_MAX", st.bound)
    return 4 * st.in_shape[1] * words(c)  # scratch: the signs of the input


Residual.variants = (
    Variant("lanes", "tb_bresidual1d_lanes_s16", _residual_fields),
    Variant("ref", "tb_bresidual1d_s16", _residual_fields),
)
