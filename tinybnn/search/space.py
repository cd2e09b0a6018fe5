"""The search space: what `tinybnn search` varies, as one define-by-run function.

A candidate is a `conv_classifier` architecture and the recipe knobs that mattered most in
issue 12's experiments (benchmarks/results/recipe.md): the peak learning rate, dropout
before the classifier, and augmentation. Everything else is `tinybnn.train`'s default for
the data. `suggest(trial, shape)` draws one candidate from an Optuna trial; the same
function is the search space of the in-process search and of the Ray Tune one (Ray's
`OptunaSearch` takes define-by-run functions), so both search the same space.

| parameter | values | what it is |
|---|---|---|
| depth | 2–4 | convolutions: the first layer, then binary (or int8) ones |
| width_1 | 8–64 (log) | channels of the first layer |
| width_2.. | 16–128 (log) | channels of each further convolution |
| kernel_size | 3, 5, 7, 9 | the first layer's kernel |
| pool | 1, 2, 4, 8 | max-pool after each layer while the sequence stays >= 4 long |
| first_weights | int8, binary | the first layer's weights |
| last | 1, 8a8, 1a8+8a8 | the last convolution: binary; int8 weights and int8 codes summed; the same with int8 codes into it from a binary convolution (depth 3 or more) |
| shortcuts | no, yes | integer residual adds around equal-width binary convolutions (last 1 only) |
| lr | 0.01–0.1 (log) | the one-cycle schedule's peak |
| dropout | 0, 0.1, 0.2, 0.3 | of the pooled features, while training |
| augment | yes, no | jitter, gain and time shift |

Non-goals: per-layer precision beyond the last convolution and the codes into it (the
mixed-precision layers the panel found worth their flash); kernel sizes of hidden layers
(3, as every fast kernel is specialised for it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models import BIN_ACT, INT8_ACT
from ..training.recipe import DEFAULT_WIDTHS, default_recipe

DEPTHS = (2, 4)
FIRST_WIDTHS = (8, 64)
WIDTHS = (16, 128)
KERNELS = (3, 5, 7, 9)
POOLS = (1, 2, 4, 8)
LASTS = ("1", INT8_ACT, f"{BIN_ACT}+{INT8_ACT}")
LRS = (1e-2, 1e-1)
DROPOUTS = (0.0, 0.1, 0.2, 0.3)
# the architecture keywords the space decides (any other in the defaults: outside the space)
SEARCHED = {"widths", "kernel_size", "pool", "first_weights", "last_conv", "codes_into_last"}
SEARCHED |= {"shortcuts"}


@dataclass(frozen=True)
class Candidate:
    """One point of the space: `conv_classifier` keywords and recipe overrides, both as
    `tinybnn.train` takes them."""

    architecture: dict
    recipe: dict = field(default_factory=dict)

    def options(self) -> dict:
        """Keyword options of `tinybnn.train` that build and train this candidate."""
        return {**self.architecture, **self.recipe}

    def describe(self) -> str:
        a, r = self.architecture, self.recipe
        last = a.get("last_conv", 1)
        text = [
            "widths " + ",".join(str(w) for w in a["widths"]),
            f"k{a['kernel_size']}",
            f"pool {a['pool']}",
            f"first {a['first_weights']}",
            f"last {'1a8+8a8' if a.get('codes_into_last') else last}",
        ]
        if a.get("shortcuts"):
            text.append("shortcuts")
        text.append(f"lr {r['lr']:.3g}")
        if r.get("dropout"):
            text.append(f"dropout {r['dropout']:g}")
        text.append("augment" if r.get("augment") else "no augment")
        return ", ".join(text)


def suggest(trial, shape: tuple[int, int, int, int]) -> Candidate:
    """Draw a candidate from an Optuna trial (define-by-run) for data of `shape` = (windows,
    channels, length, classes). Conditional parameters have their own names, so every name
    keeps one distribution across trials (as Optuna requires)."""
    depth = trial.suggest_int("depth", *DEPTHS)
    widths = [trial.suggest_int("width_1", *FIRST_WIDTHS, log=True)]
    widths += [trial.suggest_int(f"width_{i}", *WIDTHS, log=True) for i in range(2, depth + 1)]
    kernel = trial.suggest_categorical("kernel_size", KERNELS)
    pool = trial.suggest_categorical("pool", POOLS)
    first = trial.suggest_categorical("first_weights", ("int8", "binary"))
    last = trial.suggest_categorical("last", LASTS)
    arch = dict(widths=tuple(widths), kernel_size=kernel, pool=pool, first_weights=first)
    if last == INT8_ACT or (last != "1" and depth < 3):  # codes into it need a conv before
        arch["last_conv"] = INT8_ACT
    elif last != "1":
        arch.update(last_conv=INT8_ACT, codes_into_last=True)
    else:
        arch["last_conv"] = 1
        if depth >= 3 and trial.suggest_categorical("shortcuts", (False, True)):
            arch["shortcuts"] = True
    recipe = dict(
        lr=trial.suggest_float("lr", *LRS, log=True),
        dropout=trial.suggest_categorical("dropout", DROPOUTS),
        augment=trial.suggest_categorical("augment", (True, False)),
    )
    return Candidate(arch, recipe)


def default_params(shape: tuple[int, int, int, int], flash_budget: int) -> dict | None:
    """The parameters of `tinybnn.train`'s defaults for data of `shape`, so that the search
    starts from them (its first trial); None if the defaults lie outside the space."""
    windows, channels, length, classes = shape
    r = default_recipe(windows, channels, length, classes, flash_budget)
    a = r.architecture
    widths = tuple(a.get("widths", DEFAULT_WIDTHS))
    params = {
        "depth": len(widths),
        "width_1": widths[0],
        **{f"width_{i + 1}": w for i, w in enumerate(widths) if i},
        "kernel_size": a.get("kernel_size", 5),
        "pool": a.get("pool", 2),
        "first_weights": a.get("first_weights", "binary"),
        "lr": r.lr,
        "dropout": r.dropout,
        "augment": r.augment,
    }
    if a.get("codes_into_last"):
        params["last"] = LASTS[2]
    elif a.get("last_conv") == INT8_ACT:
        params["last"] = LASTS[1]
    else:
        params["last"] = "1"
        if len(widths) >= 3:
            params["shortcuts"] = bool(a.get("shortcuts", False))
    inside = (
        DEPTHS[0] <= len(widths) <= DEPTHS[1]
        and FIRST_WIDTHS[0] <= widths[0] <= FIRST_WIDTHS[1]
        and all(WIDTHS[0] <= w <= WIDTHS[1] for w in widths[1:])
        and params["kernel_size"] in KERNELS
        and params["pool"] in POOLS
        and params["dropout"] in DROPOUTS
        and LRS[0] <= params["lr"] <= LRS[1]
        and set(a) <= SEARCHED
    )
    return params if inside else None
