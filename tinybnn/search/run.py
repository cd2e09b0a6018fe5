"""`tinybnn search`: the most accurate model that fits a device's budget.

Each trial draws a candidate from the space (`tinybnn.search.space`), prices it on the
target before any training (`tinybnn.search.budget`: flash and arena from the compiler,
instructions from the calibrated cost model), and only a candidate that fits is trained.
Its score is cross-validated accuracy on the training data: `FOLDS` stratified folds below
`FOLDS_BELOW` windows, one stratified hold-out of `HOLD_OUT` above; each fold trains with
the candidate's options for `trial_steps` optimizer steps (the defaults' schedule shape,
fewer steps, so that 40 trials stay affordable). No test data is read. The best trial is the
most accurate. Among equally accurate ones (a small set's cross-validation saturates, often
at 100 %) the defaults come first: they were chosen across a panel of data sets, and the top
score of many trials on one small file overstates its candidate (the winner's curse), so a
tie is no evidence against them. Other ties go to the lower mean held-out cross-entropy,
then to fewer instructions. When the trials are done, the best few ranked above the defaults
and the defaults are scored again (`confirm`): on new folds, at the defaults' full schedule,
so that neither the winner's curse nor the trials' short schedule decides against the
defaults; they rank on that second score, but a challenger goes before the defaults only if
it beats them on the same windows by more than MARGIN_SE standard errors of the paired
difference (SELECT_DEFAULT). `select="cheapest"` instead scores the best trial and the
cheapest near it, and takes the fewest instructions within MARGIN_SE of the best second
score: the one-standard-error rule, which trades up to a standard error of accuracy for
instructions (benchmarks/results/selection.md, search_cheapest.md). Then the best
candidate whose instructions, measured under QEMU, fit the budget (the cost model's
estimate is off by a few per cent) is trained on all the data with the full default
schedule and written as a normal model file;
the Pareto front (accuracy against instructions and flash) is profiled under QEMU where a
toolchain is present, and the report says which figures are measured and which estimated.

The engine is Optuna: a TPE sampler, seeded, its study kept in a journal file in the output
directory, so a search stops and resumes (an interrupted trial is run again, from the same
parameters). Trials run `jobs` at a time in worker processes; they are asked and told in a
fixed order, and the sampler is re-seeded from the seed and the trial number before every
ask, so a search is deterministic given its data, budget, seed and trial count, on one
machine, whether or not it was interrupted. With `storage` (a database URL Optuna takes,
e.g. `sqlite:///search.db` or `postgresql://...`) several machines share one study; with
`ray` the trials run on a Ray cluster through Ray Tune (`tinybnn.search.cluster`). Neither
is deterministic: trials finish in the order the machines make.

Non-goals: a scheduler of our own; multi-fidelity pruning (trials are short already and a
pruned trial would make the result depend on the order in which workers finish).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import math
import os
import shutil
import sys
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import TinyBNNError
from ..outputs import check_outputs
from ..training.data import Dataset, folds, load_dataset, split
from ..training.recipe import BATCH, STEPS
from .budget import WEIGHTS_MOVE, Budget, Cost, cost, measure_if_over
from .space import Candidate, default_params, suggest

TRIAL_STEPS = 1000  # optimizer steps per fold of a trial (the defaults train 2000)
CONFIRM = 3  # trials scored again beside the defaults (or, under "cheapest", the best one)
CONFIRM_STEPS = STEPS  # optimizer steps per fold of that second score: the defaults' schedule
# A challenger replaces the defaults if its second score beats theirs by more than this many
# standard errors of the paired difference (window by window, on the same folds): the best of
# CONFIRM noisy scores exceeds its true value by about 0.85 of their standard error (the
# expected maximum of 3 normal draws), and the defaults were chosen across a panel of sets.
MARGIN_SE = 1.0
# How the written model is chosen among the contenders (`confirm`): "defaults" keeps the
# defaults unless a challenger beats them by over MARGIN_SE; "cheapest" takes the fewest
# instructions within MARGIN_SE of the best second score (the one-standard-error rule).
SELECT = ("defaults", "cheapest")
# The rule a search uses unless told otherwise. The objective is accuracy within the budget,
# so a cheaper model is not preferred to the defaults unless it is better. (A nested check on
# TRAIN, benchmarks/results/selection.md, met the criterion fixed beforehand for making
# "cheapest" the default; on the panel's TEST files it then lost up to 6.7 points where the
# defaults were within a standard error: benchmarks/results/search_cheapest.md.)
SELECT_DEFAULT = "defaults"
FOLDS = 3
FOLDS_BELOW = 1000  # windows: k-fold cross-validation below, one hold-out at or above
HOLD_OUT = 0.2
STARTUP = 10  # random trials before TPE models the results
MAX_OVER = 50  # candidates over budget in a row before the search gives up
STUDY = "tinybnn-search"
JOURNAL = "study.journal"
MODEL = "model.pt"


@dataclass
class Trial:
    """One trial: its candidate, its cost, and its score if it was trained."""

    number: int
    candidate: Candidate
    cost: Cost
    over: str = ""  # why it was not trained ('' if it was)
    folds: list[float] = field(default_factory=list)  # held-out accuracy % per fold
    losses: list[float] = field(default_factory=list)  # held-out mean cross-entropy per fold
    seconds: float = 0.0
    defaults: bool = False  # the first trial: `tinybnn train`'s defaults for the data
    # the second score, on new folds at the full schedule (`confirm`): accuracy % and mean
    # cross-entropy per fold; empty if the trial was not a contender
    confirmed: list[float] = field(default_factory=list)
    confirmed_losses: list[float] = field(default_factory=list)
    confirmed_hits: str = ""  # per held-out window of those folds, in order: 1 right, 0 wrong

    @property
    def accuracy(self) -> float | None:
        return float(np.mean(self.folds)) if self.folds else None

    @property
    def loss(self) -> float:
        """Mean held-out cross-entropy over the folds (infinite if not recorded)."""
        return float(np.mean(self.losses)) if self.losses else math.inf

    @property
    def confirmed_accuracy(self) -> float | None:
        """The second score: % of the held-out windows right, over all its folds."""
        if not self.confirmed_hits:
            return None
        return 100 * self.confirmed_hits.count("1") / len(self.confirmed_hits)

    @property
    def confirmed_loss(self) -> float:
        return float(np.mean(self.confirmed_losses)) if self.confirmed_losses else math.inf

    def take_second(self, record: dict) -> Trial:
        """This trial with the second score `confirm` stored for it (`record`, or {})."""
        self.confirmed = list(record.get("folds", []))
        self.confirmed_losses = list(record.get("losses", []))
        self.confirmed_hits = record.get("hits", "")
        return self


@dataclass
class Settings:
    """What a study was started with; a resumed study must match."""

    data: str  # sha256 of the windows and labels
    shape: tuple[int, int, int, int]  # windows, channels, length, classes
    budget: Budget
    seed: int
    folds: int  # 1: one hold-out split
    trial_steps: int

    def record(self) -> dict:
        b = self.budget
        return dict(
            data=self.data,
            shape=list(self.shape),
            target=b.target,
            flash=b.flash,
            ram=b.ram,
            instructions=b.instructions,
            seed=self.seed,
            folds=self.folds,
            trial_steps=self.trial_steps,
        )


def fingerprint(data: Dataset) -> str:
    h = hashlib.sha256()
    for a in (data.X, data.y):
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def epochs_for(steps: int, windows: int) -> int:
    """Epochs of `tinybnn.train`'s batches that make at least `steps` optimizer steps."""
    return max(1, math.ceil(steps / math.ceil(windows / min(BATCH, windows))))


