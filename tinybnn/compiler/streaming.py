"""Streaming inference: what can stream, when it decides, and its numpy reference.

A streamed model takes samples as they come and, every `hop` samples once a whole window has
arrived, gives the scores of the windowed model on the window that ends there, exactly. It
computes each layer's output column once instead of once per window:

- "column" stages (convolutions with their pooling and sign, window max-pooling) keep the
  last `stream_history` input columns and give one output column every `stream_every`
  inputs (`Stage.stream_column`, in each op's module);
- the "window" stage (global pooling) reduces the last W columns of the stage before it: a
  running sum, or an AND when read (`Stage.stream_start`);
- "decision" stages (dense layers, the classifier) run once per decision on that reduction,
  with their windowed reference.

A model streams exactly when no convolution pads (padding at the window's edges is not in
the stream) and the hop is a multiple of the total stride (so every window starts on the
columns' grid). `plan` refuses anything else, naming the layer and the reason; it never
approximates. docs/lowering.md ("Streaming") states the contract and the C state layout.

Non-goal: speed in numpy; this is the specification the C is checked against.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError, TinyBNNError
from .codegen import CStage
from .contract import words
from .program import Program


@dataclass(frozen=True)
class StreamPlan:
    """Which stages do what in a stream, and when it decides."""

    columns: tuple[int, ...]  # stage indices of the column stages, in order
    window: int  # the stage index of the global pooling
    decisions: tuple[int, ...]  # the stages run per decision
    stride: int  # input samples per column of the last column stage
    hop: int  # samples between decisions, a multiple of `stride`
    length: int  # the window, in samples: the first decision comes after `length` samples


def where(program: Program, index: int) -> str:
    """A stage named by its first layer, as the compiler's other refusals name it."""
    i = program.stages[index].layers[0]
    return f"layer {i} ({program.layer_kinds[i]})"


def plan(program: Program, hop: int | None = None) -> StreamPlan:
    """The stream of `program`, deciding every `hop` samples (default: its total stride).

    Raises ModelError (one line naming the layer and the reason) for a model that cannot
    stream exactly, and TinyBNNError for a hop it cannot decide at.
    """
    roles = []
    for i, stage in enumerate(program.stages):
        why = stage.stream_refusal()
        if why:
            raise ModelError(f"{where(program, i)}: cannot stream exactly: {why}")
        roles.append(stage.stream_role)
    first_window = roles.index("window") if "window" in roles else len(roles)
    for i, role in enumerate(roles):
        expected = "column" if i < first_window else "window" if i == first_window else "decision"
        if role == expected:
            continue
        if role == "decision":
            why = "reads the whole window at once (flatten); streaming needs global_pool1d"
        elif role == "window":
            why = "a second global pooling"
        else:
            why = "a convolution or pooling after the global pooling"
        raise ModelError(f"{where(program, i)}: cannot stream exactly: {why}")
    if first_window == len(roles) or first_window == 0:
        raise ModelError("the model cannot stream: it needs convolutions, then global_pool1d")
    stride = 1
    for i in range(first_window):
        stride *= program.stages[i].stream_every
    hop = stride if hop is None else hop
    if not isinstance(hop, int) or hop < 1 or hop % stride:
        raise TinyBNNError(
            f"decision hop {hop}: must be a positive multiple of the model's total stride "
            f"{stride} (the product of its strides and poolings), so that every window starts "
            "where its layers' columns do"
        )
    return StreamPlan(
        columns=tuple(range(first_window)),
        window=first_window,
        decisions=tuple(range(first_window + 1, len(roles))),
        stride=stride,
        hop=hop,
        length=program.length,
    )


class History:
    """A column stage's state: its last `stream_history` input columns, and how many more
    inputs it needs before its next output column."""

    def __init__(self, stage):
        self.stage = stage
        self.columns: deque = deque(maxlen=stage.stream_history)
        self.due = stage.stream_history

    def push(self, column: np.ndarray) -> np.ndarray | None:
        """Take one input column; return the output column it completes, or None."""
        self.columns.append(column)
        self.due -= 1
        if self.due:
            return None
        self.due = self.stage.stream_every
        return self.stage.stream_column(np.stack(self.columns))


