"""`tinybnn search`: budgets priced before training, cross-validated trials, a deterministic
and resumable Optuna study, the report, the Ray Tune path and QEMU-measured finalists."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import make_signals
from hypothesis import given, settings
from hypothesis import strategies as st

from tinybnn import firmware
from tinybnn.cli import main
from tinybnn.compiler.api import compile as compile_model
from tinybnn.compiler.summary import summary
from tinybnn.errors import TinyBNNError
from tinybnn.firmware.profile import profile
from tinybnn.modelfile import load
from tinybnn.search import Budget, search
from tinybnn.search import run as search_run
from tinybnn.search.budget import WEIGHTS_MOVE, build, cost
from tinybnn.search.space import Candidate, default_params
from tinybnn.training.data import Dataset, save_dataset

try:
    firmware.find_toolchain()
    HAVE_FIRMWARE = True
except firmware.ToolchainMissing:
    HAVE_FIRMWARE = False

FAST = dict(
    trial_steps=30,
    final_steps=30,
    confirm_steps=30,
    folds=2,
    jobs=1,
    progress=False,
    measure=False,
)


@pytest.fixture(scope="module")
def tiny():
    X, y = make_signals(seed=3, per_class=8, channels=2, length=40)
    return Dataset(X, y, ["sine", "square", "sawtooth"])


def _rows(out) -> list[dict]:
    rows = [json.loads(line) for line in (out / "trials.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("seconds")
        r.pop("number")  # an interrupted trial keeps its number; its rerun takes a new one
    return rows


def test_cost_is_the_compilers_count_with_the_thresholds_at_their_widest(tmp_path):
    cand = Candidate(
        dict(widths=(24, 33, 40), kernel_size=5, pool=2, first_weights="int8", last_conv="8a8"),
        dict(lr=0.05, dropout=0.0, augment=True),
    )
    shape = (30, 3, 70, 4)
    c = cost(cand, shape, Budget("cortex-m4", flash=None))
    model = build(cand, shape)
    compiled = compile_model(model, tmp_path, target="cortex-m4")
    assert c.flash == compiled.cmodel.flash_bytes + summary(model).threshold_headroom
    assert c.arena == compiled.cmodel.arena_bytes
    assert c.instructions > 0 and not c.refused
    assert c.over(Budget("cortex-m4", flash=c.flash)) == ""
    assert "flash" in c.over(Budget("cortex-m4", flash=c.flash - 1))
    assert "arena" in c.over(Budget("cortex-m4", flash=None, ram=c.arena - 1))
    assert "instructions" in c.over(Budget("cortex-m4", instructions=c.instructions - 1))


def test_the_defaults_are_a_point_of_the_space():
    params = default_params((40, 1, 300, 12), 16384)
    assert (
        params is not None
        and params["depth"] == 3
        and params["kernel_size"] == 9
        and params["pool"] == 4
    )


def test_budget_refuses_bad_values():
    with pytest.raises(TinyBNNError, match="unknown target"):
        Budget("cortex-m9")
    with pytest.raises(TinyBNNError, match="flash budget"):
        Budget(flash=0)


def test_search_trains_only_what_fits_and_is_deterministic(tiny, tmp_path):
    budget = Budget("cortex-m4", flash=4000)
    a = search(tiny, tmp_path / "a", budget, trials=3, seed=1, **FAST)
    trained = [t for t in a.trials if t.folds]
    over = [t for t in a.trials if not t.folds]
    assert len(trained) == 3
    assert over, "a 4000 B budget leaves some candidates over it"
    assert all(t.cost.flash <= 4000 for t in trained)
    assert all(t.over and t.seconds == 0 for t in over)
    assert all(len(t.folds) == 2 for t in trained)
    assert all(len(t.losses) == 2 and all(0 < x < 10 for x in t.losses) for t in trained)
    top = max(t.accuracy for t in trained)
    assert a.best.accuracy == top
    tied = [t for t in trained if t.accuracy == top]
    assert (
        a.best.defaults
        if any(t.defaults for t in tied)
        else a.best.loss == min(t.loss for t in tied)
    )
    assert [t.number for t in a.trials if t.defaults] == [0]
    model = load(a.model_path)
    assert summary(model).trained_flash_bytes <= 4000
    for name in ("search.md", "pareto.png", "trials.jsonl", "study.journal"):
        assert (tmp_path / "a" / name).stat().st_size > 0
    text = (tmp_path / "a" / "search.md").read_text()
    assert "over budget" in text and "Pareto front" in text
    search(tiny, tmp_path / "b", budget, trials=3, seed=1, **FAST)
    assert _rows(tmp_path / "a") == _rows(tmp_path / "b")


def test_equal_accuracies_go_to_the_defaults_then_the_lower_cross_entropy():
    cand = Candidate({}, {})

    def trial(number, folds, losses, instructions, defaults=False):
        return search_run.Trial(
            number,
            cand,
            search_run.Cost(100, 10, instructions),
            folds=folds,
            losses=losses,
            defaults=defaults,
        )

    trials = [
        trial(0, [100.0, 100.0], [0.30, 0.20], 900, defaults=True),  # a tie: the defaults
        trial(1, [100.0, 100.0], [0.10, 0.20], 1000),  # the lowest cross-entropy
        trial(2, [100.0, 100.0], [0.10, 0.20], 500),  # ... tied: fewer instructions wins
        trial(3, [90.0, 100.0], [0.01, 0.01], 100),  # less accurate: never first
        trial(4, [100.0, 100.0], [], 50),  # no cross-entropy recorded: last among equals
    ]
    order = [t.number for t in sorted(trials, key=search_run._rank, reverse=True)]
    assert order == [0, 2, 1, 4, 3]
    trials[0] = trial(0, [100.0, 90.0], [0.01, 0.01], 900, defaults=True)  # beaten
    order = [t.number for t in sorted(trials, key=search_run._rank, reverse=True)]
    assert order == [2, 1, 4, 0, 3]


def test_the_contenders_are_the_best_above_the_defaults_and_the_defaults():
    cand = Candidate({}, {})

    def trials(*accs):
        return [
            search_run.Trial(n, cand, search_run.Cost(100, 10, 1000), folds=[a], defaults=n == 0)
            for n, a in enumerate(accs)
        ]

    def numbers(ts, k):
        ranked = sorted(ts, key=search_run._rank, reverse=True)
        return [t.number for t in search_run.contenders(ranked, k, "defaults", len(ranked))]

    assert numbers(trials(90, 95, 99, 80, 97, 92), 3) == [2, 4, 1, 0]  # three above, then 0
    assert numbers(trials(90, 95, 80), 3) == [1, 0]  # one above
    assert numbers(trials(99, 95, 97), 3) == []  # the defaults first: nothing to score again
    assert numbers(trials(90, 95, 99), 0) == []
    no_defaults = trials(90, 95, 99)
    no_defaults[0].defaults = False
    assert numbers(no_defaults, 2) == [2, 1]
    assert numbers(no_defaults[:1], 2) == []  # nothing to compare it with


def test_the_cheapest_rule_scores_the_best_and_the_cheapest_near_it():
    """--select cheapest: the best trial, then the cheapest trials whose accuracy is within
    one standard error of the best's (Agresti-Coull, over the windows held out)."""
    cand = Candidate({}, {})

    def trials(*rows):
        return [
            search_run.Trial(n, cand, search_run.Cost(100, 10, i), folds=[a], defaults=n == 0)
            for n, (a, i) in enumerate(rows)
        ]

    def numbers(ts, k, windows):
        ranked = sorted(ts, key=search_run._rank, reverse=True)
        return [t.number for t in search_run.contenders(ranked, k, "cheapest", windows)]

    # 100 windows at 90 %: 92 of 104, a standard error of 3.1 points: 87.5 near, 86.5 not
    ts = trials((88, 1000), (90, 900), (87.5, 300), (86.5, 100), (89, 500), (87.5, 200))
    assert numbers(ts, 3, 100) == [1, 5, 2, 4]
    assert numbers(ts, 1, 100) == [1, 5]
    assert numbers(ts, 0, 100) == []
    assert numbers(ts, 3, 10_000) == []  # 0.3 points: nothing near, nothing to compare
    # 40 of 40: 42 of 44, 3.1 points: the ties are near and 95 is not; the defaults first
    ts = trials((100, 1000), (100, 400), (95, 50), (100, 300))
    assert numbers(ts, 3, 40) == [0, 3, 1]


