"""Training: Adam (or Bop) on latent weights, a one-cycle schedule, best-on-validation keeping.

`train("data.npz", out="model.pt")` trains the default `tinybnn.models.conv_classifier`;
`train(data, model)` trains a `Sequential` of your own. `train` fits the first layer's input
normalisation on the training split, initialises the logit temperature so that the first
batch's logits have a standard deviation of 1, then minimises cross-entropy on
`model.logits(model(x))`, clipping latent weights after every step. After each epoch the
model is scored in eval mode (the integer path the device runs) on the validation split;
the best epoch wins, ties going to the earlier one (`keep="last"` keeps the final epoch).
With `out`, the model file, `<stem>_curves.png` and `<stem>_confusion.png` are written
together at the end, or not at all.

Options, each off by default (the defaults train exactly as without them):

- `teacher`: knowledge distillation (Hinton et al. 2015). The loss becomes
  (1 - w) * CE(logits, y) + w * tau^2 * KL(softmax(teacher / tau) || softmax(logits / tau))
  (`tinybnn.distill.distill_loss`), the teacher's logits computed in eval mode on the same
  (augmented) batch. `teacher="twin"` first trains the full-precision twin of the same
  architecture (`tinybnn.twin`) with the same data, seed and augmentation. Helps when the
  BNN underfits relative to its twin or the training set is small: the soft targets carry
  the teacher's similarities between classes, which one-hot labels do not. It costs one
  extra (float) training run.
- `augment`: a `tinybnn.augment.Augment` applied to every training batch (validation data
  is never augmented).
- `optimizer="bop"`: `tinybnn.bop` (binary weights flipped by a momentum threshold; Adam
  for everything else).
- `twin=True`: train the float twin of the model instead (`tinybnn.twin`).

None of these changes the model's layers: a model trained with any of them lowers to the
same integer program and compiles bit-exactly.

Runs are bit-for-bit reproducible on CPU for a given seed and thread count: the seed drives
the initialisation (under a forked RNG, so the caller's RNG is untouched), the split and the
shuffling, and deterministic algorithms are switched on while training.

Non-goals: GPUs, early stopping, resuming, online or mutual distillation, teachers of
another architecture than the twin (any module returning logits works, but only the twin
is tested).
"""

from __future__ import annotations

import ctypes
import functools
import io
import math
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ..errors import TinyBNNError
from ..modelfile import renamed, save
from ..models import conv_classifier
from ..nn import Sequential, clip_latent_
from ..outputs import check_outputs
from . import bop
from .augment import Augment
from .data import Dataset, default_class_names, load_dataset, split
from .distill import distill_loss
from .recipe import ARCHITECTURE_KEYS, FLASH_BUDGET, TWIN_LR, Recipe, default_recipe
from .twin import FloatTwin


@dataclass(frozen=True)
class EpochStats:
    """One epoch: mean training loss; training accuracy, measured on the fly in training mode,
    and validation accuracy in eval mode, both in [0, 1]; the learning rate at its end."""

    epoch: int
    loss: float
    train_accuracy: float
    val_accuracy: float
    lr: float


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Accuracy in [0, 1] and the confusion matrix (rows: true class, columns: predicted)."""

    accuracy: float
    confusion: np.ndarray


@dataclass(eq=False)
class TrainResult:
    """What `train` returns. `model` holds the kept epoch's weights, in eval mode; `teacher`
    the teacher's result when `train` trained one (`teacher="twin"`) or was given one."""

    model: Sequential | FloatTwin
    history: list[EpochStats]
    best_epoch: int  # 1-based
    val_accuracy: float
    confusion: np.ndarray  # on the validation split, at the best epoch
    seconds: float
    files: list[Path] = field(default_factory=list)  # written outputs, model first
    teacher: TrainResult | None = None
    recipe: Recipe | None = None  # how it was trained
    validated: bool = True  # val_accuracy is on held-out data (else on the training set)

    @property
    def class_names(self) -> list[str]:
        return self.model.class_names


