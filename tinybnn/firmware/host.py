"""Build and run compiled models on the host with the system C compiler.

Used by the tests (gcc and clang, strict warnings, sanitizers) and by users without an ARM
toolchain. The driver (`templates/c/host_driver.c`) streams int16 windows through
`<name>_classify` and returns the scores and classes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from ..compiler.kernels import template_dir
from ..errors import TinyBNNError

STRICT_FLAGS = [
    "-std=c99",
    "-Wall",
    "-Wextra",
    "-Wpedantic",
    "-Wconversion",
    "-Wshadow",
    "-Werror",
]
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-g"]


def build(
    out_dir: str | Path,
    name: str,
    cc: str = "gcc",
    opt: str = "-O2",
    extra_flags: list[str] | tuple[str, ...] = (),
    exe: str | Path | None = None,
    streaming: bool = False,
) -> Path:
    """Compile `<out_dir>/<name>.c` with the host driver into an executable (with
    `streaming`, the driver of the streaming API, `run_stream`)."""
    out_dir = Path(out_dir)
    if shutil.which(cc) is None:
        raise TinyBNNError(f"C compiler {cc!r} not found")
    kind = "stream" if streaming else "host"
    exe = Path(exe) if exe else out_dir / f"{name}_{kind}_{Path(cc).name}"
    up = name.upper()
    macros = ("STATE_BYTES",) if streaming else ("ARENA_BYTES",)
    cmd = [
        cc,
        *STRICT_FLAGS,
        opt,
        *extra_flags,
        f"-I{out_dir}",
        f"-DTB_NAME={name}",
        *(f"-DTB_{k}={up}_{k}" for k in (*macros, "IN_LENGTH", "IN_CHANNELS", "NUM_CLASSES")),
        "-include",
        str(out_dir / f"{name}.h"),
        str(out_dir / f"{name}.c"),
        str(template_dir() / ("host_stream_driver.c" if streaming else "host_driver.c")),
        "-o",
        str(exe),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TinyBNNError(f"{cc} failed on {name}.c: {proc.stderr.strip()}")
    return exe


def run(exe: str | Path, x: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores int32 [N, K] and classes [N] for windows x: int16 [N, C, T] (PyTorch layout)."""
    data = (
        np.ascontiguousarray(np.asarray(x, dtype=np.int16).transpose(0, 2, 1))
        .astype("<i2")
        .tobytes()
    )
    proc = subprocess.run([str(exe)], input=data, capture_output=True, timeout=600)
    if proc.returncode != 0:
        raise TinyBNNError(
            f"{exe} exited with {proc.returncode}: {proc.stderr.decode(errors='replace').strip()}"
        )
    out = np.frombuffer(proc.stdout, dtype="<i4").reshape(len(x), num_classes + 1)
    return out[:, :num_classes].astype(np.int64), out[:, num_classes].astype(np.int64)


def run_stream(
    exe: str | Path, x: np.ndarray, num_classes: int, chunks: tuple[int, ...] = (1,)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Push samples x int16 [n][C] through a streaming build (`build(streaming=True)`) in
    chunks of `chunks[0]`, `chunks[1]`, ... samples (cycled). For each push that decided:
    the samples pushed so far and the decisions it made [P], and the latest scores [P, K]."""
    data = np.ascontiguousarray(np.asarray(x, dtype=np.int16)).astype("<i2").tobytes()
    args = [str(exe), *(str(c) for c in chunks)]
    proc = subprocess.run(args, input=data, capture_output=True, timeout=600)
    if proc.returncode != 0:
        raise TinyBNNError(
            f"{exe} exited with {proc.returncode}: {proc.stderr.decode(errors='replace').strip()}"
        )
    out = np.frombuffer(proc.stdout, dtype="<i4").reshape(-1, num_classes + 3).astype(np.int64)
    return out[:, 0], out[:, 1], out[:, 2 : 2 + num_classes]