def test_the_cheapest_rule_takes_the_fewest_instructions_within_a_standard_error():
    cand = Candidate({}, {})

    def contender(n, hits, instructions, defaults=False):
        t = search_run.Trial(n, cand, search_run.Cost(100, 10, instructions), folds=[90.0])
        t.defaults = defaults
        return t.take_second(dict(folds=[50.0], losses=[0.5], hits=hits))

    top = contender(1, "1" * 20 + "0" * 4, 900)  # 83.3 %
    near = contender(2, "1" * 19 + "0" * 5, 500)  # one window fewer: -4.2 ± 4.2, near
    far = contender(3, "1" * 16 + "0" * 8, 100)  # four fewer: -16.7 ± 7.8, below
    d = contender(0, "1" * 20 + "0" * 4, 1000, defaults=True)  # tied with the best
    order = search_run.choose([top, near, far, d], "cheapest")
    assert [t.number for t in order] == [2, 0, 1, 3]  # near first, the rest by second score
    assert search_run.close(near, top) and not search_run.close(far, top)
    # the same contenders under --select defaults: nothing beats the defaults
    assert [t.number for t in search_run.choose([top, near, far, d], "defaults")][0] == 0
    cheap_tie = contender(4, "1" * 20 + "0" * 4, 500)  # as cheap as `near`, and as good as top
    assert search_run.choose([top, near, cheap_tie], "cheapest")[0] is cheap_tie