def train(
    data: str | os.PathLike | Dataset,
    model: Sequential | FloatTwin | None = None,
    *,
    recipe: Recipe | None = None,
    seed: int = 0,
    val_data: str | os.PathLike | Dataset | None = None,
    twin: bool = False,
    out: str | os.PathLike | None = None,
    progress: bool = True,
    threads: int | None = None,
    flash_budget: int | None = None,
    **options,
) -> TrainResult:
    """Train `model` (in place) on `data` and return the kept epoch's model and statistics.

    data, val_data: a dataset `.npz` path or a `tinybnn.data.Dataset`. With `val_data` (other
        recordings, ideally) it is scored after every epoch and the best epoch is kept.
    model: a `tinybnn.nn.Sequential` (or a `FloatTwin`); None builds the recipe's
        architecture (`tinybnn.models.conv_classifier`) for the data.
    recipe: how to train (`tinybnn.training.recipe.Recipe`); None chooses the defaults from
        the data (`default_recipe`, which says what it chose in `result.recipe.why`).
    options: overrides of the recipe's fields (`epochs`, `lr`, `batch_size`, `val_fraction`,
        `keep`, `teacher`, `augment`, `optimizer`, `distill_weight`, `distill_temperature`,
        `label_smoothing`, `dropout`) and of its architecture (`widths`, `kernel_size`,
        `first_weights`, `head`, `pool`, ...). `teacher` may also be a trained module returning logits or a
        `TrainResult`, and `augment` an `Augment` of your own.
    twin: train the float twin of `model` (or of the recipe's architecture) instead. A twin is
        not a tinybnn model file, so it cannot be combined with `out`.
    out: where to save the kept model (`tinybnn.save`) and its two plots.
    progress: a status line on stderr.
    threads: torch CPU threads while training (default 1: these small convolutions gain
        little from more, and with other work on the cores several threads wait on each
        other: on a 2-core machine under a load of 5, BasicMotions took 812 s with 2
        threads and 70 s with 1).
        Bit-exact reproducibility holds for a fixed thread count.
    flash_budget: bytes of constants the default architecture may take (default 16 KiB).
    """
    teacher = options.get("teacher")
    teacher_given = teacher is not None and not isinstance(teacher, str)
    if teacher_given:
        options["teacher"] = None
    augment = options.get("augment")
    if isinstance(augment, Augment):
        options["augment"] = True
    elif augment is None and "augment" in options:
        options["augment"] = False
    if isinstance(options.get("teacher"), str) and options["teacher"] not in ("twin", "none"):
        raise TinyBNNError(
            f"teacher must be a model, a TrainResult or 'twin', not {options['teacher']!r}"
        )
    if options.get("teacher") == "none":
        options["teacher"] = None
    if out is not None:
        if twin or isinstance(model, FloatTwin):
            raise TinyBNNError("the float twin is not a tinybnn model and cannot be saved")
        out = _check_out(Path(out), data, val_data)
    data = _as_dataset(data)
    if data.num_classes < 2:
        raise TinyBNNError(f"the data has {data.num_classes} class; a classifier needs two or more")
    base = recipe or default_recipe(
        len(data),
        *data.input_shape,
        data.num_classes,
        flash_budget or FLASH_BUDGET,
        given={k: v for k, v in options.items() if k in ARCHITECTURE_KEYS},
    )
    if model is not None and any(k in ARCHITECTURE_KEYS for k in options):
        given = ", ".join(k for k in options if k in ARCHITECTURE_KEYS)
        raise TinyBNNError(f"{given}: architecture options apply only when train builds the model")
    keep_given = "keep" in options
    r = base.but(**options)
    if r.optimizer == "bop" and (twin or isinstance(model, FloatTwin)):
        raise TinyBNNError("optimizer='bop' trains binary weights; the float twin has none")
    if val_data is not None:
        train_set, val_set = data, _as_dataset(val_data)
    elif r.val_fraction > 0:
        train_set, val_set = split(data, r.val_fraction, seed)
    else:
        train_set, val_set = data, None
    if not keep_given and recipe is None:  # pick an epoch only on data held out for it
        r = replace(r, keep="best" if val_set is not None else "last")
    if (twin or isinstance(model, FloatTwin)) and "lr" not in options and recipe is None:
        r = replace(r, lr=TWIN_LR)
    if r.keep == "best" and val_set is None:
        raise TinyBNNError("keep='best' needs validation data (val_data or val_fraction)")
    if not isinstance(augment, Augment):
        augment = Augment(seed=seed) if r.augment else None
    if progress and not twin:
        sys.stderr.write(f"recipe: {r.describe()}\n")
    teacher_result = None
    if r.teacher == "twin":
        teacher_result = train(
            train_set,
            model if isinstance(model, Sequential) else None,  # its twin, built seeded
            recipe=replace(r, teacher=None, lr=TWIN_LR, optimizer="adam"),
            twin=True,
            augment=None if augment is None else replace(augment),  # a fresh generator
            seed=seed,
            val_data=val_set,
            progress=progress,
            threads=threads,
        )
    elif isinstance(teacher, TrainResult):
        teacher_result = teacher
    if teacher_result is not None:
        teacher = teacher_result.model
    elif not teacher_given:
        teacher = None
    start = time.perf_counter()
    _keep_freed_memory()
    with _reproducible(seed, threads):
        if model is None:
            model = conv_classifier(
                *data.input_shape, data.num_classes, data.class_names, **r.architecture
            )
        for name, part in (("training", train_set), ("validation", val_set)):
            if part is not None:
                check_fits(model, part, f"the {name} data")
        if twin and isinstance(model, Sequential):
            model = FloatTwin(model)
        history, best = _fit(
            model, train_set, val_set, r, seed, progress, teacher=teacher, augment=augment
        )
    best_epoch, state, evaluation = best
    model.load_state_dict(state)
    model.eval()
    if evaluation is None:  # nothing held out: the training set, in eval mode
        evaluation = evaluate(model, train_set.X, train_set.y)
    result = TrainResult(
        model=model,
        history=history,
        best_epoch=best_epoch,
        val_accuracy=evaluation.accuracy,
        confusion=evaluation.confusion,
        seconds=time.perf_counter() - start,
        teacher=teacher_result,
        recipe=r,
        validated=val_set is not None,
    )
    if out is not None:
        result.files = _write_outputs(out, result)
    return result


