"""What both convolution ops share: the stage fields of a window walk with max-pooling on
the accumulator, the descriptor fields that walk needs, and its reference (the pool and the
threshold). The C side is `tb_conv1d_walk` in tinybnn_kernels.h."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..compiler.contract import Threshold, pack_bits
from ..compiler.program import Stage


@dataclass
class ConvStage(Stage):
    """A convolution, an optional max-pool of its accumulator, and the sign."""

    kernel_size: int = 0
    stride: int = 1
    pad: int = 0
    pool_k: int = 1
    pool_s: int = 1
    threshold: Threshold = field(default=None)

    def conv_length(self) -> int:
        return (self.in_shape[1] + 2 * self.pad - self.kernel_size) // self.stride + 1

    @property
    def span(self) -> int:
        """Input steps one pooled output reads."""
        return (self.pool_k - 1) * self.stride + self.kernel_size

    # Streaming: a column stage. It keeps the last `span` input columns and gives one output
    # column every `stride * pool_s` inputs: its windowed self on exactly those columns.
    stream_role = "column"

    def stream_refusal(self) -> str | None:
        if self.pad:
            return (
                f"pads {self.pad} steps at each end of its window, which a stream has not "
                "(train it with padding='valid': tinybnn train --streaming)"
            )
        return None

    @property
    def stream_history(self) -> int:
        return self.span

    @property
    def stream_every(self) -> int:
        return self.stride * self.pool_s

    def receptive(self) -> ConvStage:
        """This stage on `span` input columns: one output column (a streaming step)."""
        return replace(
            self, in_shape=(self.in_shape[0], self.span), out_shape=(self.out_shape[0], 1)
        )

    def stream_column(self, history: np.ndarray) -> np.ndarray:
        """Reference of a streaming step: the last `span` input columns -> one output column."""
        return self.receptive().run(history)[0]

    def conv_fields(self) -> dict:
        """The descriptor fields of the window walk: shapes, stride, padding, pooling."""
        return dict(
            c_in=self.in_shape[0],
            t_in=self.in_shape[1],
            c_out=self.weight.shape[0],
            t_out=self.out_shape[1],
            kernel_size=self.kernel_size,
            stride=self.stride,
            pad=self.pad,
            pool_k=self.pool_k,
            pool_s=self.pool_s,
        )

    def binary_input_fields(self, cs) -> dict:
        """The window walk and the packed pad word of a stage whose input is +-1 bits
        padded with `pad_value` (the binary and the int8 hidden convolutions)."""
        pad = pack_bits(np.full(self.in_shape[0], self.pad_value))
        return dict(
            **self.conv_fields(), pad_word=cs.array("pad", pad, f"pad value {self.pad_value:+d}")
        )

    def mac4_word_fields(self, cs) -> None:
        """`wm` and `bias` of the kernels that sum s * w four output channels at a time in
        32-bit words (the `xm` variants, `tb_mac4_signs`): s = -1 where the output is -1 above
        the threshold, the weights [O][k][C] as [blocks][k * C][4] words of s * w (blocks past
        O are zero) and each sum's start, -s * th."""
        o, k, c = self.weight.shape
        t = self.threshold
        s = np.where(t.neg.astype(bool), -1, 1).astype(np.int64)  # [O]
        blocks = (o + 3) // 4
        w = np.zeros((blocks * 4, k * c), np.int64)
        w[:o] = self.weight.reshape(o, k * c).astype(np.int64) * s[:, None]
        wm = (w.reshape(blocks, 4, k * c).transpose(0, 2, 1) % 2**32).astype(np.uint32)
        bias = np.zeros(blocks * 4, np.int64)
        bias[:o] = -s * t.th.astype(np.int64) % 2**32
        cs.fields["wm"] = cs.array("wm", wm, f"[{blocks}][{k * c}][4]: s * w as words")
        cs.fields["bias"] = cs.array("bias", bias.astype(np.uint32), "-s * th")

    def pool_note(self) -> str:
        return (
            f", max-pool {self.pool_k}/{self.pool_s}" if self.pool_k > 1 or self.pool_s > 1 else ""
        )

    def pool(self, acc: np.ndarray) -> np.ndarray:
        """Reference: max-pool accumulators [T][C] over time (the pre-activation's scale is
        > 0, so this is the max of the pre-activation too)."""
        t_out = (acc.shape[0] - self.pool_k) // self.pool_s + 1
        return np.stack(
            [acc[j * self.pool_s : j * self.pool_s + self.pool_k].max(0) for j in range(t_out)]
        )

    def sign(self, acc: np.ndarray) -> np.ndarray:
        """Reference: `pool`, then threshold into packed bits [T_out][OW]."""
        return self.threshold.packed(self.pool(acc))