def check_samples(program: Program, samples) -> np.ndarray:
    """Validate samples [n][C] for a stream (integers within int16); return them as int16."""
    x = np.asarray(samples)
    if x.ndim != 2 or x.shape[1] != program.in_channels:
        raise TinyBNNError(
            f"samples have shape {list(x.shape)}; the stream takes [n, {program.in_channels}]"
        )
    if np.issubdtype(x.dtype, np.floating) and not (np.isfinite(x) & (x == np.round(x))).all():
        raise TinyBNNError("samples hold non-integer values; the stream takes raw int16 samples")
    if x.min(initial=0) < -(2**15) or x.max(initial=0) > 2**15 - 1:
        raise TinyBNNError("samples hold values outside int16")
    return x.astype(np.int16)


class StreamReference:
    """The numpy reference of a streamed program: push samples, get each decision's scores.

    `push` takes int16 samples [n][C] (as the device receives them) in chunks of any size;
    the scores at each decision equal `reference.run` on the window that ends there.
    """

    def __init__(self, program: Program, stream: StreamPlan):
        self.program, self.plan = program, stream
        self.reset()

    def reset(self) -> None:
        self.histories = [History(self.program.stages[i]) for i in self.plan.columns]
        self.window = self.program.stages[self.plan.window].stream_start()
        self.until = self.plan.length  # samples until the next decision
        self.samples = 0

    def push(self, samples: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """(samples pushed so far, scores int64 [K]) for each decision these samples make."""
        samples = check_samples(self.program, samples)
        decisions = []
        for sample in samples:
            column = sample
            for h in self.histories:
                column = h.push(column)
                if column is None:
                    break
            else:
                self.window.push(column)
            self.samples += 1
            self.until -= 1
            if self.until == 0:
                self.until = self.plan.hop
                decisions.append((self.samples, self.decide()))
        return decisions

    def decide(self) -> np.ndarray:
        v = self.window.read()
        for i in self.plan.decisions:
            v = self.program.stages[i].run(v)
        return v


def run(program: Program, x: np.ndarray, hop: int | None = None, chunk: int = 1):
    """Stream `x` int16 [n][C] through `program` in chunks of `chunk` samples: the sample
    count and the scores int64 [D, K] of each decision."""
    ref = StreamReference(program, plan(program, hop))
    out = []
    for start in range(0, len(x), chunk):
        out += ref.push(x[start : start + chunk])
    if not out:
        return np.zeros(0, np.int64), np.zeros((0, program.num_classes), np.int64)
    ends, scores = zip(*out, strict=True)
    return np.array(ends), np.stack(scores)


# ---------------------------------------------------------------------------------------
# The C: the state layout and what the templates render (model_stream.c.j2).


def _words(nbytes: int) -> int:
    """`nbytes` rounded up to whole words: every region of the state is word-aligned."""
    return (nbytes + 3) // 4 * 4


@dataclass
class ColumnC:
    """A column stage in C: its buffer (`tb_stream_buf_t`, then the columns held) and its
    windowed kernel, run once per hop on every output the held columns complete (the
    descriptor `<prefix>_stream`, its lengths set per run)."""

    cs: CStage  # the stage on its receptive field
    span: int
    every: int
    inputs: int  # input columns per hop
    outputs: int  # output columns per hop
    col_bytes: int  # one input column
    out_bytes: int  # one output column
    in_type: str  # "int16_t" (samples) or "uint32_t" (packed bits)
    buf: int = 0  # state offsets
    hist: int = 0

    @property
    def descriptor(self) -> str:
        return f"{self.cs.prefix}_stream"

    @property
    def capacity(self) -> int:
        """Columns held at most: fewer than `span` left from the last run, one hop's new."""
        return self.span - 1 + self.inputs


@dataclass
class StreamC:
    """The streaming part of a compiled model: the plan, the state layout and the stages."""

    plan: StreamPlan
    columns: list[ColumnC]
    window: CStage  # the global pooling (its windowed descriptor)
    decisions: list[CStage]  # each decision stage (their windowed descriptors)
    layout: list[tuple[str, int, int]]  # (what, offset, bytes) of each region of the state
    state_bytes: int = 0
    until: int = 0  # offsets of the hop and decision countdowns, the window's ring and counts,
    warm: int = 0
    win_pos: int = 0  # the transient column and kernel scratch, and the decision buffers
    win_ring: int = 0
    win_ones: int | None = None
    col: int = 0
    scratch: int = 0
    outs: list[int] | None = None  # output offset of the window and each decision stage
    decision_scratch: int = 0

    @property
    def first_hop(self) -> int:
        """Samples before the first hop: hops end where decisions do, at length + k * hop."""
        return (self.plan.length - 1) % self.plan.hop + 1

    @property
    def warm_hops(self) -> int:
        """Hops before the one of the first decision."""
        return (self.plan.length - self.first_hop) // self.plan.hop

    @property
    def window_sum(self) -> bool:
        return self.window.stage.kernel == "globalsum"


def c_plan(cm, hop: int | None = None) -> StreamC:
    """The streaming C of a built `codegen.CModel`: each column stage's descriptor on its
    receptive field (the same kernel variant, sharing the windowed stage's constants) and
    the state layout. Raises like `plan` for a model that cannot stream."""
    program = cm.program
    stream = plan(program, hop)
    columns = []
    inputs = stream.hop  # input columns per hop of the stage
    for i in stream.columns:
        windowed = cm.stages[i]
        st = windowed.stage
        cs = CStage(
            index=i,
            stage=st.receptive(),
            prefix=windowed.prefix,
            variant=windowed.variant,
            core=windowed.core,
        )
        same = [(a.name, a.values.tobytes()) for a in cs.arrays] == [
            (a.name, a.values.tobytes()) for a in windowed.arrays
        ]
        if not same:  # a variant whose constants depend on the length: not shared
            raise TinyBNNError(f"L{i} {st.kernel}: its streaming kernel needs other constants")
        samples = st.in_kind == "samples"
        columns.append(
            ColumnC(
                cs=cs,
                span=st.stream_history,
                every=st.stream_every,
                inputs=inputs,
                outputs=inputs // st.stream_every,
                col_bytes=2 * st.in_shape[0] if samples else 4 * words(st.in_shape[0]),
                out_bytes=4 * words(st.out_shape[0]),
                in_type="int16_t" if samples else "uint32_t",
            )
        )
        inputs //= st.stream_every
    window = cm.stages[stream.window]
    c, w = window.stage.in_shape
    layout: list[tuple[str, int, int]] = []

    def region(what: str, nbytes: int) -> int:
        offset = sum(b for _, _, b in layout)
        layout.append((what, offset, _words(nbytes)))
        return offset

    sc = StreamC(plan=stream, columns=columns, window=window, decisions=[], layout=layout)
    sc.until = region("samples until the next hop (uint32)", 4)
    sc.warm = region("hops until the first decision (uint32)", 4)
    for col in columns:
        col.buf = region(f"L{col.cs.index} columns held, to skip (tb_stream_buf_t)", 8)
        col.hist = region(
            f"L{col.cs.index} input columns: at most {col.capacity} (span {col.span}, "
            f"{col.inputs} per hop)",
            col.capacity * col.col_bytes,
        )
    sc.win_pos = region(f"L{stream.window} oldest column of the window (uint32)", 4)
    if sc.window_sum:
        sc.win_ones = region(f"L{stream.window} set bits per channel over the window", 4 * c)
    sc.win_ring = region(f"L{stream.window} the window's last {w} columns", 4 * w * words(c))
    # Transient: the column passed from stage to stage and the kernels' scratch; during a
    # decision, the pooled window and the decision stages' outputs.
    col_bytes = max(col.outputs * col.out_bytes for col in columns)
    scratch = max(col.cs.scratch_bytes for col in columns)
    decisions = [cm.stages[i] for i in stream.decisions]
    outs = [window.stage.out_bytes()] + [d.out_bytes for d in decisions]
    decision_scratch = max((d.scratch_bytes for d in decisions), default=0)
    transient = max(
        _words(col_bytes) + _words(scratch),
        sum(_words(b) for b in outs) + _words(decision_scratch),
    )
    base = region(
        "transient: a column and the kernels' scratch, or a decision's buffers", transient
    )
    sc.col, sc.scratch = base, base + _words(col_bytes)
    sc.outs, offset = [], base
    for b in outs:
        sc.outs.append(offset)
        offset += _words(b)
    sc.decision_scratch = offset
    sc.decisions = decisions
    sc.state_bytes = sum(b for _, _, b in layout)
    return sc
