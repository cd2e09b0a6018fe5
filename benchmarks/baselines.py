"""The same architecture as a tinybnn model, emitted as conventional int8 and float32 C and
measured on Cortex-M cores under QEMU: the reference points of issue 6.

    from baselines import measure_baselines
    reports = measure_baselines(model, "cortex-m4")   # {"int8": ..., "float32": ...}

    .venv/bin/python benchmarks/baselines.py [--opt -O2] [--cores cortex-m0 cortex-m4 ...]

(the command measures the gesture model of benchmarks/profile_gesture.py and prints a table).

Each layer of the binarized model maps to the layer a user would otherwise deploy:
`InputConv1d` is a convolution on the normalised input ((x - offset_c) * multiplier_c, the
model's own normalisation; int8 quantizes it with one per-tensor scale), `BinaryConv1d` the
same convolution on activations (zero padding), `BatchNormSign` is BatchNorm folded into the
preceding convolution or dense layer, then ReLU (a `MaxPool1d` between them pools the ReLU
output instead, as a converted model would), `MaxPool1d` and `GlobalPool1d("max")` max
pooling, `GlobalPool1d("sum")` average pooling, `Flatten` nothing ([T][C] is already flat),
`BinaryLinear` and `Int8Linear` fully connected layers; the last one outputs the scores.
RPReLU and learned thresholds are left out. Any other layer is a ValueError.

Weights are the model's float latent weights; BatchNorm statistics are re-estimated on the
measured window (the latent weights give other pre-activations than the binarized ones).
int8 is TensorFlow Lite Micro's scheme: symmetric per-output-channel int8 weights, int32
biases, per-tensor activation scales calibrated on the same window (ReLU outputs with zero
point -128), gemmlowp fixed-point requantization, int32 scores from the classifier. The
kernels (`baselines_c/kernels_int8.h`, `kernels_f32.h`) are plain loops as in TFLM's
reference kernels: int32 (float) accumulators, no SIMD intrinsics, weights `static const`
in flash, activations in two static ping-pong buffers, layout [T][C]. float32 runs on the
FPU of the M4 and M7 builds and on libgcc's soft float on the M0.

Before anything is counted, the firmware's outputs are compared with a numpy reference on
the same window: int8 bit for bit, float32 exactly (the reference sums in the C's order and
the C is built with -ffp-contract=off). Each kind is built twice, as `tinybnn.firmware.profile` does:
as it ships (flash, RAM, stack, the check) and with a marker before each layer (instruction
counts; the markers add 16-32 B of code, not counted). Flash = the `bl_` code and
constants plus the libgcc helpers they call; RAM = the ping-pong buffers + the painted stack
of one inference (the driver's window and output arrays are not counted).

The M0's QEMU board (micro:bit) has 16 KiB of RAM, 4 KiB of it the stack. A network that
does not fit (the gesture model in float32 needs 24 KiB of activations) is reported with
`fits=False` and run as the same ARMv6-M code (-mcpu=cortex-m0) on the Cortex-M3 board:
the instructions executed are the same.

Non-goals: timing (instructions are not cycles), CMSIS-NN's optimised kernels, accuracy.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import jinja2
import numpy as np

from tinybnn import firmware
from tinybnn.compiler.lowering import lower
from tinybnn.firmware import profile as tp
from tinybnn.nn import (
    BatchNormSign,
    BinaryConv1d,
    BinaryLinear,
    Flatten,
    GlobalPool1d,
    InputConv1d,
    Int8Linear,
    MaxPool1d,
    Sequential,
    describe,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from profile_gesture import gesture_model, table  # noqa: E402

C_DIR = Path(__file__).resolve().parent / "baselines_c"
KINDS = ("int8", "float32")
CORES = ["cortex-m0", "cortex-m4", "cortex-m7"]
FLOAT_CFLAGS = ("-ffp-contract=off",)
PREFIX = "bl_"  # every symbol of the emitted network
SMALL_RAM = ("cortex-m0", "cortex-m0plus")  # the micro:bit board: 16 KiB of RAM
BIG_RAM = "cortex-m3"  # a board with 4 MiB of RAM and no FPU, for ARMv6-M code too big


@dataclass(frozen=True)
class LayerCount:
    """One layer of one inference: e.g. "conv k5 6->32", its MACs, its instructions."""

    label: str
    macs: int
    instructions: int


@dataclass(frozen=True)
class BaselineReport:
    """One inference of one emission on one core, checked against the numpy reference.

    `instructions` includes the call overhead before the first layer (`call_instructions`);
    the last layer's count includes the return. flash = code + constants (the `bl_`
    functions, the libgcc helpers they call; weights and other arrays, .data if any);
    ram = arena (the two ping-pong buffers) + .data (none so far) + stack (painted, below
    the caller's frame).
    """

    kind: str
    core: str
    opt: str
    fits: bool  # False: overflows the M0 board's 16 KiB RAM; ran on the M3 board (same code)
    instructions: int
    call_instructions: int
    layers: list[LayerCount]
    flash_bytes: int
    code_bytes: int
    constants_bytes: int
    ram_bytes: int
    arena_bytes: int
    stack_bytes: int

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)


# ---------------------------------------------------------------------------------------
# The conventional network, in float.


@dataclass
class Op:
    """One conventional layer on [T][C] activations: input, conv, fc, maxpool or avgpool.

    conv and fc weights are [C_out][K][C_in] (fc: K = 1, C_in = all its inputs); the
    classifier (`last`) has no ReLU. input computes (x - offset_c) * multiplier_c * 2^-shift.
    """

    kind: str
    label: str
    out_shape: tuple[int, int]  # (T, C)
    in_shape: tuple[int, int] = (0, 0)  # set by `conventional`
    w: np.ndarray | None = None
    b: np.ndarray | None = None
    k: int = 1
    stride: int = 1
    pad: int = 0
    relu: bool = False
    last: bool = False
    offset: np.ndarray | None = None
    multiplier: np.ndarray | None = None
    shift: int = 0

    @property
    def macs(self) -> int:
        return 0 if self.w is None else self.out_shape[0] * self.w.size


def _relu(a: np.ndarray) -> np.ndarray:
    return np.where(a > 0, a, a.dtype.type(0))


def _weighted_f(x: np.ndarray, op: Op, dtype) -> np.ndarray:
    """conv or fc as the C loop sums: taps, then input channels, then the bias; vectorised
    over output positions and channels. Skipped padding taps add nothing, zeros here."""
    t_out, c_out = op.out_shape
    x = x.reshape(-1, op.w.shape[2])
    xp = np.zeros((x.shape[0] + 2 * op.pad, x.shape[1]), dtype)
    xp[op.pad : op.pad + x.shape[0]] = x
    w = op.w.astype(dtype)
    acc = np.zeros((t_out, c_out), dtype)
    for k in range(op.k):
        rows = xp[k : k + op.stride * (t_out - 1) + 1 : op.stride]
        for i in range(x.shape[1]):
            acc += rows[:, i, None] * w[None, :, k, i]
    acc = acc + op.b.astype(dtype)
    return _relu(acc) if op.relu else acc


def _maxpool(x: np.ndarray, op: Op) -> np.ndarray:
    return np.stack(
        [x[t * op.stride : t * op.stride + op.k].max(0) for t in range(op.out_shape[0])]
    )


def apply_float(op: Op, x: np.ndarray, dtype) -> np.ndarray:
    """One layer in `dtype`; in float32 these are the C's values exactly."""
    if op.kind == "input":
        scale = (op.multiplier * 2.0**-op.shift).astype(dtype)
        return (x.astype(np.int64) - op.offset).astype(dtype) * scale
    if op.kind in ("conv", "fc"):
        return _weighted_f(x, op, dtype)
    if op.kind == "maxpool":
        return _maxpool(x, op)
    acc = np.zeros(x.shape[1], dtype)  # avgpool: sum over time in order, then divide by T
    for row in x:
        acc += row
    return (acc / dtype(x.shape[0]))[None]


def _fold_batchnorm(op: Op, bn: BatchNormSign, z: np.ndarray) -> None:
    """Fold BatchNorm into op's weights and bias, then ReLU. The statistics are those of the
    pre-activations z [T, C]: over time, or over all channels for a dense layer's one
    position."""
    axis = None if z.shape[0] == 1 else 0
    mean, var = z.mean(axis), z.var(axis)
    gamma = bn.bn.weight.detach().double().numpy()
    beta = bn.bn.bias.detach().double().numpy()
    scale = gamma / np.sqrt(var + bn.eps)
    op.w = op.w * scale[:, None, None]
    op.b = beta - mean * scale
    op.relu = True


def _weighted_op(layer, shape: tuple[int, int], flat_from: tuple[int, int] | None) -> Op:
    """The conv or fc op of a convolution or dense layer on activations of `shape` (T, C),
    before BatchNorm is folded in."""
    t, c = shape
    w = layer.weight.detach().double().numpy()
    if isinstance(layer, (InputConv1d, BinaryConv1d)):
        t_out = (t + 2 * layer.pad - layer.kernel_size) // layer.stride + 1
        o = layer.out_channels
        return Op(
            "conv",
            f"conv k{layer.kernel_size} {c}->{o}",
            (t_out, o),
            w=w.transpose(0, 2, 1),
            b=np.zeros(o),
            k=layer.kernel_size,
            stride=layer.stride,
            pad=layer.pad,
        )
    if flat_from is not None:  # PyTorch flattens [C, T] as c * T + t; [T][C] as t * C + c
        ft, fc = flat_from
        w = w.reshape(len(w), fc, ft).transpose(0, 2, 1).reshape(len(w), -1)
    b = np.zeros(len(w)) if layer.bias is None else layer.bias.detach().double().numpy()
    last = layer.bias is not None  # a classifier ends the model
    return Op("fc", f"fc {w.shape[1]}->{len(w)}", (1, len(w)), w=w[:, None, :], b=b, last=last)


def _pool_op(layer, shape: tuple[int, int]) -> Op:
    t, c = shape
    if isinstance(layer, MaxPool1d):
        t_out = (t - layer.kernel_size) // layer.stride + 1
        return Op(
            "maxpool",
            f"maxpool k{layer.kernel_size}",
            (t_out, c),
            k=layer.kernel_size,
            stride=layer.stride,
        )
    if layer.mode == "max":
        return Op("maxpool", f"global maxpool {t}", (1, c), k=t, stride=t)
    return Op("avgpool", f"global avgpool {t}", (1, c))


SUPPORTED = (
    InputConv1d,
    BinaryConv1d,
    BinaryLinear,
    Int8Linear,
    BatchNormSign,
    MaxPool1d,
    GlobalPool1d,
    Flatten,
)


def check_supported(model: Sequential) -> None:
    """Raise ValueError naming the first layer that has no conventional counterpart."""
    for i, layer in enumerate(model.layers):
        if not isinstance(layer, SUPPORTED):
            raise ValueError(f"{describe(i, layer)}: no int8/float32 counterpart in the baselines")


def conventional(model: Sequential, x: np.ndarray) -> list[Op]:
    """The model's architecture as conventional float layers, for window x int16 [T, C]
    (which sets the BatchNorm statistics). Raises ValueError for a layer it cannot map.

    `Sequential` has checked the order already: input_conv1d first; a batchnorm_sign, maybe
    after max pools, after each convolution and hidden dense layer; a classifier last."""
    check_supported(model)
    layers = list(model.layers)
    first = layers[0]
    t, c = x.shape
    ops = [
        Op(
            "input",
            f"input {c}x{t}",
            (t, c),
            (t, c),
            offset=first.offset.numpy(),
            multiplier=first.multiplier.numpy(),
            shift=int(first.shift),
        )
    ]
    a = apply_float(ops[0], x, np.float64)
    flat_from = None
    i = 0
    while i < len(layers):
        layer, i = layers[i], i + 1
        if isinstance(layer, (InputConv1d, BinaryConv1d, BinaryLinear, Int8Linear)):
            op = _weighted_op(layer, a.shape, flat_from)
            flat_from, steps = None, [op]
            if not op.last:  # BatchNorm (possibly after max pools) folds into op
                while i < len(layers) and isinstance(layers[i], MaxPool1d):
                    steps.append(layers[i])
                    i += 1
                _fold_batchnorm(op, layers[i], apply_float(op, a, np.float64))
                i += 1
        elif isinstance(layer, (MaxPool1d, GlobalPool1d)):
            steps = [layer]
        else:  # Flatten: the next dense layer reads [T][C] in order
            flat_from, steps = a.shape, []
        for step in steps:
            op = step if isinstance(step, Op) else _pool_op(step, a.shape)
            op.in_shape = a.shape
            a = apply_float(op, a, np.float64)
            ops.append(op)
    return ops


# ---------------------------------------------------------------------------------------
# int8: quantization and its integer reference.


@dataclass
class QOp:
    """An op's int8 parameters: input offset (-zero point), output zero point, int8 weights,
    int32 biases, requantization multipliers and shifts (per channel, or one)."""

    op: Op
    in_off: int = 0
    out_zp: int = 0
    w: np.ndarray | None = None
    b: np.ndarray | None = None
    mult: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))
    shift: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))


