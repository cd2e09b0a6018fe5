"""Instructions per inference without a toolchain: a linear model per stage, fitted on QEMU.

`estimate(model, core)` compiles the model as `tinybnn.firmware.profile.profile` does (the
core's own kernels, `optimize`), without writing or building anything, and estimates each
stage's instructions as a dot product of the stage's loop counts (`stage_features`) with
coefficients fitted on QEMU counts of that C function on that core (-O2). Which loop counts
a kernel's cost follows is code (`FEATURES`, read off the loops of `tinybnn_kernels.h`);
the coefficients are data (`costs.json`, written by `benchmarks/calibrate_costs.py` with the
tinybnn version, date and QEMU version they were fitted on). Its held-out errors per core
are in `benchmarks/results/costs.md`.

Non-goals: cycles (see `tinybnn.firmware.cycles`), other -O levels, streaming, and exact
counts: the kernels' instruction counts depend a little on the data (carries that stop
early, clamps), and GCC's unrolling on the shapes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import TinyBNNError
from ..nn import Sequential
from ..ops import sliced
from .codegen import CModel, CStage, build, header_info
from .contract import words
from .lowering import lower
from .program import Program
from .targets import core as check_core

COSTS_FILE = Path(__file__).with_name("costs.json")
CALL = "call"  # the key of the call overhead (up to the first stage) in costs.json

# The loop counts each C function's instructions follow, as its loops nest (the names are
# those of `stage_features`). A window is one conv position of one pooled output.
_CONV_OUT = ("one", "out_steps", "out_words")
_REF_WALK = (*_CONV_OUT, "out_channels", "window_channels", "channel_macs", "edge_channel_taps")
_XS_A = (
    "one",
    "out_steps",
    "out_blocks",
    "out_channels",
    "window_blocks",
    "pair_macs",
    "pair_loops",
    "rows",
    "row_pairs",
)
FEATURES: dict[str, tuple[str, ...]] = {
    # first layer: the input steps normalised once (values or subset tables), then per window
    "tb_iconv1d_sso_s16": (  # the pool's windows two at a time (tb_sso_bits)
        *_CONV_OUT,
        "pool_pair_words",
        "pool_pair_channels",
        "sso_lookups",
        "steps",
        "step_tables",
        "step_values",
    ),
    "tb_iconv1d_sst_s16": (
        *_CONV_OUT,
        "window_channels",
        "window_channel_taps",
        "step_tables",
        "step_values",
    ),
    # per window, channel and tap a row and a weight pointer (taps in the padding skipped),
    # then the c_in MACs unrolled
    "tb_iconv1d_xn_s16": (
        *_CONV_OUT,
        "window_channels",
        "window_channel_taps",
        "pad_channel_taps",
        "inside_channel_macs",
        "steps",
        "step_values",
    ),
    "tb_iconv1d_xm_s16": (*_CONV_OUT, "window_words", "window_blocks", "word_macs", "step_values"),
    "tb_iconv1d_xs_s16": (*_CONV_OUT, "window_words", "window_blocks", "pair_macs", "step_values"),
    # per output step and word, blocks of four channels: per window the block's k * c_in
    # words of four MACs, then each channel's sign
    "tb_iconv1d_xq_s16": (
        *_CONV_OUT,
        "out_blocks",
        "out_channels",
        "window_blocks",
        "word_macs",
        "step_values",
    ),
    "tb_iconv1d_s16": (*_CONV_OUT, "window_channels", "channel_macs", "edge_channel_taps"),
    # binary convolutions: subset tables (three input bits a lookup), bit-sliced, byte lanes
    "tb_bconv1d_vst_b32": (*_CONV_OUT, "window_words", "lookups", "sliced_sign", "edge_word_taps"),
    "tb_bconv1d_q8_vst_b32": (
        *_CONV_OUT,
        "window_words",
        "lookups",
        "edge_word_taps",
        "window_channels",
        "out_channels",
    ),
    "tb_bconv1d_vsl_b32": (
        *_CONV_OUT,
        "window_words",
        "hs_steps",
        "sliced_sign",
        "edge_word_taps",
    ),
    "tb_bconv1d_lanes_b32": (*_CONV_OUT, "window_channels", "xor_words", "edge_channel_taps"),
    "tb_bconv1d_b32": (*_CONV_OUT, "window_channels", "xor_words", "edge_channel_taps"),
    "tb_bconv1d_sum_lanes_b32": (
        *_CONV_OUT,
        "out_channels",
        "window_channels",
        "xor_words",
        "edge_channel_taps",
    ),
    "tb_bconv1d_q8_lanes_b32": (
        *_CONV_OUT,
        "out_channels",
        "window_channels",
        "xor_words",
        "edge_channel_taps",
    ),
    "tb_bresidual1d_lanes_s16": (
        *_CONV_OUT,
        "in_values",
        "out_channels",
        "window_channels",
        "xor_words",
        "edge_channel_taps",
    ),
    # int8 convolutions: rows of int16 pairs (SMLAD), or a window of words (MUL)
    "tb_i8conv1d_xs_b32": (*_CONV_OUT, "window_words", "window_blocks", "pair_macs", "row_pairs"),
    "tb_i8conv1d_xm_b32": (
        *_CONV_OUT,
        "windows",
        "window_values",
        "window_blocks",
        "word_macs",
    ),
    # one body (tb_i8aconv1d_xs), typed by its input and output: rows of pairs, then per
    # window and block of 4 channels the pairs (unrolled by 16 where registers allow)
    "tb_i8aconv1d_xs_q8_s8": _XS_A,
    "tb_i8aconv1d_xs_q8_b32": _XS_A,
    "tb_i8aconv1d_xs_s8": _XS_A,
    # the reference loops (optimize="size" where no fast variant serves): tb_conv1d_walk
    "tb_i8conv1d_b32": _REF_WALK,
    "tb_i8aconv1d_q8_s8": _REF_WALK,
    "tb_i8aconv1d_q8_b32": _REF_WALK,
    "tb_i8aconv1d_s8": _REF_WALK,
    "tb_bconv1d_q8_b32": _REF_WALK,
    "tb_bconv1d_sum_b32": _REF_WALK,
    # global sum pooling, the classifier (the last stage also holds the argmax)
    "tb_globalsum_vsl_b32": ("one", "in_words", "in_word_steps", "channels"),
    "tb_globalsum_b32": ("one", "channels", "in_values"),
    "tb_globalsum_s8": ("one", "channels", "in_values"),
    "tb_classifier_q8_s32": ("one", "classes", "class_inputs"),
    "tb_classifier_q8_b32": ("one", "classes", "class_inputs"),
    "tb_classifier_b_s32": ("one", "classes", "class_inputs"),
    "tb_classifier_b32": ("one", "classes", "class_words"),
    "tb_classifier_lanes_b32": ("one", "classes", "class_words"),
}


# C functions that share one loop body (inlined, typed by what they read and write): the
# loop counts of that body have one coefficient across them, fitted on all their stages
# together (benchmarks/calibrate_costs.py); their other features have one each.
SHARED: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "tb_i8aconv1d_xs": (
        ("tb_i8aconv1d_xs_q8_s8", "tb_i8aconv1d_xs_q8_b32", "tb_i8aconv1d_xs_s8"),
        ("window_blocks", "pair_macs", "pair_loops"),
    ),
    "tb_xorpop_lanes_b32": (
        (
            "tb_bconv1d_lanes_b32",
            "tb_bconv1d_sum_lanes_b32",
            "tb_bconv1d_q8_lanes_b32",
            "tb_bresidual1d_lanes_s16",
        ),
        ("xor_words",),
    ),
    "tb_i8aconv1d_acc_s8": (
        ("tb_i8aconv1d_q8_s8", "tb_i8aconv1d_s8"),
        ("channel_macs", "edge_channel_taps"),
    ),
}


def _conv_features(cs: CStage) -> dict[str, int]:
    """Loop counts of a convolution stage's window walk (`tb_conv1d_walk` and its fast
    variants): pooled outputs p, output words g, pool steps j, taps k, input words."""
    st = cs.stage
    c, t_in = st.in_shape
    o, tp = st.out_shape
    k, pad, stride, pk, ps = st.kernel_size, st.pad, st.stride, st.pool_k, st.pool_s
    ow, cw, blocks = words(o), words(c), (o + 3) // 4
    starts = [(p * ps + j) * stride - pad for p in range(tp) for j in range(pk)]
    tw = len(starts)  # windows: conv positions evaluated, pool steps included
    edge = sum(1 for t0 in starts if t0 < 0 or t0 + k > t_in)  # windows touching the padding
    pad_taps = sum(max(0, -t0) + max(0, t0 + k - t_in) for t0 in starts)  # taps in the padding
    steps = ((tp - 1) * ps + pk - 1) * stride + k  # input steps read, padding included
    half = (c + 1) // 2
    pairs = (k * c + 1) // 2 if cs.fields.get("flat") else k * half
    groups = len(sliced.vst_groups(c))
    k_bits = k * c
    lookups = cs.fields.get("lookups", k)
    unrolled = (pairs + 15) // 16 if pairs > 16 else 0  # GCC unroll 16: the loop's trips
    return dict(
        one=1,
        out_steps=tp,
        out_words=tp * ow,
        out_channels=tp * o,
        out_blocks=tp * blocks,
        windows=tw,
        pool_pair_words=tp * ow * ((pk + 1) // 2),
        pool_pair_channels=tp * o * ((pk + 1) // 2),
        window_words=tw * ow,
        window_channels=tw * o,
        window_channel_taps=tw * o * k,
        window_blocks=tw * blocks,
        window_values=tw * k * c,
        edge_word_taps=edge * ow * k,
        edge_channel_taps=edge * o * k,
        lookups=tw * ow * k * groups,
        sliced_sign=tw * ow * (sliced.slices(k_bits) - 4),
        hs_steps=tw * ow * k * ((c + 15) // 16),
        xor_words=tw * o * k * cw,
        channel_macs=tw * o * k * c,
        pad_channel_taps=pad_taps * o,
        inside_channel_macs=(tw * k - pad_taps) * o * c,
        word_macs=tw * blocks * k * c,
        pair_macs=tw * blocks * pairs,
        pair_loops=tw * blocks * unrolled,
        sso_lookups=tw * o * lookups,
        steps=steps,
        step_values=steps * c,
        step_tables=steps * (1 << c),  # subset tables: 2^c_in entries a step
        rows=t_in + 2 * pad,
        row_pairs=(t_in + 2 * pad) * half,
        in_values=t_in * c,
    )


def _pool_features(cs: CStage) -> dict[str, int]:
    c, t = cs.stage.in_shape
    return dict(one=1, channels=c, in_values=t * c, in_words=words(c), in_word_steps=t * words(c))


def _classifier_features(cs: CStage) -> dict[str, int]:
    st = cs.stage
    k = st.out_shape[0]
    return dict(
        one=1,
        classes=k,
        class_inputs=k * st.in_features,
        class_words=k * st.in_t * words(st.in_c),
    )


_FEATURES_OF = {
    "iconv1d": _conv_features,
    "bconv1d": _conv_features,
    "bconv1d_sum": _conv_features,
    "bconv1d_q8": _conv_features,
    "bresidual1d": _conv_features,
    "i8conv1d": _conv_features,
    "i8aconv1d": _conv_features,
    "globalsum": _pool_features,
    "classifier": _classifier_features,
}


def _where(cs: CStage) -> str:
    layers = cs.stage.layers
    span = f"layer {layers[0]}" if len(layers) == 1 else f"layers {layers[0]}-{layers[-1]}"
    return f"L{cs.index} {cs.kernel} ({span}, {cs.function})"


def stage_features(cs: CStage) -> dict[str, int]:
    """The loop counts of one compiled stage that `FEATURES` names (all of them)."""
    f = _FEATURES_OF.get(cs.kernel)
    if f is None:
        raise TinyBNNError(f"{_where(cs)}: tinybnn has no cost model of this stage kind")
    return f(cs)


@dataclass(frozen=True)
class StageCost:
    """One stage's estimate and what it was computed from."""

    index: int
    kernel: str  # e.g. "bconv1d", as ProfileReport's stages name it
    function: str  # the C function, the key of its coefficients
    output: str  # e.g. "64x32b", as ProfileReport's stages show it
    instructions: int
    features: dict[str, int]


