"""Layer importance: what raising one binary layer to int8 buys, and what it costs.

For each layer with binary weights (the first layer, a hidden binary convolution, a binary
classifier), `importance` builds the model with that layer alone raised to int8 (its
latent weights kept: int8 codes of the same weights), fine-tunes it briefly from the
current weights, and scores it; the unchanged model gets the same fine-tune, so the gain is
the precision's and not the extra training's. With `activations=True`, a binary convolution
whose signs go straight into the global sum pooling is also tried with int8 activations
instead, with its weights binary (`BinaryConv1d(activation="int8")`, precision "1a8") and
with its weights int8 too (`Int8Conv1d(activation="int8")`, "8a8"); the BatchNorm of its
sign becomes the BatchNorm of its codes. The classifier then reads sums of codes 0..127
where it learnt counts of +-1, which a short fine-tune does not re-learn (on the panel's gap
sets such models scored 4–77 % on the held-out data against 50–81 % unchanged), so raise
activations with `epochs=None` (`--retrain`): every model, the unchanged one too, is then
trained from its current weights with the full default recipe for the data (its steps,
learning rate and augmentation, as `tinybnn train` would), which costs one training per
change and judges each change as the user will train it (benchmarks/results/mixed.md).

The cost is measured on a core under QEMU (`tinybnn.firmware.profile`: flash as the
firmware ships, instructions per inference), so each change is priced as the compiled C
runs it there. Gains are in accuracy points; per KB
of flash and per 1,000 instructions of one inference.

Non-goals: raising two layers at once (the suggestion picks one change); int8 activations
into a binary convolution (no kernel reads int8 codes with binary weights).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import TinyBNNError
from ..nn import Sequential, describe
from ..ops.binary_conv import BinaryConv1d
from ..ops.dense import BinaryLinear, Int8Linear
from ..ops.input_conv import InputConv1d
from ..ops.int8_conv import Int8Conv1d
from ..table import format_table
from .data import Dataset, load_dataset
from .data import folds as make_folds
from .evaluate import scores

FINE_TUNE_EPOCHS = 5
FINE_TUNE_LR = 1e-2


def _raise_input(layer: InputConv1d):
    return InputConv1d(**{**layer.config(), "weights": "int8", "scaling": False})


def _raise_conv(layer: BinaryConv1d, **changes):
    cfg = {**layer.config(), **changes}
    del cfg["scaling"]
    return Int8Conv1d(**cfg)


def _raise_linear(layer: BinaryLinear):
    return Int8Linear(layer.in_features, layer.out_features, bias=layer.bias is not None)


# layer kind -> its int8 counterpart, built from its config (the latent weights are copied)
RAISE = {"input_conv1d": _raise_input, "binary_conv1d": _raise_conv, "binary_linear": _raise_linear}


def raisable(model: Sequential) -> list[int]:
    """Indices of the layers with binary weights that have an int8 counterpart."""
    return [i for i, m in enumerate(model.layers) if m.kind in RAISE and m.binary_weights]


def raised(model: Sequential, i: int) -> Sequential:
    """A copy of `model` with layer i raised to int8 (the same latent weights and bias)."""
    layers = [copy.deepcopy(m) for m in model.layers]
    new = RAISE[layers[i].kind](layers[i])
    with torch.no_grad():
        new.weight.copy_(layers[i].weight)
        if getattr(layers[i], "bias", None) is not None and getattr(new, "bias", None) is not None:
            new.bias.copy_(layers[i].bias)
    if isinstance(new, InputConv1d):
        for name in ("offset", "multiplier", "shift"):
            getattr(new, name).copy_(getattr(layers[i], name))
    layers[i] = new
    return Sequential(
        *layers, input_shape=tuple(model.input_shape), class_names=list(model.class_names)
    )


def activation_raisable(model: Sequential) -> list[int]:
    """Indices of the binary convolutions whose signs (a batchnorm_sign, after a max-pool or
    not) go straight into a global sum pooling: their activations can be int8 codes."""
    layers = list(model.layers)
    found = []
    for i, m in enumerate(layers):
        if m.kind != "binary_conv1d" or m.activation != "none":
            continue
        j = i + 2 if i + 1 < len(layers) and layers[i + 1].kind == "maxpool1d" else i + 1
        after = [m.kind for m in layers[j : j + 2]]
        if after == ["batchnorm_sign", "global_pool1d"] and layers[j + 1].mode == "sum":
            found.append(i)
    return found


def raised_activations(model: Sequential, i: int, weights: bool = False) -> Sequential:
    """A copy of `model` whose binary convolution i gives int8 codes instead of signs: the
    same weights (int8 codes of them with `weights`: "8a8", else binary: "1a8"), its
    batchnorm_sign's BatchNorm (statistics and affine) moved into it."""
    layers = [copy.deepcopy(m) for m in model.layers]
    j = next(k for k in range(i + 1, len(layers)) if layers[k].kind == "batchnorm_sign")
    if weights:
        new = _raise_conv(layers[i], activation="int8")
    else:
        new = BinaryConv1d(**{**layers[i].config(), "activation": "int8"})
    with torch.no_grad():
        new.weight.copy_(layers[i].weight)
    new.bn.load_state_dict(layers[j].bn.state_dict())
    layers[i] = new
    del layers[j]
    return Sequential(
        *layers, input_shape=tuple(model.input_shape), class_names=list(model.class_names)
    )


