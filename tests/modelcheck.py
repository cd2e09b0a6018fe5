"""Shared helpers for the compile tests: seeded models, realistic signals, exact comparison.

`check_model` is the one place where PyTorch, the integer reference and the host C meet:
every stage's output is compared with PyTorch's eval-mode output of the same layer, and the
C's scores and classes with the reference's, with exact equality.
"""

from __future__ import annotations

import shutil

import numpy as np
import torch

from tinybnn.compiler import reference
from tinybnn.compiler.api import compile
from tinybnn.compiler.lowering import lower
from tinybnn.compiler.program import Program
from tinybnn.firmware import host
from tinybnn.nn import BatchNormSign, BinaryLinear, InputConv1d, Int8Linear, Sequential
from tinybnn.ops.codes import CodesOut


def assert_exact(what: str, got: np.ndarray, want: np.ndarray) -> None:
    """Exact equality; on a mismatch, name what, the first index and both values."""
    got, want = np.asarray(got), np.asarray(want)
    if got.shape != want.shape:
        raise AssertionError(f"{what}: shape {got.shape} != expected {want.shape}")
    bad = np.argwhere(got != want)
    if len(bad):
        idx = tuple(int(i) for i in bad[0])
        raise AssertionError(
            f"{what}: {len(bad)} mismatches; first at index {idx}: got {got[idx]}, expected {want[idx]}"
        )


def signals(n: int, channels: int, length: int, seed: int) -> np.ndarray:
    """Realistic int16 sensor windows [N, C, T]: gravity offset, motion, a tap, noise,
    occasional saturation."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    x = np.empty((n, channels, length))
    for i in range(n):
        base = rng.uniform(-8000, 8000, (channels, 1))
        freq = rng.uniform(0.01, 0.2, (channels, 1))
        motion = rng.uniform(500, 6000, (channels, 1)) * np.sin(
            2 * np.pi * freq * t + rng.uniform(0, 6, (channels, 1))
        )
        tap = np.zeros((channels, length))
        at = rng.integers(0, length)
        tap[:, at : at + 3] = rng.uniform(-30000, 30000, (channels, 1))
        x[i] = base + motion + tap + rng.normal(0, 300, (channels, length))
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def random_inputs(n: int, channels: int, length: int, seed: int) -> np.ndarray:
    """Uniform int16 windows, including the extremes of the range."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-32768, 32768, (n, channels, length)).astype(np.int16)
    x[0, :, : length // 2] = -32768
    x[-1, :, length // 2 :] = 32767
    return x


@torch.no_grad()
def calibrate(model: Sequential, x: np.ndarray, seed: int) -> Sequential:
    """Give a model realistic, varied statistics: input normalisation and BatchNorm running
    stats from data, then gammas of both signs (one zero), shifted betas, RSign thresholds
    and integer biases from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    xt = torch.tensor(x, dtype=torch.float32)
    first = model.layers[0]
    if isinstance(first, InputConv1d):
        first.fit_normalization(xt)
    bns = [m for m in model.modules() if isinstance(m, BatchNormSign)]  # blocks' too
    for bn in bns:
        bn.bn.momentum = None  # cumulative average: running stats = this batch's stats
        bn.bn.reset_running_stats()
    model.train()
    model(xt)
    for bn in bns:
        c = bn.num_features
        bn.bn.weight.copy_(torch.rand(c, generator=g) * 2 - 0.5)
        bn.bn.weight[c // 2] = 0.0
        bn.bn.bias.copy_(torch.randn(c, generator=g) * 0.5)
        if bn.rsign is not None:
            bn.rsign.threshold.copy_(torch.randn(c, generator=g) * 0.3)
        if bn.rprelu is not None:
            bn.rprelu.shift_in.copy_(torch.randn(c, generator=g) * 0.3)
            bn.rprelu.shift_out.copy_(torch.randn(c, generator=g) * 0.3)
            bn.rprelu.slope.copy_(torch.rand(c, generator=g))
    for m in model.layers:
        if isinstance(m, (BinaryLinear, Int8Linear)) and m.bias is not None:
            m.bias.copy_(torch.randn(m.out_features, generator=g) * 20)
    return model.eval()


def compilers() -> list[tuple[str, list[str]]]:
    """gcc with sanitizers, and clang with the strict flags when it is installed."""
    out = [("gcc", host.SANITIZE_FLAGS)]
    if shutil.which("clang"):
        out.append(("clang", []))
    return out


def check_reference_against_torch(model: Sequential, program: Program, x: np.ndarray) -> np.ndarray:
    """Every stage's output must equal PyTorch's eval-mode output of the layer it ends on."""
    scores, traces = reference.run(program, x, trace=True)
    with torch.no_grad():
        acts = model.activations(torch.tensor(x, dtype=torch.float64))
    for i, (stage, out) in enumerate(zip(program.stages, traces, strict=True)):
        layer = stage.layers[-1]
        assert_exact(
            f"stage {i} ({stage.kind}) vs PyTorch layer {layer} ({model.layers[layer].kind})",
            reference.unpack_stage(stage, out),
            acts[layer].numpy().astype(np.int64),
        )
    return scores


def check_model(model: Sequential, inputs: list[np.ndarray], tmp_path, name: str = "m") -> Program:
    """PyTorch == reference layer by layer, and C == reference, on every input batch."""
    model.eval()
    program = lower(model)
    result = compile(model, tmp_path, name)
    exes = [(cc, host.build(tmp_path, name, cc=cc, extra_flags=flags)) for cc, flags in compilers()]
    for j, x in enumerate(inputs):
        want = check_reference_against_torch(model, program, x)
        for cc, exe in exes:
            scores, classes = host.run(exe, x, program.num_classes)
            assert_exact(f"{cc} scores, input set {j}", scores, want)
            assert_exact(f"{cc} classes, input set {j}", classes, reference.argmax(want))
    assert result.cmodel.arena_bytes > 0
    return program


@torch.no_grad()
def calibrate_codes(model: Sequential, x: np.ndarray, seed: int) -> Sequential:
    """`calibrate`, and the int8 codes-out layers too: their BatchNorm statistics from data,
    gammas of both signs (negative multipliers) and one zero (a constant code), shifted
    betas, and a range 0.8 times the largest |y| so that codes saturate at both ends."""
    acts = [m for m in model.layers if isinstance(m, CodesOut) and m.activation == "int8"]
    for m in acts:
        m.bn.momentum = None
        m.bn.reset_running_stats()
    calibrate(model, x, seed)
    if not acts:
        return model
    g = torch.Generator().manual_seed(seed + 1)
    for m in acts:
        c = m.out_channels
        m.bn.weight.copy_(torch.rand(c, generator=g) * 2 - 0.5)
        m.bn.weight[c // 2] = 0.0
        m.bn.bias.copy_(torch.randn(c, generator=g) * 0.5)
    model.train()
    for m in acts:  # the ranges for the new gammas: one more batch, a fresh running max
        m.act_max.zero_()
    model(torch.tensor(x, dtype=torch.float32))
    for m in acts:
        m.act_max.mul_(0.8)
    return model.eval()
