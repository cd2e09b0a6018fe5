"""Kernel variants: one record per C kernel of a stage, and the one place that picks one.

Each op module lists its stage's variants (`Stage.variants`), fastest first, its reference
loops last. A variant names its C function in `tinybnn_kernels.h`, says which stages, cores
and optimize settings it serves (`serves`), and fills the stage's descriptor (`fields`:
arrays and values; it returns the scratch bytes it needs in the arena). Every variant
computes exactly what the reference loop of its op does; tests/test_kernels.py runs each on
the same vectors on the host and under QEMU.

"portable" (the default target) takes the reference loops only; every other target takes
the first variant that serves the stage there, the fastest measured (benchmarks/kernels.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import TinyBNNError
from .targets import Core

if TYPE_CHECKING:
    from .codegen import CStage
    from .program import Stage

# What a fast target's kernels favour: "speed", or "size" (no subset tables for the binary
# layers, which hold 5.3 times their weights in flash). The first layer's variants are the
# same either way: their tables are in RAM, and xs's int16 weights, twice the int8, come
# with less code than xq's bytes (the earbud demo's first layer: 630 B less flash on M4).
OPTIMIZE = ("speed", "size")
# What a flash budget's swaps take (`codegen.fit_flash_budget`): the fewest constants,
# which the budget counts (code it does not): as "size", and an int8 first layer's
# weights as bytes (xq) rather than int16 pairs (xs).
CONSTANTS = "constants"


def _always(stage: Stage, core: Core, optimize: str) -> bool:
    return True


@dataclass(frozen=True)
class Variant:
    """One C kernel of a stage kind."""

    name: str  # "ref" for the reference loops, else a short name: "vst", "xs", ...
    function: str  # the C function, tb_<op>[_<variant>]_<type>
    fields: Callable[[CStage, Stage], int]  # fills the descriptor; returns scratch bytes
    serves: Callable[[Stage, Core, str], bool] = _always  # (stage, core, optimize)

    @property
    def reference(self) -> bool:
        return self.name == "ref"


def select(stage: Stage, core: Core, optimize: str = "speed") -> Variant:
    """The kernel of `stage` on `core`: the first of its variants that serves it there (only
    the reference loops on a core without fast kernels)."""
    if optimize != CONSTANTS:
        check_optimize(optimize)
    for v in type(stage).variants:
        if (core.fast or v.reference) and v.serves(stage, core, optimize):
            return v
    raise TinyBNNError(f"no kernel of {stage.kind} serves this stage on {core.name}")


def check_optimize(optimize: str) -> None:
    if optimize not in OPTIMIZE:
        raise TinyBNNError(f"unknown optimize {optimize!r}; choose one of {', '.join(OPTIMIZE)}")
