"""The int8 and float32 baselines of benchmarks/baselines.py: the emitted C, compiled for the
host with strict flags, gives exactly the numpy reference's outputs (int8 bit for bit,
float32 equal, not close) on small models with odd channel counts, strides, padding, pools
on both sides of the sign, flatten and both classifiers; unsupported layers are refused."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from modelcheck import calibrate, random_inputs, signals

from tinybnn import firmware
from tinybnn.nn import (
    BatchNormSign,
    BinaryConv1d,
    BinaryLinear,
    Flatten,
    GlobalPool1d,
    InputConv1d,
    Int8Linear,
    Layer,
    MaxPool1d,
    Sequential,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import baselines  # noqa: E402

HOST_CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off"]

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs a host gcc")


def models() -> dict[str, Sequential]:
    return {
        # int8 first layer with stride, a pool before the sign, sum pooling, 13 classes
        "pool-before-sign": Sequential(
            InputConv1d(5, 13, 3, stride=2, padding=1, weights="int8"),
            MaxPool1d(2),
            BatchNormSign(13),
            BinaryConv1d(13, 11, 3, padding="same"),
            BatchNormSign(11),
            GlobalPool1d("sum"),
            Int8Linear(11, 13),
            input_shape=(5, 37),
        ),
        # a pool after the sign (overlapping), a strided padded conv, flatten, dense layers
        "flatten-dense": Sequential(
            InputConv1d(5, 7, 5),
            BatchNormSign(7),
            MaxPool1d(3, stride=2),
            BinaryConv1d(7, 9, 3, stride=2, padding=1),
            BatchNormSign(9),
            Flatten(),
            BinaryLinear(54, 13),
            BatchNormSign(13),
            BinaryLinear(13, 5, bias=True),
            input_shape=(5, 29),
        ),
        "global-max": Sequential(
            InputConv1d(5, 6, 3, padding="same"),
            BatchNormSign(6),
            BinaryConv1d(6, 10, 5, padding=1),
            BatchNormSign(10),
            GlobalPool1d("max"),
            Int8Linear(10, 13),
            input_shape=(5, 21),
        ),
    }


def run_on_host(em: baselines.Emission, tmp: Path) -> subprocess.CompletedProcess:
    """Compile bl_net.c with the baselines' driver for the host and run it."""
    (tmp / "bl_net.c").write_text(em.source)
    (tmp / "bl_vectors.h").write_text(em.vectors)
    exe = tmp / "baseline"
    cmd = [
        "gcc",
        *HOST_CFLAGS,
        f"-iquote{tmp}",
        f"-iquote{firmware.harness_dir()}",
        str(tmp / "bl_net.c"),
        str(baselines.C_DIR / "driver.c"),
        str(baselines.C_DIR / "host_shim.c"),
        "-o",
        str(exe),
    ]
    build = subprocess.run(cmd, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    return subprocess.run([str(exe)], capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("kind", baselines.KINDS)
@pytest.mark.parametrize("name", list(models()))
def test_emitted_c_equals_numpy_reference(name: str, kind: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = models()[name]
    c, t = model.input_shape
    calibrate(model, signals(12, c, t, 1), 1)
    windows = {"signal": signals(1, c, t, 2)[0], "extremes": random_inputs(2, c, t, 3)[0]}
    for label, x in windows.items():
        em = baselines.emit_c(model, kind, x)
        assert em.expected.dtype == (np.int32 if kind == "int8" else np.float32)
        assert len(em.expected) == model.num_classes
        assert np.all(np.isfinite(em.expected)) and np.any(em.expected != 0)
        out_dir = tmp_path / label
        out_dir.mkdir()
        run = run_on_host(em, out_dir)
        assert run.returncode == 0 and run.stdout.endswith("OK\n"), (label, run.stdout)


def test_a_wrong_output_is_caught(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = models()["global-max"]
    calibrate(model, signals(12, 5, 21, 1), 1)
    em = baselines.emit_c(model, "float32", signals(1, 5, 21, 2)[0])
    bits = em.expected.view(np.int32)
    head, tail = em.vectors.split("tb_expected_bits")
    wrong = head + "tb_expected_bits" + tail.replace(f" {bits[0]},", f" {bits[0] ^ 1},", 1)
    assert wrong != em.vectors
    run = run_on_host(
        baselines.Emission(em.kind, em.source, wrong, em.expected, em.layers), tmp_path
    )
    assert run.returncode == 1 and "MISMATCH out 0" in run.stdout


class Shuffle(Layer):
    """A layer the baselines cannot map."""

    kind = "test_shuffle"

    def config(self) -> dict:
        return {}

    def infer(self, v, where):
        return v

    def forward(self, x):
        return x


def test_unsupported_layer_is_refused() -> None:
    model = Sequential(
        InputConv1d(5, 8, 3),
        BatchNormSign(8),
        Shuffle(),
        GlobalPool1d("sum"),
        Int8Linear(8, 3),
        input_shape=(5, 16),
    )
    with pytest.raises(ValueError, match=r"layer 2 \(test_shuffle\): no int8/float32"):
        baselines.emit_c(model, "int8")
    with pytest.raises(ValueError, match=r"layer 2 \(test_shuffle\)"):
        baselines.measure_baselines(model, "cortex-m4")
    with pytest.raises(ValueError, match="kind must be one of"):
        baselines.emit_c(models()["global-max"], "int4")
