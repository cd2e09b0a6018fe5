"""The arithmetic contract: the bit encoding, the packing order and the integer thresholds
that the numpy reference (`tinybnn.compiler.reference`) and the C kernels
(`templates/c/tinybnn_kernels.h`) share; docs/lowering.md is the same contract in prose.

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

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import ModelError

WORD_BITS = 32
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


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


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits of each uint32 word, as int64."""
    return np.bitwise_count(np.asarray(x, dtype=np.uint32)).astype(np.int64)


def int_ctype(lo: int, hi: int, where: str = "thresholds") -> str:
    """The smallest C integer type (int16 or int32) that holds [lo, hi] (exact ints)."""
    if -(2**15) <= lo and hi < 2**15:
        return "int16"
    if INT32_MIN <= lo and hi <= INT32_MAX:
        return "int32"
    raise ModelError(f"{where}: thresholds in [{lo}, {hi}] do not fit int32")


@dataclass
class Threshold:
    """Per channel: output bit = (acc > th) if neg else (acc < th)."""

    th: np.ndarray  # int64 [C]
    neg: np.ndarray  # bool [C]
    ctype: str  # C type of th: "int16" or "int32"

    def bits(self, acc: np.ndarray) -> np.ndarray:
        """Output bits (1 = -1) for accumulators `acc` [..., C]."""
        return np.where(self.neg, acc > self.th, acc < self.th).astype(np.uint8)

    def packed(self, acc: np.ndarray) -> np.ndarray:
        """Output bits of accumulators `acc` [..., C], packed like activations."""
        return pack_bits(np.where(self.bits(acc) == 1, -1, 1))

    def arrays(self) -> dict[str, np.ndarray]:
        """As the C stores them: th in its C type, the directions packed like activations."""
        return {
            "th": self.th.astype(np.int16 if self.ctype == "int16" else np.int32),
            "neg": pack_bits(np.where(self.neg, -1, 1)),
        }


def fold_threshold(f, c: int, lo: int, hi: int, where: str = "thresholds") -> Threshold:
    """The integer thresholds for sign(f(acc)) over integer acc in [lo, hi] (within int32).

    f maps a float64 tensor [1, C, R] of accumulators to the eval-mode pre-activation whose
    sign (with sign(0) = +1) is the output; it must be monotone in acc per channel, which
    every tinybnn chain is (products with positive scales, BatchNorm, shifts). A refusal is
    a `ModelError` that starts with `where` (the layer).
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
        raise ModelError(f"{where}: a BatchNorm or scale gives NaN or infinity")
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
    if hi + 1 > INT32_MAX:  # "always -1" as acc > lo - 1 instead of acc < hi + 1
        past = th > hi
        th, neg = np.where(past, lo - 1, th), neg | past
    return Threshold(
        th=th.astype(np.int64), neg=neg, ctype=int_ctype(int(th.min()), int(th.max()), where)
    )


def packed_words(shape: tuple[int, ...]) -> int:
    """Words of a packed binary value: [T][ceil(C/32)] for [C, T], ceil(F/32) for flat [F]."""
    if len(shape) == 2:
        return shape[1] * words(shape[0])
    return words(shape[0])


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
