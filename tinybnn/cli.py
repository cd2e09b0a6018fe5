"""The `tinybnn` command: one click group; each command registers on it below.

`main()` is the console entry point. It reports every failure as one line on stderr,
`error: ...`, never a traceback: exit status 2 for usage errors (unknown option, missing
argument, bad value), 1 for anything else, 130 on Ctrl-C. Set TINYBNN_DEBUG=1 to see the
traceback of an unexpected error.

A new command is a function decorated with `@tinybnn.command("name")` in this file; it
raises `TinyBNNError` for anything the user can fix, and `main()` does the reporting.

Non-goals: configuration files; the Python API (`tinybnn.train.train`, ...) is the way to
script beyond these options.
"""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from . import __version__, interop
from .compiler.api import compile as compile_model
from .compiler.packages import DEFAULT_PACKAGE, PACKAGES
from .compiler.summary import summary
from .compiler.targets import CORES, DEFAULT_TARGET, TARGETS
from .compiler.variants import OPTIMIZE
from .errors import ModelError, TinyBNNError, one_line
from .firmware import cycles
from .firmware.profile import OPT_LEVELS
from .firmware.profile import profile as profile_model
from .firmware.streaming import profile_stream
from .interop import commands as interop_commands
from .interop.commands import import_report
from .modelfile import load
from .models import BIN_ACT, CODES_OUT, INT8_ACT
from .search.run import CONFIRM, SELECT, SELECT_DEFAULT, TRIAL_STEPS
from .training import tsfile
from .training.data import load_dataset
from .training.evaluate import evaluate_file
from .training.train import train


