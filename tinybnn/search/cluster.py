"""The same search on a Ray cluster: Ray Tune runs the trials, Optuna chooses them.

Ray Tune's `OptunaSearch` is given the search's own study (the journal in the output
directory, or the `--storage` database) and the same define-by-run space, so trials,
the defaults' first trial, resuming and the report are shared with the in-process search.
The define-by-run function prices each candidate on the driver before Tune schedules it;
`Fitting` (a Tune `Searcher` around `OptunaSearch`) tells a candidate over budget to
Optuna as pruned and draws again, so, as in-process, only candidates that fit are trained
and `trials` counts trained candidates. Each Tune trial trains the candidate's folds in
one worker process, with one thread.

Pointing it at a cluster: start Ray on the machines (`ray start --head` on one,
`ray start --address HEAD:6379` on the others; every machine needs this tinybnn installed
with the `cluster` extra), then run `tinybnn search ... --ray auto` on a machine of the
cluster (or `--ray HEAD:6379`). Ray Client addresses (`ray://`) need Ray's `client` extra,
which `cluster` does not install. `--ray local` starts a Ray instance on this
machine with one CPU per concurrent trial. The output directory, and the data, are on the
machine that runs the command: the workers receive the data from it.

Non-goals: determinism (trials finish in the order the cluster makes); GPU placement.
"""

from __future__ import annotations

import os

from ..errors import TinyBNNError


def _ray():
    try:
        import ray
        from ray import tune
        from ray.tune.search import Searcher
        from ray.tune.search.optuna import OptunaSearch
    except ImportError:
        raise TinyBNNError("--ray needs Ray Tune: pip install 'tinybnn[cluster]'") from None
    return ray, tune, Searcher, OptunaSearch


def _trainable(config: dict, data=None, settings=None) -> dict:
    """One Tune trial: the candidate's folds; returns Tune's final result."""
    from .run import evaluate

    accs, losses, seconds = evaluate(
        config["options"], data, settings.folds, settings.seed, settings.trial_steps
    )
    return {"accuracy": sum(accs) / len(accs), "folds": accs, "losses": losses, "seconds": seconds}


def run_ray(study, storage, data, settings, trials: int, address: str, progress, out) -> None:
    """Run the search's trials on Ray (see the module docstring) until `trials` candidates
    have been trained."""
    from optuna.trial import TrialState

    from .run import (
        MAX_OVER,
        Trial,
        _candidate_attrs,
        _requeue_interrupted,
        _trained,
        priced,
        sampler,
    )
    from .space import suggest

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # no status tables on the console
    ray, tune, Searcher, OptunaSearch = _ray()
    _requeue_interrupted(study)
    todo = trials - _trained(study)
    if todo <= 0:
        return
    jobs = min(todo, 2 if address == "local" else todo)
    started = False
    if not ray.is_initialized():
        kw = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        try:
            if address == "local":
                ray.init(num_cpus=min(jobs, os.cpu_count() or 1), **kw)
            else:
                ray.init(address=address, **kw)
        except Exception as e:  # unreachable address, no cluster there: one line
            raise TinyBNNError(f"--ray {address}: cannot connect: {e}") from None
        started = True
    if address != "local":
        jobs = max(1, int(ray.cluster_resources().get("CPU", 1)))

    drawn: dict = {}  # Optuna trial of the draw under way

    def space(ot_trial):
        cand = suggest(ot_trial, settings.shape)
        c = priced(cand, settings, bool(getattr(ot_trial, "user_attrs", {}).get("defaults")))
        for k, v in _candidate_attrs(cand, c).items():
            ot_trial.set_user_attr(k, v)
        over = c.over(settings.budget)
        if over:
            ot_trial.set_user_attr("over", over)
        drawn["trial"] = ot_trial.ot_trial if hasattr(ot_trial, "ot_trial") else ot_trial
        drawn["candidate"], drawn["cost"], drawn["over"] = cand, c, over
        return {"options": cand.options()}

    inner = OptunaSearch(
        space=space,
        metric="accuracy",
        mode="max",
        sampler=sampler(settings.seed, len(study.get_trials(deepcopy=False))),
        study_name=study.study_name,
        storage=storage,
    )

    class Fitting(Searcher):
        """`OptunaSearch` that never hands Tune a candidate over budget."""

        def __init__(self):
            super().__init__(metric="accuracy", mode="max")
            self.keys: dict[str, str] = {}
            self.drawn: dict[str, dict] = {}
            self.draws = 0

        def set_search_properties(self, metric, mode, config, **spec):
            return inner.set_search_properties(metric, mode, config, **spec)

        def suggest(self, trial_id: str):
            for _ in range(MAX_OVER):
                key = f"{trial_id}-{self.draws}"
                self.draws += 1
                config = inner.suggest(key)
                if not drawn["over"]:
                    self.keys[trial_id] = key
                    self.drawn[trial_id] = dict(drawn)
                    return config
                inner.on_trial_complete(key, None, error=False)  # no value: pruned
            raise TinyBNNError(
                f"{MAX_OVER} candidates in a row were over the budget "
                f"({settings.budget.describe()})"
            )

        def save(self, checkpoint_path: str) -> None:
            pass  # the study (journal or database) holds the state

        def restore(self, checkpoint_path: str) -> None:
            pass

        def on_trial_result(self, trial_id: str, result: dict):
            pass  # one result per trial: its last

        def on_trial_complete(self, trial_id: str, result=None, error: bool = False):
            d = self.drawn.pop(trial_id)
            if result and not error and "folds" in result:
                d["trial"].set_user_attr("folds", result["folds"])
                d["trial"].set_user_attr("losses", result["losses"])
                d["trial"].set_user_attr("seconds", round(result["seconds"], 1))
            inner.on_trial_complete(self.keys.pop(trial_id), result, error)
            if result and "folds" in result:
                progress(
                    study,
                    Trial(
                        d["trial"].number,
                        d["candidate"],
                        d["cost"],
                        folds=result["folds"],
                        losses=result["losses"],
                    ),
                )

    trainable = tune.with_resources(
        tune.with_parameters(_trainable, data=data, settings=settings), {"cpu": 1}
    )
    try:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=Fitting(), num_samples=todo, max_concurrent_trials=jobs
            ),
            run_config=tune.RunConfig(verbose=0, storage_path=str(out.resolve() / "ray")),
        )
        grid = tuner.fit()
    finally:
        if started:
            ray.shutdown()
    failed = [r.error for r in grid if r.error is not None]
    running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    for t in running:  # a trial Tune lost
        study.tell(t.number, state=TrialState.FAIL)
    if failed:
        raise TinyBNNError(f"{len(failed)} Ray trial(s) failed; the first: {failed[0]}")