def test_the_second_score_ranks_the_contenders_and_is_kept(tiny, monkeypatch):
    """The contenders are trained again on the folds of seed + 1 at the given steps and rank
    on that score, but a challenger goes before the defaults only if it has more of the same
    windows right by over one standard error of the paired difference; the other trials
    follow. The scores are kept in the study: confirming again trains nothing (unless the
    steps differ)."""
    import optuna

    settings = search_run.Settings("x", (24, 2, 40, 3), Budget(flash=None), 5, 2, 30)
    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    trial_scores = {0: 80.0, 1: 90.0, 2: 95.0, 3: 70.0, 4: 99.0}  # 4, 2, 1 rank above 0
    hits = {
        0: "1" * 18 + "0" * 6,  # the defaults: 75 %
        1: "1" * 18 + "0" * 6,  # the same windows: a tie, the defaults first
        2: "1" * 19 + "0" * 5,  # one window more: +4.2 points, and so is the standard error
        4: "1" * 22 + "0" * 2,  # four more: +16.7 ± 7.8 points, it beats them
    }
    for n, acc in trial_scores.items():
        cand = Candidate(dict(widths=(8 + n,)), dict(lr=0.05))
        study.add_trial(
            optuna.trial.create_trial(
                value=acc,
                user_attrs=dict(
                    search_run._candidate_attrs(cand, search_run.Cost(100, 10, 1000)),
                    folds=[acc, acc],
                    losses=[0.5, 0.5],
                    defaults=n == 0,
                ),
            )
        )
    calls = []

    def second(options, data, k, seed, steps):
        n = options["widths"][0] - 8
        calls.append((n, k, seed, steps))
        right = hits[n].count("1")
        return [100 * right / 24] * k, [0.4] * k, hits[n], 1.0

    monkeypatch.setattr(search_run, "second_score", second)
    ranked, order = search_run.confirm(study, tiny, settings, 3, 77, 1, False)
    assert [t.number for t in order] == [4, 0, 2, 1]
    assert [t.number for t in ranked] == [4, 0, 2, 1, 3]
    assert sorted(calls) == [(n, 2, 6, 77) for n in (0, 1, 2, 4)]
    assert order[1].confirmed_hits == hits[0] and order[1].confirmed_accuracy == 75.0
    calls.clear()
    again, _ = search_run.confirm(study, tiny, settings, 3, 77, 1, False)
    assert calls == [] and [t.number for t in again] == [4, 0, 2, 1, 3]
    kept = {t.number: t.confirmed_hits for t in search_run.trials_of(study) if t.confirmed}
    assert kept == hits
    search_run.confirm(study, tiny, settings, 3, 78, 1, False)  # other steps: scored again
    assert len(calls) == 4
    hits[4] = hits[2]  # only one window more now: not enough
    _, order = search_run.confirm(study, tiny, settings, 1, 79, 1, False)  # one challenger
    assert [t.number for t in order] == [0, 4]


