"""The integer reference: a numpy interpreter of a lowered `Program`, tinybnn's specification.

It computes on the same packed words and integers as the C, one window at a time, so a
difference from the C is a bug in one of the two, and a difference from PyTorch is a bug
in the lowering. Each stage's own step is `Stage.run`, in its op module (`tinybnn.ops`);
this module feeds windows through them. Speed is not a goal; being obviously right is.
"""

from __future__ import annotations

import numpy as np

from ..errors import TinyBNNError
from .contract import unpack_bits, words
from .program import Program, Stage


def run_stage(stage: Stage, x: np.ndarray) -> np.ndarray:
    return stage.run(x)


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
    """A stage's output [N, ...] as PyTorch holds it: +-1 [N, C, T] or [N, F], or integers
    (sums or int8 codes [N, C, T], held [N][T][C] like the C)."""
    if stage.out_kind in ("sum", "i8"):
        return out.transpose(0, 2, 1)
    if stage.out_kind != "bin":
        return out
    n = out.shape[0]
    if len(stage.out_shape) == 2:
        c, t = stage.out_shape
        return unpack_bits(out.reshape(n, t, words(c)), c).transpose(0, 2, 1)
    return unpack_bits(out.reshape(n, words(stage.out_shape[0])), stage.out_shape[0])