def evaluate(
    options: dict, data: Dataset, k: int, seed: int, steps: int
) -> tuple[list[float], list[float], float]:
    """Held-out accuracy (%) and mean cross-entropy per fold of a candidate's `tinybnn.train`
    options, and seconds. The cross-entropy is of the integer scores the compiled model
    returns, through the model's learned logit temperature (the logits it was trained on)."""
    start = time.monotonic()
    accs, losses, _ = _held_out(options, data, k, seed, steps)
    return accs, losses, time.monotonic() - start


def second_score(
    options: dict, data: Dataset, k: int, seed: int, steps: int
) -> tuple[list[float], list[float], str, float]:
    """`evaluate`, and which held-out windows were right ('1') or wrong ('0'), fold after
    fold, for a paired comparison on the same folds."""
    start = time.monotonic()
    accs, losses, hits = _held_out(options, data, k, seed, steps)
    return accs, losses, hits, time.monotonic() - start


def _paired(hits: str, against: str) -> np.ndarray:
    """Per window, 1 where only `hits` is right, -1 where only `against` is, else 0."""
    a = np.frombuffer(hits.encode(), np.uint8).astype(np.int64)
    b = np.frombuffer(against.encode(), np.uint8).astype(np.int64)
    if a.size != b.size or a.size < 2:
        raise ValueError(f"paired scores of {a.size} and {b.size} windows")
    return a - b