def test_the_paired_difference_and_its_standard_error():
    diff, se = search_run.paired_difference("1101", "1001")
    assert diff == 25.0 and se == pytest.approx(25.0)  # d = 0,1,0,0: sd 0.5, / sqrt(4)
    diff, se = search_run.paired_difference("10" * 50, "01" * 50)
    assert diff == 0.0 and se == pytest.approx(100 * math.sqrt(100 / 99) / 10)
    with pytest.raises(ValueError, match="paired scores of 3 and 4 windows"):
        search_run.paired_difference("101", "1010")


def test_a_margin_of_exactly_one_standard_error_is_decided_exactly():
    """One window apart of n is exactly one standard error of the paired difference (as are
    3 windows more and 1 fewer of 4 that differ): neither beats nor falls below, whatever n,
    and without rounding deciding it."""
    for n in range(2, 400):
        assert search_run.beyond_margin("1" * n, "1" * (n - 1) + "0") == 0
        assert search_run.beyond_margin("1" * (n - 1) + "0", "1" * n) == 0
        assert search_run.beyond_margin("1" * n, "1" * (n - 2) + "00") == 1
    assert search_run.beyond_margin("1110" + "0" * 30, "0001" + "0" * 30) == 0
    assert search_run.beyond_margin("1111" + "0" * 30, "0001" + "0" * 30) == 1
    assert search_run.beyond_margin("0" * 12, "1" * 12) == -1  # no spread at all


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans()), min_size=2, max_size=60))
def test_the_exact_margin_agrees_with_the_paired_difference(pairs):
    hits = "".join("1" if a else "0" for a, _ in pairs)
    against = "".join("1" if b else "0" for _, b in pairs)
    diff, se = search_run.paired_difference(hits, against)
    got = search_run.beyond_margin(hits, against)
    if abs(abs(diff) - search_run.MARGIN_SE * se) > 1e-9:  # away from the boundary
        assert got == (0 if abs(diff) < search_run.MARGIN_SE * se else (1 if diff > 0 else -1))
    else:
        assert got == 0


def test_a_search_writes_the_contender_with_the_best_second_score(tiny, tmp_path, monkeypatch):
    """Under --select defaults without the defaults (here: none for the data), the best
    trials are the contenders; the written model is the one with the best second score, and
    the report says so."""
    monkeypatch.setattr(search_run, "default_params", lambda shape, flash: None)
    kw = dict(trials=3, challengers=2, select="defaults", **FAST)
    r = search(tiny, tmp_path / "a", Budget(flash=None), **kw)
    ranked = sorted((t for t in r.trials if t.folds), key=search_run._rank, reverse=True)
    assert {t.number for t in r.contenders} == {t.number for t in ranked[:2]}
    assert r.contenders == sorted(r.contenders, key=search_run._confirmed_rank, reverse=True)
    assert all(len(t.confirmed) == 2 and len(t.confirmed_losses) == 2 for t in r.contenders)
    assert r.best.number == r.contenders[0].number
    text = (tmp_path / "a" / "search.md").read_text()
    assert "## Scored again" in text and f"scored again: {r.best.confirmed_accuracy:.1f} %" in text
    rows = _rows(tmp_path / "a")
    assert sum(1 for row in rows if row["confirmed"]) == 2
    search(tiny, tmp_path / "b", Budget(flash=None), **kw)
    assert rows == _rows(tmp_path / "b")