# What a change raises to int8 -> the copy of the model it makes (layer i raised).
RAISES = {
    "weights": raised,
    "activations": raised_activations,
    "weights and activations": lambda model, i: raised_activations(model, i, weights=True),
}


@dataclass(frozen=True)
class Change:
    """One model measured: the unchanged one (layer None) or one layer's weights or
    activations raised to int8 (`how`, a key of `RAISES`)."""

    layer: int | None
    what: str
    accuracy: float  # after the fine-tune, on the scoring data
    flash_bytes: int
    instructions: int
    model: Sequential | None = field(default=None, compare=False, repr=False)  # as tuned
    how: str | None = None

    def apply(self, model: Sequential) -> Sequential:
        """A copy of `model` with this change made (untrained: train it as importance did)."""
        return changed(model, self.layer, self.how)


def changed(model: Sequential, i: int | None, how: str | None) -> Sequential:
    """A copy of `model` with layer i's `how` (a key of `RAISES`) raised to int8; how None:
    an unchanged copy."""
    return copy.deepcopy(model) if how is None else RAISES[how](model, i)


@dataclass(frozen=True)
class Importance:
    base: Change
    changes: list[Change]
    core: str
    scored_on: str  # "validation data" or "the training data"
    flash_budget: int | None = None
    instruction_budget: int | None = None
    tuning: str = f"a {FINE_TUNE_EPOCHS}-epoch fine-tune"  # how every model was trained

    def gain(self, c: Change) -> float:
        return 100 * (c.accuracy - self.base.accuracy)

    def extra_flash(self, c: Change) -> int:
        return c.flash_bytes - self.base.flash_bytes

    def extra_instructions(self, c: Change) -> int:
        return c.instructions - self.base.instructions

    def fits(self, c: Change) -> bool:
        return (self.flash_budget is None or self.extra_flash(c) <= self.flash_budget) and (
            self.instruction_budget is None or self.extra_instructions(c) <= self.instruction_budget
        )

    def suggestion(self) -> Change | None:
        """The change with the largest gain within the budgets (ties: the least flash), or
        None when none gains."""
        ok = [c for c in self.changes if self.fits(c) and self.gain(c) > 0]
        return max(ok, key=lambda c: (self.gain(c), -self.extra_flash(c)), default=None)

    def format(self) -> str:
        header = ["layer", "accuracy %", "gain pts", "+flash B", "+instr", "pts/KB", "pts/1k instr"]
        rows = [["unchanged", f"{100 * self.base.accuracy:.1f}", "", "", "", "", ""]]
        for c in self.changes:
            g, f, n = self.gain(c), self.extra_flash(c), self.extra_instructions(c)
            rows.append(
                [
                    c.what,
                    f"{100 * c.accuracy:.1f}",
                    f"{g:+.1f}",
                    f"{f:+,}",
                    f"{n:+,}",
                    f"{1024 * g / f:+.2f}" if f > 0 else "-",
                    f"{1000 * g / n:+.3f}" if n > 0 else "-",
                ]
            )
        best = self.suggestion()
        budget = ", ".join(
            f"{name} {value:,}"
            for name, value in (
                ("flash budget +B", self.flash_budget),
                ("instruction budget +", self.instruction_budget),
            )
            if value is not None
        )
        within = f" within {budget}" if budget else ""
        advice = (
            f"suggested{within}: {best.what} ({self.gain(best):+.1f} points, "
            f"{self.extra_flash(best):+,} B, {self.extra_instructions(best):+,} instructions)"
            if best
            else f"no single change gains accuracy{within}"
        )
        return "\n".join(
            [
                f"each binary layer raised alone to int8, then {self.tuning}; accuracy on "
                f"{self.scored_on}; costs on {self.core} under QEMU (flash, instructions per "
                "inference)",
                format_table([header, *rows], left=(0,), rules=(0, len(rows))),
                advice,
            ]
        )

    __str__ = format

    def png(self) -> bytes:
        """Accuracy against flash: the unchanged model and one point per change."""
        from matplotlib.figure import Figure

        from .train import _png

        fig = Figure(figsize=(6, 4), layout="constrained")
        ax = fig.subplots()
        ax.scatter([self.base.flash_bytes], [100 * self.base.accuracy], color="black")
        ax.annotate("unchanged", (self.base.flash_bytes, 100 * self.base.accuracy))
        for c in self.changes:
            ax.scatter([c.flash_bytes], [100 * c.accuracy], color="tab:blue")
            ax.annotate(c.what, (c.flash_bytes, 100 * c.accuracy), fontsize=8)
        ax.set(
            title=f"one layer raised to int8 ({self.core})",
            xlabel="flash (bytes)",
            ylabel=f"accuracy % ({self.scored_on})",
        )
        return _png(fig)


