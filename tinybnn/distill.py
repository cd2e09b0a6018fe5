"""Training with knowledge distillation, augmentation and a choice of optimizer.

`fit` is `tinybnn.train.train` with three additions, built from the trainer's own pieces
(split, reproducibility, evaluation, temperature initialisation, latent clipping):

- `teacher`: knowledge distillation (Hinton et al. 2015). The loss becomes
  (1 - w) * CE(logits, y) + w * tau^2 * KL(softmax(teacher / tau) || softmax(logits / tau)),
  the teacher's logits computed in eval mode on the same (augmented) batch. `teacher="twin"`
  first trains the full-precision twin of the same architecture (`tinybnn.twin`) with the
  same data, seed and augmentation. Helps when the BNN underfits relative to its twin or
  the training set is small: the soft targets carry the teacher's similarities between
  classes, which one-hot labels do not. It costs one extra (float) training run.
- `augment`: a `tinybnn.augment.Augment` applied to every training batch (validation and
  test data are never augmented).
- `optimizer`: "adam" (latent weights, as `train`) or "bop" (`tinybnn.bop`: binary weights
  flipped by a momentum threshold; Adam for everything else).

Nothing here changes the model's layers: a model trained with any of these options lowers
to the same integer program as one trained by `train`, and compiles bit-exactly.
Non-goals: teachers of another architecture than the twin (any module returning logits
works, but only the twin is tested), online or mutual distillation.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import bop
from .augment import Augment
from .data import Dataset, split
from .errors import TinyBNNError
from .models import conv_classifier
from .nn import Sequential, clip_latent_
from .train import (
    EpochStats,
    Evaluation,
    TrainResult,
    _as_dataset,
    _check_fits,
    _init_temperature,
    _Progress,
    _reproducible,
    _samples,
    evaluate,
)
from .twin import FloatTwin

TWIN_LR = 1e-2  # peak lr of a teacher twin: float weights need no sign flips


@dataclass(eq=False)
class FitResult(TrainResult):
    """`TrainResult`, plus the teacher's result when `fit` trained one (`teacher="twin"`)
    or was given one."""

    teacher: TrainResult | None = None


def fit(
    data: str | os.PathLike | Dataset,
    model: Sequential | FloatTwin | None = None,
    *,
    teacher: torch.nn.Module | TrainResult | str | None = None,
    distill_weight: float = 0.5,
    distill_temperature: float = 4.0,
    augment: Augment | None = None,
    optimizer: str = "adam",
    twin: bool = False,
    epochs: int = 30,
    lr: float = 5e-2,
    batch_size: int = 32,
    seed: int = 0,
    val_fraction: float = 0.2,
    val_data: str | os.PathLike | Dataset | None = None,
    keep: str = "best",
    progress: bool = False,
    threads: int | None = None,
    **architecture,
) -> FitResult:
    """Train `model` (built from `architecture` when None) and return its `TrainResult`.

    teacher: a trained module returning logits (e.g. `FloatTwin`), a `TrainResult`, or
        "twin" to train the full-precision twin first (`result.teacher` then holds its
        result). distill_weight w in [0, 1] and distill_temperature tau as in the module
        docstring.
    twin: train the float twin of `model` (or of the default architecture) instead.
    keep: "best" (the epoch with the best validation accuracy, ties to the earlier, as
        `train`) or "last" (the final epoch; the validation split is still scored).
    Other arguments as `tinybnn.train.train`.
    """
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise TinyBNNError(
            f"epochs and batch_size must be >= 1 and lr > 0 (got {epochs}, {batch_size}, {lr})"
        )
    if not 0 <= distill_weight <= 1 or not distill_temperature > 0:
        raise TinyBNNError("distill_weight must be in [0, 1] and distill_temperature > 0")
    if keep not in ("best", "last"):
        raise TinyBNNError(f"keep must be 'best' or 'last', not {keep!r}")
    if optimizer not in ("adam", "bop"):
        raise TinyBNNError(f"optimizer must be 'adam' or 'bop', not {optimizer!r}")
    data = _as_dataset(data)
    if val_data is None:
        train_set, val_set = split(data, val_fraction, seed)
    else:
        train_set, val_set = data, _as_dataset(val_data)
    teacher_result = None
    if isinstance(teacher, str):
        if teacher != "twin":
            raise TinyBNNError(f"teacher must be a model, a TrainResult or 'twin', not {teacher!r}")
        teacher_result = fit(
            data,
            model if isinstance(model, Sequential) else None,  # its twin, built seeded
            twin=True,
            augment=None if augment is None else Augment(**vars_of(augment)),
            epochs=epochs,
            lr=TWIN_LR,
            batch_size=batch_size,
            seed=seed,
            val_fraction=val_fraction,
            val_data=val_data,
            keep=keep,
            progress=progress,
            threads=threads,
            **architecture,
        )
        teacher = teacher_result.model
    elif isinstance(teacher, TrainResult):
        teacher_result, teacher = teacher, teacher.model
    start = time.perf_counter()
    with _reproducible(seed, threads):
        if model is None:
            model = conv_classifier(
                *data.input_shape, data.num_classes, data.class_names, **architecture
            )
        elif architecture:
            raise TinyBNNError(
                f"{', '.join(architecture)}: architecture options apply only when fit builds the model"
            )
        if twin and isinstance(model, Sequential):
            model = FloatTwin(model)
        for name, part in (("training", train_set), ("validation", val_set)):
            if isinstance(model, Sequential):
                _check_fits(model, part, name)
        if tuple(model.input_shape) != data.input_shape:
            raise TinyBNNError(
                f"the data has [C, T] = {list(data.input_shape)}, the model takes {list(model.input_shape)}"
            )
        if optimizer == "bop" and not isinstance(model, Sequential):
            raise TinyBNNError("optimizer='bop' trains binary weights; the float twin has none")
        history, best = _loop(
            model, train_set, val_set, teacher, distill_weight, distill_temperature,
            augment, optimizer, epochs, lr, batch_size, seed, keep, progress,
        )  # fmt: skip
    best_epoch, state, evaluation = best
    model.load_state_dict(state)
    model.eval()
    return FitResult(
        model=model,
        history=history,
        best_epoch=best_epoch,
        val_accuracy=evaluation.accuracy,
        confusion=evaluation.confusion,
        seconds=time.perf_counter() - start,
        teacher=teacher_result,
    )


def vars_of(a: Augment) -> dict:
    """An `Augment`'s settings (not its generator), to make a fresh copy."""
    return dict(
        jitter=a.jitter,
        scaling=a.scaling,
        shift=a.shift,
        rotation=a.rotation,
        axes=a.axes,
        seed=a.seed,
    )