@click.group(name="tinybnn", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinybnn")
def tinybnn() -> None:
    """Train binarized neural networks on 1-D sensor signals and compile them to C."""


def _precision(ctx, param, text: str | None) -> tuple[int | str, ...] | None:
    if text is None:
        return None
    words = text.split(",")
    if not all(w in ("1", "8", *CODES_OUT) for w in words):
        raise click.BadParameter(
            f"expected bits of 1 or 8 per layer like 8,1,1,8 (or {INT8_ACT} / {BIN_ACT}: int8 "
            f"activations out of a hidden convolution, like 8,{INT8_ACT},8,8 or 8,1,{BIN_ACT},8), "
            f"not {text!r}"
        )
    return tuple(_bits(w) for w in words)


def _bits(word: str) -> int | str:
    """One layer's precision word: "1" or "8" as bits, "8a8" / "1a8" as they are."""
    return word if word in CODES_OUT else int(word)


def _widths(ctx, param, text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        widths = tuple(int(w) for w in text.split(","))
    except ValueError:
        widths = ()
    if not widths or min(widths) < 1:
        raise click.BadParameter(f"expected positive integers like 32,64,64, not {text!r}")
    return widths


def kernel_options(command):
    """--optimize and --flash-budget: what `tinybnn compile` and `tinybnn profile` ask the
    fast kernels to favour."""
    command = click.option(
        "--flash-budget",
        type=click.IntRange(min=1),
        default=None,
        metavar="BYTES",
        help="Most bytes of constants (weights, tables, thresholds; not code): the fast "
        "kernels that save the fewest instructions per byte are left out first.",
    )(command)
    return click.option(
        "--optimize",
        type=click.Choice(list(OPTIMIZE)),
        default="speed",
        show_default=True,
        help="What the core's kernels favour; 'size' leaves out flash tables larger than the "
        "weights.",
    )(command)


@tinybnn.command("train")
@click.argument("data", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=Path("model.pt"),
    show_default=True,
    help="Model file; the plots go next to it.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--val-data",
    type=click.Path(path_type=Path),
    help="Validation .npz (other recordings, ideally): scored every epoch, the best kept.",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads for training [default: 1; these small networks gain little from more, "
    "and lose much when other work shares the cores].",
)
@click.option("--no-progress", is_flag=True, help="No progress output on stderr.")
@click.option(
    "--flash-budget",
    type=click.IntRange(min=1),
    default=None,
    metavar="BYTES",
    help="Most bytes of constants the chosen architecture may take [default: 16384].",
)
@click.option("--epochs", type=click.IntRange(min=1), help="Override: epochs.")
@click.option(
    "--lr", type=click.FloatRange(min=0, min_open=True), help="Override: peak learning rate."
)
@click.option("--batch-size", type=click.IntRange(min=1), help="Override: batch size.")
@click.option(
    "--val-fraction",
    type=click.FloatRange(0, 1, max_open=True),
    help="Override: share of DATA held out per class to pick the best epoch (0: none).",
)
@click.option("--widths", callback=_widths, help="Override: channels of each convolution layer.")
@click.option("--kernel-size", type=click.IntRange(min=1), help="Override: first kernel size.")
@click.option("--pool", type=click.IntRange(min=1), help="Override: max-pool size per layer.")
@click.option(
    "--first-weights",
    type=click.Choice(["binary", "ternary", "int8"]),
    help="Override: first layer's weights (ternary: -1, 0, +1).",
)
@click.option("--head", type=click.Choice(["int8", "binary"]), help="Override: classifier weights.")
@click.option(
    "--precision",
    callback=_precision,
    help="Override: bits per weight of each layer, 1 or 8: the first layer, each further "
    "convolution, the classifier (e.g. 8,1,1,8; overrides --first-weights and --head); "
    f"{INT8_ACT} / {BIN_ACT}: a hidden convolution with int8 (binary) weights and int8 "
    f"activations out, read by the next convolution, which is 8 or {INT8_ACT}, or summed by the "
    f"global pooling after the last (e.g. 8,{INT8_ACT},8,8 or 8,1,{BIN_ACT},8).",
)
@click.option(
    "--last-conv",
    type=click.Choice(["1", "8", *CODES_OUT]),
    callback=lambda ctx, param, word: None if word is None else _bits(word),
    help=f"Override: bits of the last convolution alone, 1 or 8 ({INT8_ACT} / {BIN_ACT}: int8 "
    f"activations out, summed by the global pooling) [default: {INT8_ACT} when the model fits "
    "--flash-budget with it and does not stream, else 1].",
)
@click.option(
    "--codes-into-last/--no-codes-into-last",
    default=None,
    help=f"Override: the convolution before the last keeps binary weights but hands int8 codes "
    f"to an int8 last convolution ({BIN_ACT}) [default: with --last-conv {INT8_ACT} when the "
    "model fits --flash-budget with it, the last convolution narrowed by up to a quarter].",
)
@click.option(
    "--rsign", "learnable_threshold", is_flag=True, default=None, help="Learned thresholds (RSign)."
)
@click.option("--rprelu", is_flag=True, default=None, help="RPReLU between BatchNorm and sign.")
@click.option("--scaling", is_flag=True, default=None, help="XNOR-Net scaling factors.")
@click.option(
    "--shortcuts",
    is_flag=True,
    default=None,
    help="Integer shortcuts around the binary convolutions of equal width (Bi-Real style).",
)
@click.option(
    "--teacher", type=click.Choice(["none", "twin"]), help="Override: distil from the float twin."
)
@click.option("--augment/--no-augment", default=None, help="Override: augment training batches.")
@click.option("--label-smoothing", type=click.FloatRange(0, 1, max_open=True), help="Override.")
@click.option(
    "--dropout",
    type=click.FloatRange(0, 1, max_open=True),
    help="Override: dropout of the pooled features before the classifier, while training "
    "[default: 0.2 under 10 windows per class, else 0].",
)
@click.option("--optimizer", type=click.Choice(["adam", "bop"]), help="Override: the optimizer.")
@click.option("--keep", type=click.Choice(["best", "last"]), help="Override: the epoch kept.")
@click.option(
    "--streaming",
    "padding",
    flag_value="valid",
    default=None,
    help="Pad no convolution (padding 'valid'), so the model streams exactly "
    "(`tinybnn compile --streaming`).",
)
def train_command(data, out, seed, val_data, threads, no_progress, flash_budget, **overrides):
    """Train a binary CNN on DATA, a .npz with X [N, C, T] int16 samples and y labels.

    With no options the recipe and the architecture are chosen from the data (the first line
    printed says what and why); each option overrides one choice. Writes the model to OUT,
    with OUT's stem + _curves.png and _confusion.png beside it.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    result = train(
        data,
        seed=seed,
        val_data=val_data,
        out=out,
        progress=not no_progress,
        threads=threads,
        flash_budget=flash_budget,
        **overrides,
    )
    if result.teacher is not None:
        click.echo(
            f"teacher (float twin): accuracy {100 * result.teacher.val_accuracy:.1f}% "
            f"({'validation' if result.teacher.validated else 'training set'})"
        )
    part = "validation accuracy" if result.validated else "training-set accuracy (eval mode)"
    click.echo(
        f"{result.recipe.keep} epoch {result.best_epoch}/{len(result.history)}: {part} "
        f"{100 * result.val_accuracy:.1f}% ({result.seconds:.1f} s)"
    )
    click.echo("wrote " + ", ".join(str(p) for p in result.files))


@tinybnn.command("convert")
@click.argument("ts", type=click.Path(path_type=Path))
@click.argument("npz", type=click.Path(path_type=Path))
@click.option(
    "--length",
    type=click.IntRange(min=1),
    help="Samples per window [default: the longest series of TS, or of --like].",
)
@click.option(
    "--like",
    type=click.Path(path_type=Path),
    help="The training .ts of the same problem: reuse its length and scales (for a test file).",
)
@click.option(
    "--variable",
    type=click.Choice(["resample", "pad"]),
    default="resample",
    show_default=True,
    help="How series of another length are brought to --length.",
)
@click.option(
    "--scaling",
    type=click.Choice(["global", "channel"]),
    default="global",
    show_default=True,
    help="One int16 scale for all channels, or one per channel.",
)
@click.option(
    "--full-scale",
    type=click.IntRange(1, 32767),
    default=tsfile.DEFAULT_FULL_SCALE,
    show_default=True,
    help="The int16 value the largest |x| of the training file maps to.",
)
def convert_command(
    ts: Path, npz: Path, length: int | None, like: Path | None, variable, scaling, full_scale
) -> None:
    """Convert TS, a UEA/UCR .ts file or a UCR .tsv file, to NPZ, a dataset for `tinybnn train`.

    Prints the shape, the classes, and the scale (int16 counts per unit of the .ts values,
    per channel) that a device must apply to feed the model the same units.
    """
    conv = tsfile.convert(
        ts, npz, length, like=like, variable=variable, scaling=scaling, full_scale=full_scale
    )
    data = conv.data
    click.echo(
        f"wrote {npz}: X {list(data.X.shape)} int16, {data.num_classes} classes: "
        + ", ".join(data.class_names)
    )
    scales = ", ".join(f"{s:.6g}" for s in conv.scale)
    click.echo(f"scale (counts per unit, per channel): {scales}")
    if conv.missing or conv.resampled:
        how = "resampled" if conv.variable == "resample" else "padded or cut"
        click.echo(
            f"filled {conv.missing} missing values; {how} {conv.resampled} series "
            f"to length {conv.length}"
        )


@contextmanager
def about(path: Path) -> Iterator[None]:
    """Refusals of what a command does with the model it loaded name its file too."""
    try:
        yield
    except TinyBNNError as e:
        if str(e).startswith(f"{path}: "):
            raise
        raise (ModelError if isinstance(e, ModelError) else TinyBNNError)(f"{path}: {e}") from None


@tinybnn.command("summary")
@click.argument("model", type=click.Path(path_type=Path))
def summary_command(model: Path) -> None:
    """Print a per-layer table of MODEL's parameters, flash bytes and MACs."""
    loaded = load(model)
    with about(model):
        click.echo(summary(loaded))


@tinybnn.command("importance")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--val-data", type=click.Path(path_type=Path), help="Score on this .npz instead.")
@click.option(
    "--target",
    "core",
    type=click.Choice(list(CORES)),
    default="cortex-m4",
    show_default=True,
    help="The core whose flash and instructions price each change (under QEMU).",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Fine-tune epochs per model.",
)
@click.option(
    "--lr",
    type=click.FloatRange(min=0, min_open=True),
    default=1e-2,
    show_default=True,
    help="Fine-tune peak learning rate.",
)
@click.option(
    "--retrain",
    is_flag=True,
    help="Train every model with the full default recipe for DATA (as `tinybnn train` "
    "would), from its current weights, instead of the short fine-tune: one training per "
    "change, and the fair judge of raised activations.",
)
@click.option(
    "--folds",
    type=click.IntRange(min=2),
    metavar="K",
    help="Score by K-fold cross-validation of DATA (each model trained K times) instead "
    "of one scoring set: every window counts once, as held out.",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Train every model N times (seeds SEED .. SEED+N-1) and score the mean: for data "
    "so small that seeds differ more than the changes do.",
)
@click.option(
    "--activations",
    is_flag=True,
    help="Also raise the signs into the global pooling to int8 codes, with the "
    "convolution's weights binary and int8 (best with --retrain).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--flash-budget",
    type=click.IntRange(min=0),
    metavar="BYTES",
    help="Most extra flash the suggested change may take.",
)
@click.option(
    "--instruction-budget",
    type=click.IntRange(min=0),
    metavar="N",
    help="Most extra instructions per inference the suggested change may take.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    help="The plot [default: MODEL's stem + _importance.png, beside MODEL].",
)
def importance_command(
    model: Path,
    data: Path,
    val_data,
    core,
    epochs,
    lr,
    retrain,
    folds,
    repeats,
    activations,
    seed,
    flash_budget,
    instruction_budget,
    out,
) -> None:
    """Per binary layer of MODEL: the accuracy gained by raising it alone to int8 after a
    short fine-tune on DATA (with --retrain: the full default recipe), its flash and
    instruction cost on --target, gain per KB and per 1,000 instructions, one plot
    (accuracy against flash) and the best change within the budgets. Runs threads=1."""
    from .training.importance import importance, write_png

    png = out or model.with_name(f"{model.stem}_importance.png")
    inputs = [p for p in (model, data, val_data) if p is not None]
    if any(png.resolve() == p.resolve() for p in inputs):
        raise TinyBNNError(f"{png}: is an input; choose another --out")
    loaded = load(model)
    train_set = load_dataset(data)
    val_set = None if val_data is None else load_dataset(val_data)
    with about(model):
        result = importance(
            loaded,
            train_set,
            val_data=val_set,
            core=core,
            epochs=None if retrain else epochs,
            lr=lr,
            seed=seed,
            flash_budget=flash_budget,
            instruction_budget=instruction_budget,
            activations=activations,
            folds=folds,
            repeats=repeats,
        )
    click.echo(result.format())
    write_png(result, png)
    click.echo(f"wrote {png}")


_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3}


def _quantity(text: str, what: str, unit: str, binary: bool = False) -> float:
    """'16k', '16KB', '64MHz', '300k', '5ms' -> a number in `unit`s (k = 1024 when `binary`)."""
    import re

    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGuµ]?)\s*([A-Za-z]*)\s*", text)
    suffix = m.group(3).lower() if m else ""
    if m is None or suffix not in ("", unit.lower(), *(("b", "ib") if binary else ())):
        raise click.BadParameter(f"{text!r} is not a {what} (e.g. {_EXAMPLES[what]})")
    prefix = m.group(2)
    if unit == "s":  # time: m = milli, u = micro
        scale = {"": 1, "m": 1e-3, "u": 1e-6, "µ": 1e-6}.get(prefix)
    elif binary:
        scale = {"": 1, "k": 1024, "m": 1024**2}.get(prefix.lower())
    else:
        scale = _UNITS.get(prefix.lower())
    if scale is None:
        raise click.BadParameter(f"{text!r} is not a {what} (e.g. {_EXAMPLES[what]})")
    return float(m.group(1)) * scale


_EXAMPLES = {
    "size": "16k, 16KiB, 4096",
    "count": "300k, 1.5M",
    "clock": "64MHz",
    "time": "5ms, 200us",
}


def _bytes(ctx, param, text):
    return None if text is None else max(1, int(_quantity(text, "size", "B", binary=True)))


def _count(ctx, param, text):
    return None if text is None else max(1, int(_quantity(text, "count", "")))


def _clock(ctx, param, text):
    return None if text is None else _quantity(text, "clock", "Hz")


def _time(ctx, param, text):
    return None if text is None else _quantity(text, "time", "s")


@tinybnn.command("search")
@click.argument("data", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=Path("search"),
    show_default=True,
    help="Directory for the study (resumable), the best model, search.md and pareto.png.",
)
@click.option(
    "--target",
    type=click.Choice(sorted(CORES)),
    default="cortex-m4",
    show_default=True,
    help="The core whose instructions and flash are budgeted.",
)
@click.option(
    "--flash",
    callback=_bytes,
    default="16k",
    show_default=True,
    help="Bytes of constants (k = 1024).",
)
@click.option("--ram", callback=_bytes, help="Bytes of arena (activation buffers).")
@click.option("--max-instructions", callback=_count, help="Instructions per inference on --target.")
@click.option("--clock", callback=_clock, help="Core clock, e.g. 64MHz: with --max-latency.")
@click.option(
    "--max-latency",
    callback=_time,
    help="Time per inference at --clock, e.g. 5ms; counted as one cycle per instruction, "
    "the fewest cycles an instruction takes.",
)
@click.option(
    "--sample-rate",
    type=click.FloatRange(min=0, min_open=True),
    help="DATA's samples per second: with --clock and no --max-latency, an inference must "
    "take at most one window's duration (keeping up with one decision per window).",
)
@click.option(
    "--trials",
    type=click.IntRange(min=1),
    default=40,
    show_default=True,
    help="Candidates trained.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--folds",
    type=click.IntRange(min=1),
    help="Cross-validation folds per trial; 1: one 20% hold-out [default: 3 under 1000 "
    "windows, else 1].",
)
@click.option(
    "--trial-steps",
    type=click.IntRange(min=1),
    default=TRIAL_STEPS,
    show_default=True,
    help="Optimizer steps per fold of a trial (the final model trains the full schedule).",
)
@click.option(
    "--final-steps",
    type=click.IntRange(min=1),
    help="Optimizer steps of the best candidate's final training on all of DATA [default: "
    "the defaults' schedule].",
)
@click.option(
    "--challengers",
    type=click.IntRange(min=0),
    default=CONFIRM,
    show_default=True,
    help="Trials scored again on new folds at the defaults' schedule before the model is "
    "chosen (beside the defaults, or the best trial with --select cheapest); 0: none.",
)
@click.option(
    "--select",
    type=click.Choice(SELECT),
    default=SELECT_DEFAULT,
    show_default=True,
    help="How the model is chosen on that second score: 'defaults' keeps the defaults unless "
    "a challenger beats them by over a standard error; 'cheapest' takes the fewest "
    "instructions within a standard error of the best (it may cost accuracy).",
)
@click.option(
    "--jobs", type=click.IntRange(min=1), help="Trials at a time [default: 2 or the CPUs]."
)
@click.option(
    "--storage",
    help="A database URL Optuna takes (sqlite:///s.db, postgresql://...): machines running "
    "the same command share one study.",
)
@click.option(
    "--ray",
    metavar="ADDRESS",
    help="Run the trials on a Ray cluster through Ray Tune: 'auto' or HEAD:6379 on a machine "
    "of the cluster, or 'local' to start one here (pip install 'tinybnn[cluster]').",
)
@click.option("--no-measure", is_flag=True, help="Do not profile the finalists under QEMU.")
@click.option("--no-progress", is_flag=True, help="No progress output on stderr.")
def search_command(
    data,
    out,
    target,
    flash,
    ram,
    max_instructions,
    clock,
    max_latency,
    sample_rate,
    trials,
    seed,
    folds,
    trial_steps,
    final_steps,
    challengers,
    select,
    jobs,
    storage,
    ray,
    no_measure,
    no_progress,
) -> None:
    """Search architectures and recipes for the most accurate model of DATA (a .npz) that
    fits the budget on --target: candidates over budget are never trained; the rest are
    scored by cross-validation on DATA. Writes OUT/model.pt, OUT/search.md (the Pareto
    front, measured under QEMU where a toolchain is present) and OUT/pareto.png. Run it
    again with the same options to resume."""
    from .search import Budget, search

    if clock is None and (max_latency is not None or sample_rate is not None):
        raise click.UsageError("--max-latency and --sample-rate need --clock")
    if clock is not None and max_latency is None:
        if sample_rate is None:
            raise click.UsageError("--clock needs --max-latency or --sample-rate")
        length = load_dataset(data).input_shape[1]
        max_latency = length / sample_rate
        click.echo(
            f"latency budget: one window of {length} samples at {sample_rate:g} Hz = "
            f"{1000 * max_latency:g} ms"
        )
    if clock is not None:
        by_time = max(1, int(clock * max_latency))
        max_instructions = by_time if max_instructions is None else min(max_instructions, by_time)
    if storage is not None and ray is not None:
        raise click.UsageError("--storage and --ray: choose one")
    result = search(
        data,
        out,
        Budget(target, flash, ram, max_instructions),
        trials=trials,
        seed=seed,
        folds=folds,
        trial_steps=trial_steps,
        final_steps=final_steps,
        challengers=challengers,
        select=select,
        jobs=jobs,
        storage=storage,
        ray=ray,
        progress=not no_progress,
        measure=not no_measure,
    )
    b = result.best
    click.echo(
        f"best: trial {b.number}, {b.accuracy:.1f}% held-out, {b.cost.flash:,} B of constants, "
        f"{b.cost.instructions:,} instructions (est.): {b.candidate.describe()}"
    )
    click.echo("wrote " + ", ".join(str(p) for p in result.files))


@tinybnn.command("evaluate")
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("data", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    help="Confusion matrix PNG [default: MODEL's stem + _ + DATA's stem + _confusion.png, "
    "beside MODEL].",
)
@click.option(
    "--check-c",
    is_flag=True,
    help="Also compile MODEL for this host, run the C on every window and confirm it gives "
    "PyTorch's scores.",
)
def evaluate_command(model: Path, data: Path, out: Path | None, check_c: bool) -> None:
    """Accuracy of MODEL on DATA (a .npz with X and y), per class, and a confusion PNG."""
    png = out or model.with_name(f"{model.stem}_{data.stem}_confusion.png")
    report = evaluate_file(model, data, png, check_c=check_c)
    click.echo(report.format())
    click.echo(f"wrote {png}")
    if report.c_check is not None and not report.c_check.exact:
        raise TinyBNNError("the compiled C differs from PyTorch; please report this as a bug")


def streaming_options(command):
    """--streaming and --hop: the streaming API of `tinybnn compile` and `tinybnn profile`."""
    command = click.option(
        "--hop",
        type=click.IntRange(min=1),
        default=None,
        metavar="SAMPLES",
        help="Samples between streaming decisions, a multiple of the model's total stride "
        "[default: the total stride]. Implies --streaming.",
    )(command)
    return click.option(
        "--streaming",
        is_flag=True,
        help="Also emit the streaming API; refuse a model that cannot stream exactly.",
    )(command)


@tinybnn.command("compile")
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("out"),
    show_default=True,
    help="Directory for <name>.h, <name>.c and tinybnn_kernels.h.",
)
@click.option(
    "--name",
    default="model",
    show_default=True,
    help="C name prefix of every symbol: a lower-case C identifier of at most 32 characters.",
)
@click.option(
    "--target",
    type=click.Choice(list(TARGETS)),
    default=DEFAULT_TARGET,
    show_default=True,
    help="Core whose fast kernels to emit; 'portable' emits only the reference loops.",
)
@kernel_options
@click.option(
    "--package",
    type=click.Choice(list(PACKAGES)),
    default=DEFAULT_PACKAGE,
    show_default=True,
    help="Layout for a build system: "
    + "; ".join(f"'{p.name}': {p.help}" for p in PACKAGES.values())
    + " (docs/packages.md).",
)
@click.option("--url", help="The project's page, for an Arduino library's library.properties.")
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    help="For a larq or QONNX model: a dataset .npz on which to measure tinybnn's agreement "
    "with the framework's classes.",
)
@streaming_options
def compile_command(
    model: Path,
    out_dir: Path,
    name: str,
    target: str,
    optimize: str,
    flash_budget: int | None,
    package: str,
    url: str | None,
    data: Path | None,
    streaming: bool,
    hop: int | None,
) -> None:
    """Compile MODEL (a tinybnn model, or a larq .h5/.keras or QONNX .onnx model) to
    dependency-free C and print the per-layer report.

    With --streaming, the C also gets the streaming API (<name>_stream_push, ...), exact
    against <name>_classify at every decision; a model that cannot stream exactly is
    refused, naming the layer and the reason.
    """
    obj = click.get_current_context().find_root().obj or {}
    command = shlex.join(["tinybnn", *obj.get("argv", sys.argv[1:])])  # recorded in the C
    imported = []  # how exactly tinybnn computes a larq or QONNX model, before writing
    if interop.is_foreign(model):
        imported = import_report(interop.import_model(model), data)
    elif data is not None:
        raise TinyBNNError("--data is for larq and QONNX models; use tinybnn evaluate")
    result = compile_model(
        model,
        out_dir,
        name,
        command=command,
        target=target,
        optimize=optimize,
        flash_budget=flash_budget,
        package=package,
        url=url,
        streaming=streaming,
        hop=hop,
    )
    click.echo(result.report())
    for line in imported:
        click.echo(line)
    if result.cmodel.stream is not None:
        sm = result.cmodel.stream
        click.echo(
            f"streaming: a decision every {sm.plan.hop} samples (total stride "
            f"{sm.plan.stride}), state {sm.state_bytes} B"
        )
    click.echo("wrote " + ", ".join(str(p) for p in result.files))