def _correct(model: Sequential, data: Dataset) -> int:
    """How many windows of `data` the model classifies right."""
    return int((scores(model, data.X).argmax(1) == data.y).sum())


def _fine_tune(
    model: Sequential, data: Dataset, epochs: int | None, lr: float, seed: int
) -> Sequential:
    """`model` trained `epochs` epochs at peak `lr`; epochs None: the full default recipe
    for `data` (lr ignored)."""
    from .train import train

    schedule = {} if epochs is None else dict(epochs=epochs, lr=lr)
    return train(data, model, seed=seed, progress=False, threads=1, **schedule).model


def _measure(model: Sequential, core: str) -> tuple[int, int]:
    from ..firmware.profile import profile

    report = profile(model, core=core)
    return report.flash_bytes, report.instructions


def importance(
    model: Sequential,
    data: str | os.PathLike | Dataset,
    *,
    val_data: str | os.PathLike | Dataset | None = None,
    core: str = "cortex-m4",
    epochs: int | None = FINE_TUNE_EPOCHS,
    lr: float = FINE_TUNE_LR,
    seed: int = 0,
    flash_budget: int | None = None,
    instruction_budget: int | None = None,
    activations: bool = False,
    folds: int | None = None,
    repeats: int = 1,
) -> Importance:
    """Each binary layer of `model` raised alone to int8 (its weights; with `activations`,
    also the signs of a binary convolution into the global sum pooling, with its weights
    binary and int8) and fine-tuned `epochs` epochs on `data` (as the unchanged model is;
    None: trained with the full default recipe for `data`, which then needs `val_data` or
    `folds`), scored on `val_data` (else on `data`, and said so), and measured on `core`
    (see the module docstring). `model` is not changed; each `Change` keeps its trained
    model and can `apply` itself to `model` again.

    folds=k: k-fold cross-validation of `data` instead of one scoring set (no `val_data`):
    each model is trained k times from its current weights, on all windows but one fold,
    and its accuracy counts every window once, as held out; k times the training, and a
    score from every window rather than a fifth of them. `Change.model` is then None (train
    `change.apply(model)` on all of `data`).

    repeats=n: every model trained n times, with seeds seed .. seed + n - 1 (the folds stay
    those of `seed`), and its score the mean of the n: for data so small that one
    training's score moves more between seeds than the changes differ (on 208 windows of 26
    classes, 5-6 points). n times the training; `Change.model` is the first seed's."""
    if repeats < 1:
        raise TinyBNNError(f"repeats must be at least 1, not {repeats}")
    train_set = data if isinstance(data, Dataset) else load_dataset(data)
    score_set = train_set
    if val_data is not None and folds is not None:
        raise TinyBNNError("score on val_data or by cross-validation (folds), not both")
    if epochs is None and val_data is None and folds is None:
        raise TinyBNNError(
            "full-recipe training fits the training data: score on validation data "
            "(val_data, --val-data) or by cross-validation (folds, --folds K)"
        )
    if val_data is not None:
        score_set = val_data if isinstance(val_data, Dataset) else load_dataset(val_data)
    parts = None if folds is None else make_folds(train_set, folds, seed)
    layers = raisable(model)
    signs = activation_raisable(model) if activations else []
    if not layers and not signs:
        raise TinyBNNError("the model has no binary layer to raise to int8")

    def measured(i: int | None, how: str | None) -> Change:
        what = "unchanged"
        if i is not None:
            raised_what = "" if how == "weights" else f" {how}"
            what = f"{describe(i, model.layers[i])}{raised_what} -> int8"
        m = changed(model, i, how)
        trained, correct = [], 0
        for s in range(seed, seed + repeats):
            for fit, held in parts or [(train_set, score_set)]:
                trained.append(_fine_tune(copy.deepcopy(m), fit, epochs, lr, s))
                correct += _correct(trained[-1], held)
        accuracy = correct / (len(score_set) * repeats)
        # priced as the last one trained: the costs hardly depend on the fold or the seed
        flash, instructions = _measure(trained[-1], core)
        tuned = trained[0] if parts is None else None
        return Change(i, what, accuracy, flash, instructions, tuned, how)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        base = measured(None, None)
        changes = [measured(i, "weights") for i in layers] + [
            measured(i, how) for i in signs for how in ("activations", "weights and activations")
        ]
    finally:
        torch.set_num_threads(threads)
    if val_data is not None:
        scored_on = "validation data"
    elif folds is None:
        scored_on = "the training data"
    else:
        scored_on = f"{folds}-fold cross-validation of the training data"
    if repeats > 1:
        scored_on += f", mean of {repeats} seeds"
    tuning = "trained with the default recipe" if epochs is None else f"a {epochs}-epoch fine-tune"
    return Importance(base, changes, core, scored_on, flash_budget, instruction_budget, tuning)


def write_png(result: Importance, path: Path) -> None:
    from ..modelfile import atomic_write

    data = result.png()
    atomic_write(path, lambda f: f.write(data))