def distill_loss(
    logits: torch.Tensor,
    y: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    weight: float,
    temperature: float,
) -> torch.Tensor:
    """Cross-entropy, blended with the soft-target KL divergence when there is a teacher."""
    ce = F.cross_entropy(logits, y)
    if teacher_logits is None or weight == 0:
        return ce
    t = temperature
    kl = F.kl_div(
        F.log_softmax(logits / t, dim=1),
        F.log_softmax(teacher_logits.float() / t, dim=1),
        log_target=True,
        reduction="batchmean",
    )
    return (1 - weight) * ce + weight * t * t * kl


def _loop(
    model,
    train_set,
    val_set,
    teacher,
    w,
    tau,
    augment,
    optimizer,
    epochs,
    lr,
    batch_size,
    seed,
    keep,
    progress,
) -> tuple[list[EpochStats], tuple[int, dict, Evaluation]]:
    X = _samples(train_set.X)
    y = torch.from_numpy(train_set.y.copy())
    if isinstance(model, Sequential):
        model.layers[0].fit_normalization(X)
    else:
        model.fit_normalization(X)
    if teacher is not None:
        teacher.eval()
    batch_size = min(batch_size, len(y))
    steps = math.ceil(len(y) / batch_size)
    if optimizer == "bop":
        opt = bop.optimizers(model, lr=lr)
    else:
        opt = [torch.optim.Adam(model.parameters(), lr=lr)]
    schedules = [
        torch.optim.lr_scheduler.OneCycleLR(
            o, max_lr=[g["lr"] for g in o.param_groups], total_steps=epochs * steps
        )
        for o in opt
        if not isinstance(o, bop.Bop)
    ]
    shuffle = torch.Generator().manual_seed(seed)
    bar = _Progress(epochs, steps, enabled=progress)
    history: list[EpochStats] = []
    best = None
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
                    t_logits = None if teacher is None else teacher(xb)
                loss = distill_loss(model.logits(scores), yb, t_logits, w, tau)
                if not torch.isfinite(loss):
                    raise TinyBNNError(
                        f"training diverged at epoch {epoch} (loss {loss.item()}); try a lower lr"
                    )
                for o in opt:
                    o.zero_grad()
                loss.backward()
                for o in opt:
                    o.step()
                clip_latent_(model)
                for s in schedules:
                    s.step()
                loss_sum += loss.item() * len(yb)
                correct += int((scores.argmax(1) == yb).sum())
                bar.step(epoch, step + 1, loss_sum / (step * batch_size + len(yb)))
            evaluation = evaluate(model, val_set.X, val_set.y)
            stats = EpochStats(
                epoch=epoch,
                loss=loss_sum / len(y),
                train_accuracy=correct / len(y),
                val_accuracy=evaluation.accuracy,
                lr=opt[-1].param_groups[0]["lr"],
            )
            history.append(stats)
            if best is None or keep == "last" or evaluation.accuracy > best[2].accuracy:
                state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                best = (epoch, state, evaluation)
            bar.epoch(stats, best[0], best[2].accuracy)
    finally:
        bar.close()
    return history, best