def paired_difference(hits: str, against: str) -> tuple[float, float]:
    """How many points more of the same windows `hits` has right than `against`, and the
    standard error of that mean difference (both in %)."""
    d = _paired(hits, against)
    return 100 * float(d.mean()), 100 * float(d.std(ddof=1) / math.sqrt(d.size))


def _held_out(
    options: dict, data: Dataset, k: int, seed: int, steps: int
) -> tuple[list[float], list[float], str]:
    import torch

    from ..training.evaluate import scores
    from ..training.train import train

    parts = folds(data, k, seed) if k >= 2 else [split(data, HOLD_OUT, seed)]
    accs, losses, hits = [], [], []
    for part, held in parts:
        r = train(
            part,
            seed=seed,
            threads=1,
            progress=False,
            epochs=epochs_for(steps, len(part)),
            flash_budget=1 << 30,  # priced already, on the target
            **options,
        )
        s = scores(r.model, held.X)
        right = s.argmax(1) == held.y
        accs.append(100 * float(np.mean(right)))
        hits.append("".join("1" if h else "0" for h in right))
        with torch.no_grad():
            logits = r.model.logits(torch.from_numpy(s).float())
            ce = torch.nn.functional.cross_entropy(logits, torch.from_numpy(held.y).long())
        losses.append(round(float(ce), 6))
    return accs, losses, "".join(hits)