@tinybnn.command("profile")
@click.argument("model", type=click.Path(path_type=Path))
@click.option(
    "--target",
    "targets",
    type=click.Choice(list(CORES)),
    multiple=True,
    default=("cortex-m4",),
    show_default=True,
    help="Core to run on under QEMU; repeat for several.",
)
@click.option(
    "--opt",
    type=click.Choice(OPT_LEVELS),
    default="-O2",
    show_default=True,
    help="Optimisation level of arm-none-eabi-gcc.",
)
@click.option("--name", default="model", show_default=True, help="C name of the model.")
@click.option(
    "--portable",
    is_flag=True,
    help="Measure the portable reference kernels, not the core's fast ones.",
)
@kernel_options
@click.option(
    "--clock",
    type=click.FloatRange(min=0, min_open=True),
    default=cycles.DEFAULT_CLOCK_MHZ,
    show_default=True,
    metavar="MHZ",
    help="Core clock for the estimated time.",
)
@click.option(
    "--ua-per-mhz",
    type=click.FloatRange(min=0),
    default=None,
    help="Active current from the part's datasheet: also estimate the average current.",
)
@click.option(
    "--inferences-per-second",
    type=click.FloatRange(min=0, min_open=True),
    default=cycles.DEFAULT_RATE_HZ,
    show_default=True,
    metavar="HZ",
    help="Windows classified per second, for the average current (the earbud demo's "
    "windowed loop: every 50 ms).",
)
@click.option(
    "--flash-wait-states",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Wait states per flash access, as if no prefetch or cache hid them.",
)
@click.option(
    "--multiplier",
    type=click.Choice(cycles.MULTIPLIERS),
    default="fast",
    show_default=True,
    help="Cortex-M0/M0+: the single-cycle or the 32-cycle (small) multiplier.",
)
@streaming_options
@click.option(
    "--sample-rate",
    type=click.FloatRange(min=0, min_open=True),
    default=100.0,
    show_default=True,
    metavar="HZ",
    help="The data's sample rate, for --streaming's figures per second of signal.",
)
def profile_command(
    model: Path,
    targets: tuple[str, ...],
    opt: str,
    name: str,
    portable: bool,
    optimize: str,
    flash_budget: int | None,
    clock: float,
    ua_per_mhz: float | None,
    inferences_per_second: float,
    flash_wait_states: int,
    multiplier: str,
    streaming: bool,
    hop: int | None,
    sample_rate: float,
) -> None:
    """Measure MODEL on Cortex-M cores under QEMU: flash, RAM, instructions per inference,
    and estimated cycles, time and current.

    Checks the firmware's scores against the integer reference on the profiled window.
    Instruction counts are executed instructions; cycles are estimated from the core's
    published instruction timings (docs/cycles.md). With --streaming: the streaming API's
    instructions per decision and per second of signal (at --sample-rate) against the
    windowed model run at the same decisions, and its state RAM.
    """
    loaded = load(model)
    for i, core in enumerate(dict.fromkeys(targets)):
        if i:
            click.echo()
        if streaming or hop is not None:
            if portable:
                raise TinyBNNError("--streaming measures the core's own kernels, not --portable")
            with about(model):
                report = profile_stream(
                    loaded,
                    core=core,
                    opt=opt,
                    name=name,
                    hop=hop,
                    rate_hz=sample_rate,
                    optimize=optimize,
                    flash_budget=flash_budget,
                )
            click.echo(report.format())
            continue
        with about(model):
            report = profile_model(
                loaded,
                core=core,
                opt=opt,
                name=name,
                portable=portable,
                optimize=optimize,
                flash_budget=flash_budget,
            )
        click.echo(report.format())
        record = CORES[core]
        if record.timing is None:
            click.echo(f"no cycle estimate: {record.name} has no cycle model (docs/cycles.md)")
            continue
        options = cycles.Options(wait_states=flash_wait_states, multiplier=multiplier)
        estimate = cycles.estimate(report.classes or {}, record, options)
        click.echo(estimate.format(core, clock, ua_per_mhz, inferences_per_second))