@torch.no_grad()
def evaluate(model: Sequential, X, y, batch_size: int = 1024) -> Evaluation:
    """Accuracy and confusion matrix of `model` in eval mode (its mode is restored after).

    X: raw samples [N, C, T] (numpy or torch); y: labels [N]. Ties in the integer scores go
    to the lowest class index, as `argmax` breaks them.
    """
    X = _samples(X)
    y = np.asarray(y, dtype=np.int64)
    was_training = model.training
    model.eval()
    try:
        pred = torch.cat([model(xb).argmax(1) for xb in X.split(batch_size)]).numpy()
    finally:
        model.train(was_training)
    return Evaluation(
        accuracy=float((pred == y).mean()), confusion=confusion(y, pred, model.num_classes)
    )


def confusion(y: np.ndarray, pred: np.ndarray, k: int) -> np.ndarray:
    """Counts [k, k] of (true class, predicted class) pairs."""
    return np.bincount(np.asarray(y) * k + np.asarray(pred), minlength=k * k).reshape(k, k)


def _fit(
    model: Sequential | FloatTwin,
    train_set: Dataset,
    val_set: Dataset | None,
    r: Recipe,
    seed: int,
    progress: bool,
    *,
    teacher: torch.nn.Module | None,
    augment: Augment | None,
) -> tuple[list[EpochStats], tuple[int, dict, Evaluation | None]]:
    """The training loop; returns the history and (kept epoch, its state_dict, its evaluation
    on the validation data, None without)."""
    epochs, lr, batch_size, keep = r.epochs, r.lr, r.batch_size, r.keep
    X = _samples(train_set.X)
    y = torch.from_numpy(train_set.y.copy())
    if isinstance(model, Sequential):
        model.layers[0].fit_normalization(X)  # always an InputConv1d: nothing else takes samples
    else:
        model.fit_normalization(X)
    if teacher is not None:
        teacher.eval()
    batch_size = min(batch_size, len(y))
    steps = math.ceil(len(y) / batch_size)
    if r.optimizer == "bop":
        optimizers = bop.optimizers(model, lr=lr)  # [Bop, Adam]: only Adam follows the schedule
    else:
        optimizers = [torch.optim.Adam(model.parameters(), lr=lr)]
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizers[-1], max_lr=lr, total_steps=epochs * steps
    )
    shuffle = torch.Generator().manual_seed(seed)
    bar = _Progress(epochs, steps, enabled=progress)
    history: list[EpochStats] = []
    best: tuple[int, dict, Evaluation] | None = None
    dropout = _classifier_dropout(model, r.dropout) if r.dropout else None
    try:
        for epoch in range(1, epochs + 1):
            model.train()
            loss_sum, correct = 0.0, 0
            for step, index in enumerate(
                torch.randperm(len(y), generator=shuffle).split(batch_size)
            ):
                xb, yb = X[index], y[index]
                if augment is not None:
                    xb = augment(xb)
                if epoch == 1 and step == 0 and isinstance(model, Sequential):
                    _init_temperature(model, xb)
                scores = model(xb)
                with torch.no_grad():
                    teacher_logits = None if teacher is None else teacher(xb)
                loss = distill_loss(
                    model.logits(scores),
                    yb,
                    teacher_logits,
                    r.distill_weight,
                    r.distill_temperature,
                    r.label_smoothing,
                )
                if not torch.isfinite(loss):
                    raise TinyBNNError(
                        f"training diverged at epoch {epoch} (loss {loss.item()}); try a lower lr"
                    )
                for o in optimizers:
                    o.zero_grad()
                loss.backward()
                for o in optimizers:
                    o.step()
                clip_latent_(model)
                schedule.step()
                loss_sum += loss.item() * len(yb)
                correct += int((scores.argmax(1) == yb).sum())
                bar.step(epoch, step + 1, loss_sum / (step * batch_size + len(yb)))
            evaluation = None if val_set is None else evaluate(model, val_set.X, val_set.y)
            stats = EpochStats(
                epoch=epoch,
                loss=loss_sum / len(y),
                train_accuracy=correct / len(y),
                val_accuracy=math.nan if evaluation is None else evaluation.accuracy,
                lr=schedule.get_last_lr()[0],
            )
            history.append(stats)
            if keep == "last" and epoch < epochs:
                bar.epoch(stats)
                continue
            if best is None or keep == "last" or evaluation.accuracy > best[2].accuracy:
                state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                best = (epoch, state, evaluation)
            bar.epoch(stats, (best[0], best[2].accuracy) if keep == "best" else None)
    finally:
        bar.close()
        if dropout is not None:
            dropout.remove()
    return history, best


