"""Render a lowered `Program` as C: `<name>.h`, `<name>.c` and `tinybnn_kernels.h`.

Python prepares data: per stage its kernel variant (`variants.select`), its constant arrays,
its descriptor's fields (values, array names, nested records) and its place in the arena.
The jinja2 templates in `templates/c/` hold all C text, and the kernels live in the tested
header `templates/c/tinybnn_kernels.h`. What each stage's descriptor holds is its op's
business (`tinybnn.ops`); this module plans memory and writes files.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np

from .. import __version__
from ..errors import TinyBNNError
from ..ops.spec import MAX_NAME_LENGTH as MAX_CLASS_NAME
from .contract import Threshold
from .kernels import KERNELS_HEADER, LIMITS, template_dir
from .program import Program, Stage
from .targets import DEFAULT_TARGET, Core, target
from .variants import CONSTANTS, Variant, select

CTYPES = {
    np.dtype(np.uint32): "uint32_t",
    np.dtype(np.int32): "int32_t",
    np.dtype(np.int16): "int16_t",
    np.dtype(np.int8): "int8_t",
    np.dtype(np.uint16): "uint16_t",
    np.dtype(np.uint8): "uint8_t",
}


def c_array(values: np.ndarray, per_line: int = 12) -> str:
    """A C initialiser body for a flat array: hex for uint32, decimal otherwise."""
    flat = np.asarray(values).reshape(-1)
    if flat.dtype == np.uint32:
        items = [f"0x{int(v):08x}u" for v in flat]
        per_line = 6
    else:
        items = [str(int(v)) for v in flat]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return ",\n    ".join(lines)


@dataclass
class CArray:
    name: str
    key: str  # the name within its stage: "w", "th", ...
    ctype: str
    values: np.ndarray
    comment: str = ""

    @property
    def count(self) -> int:
        return int(np.asarray(self.values).size)

    @property
    def nbytes(self) -> int:
        return int(np.asarray(self.values).nbytes)

    @property
    def body(self) -> str:
        return c_array(self.values)


@dataclass
class CStage:
    """What the templates render of one stage, and the report figures.

    `fields` are the descriptor's designated initialisers: an int, the name of one of
    `arrays`, or a dict of the same (a nested record such as the thresholds)."""

    index: int
    stage: Stage
    prefix: str  # symbol prefix of this stage, e.g. gesture_l2
    variant: Variant
    core: Core
    arrays: list[CArray] = field(default_factory=list)
    fields: dict = field(default_factory=dict)
    requires: dict[str, int] = field(default_factory=dict)  # kernel limit -> least value
    scratch_bytes: int = 0  # arena bytes the variant needs besides its input and output
    in_offset: int | None = None
    out_offset: int | None = None
    scratch_offset: int | None = None

    def __post_init__(self):
        self.scratch_bytes = self.variant.fields(self, self.stage)

    @property
    def kernel(self) -> str:
        return self.stage.kernel

    @property
    def function(self) -> str:
        return self.variant.function

    @property
    def flash_bytes(self) -> int:
        return sum(a.nbytes for a in self.arrays)

    @property
    def out_bytes(self) -> int:
        """Bytes this stage writes into the arena (0: the caller's scores)."""
        return 0 if self.stage.out_kind == "scores" else self.stage.out_bytes()

    def array(self, key: str, values: np.ndarray, comment: str = "") -> str:
        """Add a constant array; returns its C name."""
        values = np.asarray(values)
        a = CArray(f"{self.prefix}_{key}", key, CTYPES[values.dtype], values, comment)
        self.arrays.append(a)
        return a.name

    def threshold(self, t: Threshold, with_values: bool = True) -> dict:
        """The tb_threshold_t record: th16 or th32 (unless the variant folds them away), and
        the direction bits."""
        record = {}
        arrays = t.arrays()
        if with_values:
            record["th16" if t.ctype == "int16" else "th32"] = self.array(
                "th", arrays["th"], "thresholds"
            )
        record["neg"] = self.array("neg", arrays["neg"], "1 = output is -1 above th")
        return record

    def require(self, limit: str, value: int) -> None:
        """This stage's C needs kernel limit `limit` >= value (`#error` otherwise)."""
        if value > LIMITS[limit]:
            raise TinyBNNError(
                f"L{self.index} {self.kernel}: needs {limit} >= {value}, the kernels have "
                f"{LIMITS[limit]}"
            )
        self.requires[limit] = max(value, self.requires.get(limit, 0))


@dataclass
class CModel:
    """Everything the templates render, and the figures of the compile report."""

    name: str
    program: Program
    stages: list[CStage]
    arena_bytes: int
    header: dict
    target: str = DEFAULT_TARGET
    optimize: str = "speed"
    flash_budget: int | None = None
    stream: object = None  # streaming.StreamC when compiled with streaming, else None

    @property
    def flash_bytes(self) -> int:
        return sum(s.flash_bytes for s in self.stages)

    @property
    def requires(self) -> dict[str, int]:
        """Every kernel limit the model relies on, with the least value it needs."""
        out: dict[str, int] = {}
        for s in self.stages:
            for k, v in s.requires.items():
                out[k] = max(v, out.get(k, 0))
        return dict(sorted(out.items()))

    @property
    def kernels(self) -> str:
        """Whose kernels the C holds, as the compile options say it."""
        if self.target == "portable":
            return "portable"
        budget = f" --flash-budget {self.flash_budget}" if self.flash_budget is not None else ""
        return f"{self.target} --optimize {self.optimize}{budget}"


def plan_arena(stages: list[CStage]) -> int:
    """Place each stage's output at alternate ends of one arena; return its size in bytes.

    Stage i reads what stage i-1 wrote at the other end, so one arena of
    max(in + out + scratch) bytes holds every stage; a stage's scratch (fast kernels only)
    sits right after whichever of its input and output starts at 0. The first stage reads
    the caller's samples and the classifier writes the caller's scores. All sizes are
    multiples of 4, so every buffer is word-aligned.
    """
    sizes = [s.out_bytes for s in stages]
    ins = [0] + sizes[:-1]
    arena = max(a + b + s.scratch_bytes for a, b, s in zip(ins, sizes, stages, strict=True))
    for i, s in enumerate(stages):
        if sizes[i]:
            s.out_offset = 0 if i % 2 == 0 else arena - sizes[i]
        if i > 0:
            s.in_offset = stages[i - 1].out_offset
        if s.scratch_bytes:
            s.scratch_offset = sizes[i] if i % 2 == 0 else ins[i]
    return arena


def emit_stage(i: int, st: Stage, name: str, core: Core, optimize: str) -> CStage:
    return CStage(
        index=i, stage=st, prefix=f"{name}_l{i}", variant=select(st, core, optimize), core=core
    )


def fit_flash_budget(stages: list[CStage], name: str, budget: int) -> list[CStage]:
    """Trade fast kernels for flash until the constants fit `budget` bytes.

    While they do not, the stage whose fast kernel saves the fewest instructions per byte of
    constants it costs goes back to its variant with the fewest constants
    (`variants.CONSTANTS`: optimize="size"'s, and an int8 first layer's weights as bytes).
    Instructions are the cost model's estimates (`costs`) where the core has coefficients
    for every kernel traded, else the stages' MACs (the subset tables of binary layers save
    about the same per MAC). Raises TinyBNNError if even that leaves too many.
    """
    stages = list(stages)
    total = sum(s.flash_bytes for s in stages)
    if total <= budget:
        return stages
    trades = []  # (index, the stage at its fewest constants)
    for i, cs in enumerate(stages):
        if select(cs.stage, cs.core, CONSTANTS) is cs.variant:
            continue  # the same kernel either way: nothing to trade
        small = emit_stage(i, cs.stage, name, cs.core, CONSTANTS)
        if small.flash_bytes < cs.flash_bytes:
            trades.append((i, small))
    saved = _instructions_saved([(stages[i], small) for i, small in trades])
    if saved is None:
        saved = [stages[i].stage.macs()[0] for i, _ in trades]
    rates = [
        (max(0.0, n) / (stages[i].flash_bytes - small.flash_bytes), i, small)
        for n, (i, small) in zip(saved, trades, strict=True)
    ]
    for _, i, small in sorted(rates, key=lambda s: s[:2]):
        total -= stages[i].flash_bytes - small.flash_bytes
        stages[i] = small
        if total <= budget:
            return stages
    raise TinyBNNError(
        f"the model's constants take {total} B of flash, over the budget of {budget} B "
        "even without subset tables"
    )


def _instructions_saved(pairs: list[tuple[CStage, CStage]]) -> list[float] | None:
    """Per (fast, small) stage pair, the instructions the fast kernel saves, estimated by the
    cost model; None if the core lacks coefficients for any of them."""
    from . import costs  # costs builds on this module

    if not pairs:
        return []
    table = costs.coefficients()["cores"].get(pairs[0][0].core.name)
    if table is None:
        return None
    out = []
    for fast, small in pairs:
        fits = table.get(fast.function), table.get(small.function)
        if None in fits:
            return None
        out.append(
            costs.predict(fits[1], costs.stage_features(small))
            - costs.predict(fits[0], costs.stage_features(fast))
        )
    return out


def build(
    program: Program,
    name: str,
    header: dict,
    target_name: str = DEFAULT_TARGET,
    optimize: str = "speed",
    flash_budget: int | None = None,
) -> CModel:
    """Prepare the C of `program`: one kernel variant per stage for the target
    (`targets.TARGETS`), favouring `optimize` (`variants.OPTIMIZE`, or `variants.CONSTANTS`:
    every stage at its fewest constants), with constants of at most `flash_budget` bytes
    when given (`fit_flash_budget`)."""
    check_name(name)
    check_class_names(program.class_names)
    core = target(target_name)
    stages = [emit_stage(i, st, name, core, optimize) for i, st in enumerate(program.stages)]
    if flash_budget is not None:
        stages = fit_flash_budget(stages, name, flash_budget)
    return CModel(
        name=name,
        program=program,
        stages=stages,
        arena_bytes=plan_arena(stages),
        header=header,
        target=target_name,
        optimize=optimize,
        flash_budget=flash_budget,
    )


def c_identifier(text: str) -> str:
    """A class name as the tail of a C macro name: GESTURE_CLASS_DOUBLE_TAP."""
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper() or "X"


def _bytes(text: str) -> bytes:
    """UTF-8, lone surrogates included (from undecodable command-line bytes)."""
    return text.encode("utf-8", "surrogatepass")


def c_string(text: str) -> str:
    """Escape a string for a C string literal (printable ASCII kept, the rest as octal)."""
    out = []
    for ch in _bytes(text):
        c = chr(ch)
        out.append(
            "\\" + c if c in '"\\?' else c if 32 <= ch < 127 else f"\\{ch:03o}"
        )  # ? : trigraphs
    return "".join(out)


def c_comment(text: str) -> str:
    r"""Text for inside a /* */ comment, where nothing can end it or break the strict flags.

    Printable ASCII is kept and everything else is an octal escape, as in `c_string` (so no
    newline, tab or invalid UTF-8 reaches the comment); a backslash is doubled, and a final
    one written \134, so it never splices the next line. A backslash breaks every `*/`
    (which would end the comment), `/*` (-Wcomment) and `??` (a trigraph; `??/` is a
    backslash): `*\/`, `/\*`, `?\?`.
    """
    out = "".join(
        "\\\\" if b == 0x5C else chr(b) if 32 <= b < 127 else f"\\{b:03o}" for b in _bytes(text)
    )
    out = re.sub(r"\*(?=/)", r"*\\", out)
    out = re.sub(r"/(?=\*)", r"/\\", out)
    out = re.sub(r"\?(?=\?)", r"?\\", out)
    return re.sub(r"\\\\(\s*)\Z", r"\\134\1", out)


def _env(directory: Path | None = None) -> jinja2.Environment:
    """The templates' environment, for `templates/c` or another template directory."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory or template_dir())),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(cstring=c_string, ccomment=c_comment)
    env.tests.update(mapping=lambda v: isinstance(v, dict))
    return env


def class_macros(names: list[str]) -> list[str]:
    """Macro suffixes for the class names, unique: a tail that several classes share gets
    the class index (TAP_0, TAP_1), and one still taken (a class named "tap_1") a further
    counter (TAP_1_1, ...), until every suffix is distinct."""
    tails = [c_identifier(n) for n in names]
    taken = {t for t in tails if tails.count(t) == 1}
    out = []
    for i, t in enumerate(tails):
        if tails.count(t) > 1:
            t = candidate = f"{t}_{i}"
            n = 0
            while candidate in taken:
                n += 1
                candidate = f"{t}_{n}"
            t = candidate
            taken.add(t)
        out.append(t)
    return out


def check_class_names(names: list[str]) -> None:
    """Class names the C can hold (each as a string literal and a macro name): strings of
    at most MAX_CLASS_NAME characters, the model files' own limit (`ops.spec`)."""
    for i, n in enumerate(names):
        if not isinstance(n, str):
            raise TinyBNNError(f"class {i}: its name is a {type(n).__name__}, not a string")
        if len(n) > MAX_CLASS_NAME:
            raise TinyBNNError(
                f"class {i} ({n[:20]!r}...) has a name of {len(n)} characters; the generated "
                f"C takes names of at most {MAX_CLASS_NAME} characters"
            )


def render(cm: CModel) -> dict[str, str]:
    """File name -> text of the generated C."""
    env = _env()
    ctx = dict(
        m=cm,
        NAME=cm.name.upper(),
        name=cm.name,
        p=cm.program,
        class_macros=class_macros(cm.program.class_names),
        version=__version__,
        **cm.header,
    )
    header, source, kernels = (p.name for p in output_paths(Path(), cm.name))
    return {
        header: env.get_template("model.h.j2").render(ctx),
        source: env.get_template("model.c.j2").render(ctx),
        kernels: (template_dir() / KERNELS_HEADER).read_text(),
    }


C_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
MAX_NAME = 32  # characters of --name: its longest symbol, <name>_classify_static, takes 48
# C's standard headers: <name>.h must not shadow one for code built with -I <out dir>.
C_HEADERS = frozenset(
    "assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal "
    "stdalign stdarg stdatomic stdbool stddef stdint stdio stdlib stdnoreturn string tgmath "
    "threads time uchar wchar wctype".split()
)


def check_name(name: str) -> None:
    """Refuse a --name whose files, symbols, macros or include guard could clash or break
    the strict flags: it must be a short lower-case C identifier (so no reserved `_X` or
    `__` identifiers, and no two models whose names differ only in case), outside the
    kernels' `tb_`/`TB_` namespace, and not the stem of the kernels header or of a standard
    C header."""
    stem = Path(KERNELS_HEADER).stem
    if not isinstance(name, str) or not C_NAME.match(name):
        why = "a lower-case C identifier: a-z, 0-9 and _, starting with a letter"
    elif "__" in name or name.endswith("_"):
        why = "free of '__' and of a final '_' (C and C++ reserve such identifiers)"
    elif len(name) > MAX_NAME:
        why = f"at most {MAX_NAME} characters"
    elif name == "tb" or name.startswith("tb_"):
        why = "outside tb_, the kernels' prefix"
    elif name == stem:
        why = f"another name than {stem}, whose header holds the kernels"
    elif name in C_HEADERS:
        why = f"another name than a standard C header's ({name}.h)"
    else:
        return
    shown = repr(name) if len(repr(name)) <= 40 else repr(name)[:36] + "...'"
    raise TinyBNNError(f"--name {shown} must be {why}")


def output_paths(out_dir: Path, name: str) -> list[Path]:
    """The files `render` makes, in `out_dir`: `<name>.h`, `<name>.c`, the kernels header."""
    return [out_dir / f"{name}.h", out_dir / f"{name}.c", out_dir / KERNELS_HEADER]


def write(files: dict[str, str], out_dir: Path) -> list[Path]:
    """Write all files or none: render into a temporary directory, then move them in.

    A file name may hold subdirectories ("src/gesture.c", a package's layout): they are
    made inside `out_dir`, after every path has been checked."""
    if out_dir.exists() and not out_dir.is_dir():
        raise TinyBNNError(f"{out_dir}: is not a directory; give a directory for the C files")
    for fname in files:
        if (out_dir / fname).is_dir():
            raise TinyBNNError(f"{out_dir / fname}: is a directory; the C file cannot go there")
        for parent in Path(fname).parents:
            if (out_dir / parent).exists() and not (out_dir / parent).is_dir():
                raise TinyBNNError(f"{out_dir / parent}: is a file; a directory goes there")
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tinybnn-", dir=out_dir))
    try:
        for fname, text in files.items():
            (tmp / fname).parent.mkdir(parents=True, exist_ok=True)
            (tmp / fname).write_text(text)
        paths = []
        for fname in files:
            (out_dir / fname).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / fname, out_dir / fname)
            paths.append(out_dir / fname)
        return paths
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def header_info(source: Path | None, command: str | None) -> dict:
    """What the generated files record about where they came from."""
    return {
        "command": command if command is not None else "tinybnn.compile() from Python",
        "model_file": source.name if source is not None else "(a model object, not a file)",
        "sha256": hashlib.sha256(source.read_bytes()).hexdigest() if source is not None else "-",
    }
