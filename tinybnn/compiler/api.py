"""`tinybnn.compile`: a model (object or file) to C files, with a per-layer report."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError, TinyBNNError
from ..modelfile import load
from ..nn import Sequential
from ..outputs import check_outputs
from ..table import format_table
from . import codegen, packages
from .lowering import lower
from .program import Program
from .streaming import c_plan
from .targets import DEFAULT_TARGET
from .targets import target as check_target
from .variants import check_optimize


@dataclass
class CompileResult:
    program: Program
    cmodel: codegen.CModel
    files: list[Path]

    def report(self) -> str:
        return format_report(self.cmodel)


def compile(  # noqa: A001 - the verb users expect: tinybnn.compile(model)
    model: Sequential | str | os.PathLike,
    out_dir: str | os.PathLike = "out",
    name: str = "model",
    command: str | None = None,
    target: str | None = None,
    optimize: str = "speed",
    flash_budget: int | None = None,
    package: str = packages.DEFAULT_PACKAGE,
    url: str | None = None,
    streaming: bool = False,
    hop: int | None = None,
) -> CompileResult:
    """Lower `model` to integers and write `<name>.h`, `<name>.c` and the kernels to `out_dir`.

    `target` picks the kernel variant of each stage (`targets.TARGETS`: "portable", "host",
    "cortex-m0", ..., "cortex-m33"); None or "portable" emits the reference loops only.
    `optimize` ("speed" or "size") is what a fast target's variants favour: "size" leaves
    out those whose tables take more flash than the packed weights (`variants.OPTIMIZE`).
    `flash_budget` caps the bytes of constants (weights, tables, thresholds; code is not
    counted): the fast kernels that save the fewest instructions per byte go first
    (`codegen.fit_flash_budget`).
    `package` lays the files out for a build system (`packages.PACKAGES`: "plain", "cmake",
    "arduino"); `url` is the project page an Arduino library's metadata needs.
    `streaming` adds the streaming API (`<name>_stream_push`, ...), deciding every `hop`
    samples (default: the model's total stride); a model that cannot stream exactly is
    refused, naming the layer and the reason (`streaming.plan`).

    Raises `TinyBNNError` (one line, naming the layer) for anything it cannot compile
    exactly; nothing is written then.
    """
    codegen.check_name(name)
    pkg = packages.package(package)
    packages.check(pkg, Path(out_dir), url)
    target = DEFAULT_TARGET if target is None else target
    check_target(target)
    check_optimize(optimize)
    if flash_budget is not None and flash_budget < 1:
        raise TinyBNNError(f"flash budget {flash_budget} B: give a positive number of bytes")
    source = None
    if not isinstance(model, Sequential):
        source = Path(model)
        check_outputs(
            [Path(out_dir) / p for p in pkg.paths(name)],
            {"the model file": source},
            "give another --name or output directory",
        )
        model = load(source)
    try:
        program = lower(model)
        header = codegen.header_info(source, command)
        cm = codegen.build(program, name, header, target, optimize, flash_budget)
        if streaming or hop is not None:
            cm.stream = c_plan(cm, hop)
    except TinyBNNError as e:
        if source is None:
            raise
        raise (ModelError if isinstance(e, ModelError) else TinyBNNError)(
            f"{source}: {e}"
        ) from None
    files = codegen.write(packages.files(pkg, cm, codegen.render(cm), url), Path(out_dir))
    return CompileResult(program=program, cmodel=cm, files=files)


def format_report(cm: codegen.CModel) -> str:
    """One row per stage: what it is, flash bytes of its constants, arena bytes, MACs."""
    rows = [("stage", "layers", "output", "flash B", "arena B", "binary MACs", "int MACs")]
    for s in cm.stages:
        st = s.stage
        bmacs, imacs = st.macs()
        out = "x".join(str(v) for v in st.out_shape) + (
            " bits" if st.out_kind == "bin" else f" {st.out_kind}"
        )
        arena = s.out_bytes + s.scratch_bytes
        layers = ",".join(str(i) for i in st.layers)
        kernel = s.kernel if s.variant.reference else f"{s.kernel}/{s.variant.name}"
        rows.append((f"L{s.index} {kernel}", layers, out, s.flash_bytes, arena, bmacs, imacs))
    total_b = sum(s.stage.macs()[0] for s in cm.stages)
    total_i = sum(s.stage.macs()[1] for s in cm.stages)
    rows.append(("total", "", "", cm.flash_bytes, cm.arena_bytes, total_b, total_i))
    return "\n".join(
        [
            format_table(rows, left=(0, 1, 2), rules=(0, len(rows) - 2)),
            "flash B: weights, thresholds and other constants (code not included); "
            "arena B: the output buffer and a fast kernel's scratch (the total is the arena, "
            "buffers reused)",
        ]
    )


__all__ = ["compile", "CompileResult", "TinyBNNError"]