def _classifier_dropout(model: Sequential | FloatTwin, p: float):
    """Dropout of the classifier's input (the pooled features) while it trains: a hook on the
    last layer, removed after training, so the model, its file and its C are unchanged."""

    def drop(layer: torch.nn.Module, args: tuple) -> tuple:
        return (torch.nn.functional.dropout(args[0], p, layer.training), *args[1:])

    return model.layers[-1].register_forward_pre_hook(drop)


@torch.no_grad()
def _init_temperature(model: Sequential, xb: torch.Tensor) -> None:
    """Set the logit temperature so the logits of `xb` have standard deviation 1.

    The forward pass runs in training mode, so it also updates the BatchNorm running
    statistics with this batch, as the first training step would.
    """
    std = model(xb).float().std().item()
    model.log_temperature.fill_(-math.log(std) if std > 0 else 0.0)


@contextmanager
def _reproducible(seed: int, threads: int | None) -> Iterator[None]:
    """Seed torch, use deterministic algorithms and a fixed thread count, then restore."""
    saved_threads = torch.get_num_threads()
    saved_mode = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_num_threads(threads or 1)
        _use_deterministic_algorithms(True)
        try:
            yield
        finally:
            torch.set_num_threads(saved_threads)
            _use_deterministic_algorithms(*saved_mode)


# glibc's mallopt parameters (malloc.h) and the values training sets: blocks up to 32 MiB
# (glibc's largest) come from the heap, and up to 1 GiB freed at its top stays mapped.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_HEAP_BLOCKS, _HEAP_KEPT = 32 << 20, 1 << 30


