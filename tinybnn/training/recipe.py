"""The training recipe: everything `tinybnn.train` decides besides the data and the seed, as
one object, and the defaults it chooses from the data.

`default_recipe(data)` looks at the number of windows, their length, channels and classes,
and returns a `Recipe` that says in one line what it chose and why (`Recipe.why`). Every
field can be overridden (`Recipe.but(...)`, or keyword options of `tinybnn.train` and of
`tinybnn train`); an override replaces the choice and nothing else.

The rules were chosen on the development panel of issue 12 only (benchmarks/panel.py;
the per-option experiments are in benchmarks/results/recipe.md):

- **A fixed budget of optimizer steps, not of epochs.** Small sets (50 windows) get as many
  weight updates as large ones get in `MIN_EPOCHS` epochs: `STEPS` at least. With a
  one-cycle schedule the last epoch is the one to keep.
- **No validation split, the last epoch.** Picking an epoch on a fifth of 50 windows picks
  noise and trains on 40; a fixed schedule needs no picking. The validation accuracy then
  reported is the training set's, in eval mode (say so). A separate `val_data` still
  gets scored every epoch.
- **An architecture that fits the signal**, within `flash_budget` bytes of constants: see
  `architecture`. Windows of 128 samples or more pool by 4 and start with a kernel of 9
  (first chosen from 300 samples; from 128 the panel's three sets of 128-150 samples gained
  +0.7 / +0.8 / -0.1 points over 5 seeds, CBF / GunPoint / ECG5000, with 40 % less arena:
  recipe.md "E-pool128"); the first layer has int8 weights unless they would take over a
  quarter of the budget (binary weights on one or two raw channels can only say which way a
  sample moved, not by how much). Windows of
  1,000 samples or more pool by 8 (`POOL_BY_LENGTH`): on EOGHorizontalSignal (1,250
  samples) that lifted the BNN's test accuracy by 6 points (3 seeds), cut its gap to the
  float twin from 9.6 to 2.5 points and halved the work of its middle convolution.
- **An int8 last convolution, its int8 codes summed for the classifier** (`LAST_CONV`,
  precision "8a8"), when the model still fits `flash_budget` with it. The BNN loses to its
  float twin in the activations, not the weights (recipe.md "E-activations"), and most where
  the last convolution's signs are counted by the global sum: with int8 weights and codes
  there, the panel (5 seeds) gained 3.8 / 2.9 / 2.9 / 3.3 / 1.2 / 1.0 points on CricketX /
  CricketY / CricketZ / EOGHorizontalSignal / ElectricDevices / CBF and lost 0.7 on
  GunPoint (recipe.md "E-last-conv"), at about 4x the constants (3.8 -> 15.5 KB on
  Cricket) and 1.5x the Cortex-M4 instructions. Only behind a binary hidden convolution
  (three widths or more); not for a model that streams (`padding="valid"`: int8
  activations do not stream) or has shortcuts, nor when `precision` or `last_conv` is
  given.
- **Int8 codes into that last convolution** (`codes_into_last`: the convolution before it
  keeps binary weights, XNOR and popcount, but hands int8 codes instead of signs, "1a8"),
  when the model still fits `flash_budget`, the last convolution narrowed by up to a quarter
  where that is what it takes (63 of 64 channels on Cricket-shaped data: the codes' integer
  requantisation takes 944 B). Chosen by 4-fold cross-validation of the TRAIN files
  (recipe.md "E-codes-into-last"): CricketX / Y / Z +1.0 / +3.6 / +3.4 points, GunPoint
  +2.1, ECG5000 +0.2, EOGHorizontalSignal and CBF 0, never worse; about 1.3x the Cortex-M4
  instructions. Not when the caller gives `last_conv`, `precision` or `codes_into_last`,
  and the widths are not narrowed when the caller gives them.
- **Augmentation below `AUGMENT_BELOW` windows**: jitter, gain and time shift
  (`tinybnn.training.augment.Augment`'s defaults) on every training batch. On the panel's
  small sets it lifted test accuracy by 4 to 6 points (CBF, GunPoint, CricketX,
  GestureMidAirD1; 3 seeds each) and narrowed the spread over seeds; large sets have the
  variety already, and there it mainly slows convergence.
- **Dropout of the pooled features under `FEW_PER_CLASS` windows per class** (`DROPOUT`,
  while training only: the model and its C are unchanged). On GestureMidAirD1 (26 classes
  of 8 windows) it narrowed the spread over 5 seeds from 4.4 to 1.3 points at the same mean
  (recipe.md "E-few-per-class"); on sets with more windows per class it lost (CricketX -1.4)
  or changed nothing (BasicMotions, CBF).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

from ..errors import TinyBNNError

STEPS = 2000  # optimizer steps at least
MIN_EPOCHS = 30  # epochs at least (large sets)
BATCH = 32
LR = 5e-2  # peak lr of the one-cycle schedule (binary latent weights)
TWIN_LR = 1e-2  # the float twin's
FLASH_BUDGET = 16 * 1024
DEFAULT_WIDTHS = (32, 64, 64)
AUGMENT_BELOW = 1000  # windows: smaller sets are augmented by default
POOL_BY_LENGTH = ((1000, 8), (128, 4))  # (length at least, pool), longest first; else 2
LAST_CONV = "8a8"  # the last convolution's precision when it fits the flash budget
FEW_PER_CLASS = 10  # fewer training windows per class than this: dropout before the classifier
DROPOUT = 0.2  # its rate


@dataclass(frozen=True)
class Recipe:
    """How `tinybnn.train` trains: the schedule, the data handling, the options, and the
    architecture it builds when it is not given a model (`conv_classifier` keywords)."""

    epochs: int = MIN_EPOCHS
    lr: float = LR
    batch_size: int = BATCH
    val_fraction: float = 0.0  # share held out per class to pick an epoch; 0: none
    keep: str = "last"  # "best" on the validation data, or "last"
    teacher: str | None = None  # "twin": distil from the full-precision twin, trained first
    augment: bool = False  # jitter, gain, time shift (`tinybnn.training.augment.Augment`)
    optimizer: str = "adam"  # or "bop"
    distill_weight: float = 0.5
    distill_temperature: float = 4.0
    label_smoothing: float = 0.0
    dropout: float = 0.0  # of the pooled features as the classifier reads them, while training
    architecture: dict = field(default_factory=dict)
    why: str = ""  # one line: what the defaults chose and why

    def but(self, **overrides) -> Recipe:
        """This recipe with some fields or architecture keywords replaced; the line `why`
        then lists the overrides."""
        own = {f.name for f in fields(self)} - {"architecture", "why"}
        unknown = [k for k in overrides if k not in own and k not in ARCHITECTURE_KEYS]
        if unknown:
            raise TinyBNNError(
                f"unknown training option {unknown[0]!r}; the recipe's are "
                f"{', '.join(sorted(own | set(ARCHITECTURE_KEYS)))}"
            )
        arch = {k: v for k, v in overrides.items() if k in ARCHITECTURE_KEYS}
        own_overrides = {k: v for k, v in overrides.items() if k in own}
        said = ", ".join(f"{k}={_text(v)}" for k, v in overrides.items())
        new = replace(
            self,
            **own_overrides,
            architecture={**self.architecture, **arch},
            why=f"{self.why}; overridden: {said}" if said else self.why,
        )
        new.check()
        return new

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or not self.lr > 0:
            raise TinyBNNError(
                f"epochs and batch_size must be >= 1 and lr > 0 (got {self.epochs}, "
                f"{self.batch_size}, {self.lr})"
            )
        if not 0 <= self.val_fraction < 1:
            raise TinyBNNError(f"val_fraction must be in [0, 1), not {self.val_fraction}")
        if self.keep not in ("best", "last"):
            raise TinyBNNError(f"keep must be 'best' or 'last', not {self.keep!r}")
        if self.optimizer not in ("adam", "bop"):
            raise TinyBNNError(f"optimizer must be 'adam' or 'bop', not {self.optimizer!r}")
        if not 0 <= self.distill_weight <= 1 or not self.distill_temperature > 0:
            raise TinyBNNError("distill_weight must be in [0, 1] and distill_temperature > 0")
        if not 0 <= self.label_smoothing < 1:
            raise TinyBNNError(f"label_smoothing must be in [0, 1), not {self.label_smoothing}")
        if not 0 <= self.dropout < 1:
            raise TinyBNNError(f"dropout must be in [0, 1), not {self.dropout}")

    def describe(self) -> str:
        """The recipe on one line."""
        arch = ", ".join(f"{k} {_text(v)}" for k, v in self.architecture.items())
        parts = [
            f"{self.epochs} epochs of batch {self.batch_size}, lr {self.lr:g}",
            f"validation {self.val_fraction:.0%}, keep {self.keep}"
            if self.val_fraction
            else "every window trained on, last epoch kept",
        ]
        if self.teacher:
            parts.append(f"teacher {self.teacher}")
        if self.augment:
            parts.append("augmentation")
        if self.label_smoothing:
            parts.append(f"label smoothing {self.label_smoothing:g}")
        if self.dropout:
            parts.append(f"dropout {self.dropout:g} before the classifier")
        if self.optimizer != "adam":
            parts.append(self.optimizer)
        text = "; ".join(([arch] if arch else []) + parts)
        return f"{text} ({self.why})" if self.why else text


ARCHITECTURE_KEYS = (
    "widths",
    "kernel_size",
    "first_weights",
    "head",
    "pool",
    "quantizer",
    "learnable_threshold",
    "rprelu",
    "scaling",
    "padding",
    "shortcuts",
    "precision",
    "last_conv",
    "codes_into_last",
)


def _text(v) -> str:
    if isinstance(v, (tuple, list)):
        return ",".join(str(x) for x in v)
    return str(v)


def architecture(
    channels: int, length: int, classes: int, flash_budget: int = FLASH_BUDGET
) -> tuple[dict, str]:
    """`conv_classifier` keywords for windows of `channels` x `length` and `classes` classes,
    and why."""
    arch: dict = {}
    reasons = []
    pool = next((p for least, p in POOL_BY_LENGTH if length >= least), None)
    if pool:
        arch.update(pool=pool, kernel_size=9)
        reasons.append(f"length {length}: pool {pool} and a first kernel of 9 reach further")
    kernel = arch.get("kernel_size", 5)
    first = DEFAULT_WIDTHS[0] * kernel * channels  # bytes of int8 first-layer weights
    if first <= flash_budget // 4:
        arch["first_weights"] = "int8"
        reasons.append(f"int8 first layer ({first} B of weights): raw samples keep their scale")
    return arch, "; ".join(reasons)


def default_recipe(
    windows: int,
    channels: int,
    length: int,
    classes: int,
    flash_budget: int = FLASH_BUDGET,
    given: dict | None = None,
) -> Recipe:
    """The defaults for a data set of `windows` windows of `channels` x `length`, `classes`
    classes (see the module docstring). `given`: the architecture keywords the caller will
    override, so that the last convolution's precision is chosen for the model that will be
    built."""
    batch = min(BATCH, windows)
    steps_per_epoch = math.ceil(windows / batch)
    epochs = max(MIN_EPOCHS, math.ceil(STEPS / steps_per_epoch))
    reasons = [
        f"{windows} windows: {epochs} epochs for at least {STEPS} steps"
        if epochs > MIN_EPOCHS
        else f"{windows} windows: {MIN_EPOCHS} epochs"
    ]
    arch, why = architecture(channels, length, classes, flash_budget)
    if why:
        reasons.append(why)
    arch, why = fit_flash(arch, channels, length, classes, flash_budget)
    if why:
        reasons.append(why)
    last, why = last_conv({**arch, **(given or {})}, channels, length, classes, flash_budget)
    if last:
        arch["last_conv"] = last
    if why:
        reasons.append(why)
    arch, why = codes_into_last(arch, given or {}, channels, length, classes, flash_budget)
    if why:
        reasons.append(why)
    augment = windows < AUGMENT_BELOW
    if augment:
        reasons.append(f"under {AUGMENT_BELOW} windows: jitter, gain and time shift")
    dropout = DROPOUT if windows < FEW_PER_CLASS * classes else 0.0
    if dropout:
        reasons.append(
            f"{windows / classes:.1f} windows per class: dropout {dropout:g} of the pooled "
            "features while training"
        )
    return Recipe(
        epochs=epochs,
        batch_size=BATCH,
        augment=augment,
        dropout=dropout,
        architecture=arch,
        why="; ".join(reasons),
    )


def last_conv(
    arch: dict, channels: int, length: int, classes: int, budget: int
) -> tuple[str | None, str]:
    """`LAST_CONV` for the last convolution of `conv_classifier(**arch)` if the model fits
    `budget` bytes with it and can take it (see the module docstring), else None; and why."""
    if "precision" in arch or "last_conv" in arch or arch.get("shortcuts"):
        return None, ""
    if arch.get("padding") == "valid":
        return None, "padding valid: the last convolution stays binary (int8 codes do not stream)"
    if len(arch.get("widths", DEFAULT_WIDTHS)) < 3:  # a binary hidden convolution stays
        return None, ""
    need = flash_bytes({**arch, "last_conv": LAST_CONV}, channels, length, classes)
    if need > budget:
        return None, f"the last convolution stays binary: int8 would take {need} B of {budget} B"
    return LAST_CONV, (
        f"int8 last convolution, its codes summed ({need} B of {budget} B): "
        "binary activations lose most there"
    )


def codes_into_last(
    arch: dict, given: dict, channels: int, length: int, classes: int, budget: int
) -> tuple[dict, str]:
    """`arch` with the convolution before its int8 last one handing it int8 codes
    (`codes_into_last`, see the module docstring) if the model then fits `budget` bytes, the
    last convolution narrowed by up to a quarter where that is what it takes (not when the
    caller gave the widths); else `arch`; and why."""
    if arch.get("last_conv") != LAST_CONV or {"last_conv", "precision", "codes_into_last"} & set(
        given
    ):
        return arch, ""
    widths = tuple({**arch, **given}.get("widths", DEFAULT_WIDTHS))  # 3 or more: last_conv
    least = widths[-1] if "widths" in given else widths[-1] - widths[-1] // 4
    for last in range(widths[-1], least - 1, -1):
        narrowed = {} if last == widths[-1] else {"widths": (*widths[:-1], last)}
        need = flash_bytes(
            {**arch, **given, "codes_into_last": True, **narrowed}, channels, length, classes
        )
        if need <= budget:
            said = f", the last convolution {last} wide to fit" if narrowed else ""
            return {**arch, "codes_into_last": True, **narrowed}, (
                f"int8 codes into it from the convolution before ({need} B of {budget} B"
                f"{said}): signs there lose too"
            )
    return arch, (
        f"the convolution before the last hands it signs: int8 codes would take more than "
        f"{budget} B"
    )


def flash_bytes(arch: dict, channels: int, length: int, classes: int) -> int:
    """Bytes of constants of the portable C of `conv_classifier(**arch)` once trained
    (`Summary.trained_flash_bytes`: a fresh model's thresholds may fit int16 where the
    trained one's need int32)."""
    import torch

    from ..compiler.summary import summary
    from ..models import conv_classifier

    with torch.random.fork_rng(devices=[]):  # building a model draws weights: not the caller's
        model = conv_classifier(channels, length, classes, **arch)
    return summary(model).trained_flash_bytes


def fit_flash(
    arch: dict, channels: int, length: int, classes: int, budget: int
) -> tuple[dict, str]:
    """`arch` with its widths scaled down until its constants fit `budget` bytes."""
    widths = tuple(arch.get("widths", DEFAULT_WIDTHS))
    if flash_bytes({**arch, "widths": widths}, channels, length, classes) <= budget:
        return arch, ""
    while max(widths) > 4:
        widths = tuple(max(4, w * 3 // 4) for w in widths)
        if flash_bytes({**arch, "widths": widths}, channels, length, classes) <= budget:
            return {**arch, "widths": widths}, f"widths {_text(widths)} to fit {budget} B"
    raise TinyBNNError(
        f"no architecture of the default shape fits {budget} B of flash for "
        f"{channels}x{length} windows and {classes} classes; raise --flash-budget"
    )
