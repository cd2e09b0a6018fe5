"""A device's budget, and what a candidate costs against it, known before any training.

Flash and arena come from the compiler itself: the candidate is built untrained, lowered
and laid out for the target core exactly as `tinybnn compile --target` would, so the
bytes are the compiled model's. Flash is the constants' bytes (weights, tables,
thresholds), as `tinybnn compile --flash-budget` counts them, with the thresholds at the
width training may leave them (`Summary.threshold_headroom`); code is not counted, since
the kernels are shared and their size depends on the firmware's build. Instructions per
inference are estimated by the per-stage cost model calibrated against QEMU counts
(`tinybnn.compiler.costs`); the search's finalists are then measured under QEMU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..compiler import codegen
from ..compiler.costs import estimate
from ..compiler.lowering import lower
from ..compiler.summary import summary
from ..compiler.targets import CORES
from ..errors import TinyBNNError
from ..models import conv_classifier
from .space import Candidate


@dataclass(frozen=True)
class Budget:
    """What the device has left for the model; None: no limit."""

    target: str = "cortex-m4"
    flash: int | None = 16 * 1024  # bytes of constants
    ram: int | None = None  # bytes of arena
    instructions: int | None = None  # per inference, on `target`

    def __post_init__(self):
        if self.target not in CORES:
            raise TinyBNNError(f"unknown target {self.target!r}; choose one of {', '.join(CORES)}")
        for what in ("flash", "ram", "instructions"):
            v = getattr(self, what)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise TinyBNNError(f"the {what} budget must be a positive integer, not {v!r}")

    def describe(self) -> str:
        parts = [self.target]
        if self.flash:
            parts.append(f"flash {self.flash:,} B")
        if self.ram:
            parts.append(f"arena {self.ram:,} B")
        if self.instructions:
            parts.append(f"{self.instructions:,} instructions")
        return ", ".join(parts)


@dataclass(frozen=True)
class Cost:
    """A candidate's cost on the budget's target, or why it cannot be built."""

    flash: int = 0  # bytes of constants, the thresholds at their trained width
    arena: int = 0  # bytes
    instructions: int = 0  # per inference, estimated
    refused: str = ""  # why the model cannot be built or compiled, if it cannot

    def over(self, budget: Budget) -> str:
        """Why this cost does not fit `budget`, or ''."""
        if self.refused:
            return self.refused
        why = []
        if budget.flash and self.flash > budget.flash:
            why.append(f"flash {self.flash:,} B > {budget.flash:,}")
        if budget.ram and self.arena > budget.ram:
            why.append(f"arena {self.arena:,} B > {budget.ram:,}")
        if budget.instructions and self.instructions > budget.instructions:
            why.append(f"{self.instructions:,} instructions > {budget.instructions:,}")
        return "; ".join(why)


def build(candidate: Candidate, shape: tuple[int, int, int, int]):
    """The untrained `conv_classifier` of a candidate for data of `shape`."""
    _, channels, length, classes = shape
    with torch.random.fork_rng(devices=[]):  # not the caller's random stream
        return conv_classifier(channels, length, classes, **candidate.architecture)


def cost(candidate: Candidate, shape: tuple[int, int, int, int], budget: Budget) -> Cost:
    """What `candidate` costs on `budget.target`, from the compiler and the cost model."""
    try:
        model = build(candidate, shape)
        headroom = summary(model).threshold_headroom
        room = None if budget.flash is None else max(1, budget.flash - headroom)
        program = lower(model)
        cm = codegen.build(program, "model", {}, budget.target, "speed", room)
        instructions = estimate(cm).instructions
    except TinyBNNError as e:
        return Cost(refused=str(e))
    return Cost(cm.flash_bytes + headroom, cm.arena_bytes, instructions)