@dataclass(frozen=True)
class CostEstimate:
    """Estimated instructions of one inference on one core (-O2, the core's kernels)."""

    core: str
    optimize: str
    stages: tuple[StageCost, ...]
    call_instructions: int  # up to the first stage, as ProfileReport.call_instructions

    @property
    def instructions(self) -> int:
        return self.call_instructions + sum(s.instructions for s in self.stages)


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise TinyBNNError(f"{path}: cannot read the cost coefficients ({e})") from None


def coefficients(path: str | Path | None = None) -> dict:
    """The fitted coefficients: {"meta": ..., "cores": {core: {function or "call": {
    "features": [...], "coef": [...], ...}}}} (`benchmarks/calibrate_costs.py` writes it)."""
    return _load(str(path or COSTS_FILE))


def _output(st) -> str:
    kind = "b" if st.out_kind == "bin" else f" {st.out_kind}"
    return "x".join(str(v) for v in st.out_shape[::-1]) + kind


def compiled_stages(
    model_or_program: Sequential | Program, core: str, optimize: str = "speed"
) -> list[CStage]:
    """The stages as `tinybnn.compile` emits them for `core`: each with its kernel variant."""
    check_core(core)
    program = model_or_program if isinstance(model_or_program, Program) else None
    if program is None:
        program = lower(model_or_program)
    return build(program, "model", header_info(None, None), core, optimize).stages


