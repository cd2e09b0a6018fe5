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

import math
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
    widest: str  # the C type any weights could need: that of [lo - 1, hi + 1] of the sums

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
        th=th.astype(np.int64),
        neg=neg,
        ctype=int_ctype(int(th.min()), int(th.max()), where),
        widest=int_ctype(max(lo - 1, INT32_MIN), min(hi + 1, INT32_MAX), where),
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


# ---------------------------------------------------------------------------------------
# Requantisation: an integer accumulator to an int8 activation code (docs/lowering.md,
# "int8 activations between layers").
#
#     q = clamp(floor((acc * mult + bias) / 2^shift), lo, hi)        on exact integers
#
# per channel, with |mult|, |bias| <= 2^31 - 1 and 0 <= shift <= TB_RQ_MAX_SHIFT. The bias
# holds the BatchNorm offset and the rounding (+1/2), so the rounding is half up: one
# rounding, as CMSIS-NN's 64-bit arm_nn_requantize, not TFLite's two. The C computes it in
# 32 bits: acc is first clamped to [amin, amax], the accumulators outside which q saturates
# (so the clamp changes no q), and the compiler proves |a * mult + bias| <= 2^31 - 1 at both
# ends of that interval, so the product and the sum are exact modulo 2^32.


@dataclass
class Requant:
    """Per channel: q = clamp(floor((acc * mult + bias) / 2^shift), lo, hi)."""

    mult: np.ndarray  # int64 [C]
    bias: np.ndarray  # int64 [C]
    shift: np.ndarray  # int64 [C], in [0, TB_RQ_MAX_SHIFT]
    amin: np.ndarray  # int64 [C]: acc below it gives amin's q (the C clamps acc first)
    amax: np.ndarray  # int64 [C]: acc above it gives amax's q
    lo: int  # the code range: [0, 127] after a ReLU, else [-128, 127]
    hi: int

    def codes(self, acc: np.ndarray) -> np.ndarray:
        """The codes of accumulators `acc` [..., C] (|acc| < 2^31): exact in int64."""
        acc = np.asarray(acc, dtype=np.int64)
        v = (acc * self.mult + self.bias) >> self.shift  # arithmetic shift: floor
        return np.clip(v, self.lo, self.hi)

    def codes_as_c(self, acc: np.ndarray) -> np.ndarray:
        """What `tb_requant` computes, step by step in uint32 (the clamp to [amin, amax],
        products and sums modulo 2^32, the floor shift by xor): for the tests."""
        a = np.clip(np.asarray(acc, dtype=np.int64), self.amin, self.amax)
        u32 = np.uint64(2**32 - 1)
        v = (
            a.astype(np.uint64) * (self.mult.astype(np.uint64) & u32)
            + (self.bias.astype(np.uint64) & u32)
        ) & u32
        m = (np.uint64(0) - (v >> np.uint64(31))) & u32
        q = ((v ^ m) >> self.shift.astype(np.uint64)) ^ m
        q = np.where(q >= 2**31, q.astype(np.int64) - 2**32, q.astype(np.int64))
        return np.clip(q, self.lo, self.hi)

    def arrays(self) -> dict[str, np.ndarray]:
        """As the C stores them."""
        return {
            "mult": self.mult.astype(np.int32),
            "bias": self.bias.astype(np.int32),
            "shift": self.shift.astype(np.uint8),
            "amin": self.amin.astype(np.int32),
            "amax": self.amax.astype(np.int32),
        }


def _saturation(m: int, b: int, s: int, lo: int, hi: int) -> tuple[int, int]:
    """[amin, amax]: outside it floor((a * m + b) / 2^s) is <= lo or >= hi, as at its ends."""
    if m == 0:
        return 0, 0
    top, bottom = hi * 2**s - b, (lo + 1) * 2**s - b  # value >= top: q >= hi; < bottom: q <= lo
    if m > 0:
        return -(-bottom // m) - 1, -(-top // m)
    return top // m, bottom // m + 1


def fold_requant(
    scale: np.ndarray, offset: np.ndarray, lo: int, hi: int, bound: int, max_shift: int, where: str
) -> Requant:
    """The integer requantisation of q = clamp(floor(acc * scale + offset + 1/2), lo, hi)
    for integer acc in [-bound, bound]: per channel the largest shift <= max_shift whose
    mult = round(scale * 2^shift) and bias = floor((offset + 1/2) * 2^shift) fit int32 and
    keep |a * mult + bias| <= 2^31 - 1 on the clamped interval. The integers are the
    definition (PyTorch's eval mode computes them too); `scale` and `offset` (float64) only
    choose them. A refusal is a `ModelError` that starts with `where` (the layer)."""
    scale, offset = np.asarray(scale, np.float64), np.asarray(offset, np.float64)
    if not (np.isfinite(scale).all() and np.isfinite(offset).all()):
        raise ModelError(f"{where}: a BatchNorm or activation scale gives NaN or infinity")
    out = {k: [] for k in ("mult", "bias", "shift", "amin", "amax")}
    for c, (r, o) in enumerate(zip(scale.tolist(), offset.tolist(), strict=True)):
        for s in range(max_shift, -1, -1):
            rm, ob = r * 2.0**s, (o + 0.5) * 2.0**s  # exact scalings by powers of two
            if not max(abs(rm), abs(ob)) < 2.0**31:  # also past float64's range
                continue
            m, b = round(rm), math.floor(ob)
            if max(abs(m), abs(b)) > INT32_MAX:
                continue
            a0, a1 = _saturation(m, b, s, lo, hi)
            a0, a1 = min(max(a0, -bound), bound), min(max(a1, -bound), bound)
            if max(abs(a0 * m + b), abs(a1 * m + b)) <= INT32_MAX:
                break
        else:
            raise ModelError(
                f"{where}: channel {c} requantises with a multiplier of {r:.6g} and an offset "
                f"of {o:.6g} codes, which no int32 multiplier and shift in [0, {max_shift}] hold"
            )
        for k, v in zip(out, (m, b, s, a0, a1), strict=True):
            out[k].append(v)
    return Requant(**{k: np.array(v, dtype=np.int64) for k, v in out.items()}, lo=lo, hi=hi)
