"""`tinybnn evaluate`: a model's accuracy on a labelled data set, per class, with a confusion
PNG, and optionally the proof that the compiled C predicts the same.

The model runs in eval mode, on the exact integer path the device runs. With `check_c`, the
model is also compiled for the host (the fast kernels, `target="host"`), built with the
system C compiler under the strict flags, and run on every window: its int32 scores must
equal PyTorch's and the integer reference's, window by window.

Non-goals: metrics beyond accuracy and the confusion matrix; data without labels.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..compiler import reference
from ..compiler.api import compile as compile_model
from ..firmware import host
from ..modelfile import atomic_write, load
from ..nn import Sequential
from ..outputs import check_outputs
from .data import load_dataset
from .train import check_fits, confusion, confusion_png


@dataclass(frozen=True)
class CCheck:
    """The host C against PyTorch and the reference: windows whose scores agree, of all."""

    agree: int
    windows: int
    first_mismatch: int | None  # index of the first window that differs

    @property
    def exact(self) -> bool:
        return self.agree == self.windows


@dataclass(frozen=True)
class Report:
    model: str
    data: str
    class_names: list[str]
    confusion: np.ndarray  # [K, K]: rows true class, columns predicted
    c_check: CCheck | None = None

    @property
    def windows(self) -> int:
        return int(self.confusion.sum())

    @property
    def accuracy(self) -> float:
        return float(np.trace(self.confusion) / max(self.windows, 1))

    def per_class(self) -> list[tuple[str, float, int]]:
        """(class name, accuracy, windows) for each class present in the data."""
        out = []
        for k, name in enumerate(self.class_names):
            n = int(self.confusion[k].sum())
            if n:
                out.append((name, float(self.confusion[k, k] / n), n))
        return out

    def format(self) -> str:
        lines = [
            f"{self.model} on {self.data}: {self.windows} windows, "
            f"accuracy {100 * self.accuracy:.1f}%",
            "per class: "
            + ", ".join(f"{name} {100 * a:.1f}% ({n})" for name, a, n in self.per_class()),
        ]
        if self.c_check is not None:
            c = self.c_check
            verdict = (
                f"same scores as PyTorch and the reference on {c.agree}/{c.windows} windows"
                if c.exact
                else f"DIFFERENT scores on {c.windows - c.agree} of {c.windows} windows "
                f"(first: window {c.first_mismatch})"
            )
            lines.append(f"C on the host (gcc, strict flags): {verdict}")
        return "\n".join(lines)


@torch.no_grad()
def scores(model: Sequential, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    """PyTorch's integer scores int64 [N, K] in eval mode."""
    model.eval()
    x = torch.from_numpy(np.asarray(X, dtype=np.float32))
    out = torch.cat([model(b) for b in x.split(batch_size)]) if len(x) else torch.zeros(0)
    return out.round().to(torch.int64).numpy()


def c_check(model: Sequential, X: np.ndarray, torch_scores: np.ndarray) -> CCheck:
    """Compile `model` for the host, run the C on every window of X and compare its scores
    with PyTorch's and the integer reference's."""
    with tempfile.TemporaryDirectory(prefix="tinybnn-evaluate-") as tmp:
        result = compile_model(model, tmp, "model", target="host")
        exe = host.build(tmp, "model")
        c_scores, _ = host.run(exe, X, model.num_classes)
    ref = reference.run(result.program, X)
    same = np.all(c_scores == torch_scores, axis=1) & np.all(ref == torch_scores, axis=1)
    bad = np.flatnonzero(~same)
    return CCheck(int(same.sum()), len(X), int(bad[0]) if len(bad) else None)


def evaluate_file(
    model_path: str | os.PathLike,
    data_path: str | os.PathLike,
    png: str | os.PathLike | None = None,
    check_c: bool = False,
) -> Report:
    """Evaluate a model file on a data set file; write the confusion PNG to `png` (never
    over an input). See the module docstring."""
    model_path, data_path = Path(model_path), Path(data_path)
    if png is not None:
        png = Path(png)
        check_outputs([png], {"the model file": model_path, "the data file": data_path})
    model = load(model_path)
    data = load_dataset(data_path)
    check_fits(model, data, str(data_path))
    torch_scores = scores(model, data.X)
    pred = reference.argmax(torch_scores)
    matrix = confusion(data.y, pred, model.num_classes)
    checked = c_check(model, data.X, torch_scores) if check_c else None
    report = Report(model_path.name, data_path.name, list(model.class_names), matrix, checked)
    if png is not None:
        title = f"{data_path.name}: {100 * report.accuracy:.1f}% correct"
        image = confusion_png(matrix, list(model.class_names), title)
        atomic_write(png, lambda f: f.write(image))
    return report