@functools.cache
def _keep_freed_memory() -> None:
    """Let glibc reuse the memory training frees instead of returning it to the kernel.

    A training step allocates and frees the same activation tensors each time (5 MiB for a
    batch of 32 windows of 1250 samples with 32 channels). glibc serves blocks that large
    with a fresh mmap, or gives the top of its heap back, so every step faults the same pages
    in again: a quarter of EOGHorizontalSignal's training time. Once per process; the
    process keeps at most its peak footprint. Results do not change. Not glibc: nothing.
    """
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, _HEAP_BLOCKS)
    mallopt(_M_TRIM_THRESHOLD, _HEAP_KEPT)


def _use_deterministic_algorithms(mode: bool, warn_only: bool = False) -> None:
    """`torch.use_deterministic_algorithms` without the ~2 s import of Inductor that it does
    to set Inductor's flag too: tinybnn never compiles, so the eager-mode switch suffices."""
    switch = getattr(torch._C, "_set_deterministic_algorithms", None)
    if switch is None:
        torch.use_deterministic_algorithms(mode, warn_only=warn_only)
    else:
        switch(mode, warn_only=warn_only)


def _samples(X) -> torch.Tensor:
    """Raw samples as a float32 tensor of our own (torch warns about read-only arrays)."""
    return torch.from_numpy(np.array(X, dtype=np.float32))


def _as_dataset(data: str | os.PathLike | Dataset) -> Dataset:
    return data if isinstance(data, Dataset) else load_dataset(data)


def check_fits(model: Sequential | FloatTwin, data: Dataset, where: str) -> None:
    """`data` fits `model`: its [C, T], its number of classes, and its class names if it
    names them (`where` says which data, for the message)."""
    if not isinstance(model, (Sequential, FloatTwin)):
        raise TinyBNNError(
            f"train takes a tinybnn.nn.Sequential or a FloatTwin, not {type(model).__name__}"
        )
    if tuple(model.input_shape) != tuple(data.input_shape):
        raise TinyBNNError(
            f"{where} has [C, T] = {list(data.input_shape)}, "
            f"but the model takes {list(model.input_shape)}"
        )
    if data.num_classes > model.num_classes:
        raise TinyBNNError(f"{where} has {data.num_classes} classes, the model {model.num_classes}")
    named = data.class_names != default_class_names(data.num_classes)
    if named and list(data.class_names) != list(model.class_names)[: data.num_classes]:
        raise TinyBNNError(
            f"{where}'s class names {list(data.class_names)} differ from the model's "
            f"{list(model.class_names)}"
        )


def _check_out(out: Path, data, val_data) -> Path:
    """Refuse an output path that could not be written, or that would overwrite the data,
    before training rather than after."""
    if out.is_dir():
        raise TinyBNNError(f"{out}: is a directory; give a file name for the model")
    check_outputs(output_paths(out), {"the training data": data, "the validation data": val_data})
    parent = next(p for p in (out.parent, *out.parent.parents) if p.exists())
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise TinyBNNError(f"{out}: cannot write in {parent}")
    return out


def output_paths(out: str | os.PathLike) -> list[Path]:
    """The files `train(out=...)` writes: the model, `<stem>_curves.png`, `<stem>_confusion.png`."""
    out = Path(out)
    return [
        out,
        out.with_name(f"{out.stem}_curves.png"),
        out.with_name(f"{out.stem}_confusion.png"),
    ]


def _write_outputs(out: Path, result: TrainResult) -> list[Path]:
    """Render everything first, stage each file next to its destination, then rename all.
    An `OSError` names the destination it concerns, never a staged file."""
    paths = output_paths(out)
    pngs = [_curves_png(result), _confusion_png(result)]
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = [p.with_name(f".{p.name}.{os.getpid()}.tmp") for p in paths]
    current = paths[0]
    try:
        save(result.model, staged[0])
        for tmp, png, path in zip(staged[1:], pngs, paths[1:], strict=True):
            current = path
            tmp.write_bytes(png)
        for tmp, path in zip(staged, paths, strict=True):
            current = path
            os.replace(tmp, path)
    except BaseException as e:
        for tmp in staged:
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise renamed(e, current) from None
        raise
    return paths


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _curves_png(result: TrainResult) -> bytes:
    from matplotlib.figure import Figure  # imported here: plotting is only needed at the end

    epochs = [s.epoch for s in result.history]
    fig = Figure(figsize=(9, 3.5), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [s.loss for s in result.history])
    loss_ax.set(title="training loss", xlabel="epoch", ylabel="cross-entropy")
    acc_ax.plot(epochs, [100 * s.train_accuracy for s in result.history], label="train")
    if result.validated:
        acc_ax.plot(epochs, [100 * s.val_accuracy for s in result.history], label="validation")
    acc_ax.axvline(result.best_epoch, color="grey", linestyle="--", label="kept")
    acc_ax.set(title="accuracy", xlabel="epoch", ylabel="%", ylim=(0, 100.5))
    acc_ax.legend(loc="lower right")
    return _png(fig)