def test_a_study_chosen_from_again_under_the_cheapest_rule(tiny, tmp_path, monkeypatch):
    """A study run under the default rule (defaults), resumed under --select cheapest,
    trains no trial again and reuses the second scores it has; it writes the cheapest
    contender within a standard error of the best second score, and the report names the
    rule (here without the defaults, which score 100 % alone on this data)."""
    import shutil

    monkeypatch.setattr(search_run, "default_params", lambda shape, flash: None)
    kw = dict(trials=5, challengers=2, **FAST)
    first = search(tiny, tmp_path / "a", Budget(flash=None), **kw)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    r = search(tiny, tmp_path / "b", Budget(flash=None), select="cheapest", **kw)
    assert [t.folds for t in r.trials] == [t.folds for t in first.trials]
    ranked = sorted((t for t in r.trials if t.folds), key=search_run._rank, reverse=True)
    assert {t.number for t in r.contenders} == {
        t.number for t in search_run.contenders(ranked, 2, "cheapest", len(tiny))
    }
    assert len(r.contenders) >= 2 and r.contenders[0].number == r.best.number
    assert ranked[0].number in {t.number for t in r.contenders}
    assert r.best.cost.instructions < ranked[0].cost.instructions
    top = max(r.contenders, key=search_run._confirmed_rank)
    near = [t for t in r.contenders if search_run.close(t, top)]
    assert r.best.cost.instructions == min(t.cost.instructions for t in near)
    again = {t.number: t.confirmed_hits for t in first.contenders}
    assert all(t.confirmed_hits == again[t.number] for t in r.contenders if t.number in again)
    text = (tmp_path / "b" / "search.md").read_text()
    assert "(--select cheapest)" in text and "the cheapest within a standard error" in text
    with pytest.raises(TinyBNNError, match="select must be one of defaults, cheapest"):
        search(tiny, tmp_path / "c", Budget(flash=None), trials=1, select="best", **FAST)


