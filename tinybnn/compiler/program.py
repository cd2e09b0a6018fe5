"""The lowered program: stages of integer arithmetic (`tinybnn.compiler.lowering` makes it).

A stage is a dataclass defined in its op's module (`tinybnn.ops`): it knows its numpy
reference (`run`, the specification), its constants (`arrays`), its MACs, and its C kernel
variants (`variants`, chosen by `tinybnn.compiler.variants.select`). `layers` are the indices
of the PyTorch layers a stage implements; the stage's output equals the last of them
(compared layer by layer in the tests). The arithmetic that every stage shares (bits,
packing, thresholds) is `tinybnn.compiler.contract`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from .contract import packed_words

if TYPE_CHECKING:
    from .variants import Variant


@dataclass
class Stage:
    layers: list[int]
    in_shape: tuple[int, ...]  # [C, T] or [F]
    out_shape: tuple[int, ...]
    out_kind: str  # "bin", "sum" (int16 [T][C]), "i8" (int8 [T][C]), "count" or "scores"

    kernel: ClassVar[str]  # the C kernel family, e.g. "bconv1d" (reports, profile)
    ctype: ClassVar[str]  # the C type of its descriptor, e.g. "tb_bconv1d_t"
    variants: ClassVar[tuple[Variant, ...]] = ()  # fastest first; the reference loops last
    # How the stage streams (`tinybnn.compiler.streaming`): "column" (a history of input
    # columns -> one output column), "window" (reduces the last W columns), "decision" (runs
    # once per decision on the window's reduction), or None (it cannot stream).
    stream_role: ClassVar[str | None] = None

    @property
    def kind(self) -> str:
        return type(self).__name__.lower()

    @property
    def in_kind(self) -> str:
        """What the stage reads: "samples" (int16), "bin" (packed words), "sum" (int16 [T][C]),
        "i8" (int8 [T][C]) or "count" (int32)."""
        return "bin"

    def out_bytes(self) -> int:
        """Bytes of this stage's output buffer."""
        if self.out_kind == "bin":
            return 4 * packed_words(self.out_shape)
        if self.out_kind == "sum":  # int16 [T][C], rounded up to whole words
            c, t = self.out_shape
            return 4 * ((2 * c * t + 3) // 4)
        if self.out_kind == "i8":  # int8 codes [T][C], rounded up to whole words
            c, t = self.out_shape
            return 4 * ((c * t + 3) // 4)
        return 4 * self.out_shape[0]

    def arrays(self) -> dict[str, np.ndarray]:
        """The constants of the reference kernel, keyed as the C names them."""
        return {}

    def macs(self) -> tuple[int, int]:
        """(binary MACs, integer MACs) per inference."""
        return 0, 0

    def run(self, x: np.ndarray) -> np.ndarray:
        """The integer reference: this stage on one window, as the C holds its values."""
        raise NotImplementedError

    def stream_refusal(self) -> str | None:
        """Why this stage cannot stream exactly, or None."""
        return None if self.stream_role else f"{self.kind} has no streaming form"


@dataclass
class Program:
    """A lowered model: stages in order, input [C, T] int16, scores int32 [K]."""

    stages: list[Stage]
    in_channels: int
    length: int
    class_names: list[str]
    input_range: tuple[int, int]
    layer_kinds: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)
