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

from dataclasses import dataclass, replace
from fractions import Fraction

import torch

from ..compiler import codegen
from ..compiler.costs import estimate
from ..compiler.lowering import lower
from ..compiler.summary import summary
from ..compiler.targets import CORES
from ..errors import TinyBNNError
from ..models import conv_classifier
from .space import Candidate

# The fraction by which training may move a model's measured instructions per inference from
# its untrained build's (the thresholds' widths, and with them the constants that fit the
# flash budget): the panel's defaults measured 0.2 % (GunPoint) to 0.5 % (ElectricDevices)
# more untrained than trained. A candidate measured over the budget untrained by no more than
# this is trained, and decided on its trained count.
WEIGHTS_MOVE = Fraction(2, 100)  # exact: the comparison is on integers


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

    def allows(self, measured: int, slack: Fraction = Fraction(0)) -> bool:
        """Whether `measured` instructions per inference are within the budget (and `slack`
        of it: a fraction, compared exactly)."""
        return self.instructions is None or measured <= self.instructions * (1 + slack)

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
    # per inference, measured under QEMU on the untrained build (`measured`), or None: the
    # estimate decides
    measured: int | None = None

    def over(self, budget: Budget) -> str:
        """Why this cost does not fit `budget`, or ''. Measured instructions decide where
        there are any: they fit within WEIGHTS_MOVE of the budget, since training moves them
        that much (the search then decides on the trained model's count)."""
        if self.refused:
            return self.refused
        why = []
        if budget.flash and self.flash > budget.flash:
            why.append(f"flash {self.flash:,} B > {budget.flash:,}")
        if budget.ram and self.arena > budget.ram:
            why.append(f"arena {self.arena:,} B > {budget.ram:,}")
        if budget.instructions and self.measured is not None:
            if not budget.allows(self.measured, WEIGHTS_MOVE):
                why.append(
                    f"{self.measured:,} instructions measured untrained > {budget.instructions:,}"
                    f" by over {float(WEIGHTS_MOVE):.0%}"
                )
        elif budget.instructions and self.instructions > budget.instructions:
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


def measure(model, budget: Budget):
    """`model`'s QEMU profile on the budget's target, built within its flash budget (as
    `cost` prices it)."""
    from ..firmware.profile import profile

    return profile(model, budget.target, flash_budget=budget.flash)


def measure_if_over(
    c: Cost, candidate: Candidate, shape: tuple[int, int, int, int], budget: Budget
) -> Cost:
    """`c` with the candidate's instructions measured untrained under QEMU, where only the
    estimate puts it over the instruction budget and a toolchain is present; else `c`.

    The search uses this for the defaults (trial 0): they are the anchor its selection keeps
    unless a challenger beats them, and the estimate is off by a few per cent (up to a fifth
    on a held-out model: benchmarks/results/costs.md), which alone could keep them out of a
    budget set at their own measured count. Other candidates are priced on the estimate."""
    from ..firmware import harness

    fits_otherwise = replace(c, instructions=0).over(budget) == ""
    if budget.allows(c.instructions) or not fits_otherwise:
        return c
    try:
        harness.find_toolchain()
    except harness.ToolchainMissing:
        return c
    return replace(c, measured=measure(build(candidate, shape), budget).instructions)