def _optuna():
    try:
        import optuna
    except ImportError:
        raise TinyBNNError("tinybnn search needs Optuna: pip install 'tinybnn[search]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def sampler(seed: int, number: int):
    """The TPE sampler for the trial numbered `number`: seeded from both, so the draw does
    not depend on how many samplers came before (a resumed search draws what it would
    have)."""
    optuna = _optuna()
    with warnings.catch_warnings():  # multivariate, group: experimental in name only
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(
            seed=(seed * 1_000_003 + number) % 2**32,
            n_startup_trials=STARTUP,
            multivariate=True,
            group=True,
            constant_liar=True,
        )


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold `out`/search.lock, or refuse: one search at a time per directory."""
    with open(out / "search.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise TinyBNNError(f"{out}: another search is running in this directory") from None
        yield


def storage_for(out: Path, storage: str | None):
    """The Optuna storage of a search: the journal file in `out`, or the database at
    `storage` (any URL Optuna takes)."""
    optuna = _optuna()
    try:
        if storage is None:
            from optuna.storages import JournalStorage
            from optuna.storages.journal import JournalFileBackend

            return JournalStorage(JournalFileBackend(str(out / JOURNAL)))
        return optuna.storages.get_storage(storage)
    except Exception as e:  # a bad URL, an unreachable database: say which
        raise TinyBNNError(f"{storage or out / JOURNAL}: cannot open the study: {e}") from None


def open_study(store, where: str, settings: Settings):
    """The study in `store` (at `where`), created or resumed; refused if it was started
    with other data or settings."""
    optuna = _optuna()
    try:
        study = optuna.create_study(
            study_name=STUDY,
            storage=store,
            direction="maximize",
            load_if_exists=True,
            sampler=sampler(settings.seed, 0),
        )
    except Exception as e:  # a bad URL, an unreachable database: say which
        raise TinyBNNError(f"{where}: cannot open the study: {e}") from None
    record = settings.record()
    before = study.user_attrs.get("settings")
    if before is None:
        study.set_user_attr("settings", record)
        study.set_user_attr("tinybnn", __version__)
        params = default_params(settings.shape, settings.budget.flash or 1 << 30)
        if params is not None:
            study.enqueue_trial(params, user_attrs={"defaults": True})
    elif before != record:
        changed = [k for k in record if record[k] != before.get(k)]
        raise TinyBNNError(
            f"{where}: this search was started with other "
            f"{', '.join(changed)}; resume it with the same ones or use another output directory"
        )
    return study


def _requeue_interrupted(study) -> None:
    """Trials left running by an interrupted search fail, and their parameters go first in
    the queue, so the resumed search runs what the first would have."""
    optuna = _optuna()
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"rerun_of": t.number, **t.user_attrs})


def trials_of(study) -> list[Trial]:
    """The study's finished trials (trained or over budget), in order, with the second
    scores `confirm` recorded."""
    optuna = _optuna()
    second = study.user_attrs.get("confirmed", {})
    out = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        if "cost" not in a or t.state not in (
            optuna.trial.TrialState.COMPLETE,
            optuna.trial.TrialState.PRUNED,
        ):
            continue
        cand = Candidate(a["architecture"], a["recipe"])
        trial = Trial(
            t.number,
            cand,
            Cost(**a["cost"]),
            over=a.get("over", ""),
            folds=list(a.get("folds", [])),
            losses=list(a.get("losses", [])),
            seconds=a.get("seconds", 0.0),
            defaults=bool(a.get("defaults", False)),
        )
        out.append(trial.take_second(second.get(str(t.number), {})))
    return out


def priced(cand: Candidate, settings: Settings, defaults: bool) -> Cost:
    """What `cand` costs on the budget: the compiler's bytes and the cost model's estimate,
    and for the defaults, where the estimate alone is over, their measured count
    (`budget.measure_if_over`)."""
    c = cost(cand, settings.shape, settings.budget)
    return measure_if_over(c, cand, settings.shape, settings.budget) if defaults else c


def _candidate_attrs(cand: Candidate, c: Cost) -> dict:
    arch = {k: (list(v) if isinstance(v, tuple) else v) for k, v in cand.architecture.items()}
    return dict(
        architecture=arch,
        recipe=cand.recipe,
        cost=dict(
            flash=c.flash,
            arena=c.arena,
            instructions=c.instructions,
            refused=c.refused,
            measured=c.measured,
        ),
    )


def _trained(study) -> int:
    return sum(1 for t in trials_of(study) if t.folds)


class Progress:
    """One line per trial on stderr: a bar, the trial's score and the best so far."""

    def __init__(self, total: int, show: bool):
        self.total, self.show = total, show

    def __call__(self, study, t: Trial | None, note: str = "") -> None:
        if not self.show:
            return
        trained = [x for x in trials_of(study) if x.folds]
        done = len(trained)
        width = 20
        bar = "#" * (width * done // max(self.total, 1))
        best = max(trained, key=_rank, default=None)
        line = f"[{bar:<{width}}] {done}/{self.total}"
        if t is not None and t.folds:
            line += f"  trial {t.number}: {t.accuracy:.1f}%  ({t.candidate.describe()})"
        if best is not None:
            line += f"  best {best.accuracy:.1f}% (trial {best.number})"
        if note:
            line += f"  {note}"
        print(line, file=sys.stderr, flush=True)


def _rank(t: Trial, second: bool = False) -> tuple:
    """Best first: accuracy (the trial's, or with `second` its second score); among equals
    the defaults, then the lower held-out cross-entropy (which separates candidates whose
    cross-validated accuracy saturates), then fewer instructions, less flash, the earlier
    (see the module docstring)."""
    accuracy, loss = (t.confirmed_accuracy, t.confirmed_loss) if second else (t.accuracy, t.loss)
    return (accuracy, t.defaults, -loss, -t.cost.instructions, -t.cost.flash, -t.number)


def _confirmed_rank(t: Trial) -> tuple:
    return _rank(t, second=True)


def beyond_margin(hits: str, against: str) -> int:
    """+1 if `hits` has more of the same windows right than `against` by over MARGIN_SE
    standard errors of the paired difference, -1 if fewer by over that, else 0. Decided
    in exact arithmetic: with d the per-window differences, n windows and S their sum,
    |S / n| > k * se exactly when S^2 (n - 1 + k^2) > k^2 n sum(d^2), and a margin of
    exactly k errors (one window apart of n, when k = 1) is common, so rounding must not
    decide it."""
    return margin_sign(_paired(hits, against))


def margin_sign(d: np.ndarray, k: float = MARGIN_SE) -> int:
    """`beyond_margin` of integer paired differences `d` (any common scale), with a margin
    of `k` standard errors."""
    n, total, squares = d.size, int(d.sum()), int((d.astype(np.int64) ** 2).sum())
    k2 = Fraction(k) ** 2
    if total**2 * (n - 1 + k2) > k2 * n * squares:
        return 1 if total > 0 else -1
    return 0


def beats(challenger: Trial, defaults: Trial) -> bool:
    """Whether `challenger`'s second score beats the defaults' by over MARGIN_SE standard
    errors of the paired difference."""
    return beyond_margin(challenger.confirmed_hits, defaults.confirmed_hits) > 0


def _cost(t: Trial) -> tuple[int, int]:
    """What "cheapest" minimises: instructions (estimated), then flash."""
    return t.cost.instructions, t.cost.flash


def contenders(ranked: list[Trial], challengers: int, select: str, windows: int) -> list[Trial]:
    """The trials `confirm` scores again (`ranked`: trained trials, best first); none if
    nothing would be compared.

    "defaults": up to `challengers` of the best ranked above the defaults, and the
    defaults; none if the defaults rank first. "cheapest": the best trial and up to
    `challengers` of the cheapest (fewest instructions) whose accuracy is within MARGIN_SE
    standard errors of the best's, over the `windows` its score held out (Agresti and
    Coull's: two right and two wrong added, so that 100 % of a few windows still has one)."""
    if select == "cheapest":
        if not ranked or challengers == 0:
            return []
        best = ranked[0]
        p = (best.accuracy / 100 * windows + 2) / (windows + 4)
        se = 100 * math.sqrt(p * (1 - p) / (windows + 4))
        near = [t for t in ranked if t.accuracy >= best.accuracy - MARGIN_SE * se]
        cheap = sorted(near, key=_cost)[:challengers]
        chosen = [best] + [t for t in cheap if t is not best]
        return chosen if len(chosen) >= 2 else []
    at = next((i for i, t in enumerate(ranked) if t.defaults), None)
    above = ranked if at is None else ranked[:at]
    chosen = above[:challengers] + ([] if at is None else [ranked[at]])
    return chosen if len(chosen) >= 2 and above else []


def choose(chosen: list[Trial], select: str) -> list[Trial]:
    """The contenders, scored again, in the order the written model is chosen from.

    Both rules rank on the second score (`_confirmed_rank`). "defaults": a challenger goes
    before the defaults only if it `beats` them. "cheapest": first the contender with the
    fewest instructions (then the less flash) whose second score is not below the best one
    by more than MARGIN_SE standard errors of the paired difference (`close`)."""
    order = sorted(chosen, key=_confirmed_rank, reverse=True)
    if select == "cheapest":
        top = order[0]
        near = [t for t in order if close(t, top)]
        pick = min(near, key=_cost)
        return [pick] + [t for t in order if t is not pick]
    d = next((t for t in chosen if t.defaults), None)
    if d is None:
        return order
    better = [t for t in order if t is not d and beats(t, d)]
    return better + [d] + [t for t in order if t is not d and t not in better]


def close(t: Trial, top: Trial) -> bool:
    """Whether `t`'s second score is within MARGIN_SE standard errors of the paired
    difference below `top`'s."""
    return t is top or beyond_margin(t.confirmed_hits, top.confirmed_hits) >= 0


def confirm(
    study,
    data: Dataset,
    settings: Settings,
    challengers: int,
    steps: int,
    jobs: int,
    progress: bool,
    select: str = "defaults",
) -> tuple[list[Trial], list[Trial]]:
    """Score the best trials again, and choose among them on that score (`select`).

    The top of many trials' noisy scores overstates its candidate (the winner's curse), and
    short trials favour candidates that converge fast over those that need the whole
    schedule (the defaults). So the contenders (`contenders`) are trained again on new folds
    (the split and the training seeded from seed + 1) for `steps` optimizer steps each: a
    score the selection did not see. They are ordered on it by `choose`; the other trials
    follow in their order. The scores are kept in the study, keyed by trial, so a resumed
    search (under either rule) does not train them again. Returns (the trained trials
    ranked, the contenders in their new order)."""
    ranked = sorted((t for t in trials_of(study) if t.folds), key=_rank, reverse=True)
    # the windows a trial's score held out: every one across k folds, else the hold-out's
    windows = len(data) if settings.folds >= 2 else len(split(data, HOLD_OUT, settings.seed)[1])
    chosen = contenders(ranked, challengers, select, windows)
    if not chosen:
        return ranked, []
    stored = dict(study.user_attrs.get("confirmed", {}))
    todo = [t for t in chosen if stored.get(str(t.number), {}).get("steps") != steps]
    if todo:
        if progress:
            names = ", ".join(f"{t.number}{' (the defaults)' if t.defaults else ''}" for t in todo)
            print(f"scoring trials {names} again on new folds, {steps} steps", file=sys.stderr)
        args = [
            (t.candidate.options(), data, settings.folds, settings.seed + 1, steps) for t in todo
        ]
        if jobs > 1 and len(todo) > 1:
            with ProcessPoolExecutor(min(jobs, len(todo)), mp_context=get_context("spawn")) as p:
                results = list(p.map(second_score, *zip(*args, strict=True)))
        else:
            results = [second_score(*a) for a in args]
        for t, (accs, losses, hits, seconds) in zip(todo, results, strict=True):
            stored[str(t.number)] = dict(
                steps=steps, folds=accs, losses=losses, hits=hits, seconds=round(seconds, 1)
            )
        study.set_user_attr("confirmed", stored)
    for t in chosen:
        t.take_second(stored[str(t.number)])
    order = choose(chosen, select)
    if progress:
        print(
            "second scores: "
            + ", ".join(f"trial {t.number} {t.confirmed_accuracy:.1f}%" for t in order),
            file=sys.stderr,
        )
    numbers = {t.number for t in chosen}
    return order + [t for t in ranked if t.number not in numbers], order


def ask_fitting(study, settings: Settings, seed: int):
    """Ask trials until one's candidate fits the budget; the ones over it are told PRUNED
    (never trained: TPE ranks them below every trained trial). Returns (trial, candidate,
    cost)."""
    optuna = _optuna()
    TrialState = optuna.trial.TrialState
    for _ in range(MAX_OVER):
        # the sampler's seed counts every trial but those an interruption failed
        live = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.FAIL]
        study.sampler = sampler(seed, len(live))
        trial = study.ask()
        cand = suggest(trial, settings.shape)
        c = priced(cand, settings, bool(trial.user_attrs.get("defaults")))
        for k, v in _candidate_attrs(cand, c).items():
            trial.set_user_attr(k, v)
        over = c.over(settings.budget)
        if not over:
            return trial, cand, c
        trial.set_user_attr("over", over)
        study.tell(trial, state=TrialState.PRUNED)
    raise TinyBNNError(
        f"{MAX_OVER} candidates in a row were over the budget ({settings.budget.describe()}); "
        "the budget leaves too little room for this data's models"
    )


def run_local(
    study, data: Dataset, settings: Settings, trials: int, jobs: int, progress: Progress
) -> None:
    """Run trials in this machine's processes until `trials` candidates have been trained."""
    _requeue_interrupted(study)
    pool = None
    if jobs > 1:
        pool = ProcessPoolExecutor(jobs, mp_context=get_context("spawn"))
    try:
        while (done := _trained(study)) < trials:
            batch = [
                ask_fitting(study, settings, settings.seed) for _ in range(min(jobs, trials - done))
            ]
            args = [
                (cand.options(), data, settings.folds, settings.seed, settings.trial_steps)
                for _, cand, _ in batch
            ]
            if pool is None:
                results = [evaluate(*a) for a in args]
            else:
                results = list(pool.map(evaluate, *zip(*args, strict=True)))
            for (trial, cand, c), (accs, losses, seconds) in zip(batch, results, strict=True):
                trial.set_user_attr("folds", accs)
                trial.set_user_attr("losses", losses)
                trial.set_user_attr("seconds", round(seconds, 1))
                study.tell(trial, float(np.mean(accs)))
                progress(
                    study,
                    Trial(trial.number, cand, c, folds=accs, losses=losses, seconds=seconds),
                )
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


@dataclass
class SearchResult:
    """What `search` found and wrote."""

    settings: Settings
    trials: list[Trial]  # every finished trial, over budget ones too
    best: Trial
    front: list[Trial]  # the Pareto front of the trained trials, best first
    measured: dict  # trial number -> ProfileReport (QEMU), for the finalists measured
    not_measured: str  # why the finalists were not measured, or ''
    model_path: Path
    files: list[Path]
    final_accuracy: float  # the final model's training-set accuracy (eval mode)
    passed_over: dict[int, int]  # trial number -> instructions measured over the budget
    unchecked: str  # why the best's instructions were not measured before training, or ''
    contenders: list[Trial] = field(default_factory=list)  # scored again (`confirm`), ranked
    confirm_steps: int = CONFIRM_STEPS
    select: str = SELECT_DEFAULT  # the rule that chose among the contenders (SELECT)


def pareto_front(trials: list[Trial]) -> list[Trial]:
    """Trained trials no other trained trial beats on accuracy, instructions and flash at
    once; best first."""
    done = [t for t in trials if t.folds]

    def dominates(a: Trial, b: Trial) -> bool:
        ge = (
            a.accuracy >= b.accuracy
            and a.cost.instructions <= b.cost.instructions
            and a.cost.flash <= b.cost.flash
        )
        gt = (
            a.accuracy > b.accuracy
            or a.cost.instructions < b.cost.instructions
            or a.cost.flash < b.cost.flash
        )
        return ge and gt

    front = [t for t in done if not any(dominates(o, t) for o in done)]
    return sorted(front, key=_rank, reverse=True)


def search(
    data: str | os.PathLike | Dataset,
    out_dir: str | os.PathLike,
    budget: Budget | None = None,
    *,
    trials: int = 40,
    seed: int = 0,
    folds: int | None = None,
    trial_steps: int = TRIAL_STEPS,
    jobs: int | None = None,
    storage: str | None = None,
    ray: str | None = None,
    progress: bool = True,
    measure: bool = True,
    finalists: int = 6,
    final_steps: int | None = None,
    challengers: int = CONFIRM,
    confirm_steps: int = CONFIRM_STEPS,
    select: str = SELECT_DEFAULT,
) -> SearchResult:
    """Search for the most accurate model of `data` that fits `budget` (see the module
    docstring); write the study, the best model, the report and the plot to `out_dir`.

    folds: 2 or more for k-fold cross-validation, 1 for one hold-out split; None chooses
        from the data's size.
    jobs: trials at a time in worker processes (default: the CPUs, at most 2); 1 runs them
        in this process.
    final_steps: optimizer steps of the best candidate's final training on all the data
        (default: the defaults' schedule for the data).
    finalists: Pareto-front models profiled under QEMU (the best one first).
    challengers: the trials scored again, on new folds for `confirm_steps` optimizer steps
        (`confirm`), beside the defaults or the best; 0 takes the trials' ranking as it is.
    select: how the written model is chosen on that second score (SELECT): "defaults"
        (SELECT_DEFAULT) keeps the defaults unless a challenger beats them; "cheapest" takes
        the fewest instructions within a standard error of the best.
    """
    from .report import write_report

    budget = budget or Budget()
    if trials < 1:
        raise TinyBNNError(f"trials must be >= 1, not {trials}")
    if trial_steps < 1:
        raise TinyBNNError(f"trial_steps must be >= 1, not {trial_steps}")
    if challengers < 0 or confirm_steps < 1:
        raise TinyBNNError(
            f"challengers must be >= 0 and confirm_steps >= 1, not {challengers}, {confirm_steps}"
        )
    if select not in SELECT:
        raise TinyBNNError(f"select must be one of {', '.join(SELECT)}, not {select!r}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise TinyBNNError(f"{out}: is a file; give a directory for the search")
    source = data if isinstance(data, (str, os.PathLike)) else None
    if source is not None:
        check_outputs(
            [out / JOURNAL, out / MODEL, out / "search.md", out / "pareto.png"],
            {"the data file": source},
            "give another output directory",
        )
    data = load_dataset(source) if source is not None else data
    if data.num_classes < 2:
        raise TinyBNNError(f"the data has {data.num_classes} class; a classifier needs two or more")
    k = folds if folds is not None else (FOLDS if len(data) < FOLDS_BELOW else 1)
    least = int(np.bincount(data.y, minlength=data.num_classes).min())
    if k >= 2 and k > least:
        k = max(2, least) if least >= 2 else 1
    jobs = jobs or min(2, os.cpu_count() or 1)
    settings = Settings(
        fingerprint(data),
        (len(data), *data.input_shape, data.num_classes),
        budget,
        seed,
        k,
        trial_steps,
    )
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    show = Progress(trials, progress)
    study = None
    try:
        with _locked(out):
            store = storage_for(out, storage)
            study = open_study(store, storage or str(out / JOURNAL), settings)
            if ray is not None:
                from .cluster import run_ray

                run_ray(study, store, data, settings, trials, ray, show, out)
            else:
                run_local(study, data, settings, trials, jobs, show)
            ranked, scored = confirm(
                study, data, settings, challengers, confirm_steps, jobs, progress, select
            )
            result = finish(
                study, ranked, data, settings, out, progress, measure, finalists, final_steps
            )
            result.contenders, result.confirm_steps, result.select = scored, confirm_steps, select
            write_report(result, out)
    except TinyBNNError:
        if created and study is None:
            shutil.rmtree(out, ignore_errors=True)  # refused before the study: leave nothing
        raise
    return result


def finish(
    study, ranked, data, settings, out, progress, measure, finalists, final_steps=None
) -> SearchResult:
    """Train the best candidate of `ranked` (the trained trials, best first) on all the data,
    measure the finalists, collect the result."""
    from ..training.train import train

    everything = trials_of(study)
    if not ranked:
        raise TinyBNNError("no trial was trained; nothing fits the budget")
    front = pareto_front(everything)

    def train_on_all(t: Trial):
        if progress:
            print(f"training trial {t.number}'s candidate on all the data", file=sys.stderr)
        return train(
            data,
            seed=settings.seed,
            threads=1,
            progress=progress,
            out=out / MODEL,
            flash_budget=1 << 30,
            **({} if final_steps is None else {"epochs": epochs_for(final_steps, len(data))}),
            **t.candidate.options(),
        )

    best, final, passed_over, unchecked, best_profile = fitting_when_measured(
        ranked, settings, train_on_all, progress
    )
    measured, why = {}, ""
    if measure:
        others = [t for t in front if t.number != best.number][: max(0, finalists - 1)]
        measured, why = measure_finalists(final.model, best, others, settings, best_profile)
    else:
        why = "not asked for (measure=False / --no-measure)"
    return SearchResult(
        settings,
        everything,
        best,
        front,
        measured,
        why,
        out / MODEL,
        list(final.files),
        100 * final.val_accuracy,
        passed_over,
        unchecked,
    )


def fitting_when_measured(
    ranked: list[Trial], settings: Settings, train_on_all, progress: bool = False
):
    """Train the best-ranked trial on all the data (`train_on_all(trial)`, which returns
    `tinybnn.train`'s result) whose instructions per inference, measured under QEMU on the
    target, fit the instruction budget: the search priced them with the cost model, whose
    estimate is off by a few per cent, and training moves the count a little. A candidate
    is measured untrained first (built as `budget.cost` prices it, within the flash budget),
    and only one that fits, or is over by no more than training can move the count
    (WEIGHTS_MOVE), is trained; the trained model is then measured, and decides. Returns
    the trial, the training's result, the measured counts of the trials passed over, why
    nothing was measured when there is an instruction budget (no toolchain: the best-ranked
    trial, on the estimate), and the trained model's profile (None if it was not
    measured)."""
    from ..firmware import harness
    from .budget import build, measure

    b = settings.budget
    if b.instructions is None:
        return ranked[0], train_on_all(ranked[0]), {}, "", None
    try:
        harness.find_toolchain()
    except harness.ToolchainMissing as e:
        return ranked[0], train_on_all(ranked[0]), {}, f"no toolchain: {e}", None

    def fits(t: Trial, report, what: str, slack: Fraction = Fraction(0)):
        """Whether `report`'s instructions are within the budget (and `slack` of it)."""
        n = report.instructions
        if b.allows(n, slack):
            return True
        over[t.number] = n
        if progress:
            print(
                f"trial {t.number}: {n:,} instructions measured on {b.target} ({what}), over "
                f"the budget of {b.instructions:,}"
                + (f" by over {float(slack):.0%}" if slack else "")
                + "; passed over",
                file=sys.stderr,
            )
        return False

    over: dict[int, int] = {}
    for t in ranked:
        untrained = measure(build(t.candidate, settings.shape), b)
        if not fits(t, untrained, "untrained", WEIGHTS_MOVE):
            continue
        if untrained.instructions > b.instructions and progress:
            print(
                f"trial {t.number}: {untrained.instructions:,} instructions untrained, within "
                f"{float(WEIGHTS_MOVE):.0%} of the budget; trained to decide on its trained count",
                file=sys.stderr,
            )
        final = train_on_all(t)
        if fits(t, report := measure(final.model, b), "trained"):
            return t, final, over, "", report
        for f in final.files:  # no model over the budget is left behind
            Path(f).unlink(missing_ok=True)
    raise TinyBNNError(
        f"no trained candidate fits {b.instructions:,} instructions when measured under QEMU "
        f"on {b.target} (the fewest take {min(over.values()):,}); give a larger budget"
    )


def measure_finalists(
    model, best: Trial, front: list[Trial], settings: Settings, best_profile=None
):
    """QEMU profiles on the budget's target: the final model for the best trial, the
    untrained candidate for each other finalist (instructions and flash do not depend on
    the weights beyond the thresholds' width, which the estimate already takes at its
    widest)."""
    from ..firmware import harness
    from .budget import build, measure

    try:
        harness.find_toolchain()
    except harness.ToolchainMissing as e:
        return {}, f"no toolchain: {e}"
    # the best's trained model was measured already, in fitting_when_measured
    measured = {} if best_profile is None else {best.number: best_profile}
    for t in [best] + [f for f in front if f.number != best.number]:
        if t.number in measured:
            continue
        m = model if t.number == best.number else build(t.candidate, settings.shape)
        measured[t.number] = measure(m, settings.budget)
    return measured, ""


def write_json(result: SearchResult, path: Path) -> None:
    """The trials as JSON lines (for scripts and the benchmark)."""
    with open(path, "w") as f:
        for t in result.trials:
            f.write(
                json.dumps(
                    dict(
                        number=t.number,
                        accuracy=t.accuracy,
                        folds=t.folds,
                        losses=t.losses,
                        confirmed=t.confirmed,
                        confirmed_losses=t.confirmed_losses,
                        confirmed_hits=t.confirmed_hits,
                        over=t.over,
                        seconds=t.seconds,
                        flash=t.cost.flash,
                        arena=t.cost.arena,
                        instructions=t.cost.instructions,
                        candidate=t.candidate.describe(),
                    )
                )
                + "\n"
            )