interop_commands.register(tinybnn)  # convert-model, export


def main(argv: list[str] | None = None) -> int:
    """Run the `tinybnn` command; returns the exit status (the console script exits with it)."""
    try:
        args = sys.argv[1:] if argv is None else [str(a) for a in argv]
        status = tinybnn.main(
            args=args, prog_name="tinybnn", standalone_mode=False, obj={"argv": args}
        )
        return status if isinstance(status, int) else 0
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.format_message())
        return 0
    except click.UsageError as e:
        where = e.ctx.command_path if e.ctx else "tinybnn"
        message = one_line(e.format_message()).rstrip(".")
        click.echo(f"error: {message} (see '{where} --help')", err=True)
        return 2
    except click.Abort:
        click.echo("error: interrupted", err=True)
        return 130
    except KeyboardInterrupt:
        click.echo("\nerror: interrupted", err=True)
        return 130
    except click.ClickException as e:
        click.echo(f"error: {one_line(e.format_message())}", err=True)
        return 1
    except TinyBNNError as e:
        click.echo(f"error: {one_line(e)}", err=True)
        return 1
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        click.echo(f"error: {where}{e.strerror or one_line(e)}", err=True)
        return 1
    except Exception as e:
        if os.environ.get("TINYBNN_DEBUG"):
            raise
        click.echo(
            f"error: unexpected {type(e).__name__}: {one_line(e)} "
            "(set TINYBNN_DEBUG=1 for the traceback)",
            err=True,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