def quantize_multiplier(m: float) -> tuple[int, int]:
    """m = mult * 2^(shift - 31) with mult a Q31 in [2^30, 2^31), as TFLite's QuantizeMultiplier."""
    if m <= 0:
        return 0, 0
    frac, shift = math.frexp(m)
    mult = round(frac * 2**31)
    if mult == 2**31:
        mult, shift = mult // 2, shift + 1
    return (0, 0) if shift < -31 else (mult, shift)


def _multipliers(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [quantize_multiplier(float(m)) for m in np.atleast_1d(real)]
    return np.array([p[0] for p in pairs], np.int64), np.array([p[1] for p in pairs], np.int64)


def requantize(x: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """bl_requantize of kernels_int8.h, elementwise on int64 arrays (channels last)."""
    left = np.maximum(shift, 0)
    limit = (2**31 - 1) >> left
    top = 2**31 - 1
    scaled = np.where(x > limit, top, np.where(x < -limit, -top, x * (1 << left)))
    right = np.maximum(-shift, 0)
    ab = scaled * mult
    s = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    high = np.where(s >= 0, s >> 31, -((-s) >> 31))
    mask = (1 << right) - 1
    return (high >> right) + ((high & mask) > (mask >> 1) + (high < 0))


def _sat8(v: np.ndarray) -> np.ndarray:
    return np.clip(v, -128, 127)


def quantize(ops: list[Op], acts: list[np.ndarray]) -> list[QOp]:
    """int8 parameters from the float ops and their float outputs on the window (post-
    training calibration): per-tensor activation scales, per-channel weight scales."""
    qops = []
    scale = zp = 0
    for op, a in zip(ops, acts, strict=True):
        top = float(np.abs(a).max()) or 1.0
        if op.kind == "input":
            q = QOp(op)
            q.mult, q.shift = _multipliers(np.array(2.0**-op.shift / (top / 127)))
            scale, zp = top / 127, 0
        elif op.kind in ("conv", "fc"):
            top_w = np.abs(op.w).reshape(len(op.w), -1).max(1)
            sw = np.where(top_w > 0, top_w, 1.0) / 127  # a zero channel (gamma 0): any scale
            out_scale = top / 255
            q = QOp(
                op,
                in_off=-zp,
                out_zp=0 if op.last else -128,
                w=np.clip(np.round(op.w / sw[:, None, None]), -127, 127).astype(np.int64),
                b=np.clip(np.round(op.b / (scale * sw)), -(2**31), 2**31 - 1).astype(np.int64),
            )
            q.mult, q.shift = _multipliers(scale * sw / out_scale)
            scale, zp = out_scale, -128
        elif op.kind == "avgpool":  # same quantization in and out
            q = QOp(op, out_zp=zp)
            q.mult, q.shift = _multipliers(np.array(1.0 / op.in_shape[0]))
        else:
            q = QOp(op, out_zp=zp)
        qops.append(q)
    return qops


def apply_int8(q: QOp, x: np.ndarray) -> np.ndarray:
    """One layer of the int8 network, exactly as kernels_int8.h computes it (int64 here)."""
    op = q.op
    if op.kind == "input":
        v = (x.astype(np.int64) - op.offset) * op.multiplier
        return _sat8(requantize(v, q.mult, q.shift))
    if op.kind in ("conv", "fc"):
        x = x.reshape(-1, op.w.shape[2]).astype(np.int64) + q.in_off
        xp = np.zeros((x.shape[0] + 2 * op.pad, x.shape[1]), np.int64)  # skipped taps
        xp[op.pad : op.pad + x.shape[0]] = x
        t_out = op.out_shape[0]
        acc = sum(
            xp[k : k + op.stride * (t_out - 1) + 1 : op.stride] @ q.w[:, k, :].T
            for k in range(op.k)
        )
        acc = acc + q.b
        if np.abs(acc).max() >= 2**31:
            raise ValueError(f"int8 baseline: {op.label} overflows its int32 accumulator")
        return acc if op.last else _sat8(requantize(acc, q.mult, q.shift) + q.out_zp)
    if op.kind == "maxpool":
        return _maxpool(x, op)
    return _sat8(requantize(x.astype(np.int64).sum(0, keepdims=True), q.mult, q.shift))


# ---------------------------------------------------------------------------------------
# Emitting C.


@dataclass(frozen=True)
class Emission:
    """An emitted network: bl_net.c (which includes only <stdint.h> and the harness's
    tb_markers.h), bl_vectors.h for baselines_c/driver.c, and the numpy reference's outputs
    on the window."""

    kind: str
    source: str
    vectors: str
    expected: np.ndarray  # int32 scores (int8) or float32 scores (float32)
    layers: list[tuple[str, int]]  # (label, MACs) per layer, in order


_VECTORS_H = """\
/* bl_vectors.h - the window and the expected outputs of a {kind} baseline. */
#ifndef BL_VECTORS_H
#define BL_VECTORS_H

#include <stdint.h>

#define BL_OUT_T {out_t}
#define BL_NUM_OUT {n}

/* int16 [{t}][{c}] */
static const int16_t tb_window[{size}] = {{
{window}
}};

/* the numpy reference's outputs ({what}) */
static const int32_t tb_expected_bits[BL_NUM_OUT] = {{
{expected}
}};

#endif
"""


def _c_values(values, fmt=str) -> str:
    items = [fmt(v) for v in np.asarray(values).ravel()]
    return "\n".join("    " + ", ".join(items[i : i + 12]) + "," for i in range(0, len(items), 12))


def _c_float(v) -> str:
    return float(v).hex() + "f"  # exact


def _array(name: str, ctype: str, values) -> dict:
    values = np.asarray(values)
    fmt = _c_float if ctype == "float" else str
    return {"name": name, "ctype": ctype, "size": values.size, "data": _c_values(values, fmt)}


def _int8_call(j: int, q: QOp, src: str, dst: str) -> tuple[str, list[dict]]:
    """Layer j of the int8 network: its kernel call and its arrays."""
    op, n = q.op, f"bl_l{j}"
    (t_in, c_in), (t_out, c_out) = op.in_shape, op.out_shape
    if op.kind == "input":
        arrays = [
            _array(f"{n}_offset", "int32_t", op.offset),
            _array(f"{n}_scale", "int32_t", op.multiplier),
        ]
        args = f"{t_in}, {c_in}, {n}_offset, {n}_scale, {q.mult[0]}, {q.shift[0]}"
        return f"bl_input_s8({src}, {args}, {dst})", arrays
    if op.kind == "maxpool":
        return f"bl_maxpool_s8({src}, {c_in}, {op.k}, {op.stride}, {t_out}, {dst})", []
    if op.kind == "avgpool":
        return f"bl_avgpool_s8({src}, {t_in}, {c_in}, {q.mult[0]}, {q.shift[0]}, {dst})", []
    arrays = [_array(f"{n}_w", "int8_t", q.w), _array(f"{n}_b", "int32_t", q.b)]
    n_in = q.w.shape[2]
    if op.last:
        return f"bl_fc_s8_scores({src}, {n_in}, {q.in_off}, {n}_w, {n}_b, {c_out}, {dst})", arrays
    arrays += [_array(f"{n}_mult", "int32_t", q.mult), _array(f"{n}_shift", "int32_t", q.shift)]
    params = f"{n}_w, {n}_b, {n}_mult, {n}_shift"
    if op.kind == "fc":
        return f"bl_fc_s8({src}, {n_in}, {q.in_off}, {params}, {c_out}, {q.out_zp}, {dst})", arrays
    geometry = f"{op.k}, {op.stride}, {op.pad}, {c_out}, {t_out}"
    call = f"bl_conv_s8({src}, {t_in}, {c_in}, {q.in_off}, {params}, {geometry}, {q.out_zp}, {dst})"
    return call, arrays


def _float_call(j: int, op: Op, src: str, dst: str) -> tuple[str, list[dict]]:
    """Layer j of the float32 network: its kernel call and its arrays."""
    n = f"bl_l{j}"
    (t_in, c_in), (t_out, c_out) = op.in_shape, op.out_shape
    if op.kind == "input":
        scale = (op.multiplier * 2.0**-op.shift).astype(np.float32)
        arrays = [_array(f"{n}_offset", "int32_t", op.offset), _array(f"{n}_scale", "float", scale)]
        return f"bl_input_f32({src}, {t_in}, {c_in}, {n}_offset, {n}_scale, {dst})", arrays
    if op.kind == "maxpool":
        return f"bl_maxpool_f32({src}, {c_in}, {op.k}, {op.stride}, {t_out}, {dst})", []
    if op.kind == "avgpool":
        return f"bl_avgpool_f32({src}, {t_in}, {c_in}, {dst})", []
    arrays = [
        _array(f"{n}_w", "float", op.w.astype(np.float32)),
        _array(f"{n}_b", "float", op.b.astype(np.float32)),
    ]
    if op.kind == "fc":
        call = f"bl_fc_f32({src}, {op.w.shape[2]}, {n}_w, {n}_b, {c_out}, {int(op.relu)}, {dst})"
        return call, arrays
    geometry = f"{op.k}, {op.stride}, {op.pad}, {c_out}, {t_out}"
    return f"bl_conv_f32({src}, {t_in}, {c_in}, {n}_w, {n}_b, {geometry}, {dst})", arrays


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(C_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def window(model: Sequential, x: np.ndarray | None = None) -> np.ndarray:
    """The measured window as int16 [T, C]: x (int16 [C, T]) or `tinybnn.firmware.profile`'s default."""
    check_supported(model)  # before lowering, which rejects unknown layers less clearly
    if x is None:
        x = tp.default_window(lower(model))[0]
    x = np.asarray(x)
    if x.shape != model.input_shape:
        raise ValueError(
            f"the window is {list(x.shape)}, the model takes {list(model.input_shape)}"
        )
    return x.astype(np.int16).T


def emit_c(model: Sequential, kind: str, x: np.ndarray | None = None) -> Emission:
    """The `kind` ("int8" or "float32") network of `model`'s architecture as C, calibrated
    and checked on window x int16 [C, T] (default: `tinybnn.firmware.profile.default_window`)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    xt = window(model, x)
    ops = conventional(model, xt)
    acts, a = [], xt
    for op in ops:
        a = apply_float(op, a, np.float32)
        acts.append(a)
    if kind == "float32":
        expected = acts[-1].ravel()
        layers = ops
    else:
        qops = quantize(ops, acts)
        a = xt
        for q in qops:
            a = apply_int8(q, a)
        expected = a.ravel().astype(np.int32)
        layers = qops
    calls, arrays = [], []
    last = len(ops) - 1
    for j, layer in enumerate(layers):
        src = "x" if j == 0 else f"bl_act{(j - 1) % 2}"
        dst = "out" if j == last else f"bl_act{j % 2}"
        code, own = (_int8_call if kind == "int8" else _float_call)(j, layer, src, dst)
        calls.append({"label": ops[j].label, "code": code})
        arrays += own
    sizes = [[int(np.prod(op.out_shape)) for op in ops[p:last:2]] for p in (0, 1)]
    source = (
        _environment()
        .get_template("net.c.j2")
        .render(
            kind=kind,
            kernels="kernels_int8.h" if kind == "int8" else "kernels_f32.h",
            t_in=xt.shape[0],
            c_in=xt.shape[1],
            arrays=arrays,
            act_t="int8_t" if kind == "int8" else "float",
            out_t="int32_t" if kind == "int8" else "float",
            act0=max(sizes[0], default=1),
            act1=max(sizes[1], default=1),
            calls=calls,
        )
    )
    bits = expected if kind == "int8" else expected.astype(np.float32).view(np.int32)
    vectors = _VECTORS_H.format(
        kind=kind,
        out_t="int32_t" if kind == "int8" else "float",
        n=len(expected),
        t=xt.shape[0],
        c=xt.shape[1],
        size=xt.size,
        window=_c_values(xt),
        what="int32 scores" if kind == "int8" else "float32 scores, as bits",
        expected=_c_values(bits),
    )
    return Emission(kind, source, vectors, expected, [(op.label, op.macs) for op in ops])


# ---------------------------------------------------------------------------------------
# Measuring on a core.


class BaselineCheckFailed(AssertionError):
    """The firmware's outputs differ from the numpy reference's (or it did not run cleanly)."""


def _build(c_dir: Path, core: str, out_dir: Path, opt: str, kind: str, profiled: bool):
    """The firmware for `core`, and the core whose QEMU board runs it: `core`, or when the
    network overflows the micro:bit's 16 KiB of RAM (the M0's board), the same -mcpu code
    linked for the Cortex-M3 board (4 MiB), which executes the same instructions."""
    flags = FLOAT_CFLAGS if kind == "float32" else ()
    sources = [C_DIR / "driver.c", c_dir / "bl_net.c"]
    defines = ["TB_PROFILE"] if profiled else []
    try:
        elf = firmware.build(sources, [c_dir], core, out_dir, opt, defines, flags)
        return elf, core
    except firmware.BuildError as e:
        if core not in SMALL_RAM or "region `RAM' overflowed" not in str(e):
            raise
    flags = (*flags, f"-mcpu={core}")  # the last -mcpu wins over the M3's
    return firmware.build(sources, [c_dir], BIG_RAM, out_dir, opt, defines, flags), BIG_RAM


def _run(elf: Path, core: str, kind: str, plugin_out: Path | None = None) -> firmware.RunResult:
    result = firmware.run(elf, core, timeout_s=600, plugin_out=plugin_out)
    if result.status != 0 or "OK" not in result.output:
        said = " ".join(result.output.split())
        raise BaselineCheckFailed(f"{kind} baseline on {core}: status {result.status}: {said}")
    return result


def _sizes(elf: Path) -> dict[str, int]:
    """Bytes of the bl_ symbols per section, with the libgcc helpers they call as text."""
    syms = firmware.symbols(elf)
    own = [s for s in syms if s.name.startswith(PREFIX)]
    helpers = tp._libgcc_helpers(elf, {s.name for s in own if s.section == "text"})
    own += [s for s in syms if s.name in helpers and s.section == "text"]
    return {
        sec: sum(s.size for s in own if s.section == sec)
        for sec in ("text", "rodata", "data", "bss")
    }


def _measure_kind(em: Emission, core: str, opt: str, wd: Path) -> BaselineReport:
    """Build and run one emission twice (as it ships; with markers) and report it."""
    c_dir = wd / em.kind
    c_dir.mkdir(parents=True, exist_ok=True)
    (c_dir / "bl_net.c").write_text(em.source)
    (c_dir / "bl_vectors.h").write_text(em.vectors)
    plain, board = _build(c_dir, core, c_dir / "plain", opt, em.kind, profiled=False)
    output = _run(plain, board, em.kind).output
    marked, marked_board = _build(c_dir, core, c_dir / "marked", opt, em.kind, profiled=True)
    counts = _run(marked, marked_board, em.kind, c_dir / "counts.txt").counts or []
    stack = re.search(r"^STACK run=(\d+)$", output, re.MULTILINE)
    if stack is None or len(counts) != len(em.layers) + 1:
        raise BaselineCheckFailed(
            f"{em.kind} baseline on {core}: {len(counts)} counts for {len(em.layers)} layers, "
            f"output {output!r}"
        )
    sizes = _sizes(plain)
    code, constants = sizes["text"], sizes["rodata"] + sizes["data"]
    arena, stack_bytes = sizes["bss"], int(stack.group(1))
    return BaselineReport(
        kind=em.kind,
        core=core,
        opt=opt,
        fits=board == core,
        instructions=sum(counts),
        call_instructions=counts[0],
        layers=[
            LayerCount(label, macs, n)
            for (label, macs), n in zip(em.layers, counts[1:], strict=True)
        ],
        flash_bytes=code + constants,
        code_bytes=code,
        constants_bytes=constants,
        ram_bytes=arena + sizes["data"] + stack_bytes,
        arena_bytes=arena,
        stack_bytes=stack_bytes,
    )


def measure_baselines(
    model: Sequential,
    core: str,
    opt: str = "-O2",
    work_dir: Path | None = None,
    x: np.ndarray | None = None,
) -> dict[str, BaselineReport]:
    """Emit `model`'s architecture as int8 and float32 C, run each on `core` under QEMU on
    window x int16 [C, T] (default: `tinybnn.firmware.profile.default_window`, as `profile` uses),
    check it against the numpy reference and measure it: {"int8": ..., "float32": ...}.

    The C and the firmware go to `work_dir` (default: a temporary directory). Raises
    ValueError for a layer with no counterpart, BaselineCheckFailed when the firmware's
    outputs differ, `tinybnn.firmware.FirmwareError` when it does not build or run."""
    with tp._directory(work_dir, "tinybnn-baselines-") as wd:
        return {
            kind: _measure_kind(emit_c(model, kind, x), core, opt, wd / f"{core}{opt}")
            for kind in KINDS
        }


# ---------------------------------------------------------------------------------------
# The command: the gesture model on each core.


def markdown(reports: dict[str, dict[str, BaselineReport]]) -> str:
    """Per inference (instructions, flash, RAM) and per layer, for each core and kind."""
    rows = [
        [
            core,
            r.kind,
            f"{r.instructions:,}",
            f"{r.instructions / r.macs:.2f}",
            r.flash_bytes,
            r.ram_bytes if r.fits else f"{r.ram_bytes} (does not fit)",
        ]
        for core, by_kind in reports.items()
        for r in by_kind.values()
    ]
    lines = table(["core", "kind", "instructions", "per MAC", "flash B", "RAM B"], rows)
    first = next(iter(reports.values()))["int8"]
    columns = [(core, kind) for core in reports for kind in KINDS]
    rows = [
        [layer.label, f"{layer.macs:,}"]
        + [f"{reports[core][kind].layers[i].instructions:,}" for core, kind in columns]
        for i, layer in enumerate(first.layers)
    ]
    header = ["layer", "MACs"] + [f"{core} {kind}" for core, kind in columns]
    return "\n".join(lines + [""] + table(header, rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opt", choices=tp.OPT_LEVELS, default="-O2")
    parser.add_argument("--cores", nargs="+", default=CORES, choices=CORES)
    args = parser.parse_args(argv)
    model = gesture_model()
    print(markdown({core: measure_baselines(model, core, args.opt) for core in args.cores}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