def predict(fit: dict, features: dict[str, int]) -> float:
    """A fitted linear model at `features`."""
    return sum(c * features[n] for n, c in zip(fit["features"], fit["coef"], strict=True))


def estimate(
    model_or_program: Sequential | Program | CModel,
    core: str = "cortex-m4",
    optimize: str = "speed",
    costs: str | Path | None = None,
) -> CostEstimate:
    """Estimate instructions per inference of `model_or_program` compiled for `core` (a
    `tinybnn.compiler.targets.CORES` name) with `optimize`, per stage and in total, as
    `tinybnn.firmware.profile.profile` would count them at -O2. Needs no toolchain.

    Raises a one-line TinyBNNError for an unknown core, or for a stage whose C function has
    no coefficients on that core (naming the stage, its layers and the core).
    A `CModel` (`codegen.build`) is estimated as it was compiled, on its own target and
    kernel variants (e.g. those a flash budget chose); `core` and `optimize` are then not
    read."""
    if isinstance(model_or_program, CModel):
        stages, core, optimize = (
            model_or_program.stages,
            model_or_program.target,
            model_or_program.optimize,
        )
        check_core(core)
    else:
        stages = compiled_stages(model_or_program, core, optimize)
    table = coefficients(costs)["cores"].get(core)
    if table is None:
        raise TinyBNNError(
            f"no cost coefficients for core {core}; run benchmarks/calibrate_costs.py"
        )
    out = []
    for cs in stages:
        fit = table.get(cs.function)
        if fit is None:
            raise TinyBNNError(
                f"{_where(cs)}: no cost coefficients for {cs.function} on {core}; "
                "run benchmarks/calibrate_costs.py with a model that uses it"
            )
        features = stage_features(cs)
        n = max(0, round(predict(fit, features)))
        out.append(StageCost(cs.index, cs.kernel, cs.function, _output(cs.stage), n, features))
    call = table[CALL]
    return CostEstimate(core, optimize, tuple(out), max(0, round(predict(call, {"one": 1}))))