def test_an_interrupted_search_resumes_where_it_stopped(tiny, tmp_path, monkeypatch):
    budget = Budget("cortex-m4", flash=None)
    search(tiny, tmp_path / "fresh", budget, trials=3, **FAST)
    calls = []
    evaluate = search_run.evaluate

    def interrupted(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return evaluate(*args)

    monkeypatch.setattr(search_run, "evaluate", interrupted)
    with pytest.raises(KeyboardInterrupt):
        search(tiny, tmp_path / "resumed", budget, trials=3, **FAST)
    monkeypatch.setattr(search_run, "evaluate", evaluate)
    search(tiny, tmp_path / "resumed", budget, trials=3, **FAST)
    assert _rows(tmp_path / "fresh") == _rows(tmp_path / "resumed")


def test_a_search_resumed_with_other_settings_is_refused(tiny, tmp_path):
    search(tiny, tmp_path, Budget(flash=None), trials=1, **FAST)
    with pytest.raises(
        TinyBNNError, match=r"study.journal: this search was started with other flash"
    ):
        search(tiny, tmp_path, Budget(flash=8000), trials=1, **FAST)


def test_cli_search_reads_sizes_and_refuses_in_one_line(tmp_path, capsys):
    data = tmp_path / "d.npz"
    save_dataset(data, *make_signals(seed=4, per_class=6, channels=1, length=32))
    out = tmp_path / "s"
    args = ["search", str(data), "-o", str(out), "--trials", "1", "--trial-steps", "10"]
    args += ["--final-steps", "10"]
    assert main([*args, "--flash", "8k", "--max-instructions", "2M", "--no-measure"]) == 0
    settings = json.loads(json.dumps(load_settings(out)))
    assert settings["flash"] == 8192 and settings["instructions"] == 2_000_000
    capsys.readouterr()
    assert main([*args, "-o", str(tmp_path / "t"), "--flash", "8 parsecs"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a size" in err
    assert main([*args, "-o", str(tmp_path / "u"), "--clock", "64MHz"]) == 2
    assert main([*args, "-o", str(tmp_path / "u"), "--challengers", "-1"]) == 2
    assert main([*args, "-o", str(tmp_path / "v"), "--select", "best"]) == 2
    assert main([*args, "-o", str(data)]) == 1
    assert "is a file" in capsys.readouterr().err
    assert main([*args, "-o", str(tmp_path / "v"), "--storage", "nodb://x"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot open the study" in err
    assert not (tmp_path / "v").exists()  # refused before the study: nothing left behind


def load_settings(out) -> dict:
    import optuna

    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(out / "study.journal"))
    )
    return optuna.load_study(study_name="tinybnn-search", storage=storage).user_attrs["settings"]


def test_latency_budget_is_clock_times_time(tmp_path):
    data = tmp_path / "d.npz"
    save_dataset(data, *make_signals(seed=4, per_class=6, channels=1, length=32))
    out = tmp_path / "s"
    args = ["search", str(data), "-o", str(out), "--trials", "1", "--trial-steps", "10"]
    args += ["--final-steps", "10"]
    assert main([*args, "--clock", "48MHz", "--max-latency", "5ms", "--no-measure"]) == 0
    assert load_settings(out)["instructions"] == 240_000
    # one 32-sample window at 100 Hz: 0.32 s of 48 MHz
    out2 = tmp_path / "s2"
    args[3] = str(out2)
    assert main([*args, "--clock", "48MHz", "--sample-rate", "100", "--no-measure"]) == 0
    assert load_settings(out2)["instructions"] == 15_360_000
    assert main([*args, "--sample-rate", "100"]) == 2


@pytest.mark.skipif(not HAVE_FIRMWARE, reason="no firmware toolchain")
def test_the_best_trial_whose_measured_instructions_fit_is_chosen(tiny, tmp_path):
    r = search(tiny, tmp_path, Budget("cortex-m0", flash=6000), trials=3, **FAST)
    ranked = sorted((t for t in r.trials if t.folds), key=search_run._rank, reverse=True)
    counts = [
        profile(build(t.candidate, r.settings.shape), "cortex-m0", flash_budget=6000).instructions
        for t in ranked
    ]
    assert counts[0] > min(counts) * (1 + WEIGHTS_MOVE)  # the cases below differ

    trained, moved = [], {}

    def train_on_all(t):  # stands in for the final training: the untrained model, or where
        trained.append(t.number)  # the weights "move" its count, another candidate's
        return SimpleNamespace(
            model=build(moved.get(t.number, t).candidate, r.settings.shape), files=[]
        )

    def pick(limit):
        trained.clear()
        budget = Budget("cortex-m0", flash=6000, instructions=limit)
        settings = replace(r.settings, budget=budget)
        best, final, over, why, report = search_run.fitting_when_measured(
            ranked, settings, train_on_all
        )
        assert why == "" and trained[-1] == best.number
        assert report.instructions <= limit
        return best, over, report.instructions

    assert pick(counts[0]) == (ranked[0], {}, counts[0]) and trained == [ranked[0].number]
    # one instruction over untrained: trained, and passed over on its trained count
    best, over, n = pick(counts[0] - 1)
    assert trained[0] == ranked[0].number and over[ranked[0].number] == counts[0]
    assert best is next(t for t, c in zip(ranked, counts, strict=True) if c < counts[0])
    # over by more than the weights move the count: never trained
    limit = math.ceil(counts[0] / (1 + WEIGHTS_MOVE)) - 1
    assert counts[0] > limit * (1 + WEIGHTS_MOVE)
    assert pick(limit)[0] is not ranked[0] and ranked[0].number not in trained
    # within it, and trained to fewer instructions than its untrained build: written
    moved[ranked[0].number] = ranked[counts.index(min(counts))]
    assert pick(counts[0] - 1) == (ranked[0], {}, min(counts))
    moved.clear()
    least = min(counts)
    with pytest.raises(TinyBNNError, match=rf"fits {least - 1:,} instructions .*take {least:,}\)"):
        pick(least - 1)


@pytest.mark.skipif(not HAVE_FIRMWARE, reason="no firmware toolchain")
def test_finalists_are_measured_under_qemu(tiny, tmp_path):
    r = search(
        tiny,
        tmp_path,
        Budget("cortex-m0", flash=6000),
        trials=2,
        **{**FAST, "measure": True},
        finalists=2,
    )
    best = r.measured[r.best.number]
    assert best.core == "cortex-m0" and best.instructions > 0
    assert best.constants_bytes + best.folded_bytes <= 6000
    text = (tmp_path / "search.md").read_text()
    assert f"{best.instructions:,}" in text


def test_search_on_a_local_ray_instance(tiny, tmp_path):
    pytest.importorskip("ray")
    r = search(tiny, tmp_path, Budget(flash=4000), trials=3, ray="local", **FAST)
    trained = [t for t in r.trials if t.folds]
    assert len(trained) == 3 and all(t.cost.flash <= 4000 for t in trained)
    assert all(len(t.folds) == 2 for t in trained)
    assert r.model_path.exists() and np.isfinite(r.best.accuracy)
    assert (tmp_path / "search.md").exists()


@pytest.mark.skipif(not HAVE_FIRMWARE, reason="no firmware toolchain")
def test_the_defaults_are_measured_where_the_estimate_alone_is_over(tiny, tmp_path, monkeypatch):
    from tinybnn.firmware import harness
    from tinybnn.search import budget as pricing

    real = pricing.estimate  # a cost model that puts every candidate at thrice its count
    monkeypatch.setattr(
        pricing, "estimate", lambda cm: SimpleNamespace(instructions=3 * real(cm).instructions)
    )
    probe = search(tiny, tmp_path / "probe", Budget("cortex-m0", flash=6000), trials=1, **FAST)
    d, shape = probe.trials[0], probe.settings.shape
    assert d.defaults and d.cost.measured is None  # no instruction budget: nothing measured
    n = profile(build(d.candidate, shape), "cortex-m0", flash_budget=6000).instructions
    assert d.cost.instructions > n

    # a budget they fit measured (with room for training to move the count, which the final
    # check measures): trained, though the estimate is thrice over it. (An untrained build's
    # count moves a little with its random weights, so the search's own measurement is read.)
    room = math.floor(n * (1 + WEIGHTS_MOVE))
    r = search(
        tiny, tmp_path / "at", Budget("cortex-m0", flash=6000, instructions=room), trials=1, **FAST
    )
    first = r.trials[0]
    m = first.cost.measured
    assert first.defaults and first.folds and m is not None
    assert first.cost.instructions > room and r.best.number == 0
    assert f"(measured untrained {m:,})" in (tmp_path / "at" / "search.md").read_text()
    # the others are priced on the estimate alone
    assert all(t.cost.measured is None for t in r.trials if not t.defaults)
    assert search_run.priced(d.candidate, r.settings, defaults=False).measured is None

    # within WEIGHTS_MOVE of the budget, exactly: the least budget they fit, and one below
    least = math.ceil(m / (1 + WEIGHTS_MOVE))
    for limit, fits in ((least, True), (least - 1, False)):
        b = Budget("cortex-m0", flash=6000, instructions=limit)
        assert (first.cost.over(b) == "") is fits
        assert fits or first.cost.over(b) == (
            f"{m:,} instructions measured untrained > {limit:,} by over 2%"
        )

    # no toolchain: the estimate decides
    def missing():
        raise harness.ToolchainMissing("none here")

    monkeypatch.setattr(harness, "find_toolchain", missing)
    b = Budget("cortex-m0", flash=6000, instructions=n)
    c = pricing.measure_if_over(cost(d.candidate, shape, b), d.candidate, shape, b)
    assert c.measured is None and c.over(b) == f"{c.instructions:,} instructions > {n:,}"
