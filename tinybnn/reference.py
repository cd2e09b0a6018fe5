"""The integer reference: a numpy interpreter of a lowered `Program`, tinybnn's specification.

It computes on the same packed words and integers as the C, one window at a time, so a
difference from the C is a bug in one of the two, and a difference from PyTorch is a bug
in the lowering. Speed is not a goal; being obviously right is.
"""

from __future__ import annotations

import numpy as np

from .errors import TinyBNNError
from .lowering import (
    BinConv,
    BinDense,
    Classifier,
    GlobalSum,
    InputConv,
    MaxPoolBits,
    Program,
    Stage,
    pack_bits,
    unpack_bits,
    words,
)


def popcount(x: np.ndarray) -> np.ndarray:
    return np.bitwise_count(np.asarray(x, dtype=np.uint32)).astype(np.int64)


def _pool(acc: np.ndarray, k: int, s: int) -> np.ndarray:
    """Max-pool accumulators [T][C] over time windows (the pre-activation's scale is > 0)."""
    t_out = (acc.shape[0] - k) // s + 1
    return np.stack([acc[j * s : j * s + k].max(0) for j in range(t_out)])


def _input_conv(st: InputConv, x: np.ndarray) -> np.ndarray:
    """x: int16 [T][C] -> packed [T_out][OW]."""
    xn = (np.clip(x.astype(np.int64), st.lo, st.hi) - st.offset) * st.multiplier
    xn = np.pad(xn, ((st.pad, st.pad), (0, 0)))  # padding is x' = 0
    t_conv = st.conv_length()
    o, k, c = st.weight.shape
    acc = np.zeros((t_conv, o), dtype=np.int64)
    for t in range(t_conv):
        win = xn[t * st.stride : t * st.stride + k]  # [k][C]
        acc[t] = (st.weight * win[None]).sum(axis=(1, 2))
    assert np.abs(acc).max(initial=0) <= st.acc_bound
    return _threshold(st, acc)


def _bin_conv(st: BinConv, x: np.ndarray) -> np.ndarray:
    """x: packed [T][CW] -> packed [T_out][OW]."""
    c_in = st.in_shape[0]
    pad_word = pack_bits(np.full(c_in, st.pad_value))
    xp = np.concatenate([np.tile(pad_word, (st.pad, 1)), x, np.tile(pad_word, (st.pad, 1))])
    w = pack_bits(st.weight)  # [O][k][CW]
    k_bits = c_in * st.kernel_size
    t_conv = st.conv_length()
    acc = np.zeros((t_conv, st.weight.shape[0]), dtype=np.int64)
    for t in range(t_conv):
        win = xp[t * st.stride : t * st.stride + st.kernel_size]  # [k][CW]
        acc[t] = k_bits - 2 * popcount(win[None] ^ w).sum(axis=(1, 2))
    return _threshold(st, acc)


def _threshold(st: InputConv | BinConv, acc: np.ndarray) -> np.ndarray:
    acc = _pool(acc, st.pool_k, st.pool_s)
    return pack_bits(np.where(st.threshold.bits(acc) == 1, -1, 1))


def _bin_dense(st: BinDense, x: np.ndarray) -> np.ndarray:
    """x: packed vector (any shape, read flat) -> packed [OW]."""
    acc = st.in_features - 2 * popcount(x.reshape(-1)[None] ^ st.weight).sum(1)
    return pack_bits(np.where(st.threshold.bits(acc) == 1, -1, 1))


def _maxpool_bits(st: MaxPoolBits, x: np.ndarray) -> np.ndarray:
    """x: packed [T][CW] -> AND over windows (+1 wins) -> [T_out][CW] (flat [CW] if global)."""
    t_out = (x.shape[0] - st.kernel_size) // st.stride + 1
    out = np.stack(
        [
            np.bitwise_and.reduce(x[j * st.stride : j * st.stride + st.kernel_size], axis=0)
            for j in range(t_out)
        ]
    )
    return out.reshape(-1) if len(st.out_shape) == 1 else out


def _global_sum(st: GlobalSum, x: np.ndarray) -> np.ndarray:
    c, t = st.in_shape
    bits = 1 - unpack_bits(x, c).astype(np.int64)  # 2 where -1, 0 where +1
    return (t - bits.sum(0)).astype(np.int64)


def _classifier(st: Classifier, x: np.ndarray) -> np.ndarray:
    if st.binary_input and st.binary_weights:
        acc = st.in_features - 2 * popcount(x.reshape(-1)[None] ^ st.weight).sum(1)
    elif st.binary_input:
        values = unpack_bits(x.reshape(st.in_t, words(st.in_c)), st.in_c).reshape(-1)  # [t][c]
        acc = (st.weight.astype(np.int64) * values[None]).sum(1)
    else:
        w = unpack_bits(st.weight, st.in_features) if st.binary_weights else st.weight
        acc = (w.astype(np.int64) * x[None]).sum(1)
    return acc + st.bias


RUN = {
    InputConv: _input_conv,
    BinConv: _bin_conv,
    BinDense: _bin_dense,
    MaxPoolBits: _maxpool_bits,
    GlobalSum: _global_sum,
    Classifier: _classifier,
}


def run_stage(stage: Stage, x: np.ndarray) -> np.ndarray:
    return RUN[type(stage)](stage, x)


def check_input(program: Program, x: np.ndarray) -> np.ndarray:
    """Validate one window or a batch `[N, C, T]`/`[C, T]` of samples; return int16 [N, C, T]."""
    x = np.asarray(x)
    if x.ndim == 2:
        x = x[None]
    want = (program.in_channels, program.length)
    if x.ndim != 3 or x.shape[1:] != want:
        raise TinyBNNError(
            f"input has shape {list(x.shape)}; the model takes [N, {want[0]}, {want[1]}]"
        )
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise TinyBNNError("input holds NaN or infinity")
        if (x != np.round(x)).any():
            raise TinyBNNError("input holds non-integer values; the model takes raw int16 samples")
    if x.min(initial=0) < -(2**15) or x.max(initial=0) > 2**15 - 1:
        raise TinyBNNError("input holds values outside int16")
    return x.astype(np.int16)


def run(program: Program, x: np.ndarray, trace: bool = False):
    """Scores int64 [N, K] for samples [N, C, T]; with trace, also every stage's outputs
    (a list per stage of arrays [N, ...] as the C holds them)."""
    x = check_input(program, x)
    scores = []
    traces: list[list[np.ndarray]] = [[] for _ in program.stages]
    for sample in x:
        v = sample.T  # [T][C], as the device receives it
        for i, stage in enumerate(program.stages):
            v = run_stage(stage, v)
            if trace:
                traces[i].append(v)
        scores.append(v)
    scores = np.stack(scores)
    if trace:
        return scores, [np.stack(t) for t in traces]
    return scores


def argmax(scores: np.ndarray) -> np.ndarray:
    """Class index per row, ties to the lowest index (as the C does)."""
    return np.argmax(scores, axis=-1)


def unpack_stage(stage: Stage, out: np.ndarray) -> np.ndarray:
    """A stage's output [N, ...] as PyTorch holds it: +-1 [N, C, T] or [N, F], or integers."""
    if stage.out_kind != "bin":
        return out
    n = out.shape[0]
    if len(stage.out_shape) == 2:
        c, t = stage.out_shape
        return unpack_bits(out.reshape(n, t, words(c)), c).transpose(0, 2, 1)
    return unpack_bits(out.reshape(n, words(stage.out_shape[0])), stage.out_shape[0])
