"""What the bit-sliced binary kernels share (binary convolution and dense layer): output
channels along the 32 lanes of a word, mismatch counts in carry-save slices, the comparison
with a bit-sliced bound per channel, and the subset tables of `vst`.

The C side is `tb_sliced_sign`, `TB_CSA` and `tb_vst_word` in tinybnn_kernels.h; the
limits (`TB_VSL_MAX_SLICES`, `TB_SLICES_MIN`, `TB_VST_GROUP_BITS`) are read from there.
"""

from __future__ import annotations

import numpy as np

from ..compiler.contract import WORD_BITS, Threshold, pack_bits, words
from ..compiler.kernels import LIMITS

GROUP = LIMITS["TB_VST_GROUP_BITS"]  # input bits per table lookup


def slices(k_bits: int) -> int:
    """Slices of a mismatch count in [0, k_bits + 1]; the kernels keep at least TB_SLICES_MIN."""
    return max((k_bits + 1).bit_length(), LIMITS["TB_SLICES_MIN"])


def slices_fit(k_bits: int) -> bool:
    """The bit-sliced kernels' limit: a count of k_bits mismatches fits their slices."""
    return slices(k_bits) <= LIMITS["TB_VSL_MAX_SLICES"]


def threshold_fields(cs, threshold: Threshold, k_bits: int, o: int) -> None:
    """The bit-sliced variants' comparison: the bound U of each channel, bit-sliced.

    With ones = popcount(x ^ w) and acc = K - 2 * ones (K = k_bits real input bits):
    direction 0: bit = acc < th  <=> ones >= floor((K - th) / 2) + 1 = U;
    direction 1: bit = acc > th  <=> not (ones >= ceil((K - th) / 2) = U).
    U is clamped to [0, K + 1]; channels past o get U = K + 1, direction 0: bit 0.
    """
    ow = words(o)
    th = threshold.th.astype(np.int64)
    u = np.where(threshold.neg, -((th - k_bits) // 2), (k_bits - th) // 2 + 1)
    bound = np.full(ow * 32, k_bits + 1, np.int64)
    bound[:o] = np.clip(u, 0, k_bits + 1)
    n = slices(k_bits)
    cs.require("TB_VSL_MAX_SLICES", n)
    bits = ((bound[:, None] >> np.arange(n)) & 1).astype(np.int8)  # [ow*32][slices]
    ge = pack_bits(1 - 2 * bits.reshape(ow, 32, n).transpose(0, 2, 1))  # [ow][slices]
    cs.fields["th"] = cs.threshold(threshold, with_values=False)
    cs.fields["ge"] = cs.array("ge", ge, f"[{ow}][{n}]: count bound U per channel, bit-sliced")
    cs.fields["slices"] = n


def lanes(weight: np.ndarray) -> np.ndarray:
    """+-1 weights [O][...] -> [ow][32 lanes][...], lanes past O +1 (weight bit 0)."""
    o = weight.shape[0]
    out = np.ones((words(o) * 32, *weight.shape[1:]), np.int8)
    out[:o] = weight
    return out.reshape(words(o), 32, *weight.shape[1:])


def vst_groups(c_in: int) -> list[tuple[int, int]]:
    """(word, first bit) of each group of GROUP bits of a row of c_in bits (TB_VST_GROUPS)."""
    return [
        (i, b)
        for i in range(words(c_in))
        for b in range(0, min(WORD_BITS, c_in - WORD_BITS * i), GROUP)
    ]


def subset_tables(weights: np.ndarray) -> np.ndarray:
    """The `vst` kernels' tables from +-1 weights [ow][32 lanes][k][c_in].

    For each output word, tap, group of 3 input channels and input pattern p (bit j = the
    group's input j is -1): the number of mismatches of the pattern with each lane's weights,
    in [0, 3], as two words (l, h) of bit-sliced lanes. Channels past c_in count nothing.
    Returns uint32 [ow][k][groups][8][2].
    """
    ow, _, k, c = weights.shape
    wbit = (weights < 0).astype(np.int64)  # [ow][32][k][c]
    patterns = 1 << GROUP
    pattern = (np.arange(patterns)[:, None] >> np.arange(GROUP)) & 1  # [8][3]
    counts = []
    for i, b in vst_groups(c):
        chans = [WORD_BITS * i + b + j for j in range(GROUP)]
        n = np.zeros((ow, 32, k, patterns), np.int64)
        for j, ch in enumerate(chans):
            if ch < c and b + j < WORD_BITS:
                n += wbit[..., ch, None] ^ pattern[:, j]
        counts.append(n)
    cnt = np.stack(counts, axis=3)  # [ow][32][k][groups][8]
    sliced = np.stack([cnt & 1, cnt >> 1], axis=-1)  # [ow][32][k][groups][8][2]
    return pack_bits(1 - 2 * sliced.transpose(0, 2, 3, 4, 5, 1))[..., 0]