def _confusion_png(result: TrainResult) -> bytes:
    part = "validation" if result.validated else "training set (nothing held out)"
    title = f"{part}, epoch {result.best_epoch}: {100 * result.val_accuracy:.1f}% correct"
    return confusion_png(result.confusion, result.class_names, title)


def confusion_png(cm: np.ndarray, names: list[str], title: str) -> bytes:
    """A confusion matrix (rows: true class, columns: predicted) as PNG bytes."""
    from matplotlib.figure import Figure  # imported here: plotting is only needed at the end

    size = 2.5 + 0.45 * len(names)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(cm, cmap="Blues")
    fig.colorbar(image, ax=ax, label="samples")
    ticks = range(len(names))
    ax.set_xticks(ticks, names, rotation=45, ha="right")
    ax.set_yticks(ticks, names)
    ax.set(xlabel="predicted", ylabel="true")
    ax.set_title(title)
    for (i, j), n in np.ndenumerate(cm):
        color = "white" if n > cm.max() / 2 else "black"
        ax.text(j, i, str(n), ha="center", va="center", color=color, fontsize=8)
    return _png(fig)


class _Progress:
    """Status on stderr: one line per epoch; on a terminal also a bar redrawn during the epoch."""

    def __init__(self, epochs: int, steps: int, enabled: bool):
        self.epochs, self.steps, self.enabled = epochs, steps, enabled
        self.tty = enabled and sys.stderr.isatty()
        self.width = len(str(epochs))
        self.open = False  # a bar is drawn and its line not yet ended

    def _show(self, text: str, end: str) -> None:
        sys.stderr.write(("\r\x1b[K" if self.tty else "") + text + end)
        sys.stderr.flush()
        self.open = not end

    def step(self, epoch: int, step: int, loss: float) -> None:
        if self.tty:
            filled = 20 * step // self.steps
            bar = "#" * filled + "." * (20 - filled)
            self._show(f"epoch {epoch:{self.width}}/{self.epochs} [{bar}] loss {loss:.3f}", "")

    def epoch(self, s: EpochStats, best: tuple[int, float] | None = None) -> None:
        """One line for the epoch (about 30 lines in all over a long run); `best`: the kept
        epoch and its validation accuracy, when the best epoch is kept."""
        every = max(1, self.epochs // 30)
        if not self.enabled or (s.epoch % every and s.epoch != self.epochs):
            return
        val = "" if math.isnan(s.val_accuracy) else f"  val {100 * s.val_accuracy:5.1f}%"
        kept = "" if best is None else f"  best {100 * best[1]:5.1f}% (epoch {best[0]})"
        self._show(
            f"epoch {s.epoch:{self.width}}/{self.epochs}  loss {s.loss:.3f}  "
            f"train {100 * s.train_accuracy:5.1f}%{val}{kept}",
            "\n",
        )

    def close(self) -> None:
        """Clear a bar left drawn by an interruption, so an error message starts the line."""
        if self.open:
            self._show("", "")


def train_twin(
    data: str | os.PathLike | Dataset,
    twin: FloatTwin | Sequential | None = None,
    **options,
) -> TrainResult:
    """Train a float twin with tinybnn's loop and recipe (`train(twin=True)`) and return its
    result; `result.val_accuracy` is its accuracy.

    twin: a `FloatTwin`, a tinybnn `Sequential` to mirror, or None for the twin of the
    recipe's architecture (options such as `widths` override it). Its peak lr is `TWIN_LR`
    unless given: float weights need no sign flips.
    """
    options.setdefault("progress", False)
    return train(data, twin, twin=True, **options)
