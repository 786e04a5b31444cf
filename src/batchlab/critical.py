"""Choosing the batch size: steps and samples to a target, and the critical batch size (notebook 07).

For each batch size ``B`` a run trains until the validation loss first reaches a target. It takes
``S(B)`` updates and ``E(B)`` samples (repeats counted). McCandlish et al. (2018, "An Empirical Model
of Large-Batch Training") found that, with the learning rate tuned for each ``B``, the pairs lie on

    (S / S_min − 1) · (E / E_min − 1) = 1,   i.e.   S(B) = S_min + E_min / B,

with ``S_min`` the fewest updates (huge batches) and ``E_min`` the fewest samples (tiny batches). The
*critical batch size* ``B_crit = E_min / S_min`` separates the two regimes: well below it doubling
``B`` halves the updates (perfect scaling); well above it the updates hardly fall while the samples
double (diminishing returns).

* :func:`run_to_target`: one :func:`batchlab.training.train` run that records the validation loss
  after **every** update and stops once the target is met (or on divergence, or at a step cap);
* :func:`steps_to_target`: the first update (1-based) at which a loss curve meets a target, or at
  which its running mean over the last tenth (say) of the updates does (a smoothed stopping rule);
* :func:`tune_to_target`: every ``B`` of a sweep with its learning rate tuned on a log grid;
* :func:`rerun_at_best`: the tuned rates run again on other (held-out) seeds, so that ``S(B)`` is not
  measured on the seeds that chose the rate;
* :func:`summarize` and :func:`fit_tradeoff`: ``S(B)``, ``E(B)``, seconds, and the fit of the formula;
* :func:`b_crit_interval` and :func:`b_crit_per_seed`: how sure the fitted ``B_crit`` is, over seeds;
* :func:`capped_steps` and :func:`capped_b_crit`: McCandlish's model of ``S(B)`` and ``B_crit`` when the
  learning rate cannot exceed a cap (a stability limit) below the best noise-free rate ``ε_max``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from importlib import resources
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from batchlab.arithmetic import TrainingPlan, iterations_per_epoch
from batchlab.data import DigitsSplit, to_tensors
from batchlab.history import Callback, TrainingState, loss_verdict
from batchlab.models import make_mlp
from batchlab.stats import seed_interval
from batchlab.training import train
from batchlab.validation import (
    checked_items,
    require_float,
    require_instance,
    require_int,
    require_positive_float,
)

__all__ = [
    "CriticalSweep", "TargetRun", "TargetSummary", "TradeoffFit", "b_crit_interval", "b_crit_per_seed",
    "capped_b_crit", "capped_steps", "fit_tradeoff", "full_benchmark", "grid_table_text", "rate_grid",
    "rerun_at_best", "run_to_target", "steps_to_target", "summarize", "tune_to_target",
]


def full_benchmark() -> dict[str, Any]:
    """The stored numbers of the full critical-batch measurement (``benchmarks/critical_batch.py``, 5
    tuning and 10 held-out seeds; ``make critical`` rewrites them): a dict as the benchmark wrote it
    (its ``"sweeps"`` list holds, per design, ``S(B)`` and ``B_crit`` by each stopping rule).

    Shipped in the package (``batchlab/results/critical_batch.json``), so it reads the same from any
    working folder. Taught in: notebook 07 § 1. The experiment (the "full" numbers beside the live ones).
    """
    return json.loads(resources.files("batchlab").joinpath("results/critical_batch.json").read_text())


def rate_grid(low: float, high: float, per_doubling: int = 2) -> tuple[float, ...]:
    """A log grid of learning rates from ``low`` up to at most ``high``: ``per_doubling`` rates per factor
    of 2 (1: factors of 2; 2: factors of √2), each rounded to 3 significant digits so that the same grid
    prints and compares alike everywhere.

    >>> rate_grid(0.4, 1.6)
    (0.4, 0.566, 0.8, 1.13, 1.6)
    """
    low = require_positive_float("low", low)
    high = require_float("high", high, minimum=low)
    per_doubling = require_int("per_doubling", per_doubling, minimum=1, maximum=8)
    count = math.floor(per_doubling * math.log2(high / low) + 1e-9) + 1
    return tuple(float(f"{low * 2 ** (k / per_doubling):.3g}") for k in range(count))


def _window(smoothing: float, step: int) -> int:
    """How many losses the smoothed rule averages at update ``step`` (1-based): ``ceil(smoothing·step)``."""
    return max(1, math.ceil(smoothing * step - 1e-9))


def steps_to_target(losses: Sequence[float], target: float, *, smoothing: float = 0.0) -> int | None:
    """The first update at which ``losses`` meets ``target``: 1-based, or None if it never does.

    ``losses[k]`` is the loss measured after update ``k + 1`` (so ``losses[0]`` is after the first
    update). "Meets" means ``<= target``; a NaN never meets it. ``smoothing`` (0 to 1) chooses the
    stopping rule: 0 (default) is the *first crossing*, the first update whose own loss meets the target;
    ``smoothing = 0.1`` asks that the mean of the last ``ceil(0.1·k)`` losses meet it at update ``k`` (a
    running mean over the last tenth of the run), so one lucky dip below the target does not count. A
    running mean can only meet the target once some loss in it has, so the smoothed rule never stops
    earlier than the first crossing.

    >>> steps_to_target([2.1, 0.9, 0.4, 0.5, 0.2], 0.5)
    3
    >>> steps_to_target([2.1, 0.9, 0.4, 0.7, 0.2, 0.3], 0.5, smoothing=0.5)  # mean of 0.4, 0.7, 0.2
    5
    """
    target = require_float("target", target)
    smoothing = require_float("smoothing", smoothing, minimum=0.0, maximum=1.0)
    values = np.asarray(losses, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"losses must be 1-D (one loss per update), got shape {values.shape}")
    finite = np.isfinite(values)
    sums = np.concatenate([[0.0], np.cumsum(np.where(finite, values, 0.0))])  # sums[k]: first k losses
    bad = np.concatenate([[0], np.cumsum(~finite)])  # non-finite losses among the first k
    k = np.arange(1, values.size + 1)
    w = np.maximum(1, np.ceil(smoothing * k - 1e-9)).astype(int)  # as _window, for every update at once
    with np.errstate(invalid="ignore"):
        means = np.where(w == 1, values, (sums[k] - sums[k - w]) / w)
        met = (means <= target) & ((w == 1) | (bad[k] == bad[k - w]))
    hits = np.flatnonzero(met)
    return int(hits[0]) + 1 if hits.size else None


def _rule_met(values: Any, sums: Any, bad: Any, k: int, smoothing: float, target: float) -> bool:
    """Whether the stopping rule ``smoothing`` meets ``target`` at update ``k`` (1-based). ``values``: the
    losses; ``sums[j]`` the sum of the finite ones among the first ``j``, added in order (``np.cumsum`` and
    a running float sum agree bit for bit); ``bad[j]`` the count of non-finite ones among them."""
    w = _window(smoothing, k)
    if w == 1:  # the first crossing reads the loss itself
        return bool(values[k - 1] <= target)
    return bool(bad[k] == bad[k - w] and (sums[k] - sums[k - w]) / w <= target)


@dataclass(frozen=True)
class TargetRun:
    """One run of :func:`run_to_target`. Per update ``k`` (1-based, index ``k − 1``) it recorded:

    ``losses`` the validation loss (per-sample mean cross-entropy, nats), ``samples`` the samples seen
    so far and ``seconds`` the training time so far (wall clock, the recording's own evaluations left
    out). ``outcome``: ``"reached"`` the target, ``"cut"`` at the step cap, or ``"diverged"``: by the rule
    :func:`batchlab.history.loss_verdict` shares with ``train``, a loss non-finite or above
    ``DIVERGENCE_FACTOR`` (10) times the start, or a mean over an epoch's updates (after the first epoch)
    still above chance + ``CHANCE_MARGIN`` (a brief spike below that may recover).
    ``smoothing``: the stopping rule the run stopped by (see :func:`steps_to_target`); ``drop_last``:
    whether each epoch's short last batch was skipped.
    """

    batch_size: int
    lr: float
    seed: int
    target: float
    losses: tuple[float, ...]
    samples: tuple[int, ...]
    seconds: tuple[float, ...]
    outcome: str
    smoothing: float = 0.0
    drop_last: bool = False

    def steps(self, target: float | None = None, smoothing: float | None = None) -> int | None:
        """Updates to reach ``target`` (default: the run's own) by the rule ``smoothing`` (default: the
        run's own), or None. A rule or target stricter than the run's may not have been met before it
        stopped."""
        return steps_to_target(self.losses, self.target if target is None else target,
                               smoothing=self.smoothing if smoothing is None else smoothing)


class _RecordUntilTarget(Callback):
    """Measures the validation loss after every update; stops at the target, divergence or the cap."""

    def __init__(self, x_val: torch.Tensor, y_val: torch.Tensor, target: float, max_steps: int,
                 smoothing: float) -> None:
        self.x = x_val
        self.y = y_val
        self.target = target
        self.max_steps = max_steps
        self.smoothing = smoothing
        # Per update; see TargetRun.
        self.losses = []
        self.samples = []
        self.seconds = []
        self.outcome = "cut"
        # Running sums for the stopping rule, as in steps_to_target.
        self.sums = [0.0]
        self.bad = [0]

    def _loss(self, state: TrainingState) -> float:
        with torch.inference_mode():
            return float(F.cross_entropy(state.model(self.x), self.y))

    def on_train_start(self, state: TrainingState) -> None:
        self.start_loss = self._loss(state)
        self.updates_per_epoch = len(state.batches.batch_sizes())  # every iteration is an update here
        self.training_s = 0.0
        self.mark = time.perf_counter()

    def on_iteration_end(self, state: TrainingState) -> None:  # every iteration is an update here
        self.training_s += time.perf_counter() - self.mark
        loss = self._loss(state)
        self.losses.append(loss)
        self.sums.append(self.sums[-1] + (loss if math.isfinite(loss) else 0.0))
        self.bad.append(self.bad[-1] + (not math.isfinite(loss)))
        self.samples.append(state.history.samples_seen)
        self.seconds.append(self.training_s)
        epoch = self.updates_per_epoch
        # The shared rule: this update's loss for divergence; at the end of each epoch, the mean of its
        # updates' losses (one noisy update after a spike is not "not learning").
        mean = sum(self.losses[-epoch:]) / epoch if state.step % epoch == 0 else None
        if (loss_verdict(loss, self.start_loss, after_first_epoch=False)
                or (mean is not None and loss_verdict(mean, self.start_loss, after_first_epoch=True))):
            self.outcome = "diverged"  # or not learning: worse than chance over an epoch's updates
        elif _rule_met(self.losses, self.sums, self.bad, len(self.losses), self.smoothing, self.target):
            self.outcome = "reached"
        if self.outcome != "cut" or state.step >= self.max_steps:
            state.request_stop()
        self.mark = time.perf_counter()


def run_to_target(
    data: DigitsSplit, batch_size: int, lr: float, target: float, *, seed: int = 0,
    max_steps: int = 5000, hidden: Sequence[int] = (64,), drop_last: bool = False, smoothing: float = 0.0,
) -> tuple[TargetRun, torch.nn.Module]:
    """Train ``make_mlp(hidden=hidden, seed=seed)`` with plain SGD at ``batch_size`` and ``lr`` until the
    validation loss reaches ``target`` (nats) by the stopping rule ``smoothing`` (0: the first update whose
    loss meets it; see :func:`steps_to_target`), for at most ``max_steps`` updates, on the CPU.
    ``drop_last`` skips each epoch's short last batch (``N mod B`` samples), as in ``train``.

    Returns the :class:`TargetRun` and the model as it is when the run stopped.

    Taught in: notebook 07 § The learning-rate search, in full.
    """
    require_instance("data", data, DigitsSplit)
    batch_size = require_int("batch_size", batch_size, minimum=1, maximum=data.n_train)
    lr = require_positive_float("lr", lr)
    target = require_positive_float("target", target)
    max_steps = require_int("max_steps", max_steps, minimum=1, maximum=1_000_000)
    smoothing = require_float("smoothing", smoothing, minimum=0.0, maximum=1.0)
    drop_last = require_instance("drop_last", drop_last, bool)
    model = make_mlp(data.n_features, data.n_classes, hidden=hidden, seed=seed)
    _, _, x_val, y_val = to_tensors(data, "cpu")
    record = _RecordUntilTarget(x_val, y_val, target, max_steps, smoothing)
    epochs = -(-max_steps // iterations_per_epoch(data.n_train, batch_size, drop_last))
    plan = TrainingPlan(data.n_train, batch_size, epochs, drop_last, lr=lr)
    train(model, data, **plan.train_arguments(), optimizer="sgd", seed=seed, device="cpu", progress=False,
          callbacks=[record])
    return TargetRun(batch_size, lr, seed, target, tuple(record.losses), tuple(record.samples),
                     tuple(record.seconds), record.outcome, smoothing, drop_last), model


@dataclass
class CriticalSweep:
    """Every run of :func:`tune_to_target` (or :func:`rerun_at_best`): the grid, the seeds, the target, the
    runs, the stopping rule ``smoothing`` they stopped by and whether short batches were dropped.

    Taught in: notebook 07 § 1. The experiment.
    """

    n_train: int
    batch_sizes: tuple[int, ...]
    learning_rates: tuple[float, ...]
    seeds: tuple[int, ...]
    target: float
    runs: list[TargetRun]
    wall_time_s: float = 0.0
    smoothing: float = 0.0
    drop_last: bool = False

    def select(self, batch_size: int, lr: float) -> list[TargetRun]:
        """The runs (one per seed) of one grid cell; empty when the search did not try it."""
        return [r for r in self.runs if r.batch_size == batch_size and r.lr == lr]


def tune_to_target(
    data: DigitsSplit, batch_sizes: Sequence[int], learning_rates: Sequence[float], target: float,
    *, seeds: Sequence[int] = (0, 1), start_lr: float | None = None, max_steps: int = 2000,
    cut_factor: float = 1.5, drop_last: bool = False, smoothing: float = 0.0,
) -> CriticalSweep:
    """For each ``B`` (increasing), search the log grid ``learning_rates`` for the fewest updates to
    ``target``, mean over ``seeds``.

    The search starts at the previous ``B``'s best rate (``start_lr`` for the first ``B``; default the
    grid's middle), moves one grid point up while that improves, else down while that improves: every
    rate it skips lies beyond a worse one (above a rate that diverged it does not look). A rate's runs
    are cut as soon as they cannot beat the best mean (their summed updates exceed ``len(seeds) ×``
    the best mean), or once one seed alone needs more than ``cut_factor ×`` the best mean (with two
    seeds it could then only win if the other needed less than a third of that); the first rate tried
    is capped at ``max_steps``. A rate reported "cut" was therefore slower than the best one. Seeds are
    distinct and increasing; every run is one :func:`run_to_target` with ``drop_last`` and the stopping
    rule ``smoothing`` (updates are counted by that rule).

    The rate that wins on these seeds is, by selection, one whose seeds happened to be quick: measure
    ``S(B)`` on other seeds with :func:`rerun_at_best`.

    Taught in: notebook 07 § 1. The experiment.
    """
    require_instance("data", data, DigitsSplit)
    sizes = checked_items("batch_sizes", batch_sizes, partial(require_int, minimum=1, maximum=data.n_train),
                          increasing=True)
    rates = checked_items("learning_rates", learning_rates, require_positive_float, increasing=True)
    if len(rates) < 2:
        raise ValueError(f"learning_rates must hold >= 2 rates, got {list(rates)}")
    seeds = checked_items("seeds", seeds, partial(require_int, minimum=0), increasing=True)
    if start_lr is not None and start_lr not in rates:
        raise ValueError(f"start_lr must be one of the learning_rates {list(rates)}, got {start_lr!r}")
    start = rates.index(start_lr) if start_lr is not None else len(rates) // 2
    target = require_positive_float("target", target)
    max_steps = require_int("max_steps", max_steps, minimum=1, maximum=1_000_000)
    cut_factor = min(require_float("cut_factor", cut_factor, minimum=1.0), len(seeds))
    drop_last = require_instance("drop_last", drop_last, bool)
    smoothing = require_float("smoothing", smoothing, minimum=0.0, maximum=1.0)
    sweep = CriticalSweep(data.n_train, sizes, rates, seeds, target, [], smoothing=smoothing,
                          drop_last=drop_last)
    started = time.perf_counter()
    for b in sizes:
        means: dict[int, float] = {}  # grid index -> mean updates over the seeds (rates that reached)
        diverged: set[int] = set()  # grid indices where a seed diverged

        def improves(i: int, b=b, means=means, diverged=diverged) -> bool:  # defaults bind this B
            """Run rate ``i`` for every seed (cut once it cannot win); True if it beats the best."""
            best = min(means.values(), default=math.inf)
            total = 0
            for seed in seeds:
                budget = max_steps if best == math.inf else min(
                    math.floor(len(seeds) * best) - total, math.floor(cut_factor * best))
                if budget < 1:
                    return False
                run, _ = run_to_target(data, b, rates[i], target, seed=seed, max_steps=budget,
                                       drop_last=drop_last, smoothing=smoothing)
                sweep.runs.append(run)
                if run.outcome == "diverged":
                    diverged.add(i)
                if run.outcome != "reached":
                    return False
                total += len(run.losses)
            means[i] = total / len(seeds)
            return means[i] < best

        i = start
        improves(i)
        while i not in diverged and i + 1 < len(rates) and improves(i + 1):
            i += 1
        if i == start:  # a larger rate did not help: try smaller ones
            while i > 0 and improves(i - 1):
                i -= 1
        if means:
            start = min(means, key=means.__getitem__)
    sweep.wall_time_s = time.perf_counter() - started
    return sweep


def rerun_at_best(
    data: DigitsSplit, sweep: CriticalSweep, seeds: Sequence[int], *, smoothing: float | None = None,
    max_steps: int = 5000,
) -> CriticalSweep:
    """Run every batch size of ``sweep`` again at its best rate (:func:`summarize` at the sweep's own
    target and rule), once per seed of ``seeds``: held-out seeds, none of them among the sweep's.

    The tuning picked, per ``B``, the rate whose seeds were quickest, and part of that is the seeds' luck;
    runs on fresh seeds measure ``S(B)`` without that bias. ``smoothing`` is the stopping rule the runs
    stop by (default: the sweep's; a larger one records long enough to read both rules off the runs).
    Runs are capped at ``max_steps`` updates (a run that is cut leaves its ``B`` missing in
    :func:`summarize`). Returns a :class:`CriticalSweep` with one rate per batch size.
    """
    require_instance("sweep", sweep, CriticalSweep)
    require_instance("data", data, DigitsSplit)
    if data.n_train != sweep.n_train:
        raise ValueError(f"data must be the sweep's ({sweep.n_train:,} training samples), "
                         f"got {data.n_train:,}")
    seeds = checked_items("seeds", seeds, partial(require_int, minimum=0), increasing=True)
    shared = sorted(set(seeds) & set(sweep.seeds))
    if shared:
        raise ValueError(f"seeds must be held out (none of the sweep's seeds {list(sweep.seeds)}), "
                         f"got {list(seeds)}")
    smoothing = sweep.smoothing if smoothing is None else require_float(
        "smoothing", smoothing, minimum=sweep.smoothing, maximum=1.0)
    max_steps = require_int("max_steps", max_steps, minimum=1, maximum=1_000_000)
    best = summarize(sweep)
    held_out = CriticalSweep(sweep.n_train, tuple(best.batch_sizes.tolist()), sweep.learning_rates, seeds,
                             sweep.target, [], smoothing=smoothing, drop_last=sweep.drop_last)
    started = time.perf_counter()
    for b, lr in zip(best.batch_sizes.tolist(), best.best_lr.tolist(), strict=True):
        for seed in seeds:
            run, _ = run_to_target(data, b, lr, sweep.target, seed=seed, max_steps=max_steps,
                                   drop_last=sweep.drop_last, smoothing=smoothing)
            held_out.runs.append(run)
    held_out.wall_time_s = time.perf_counter() - started
    return held_out


@dataclass(frozen=True, eq=False)
class TargetSummary:
    """``S(B)``, ``E(B)`` and seconds to ``target`` with the best tried rate per batch size.

    One entry per batch size in ``batch_sizes`` (those where some tried rate reached the target for
    every seed): ``best_lr``; ``steps`` (mean updates over the seeds) and ``steps_per_seed`` (shape
    ``(n_sizes, n_seeds)``); ``samples`` (mean samples seen, repeats counted) and ``samples_per_seed``;
    ``seconds`` (mean training time on this machine, s). ``missing`` lists the batch sizes that never
    reached it. ``smoothing``: the stopping rule the updates were counted by; ``seeds``: the seeds.

    Taught in: notebook 07 § 2. Updates and samples against the batch size.
    """

    target: float
    batch_sizes: np.ndarray
    best_lr: np.ndarray
    steps: np.ndarray
    steps_per_seed: np.ndarray
    samples: np.ndarray
    seconds: np.ndarray
    missing: tuple[int, ...]
    samples_per_seed: np.ndarray | None = None
    smoothing: float = 0.0
    seeds: tuple[int, ...] = ()


def summarize(sweep: CriticalSweep, target: float | None = None,
              smoothing: float | None = None) -> TargetSummary:
    """Read ``S(B)``, ``E(B)`` and seconds off ``sweep`` at ``target`` (default: the sweep's own) by the
    stopping rule ``smoothing`` (default: the sweep's own; see :func:`steps_to_target`).

    ``target`` must be at least the sweep's and ``smoothing`` at most the sweep's (the runs stopped there).
    For each ``B`` the rate with the fewest mean updates wins, among the rates tried whose every seed
    reached ``target``; ties go to the smaller rate. No training happens: this answers at once.

    Taught in: notebook 07 § 2. Updates and samples against the batch size.
    """
    require_instance("sweep", sweep, CriticalSweep)
    target = sweep.target if target is None else require_float("target", target, minimum=sweep.target)
    smoothing = sweep.smoothing if smoothing is None else require_float(
        "smoothing", smoothing, minimum=0.0, maximum=sweep.smoothing)
    rows, missing = [], []
    for b in sweep.batch_sizes:
        best = None
        for lr in sweep.learning_rates:
            runs = sweep.select(b, lr)
            steps = [r.steps(target, smoothing) for r in runs]
            complete = len(runs) == len(sweep.seeds) and None not in steps
            if complete and (best is None or np.mean(steps) < best[2]):
                pairs = list(zip(runs, steps, strict=True))
                samples = [float(r.samples[s - 1]) for r, s in pairs]
                best = (b, lr, float(np.mean(steps)), steps, np.mean(samples),
                        np.mean([r.seconds[s - 1] for r, s in pairs]), samples)
        rows.append(best) if best else missing.append(b)
    columns = list(zip(*rows, strict=True)) if rows else [()] * 7
    n_seeds = len(sweep.seeds)
    as_array = [np.array(c, dtype=float) for c in columns[1:]]
    return TargetSummary(target, np.array(columns[0], dtype=np.int64), as_array[0], as_array[1],
                         as_array[2].reshape(-1, n_seeds), as_array[3], as_array[4], tuple(missing),
                         as_array[5].reshape(-1, n_seeds), smoothing, tuple(sweep.seeds))


@dataclass(frozen=True)
class TradeoffFit:
    """McCandlish's ``(S/S_min − 1)(E/E_min − 1) = 1`` fitted to measured ``(S, E)`` pairs.

    ``s_min``: fewest updates (the limit of huge batches); ``e_min``: fewest samples (tiny batches);
    ``b_crit = e_min / s_min``, in samples per batch.

    Taught in: notebook 07 § 2. Updates and samples against the batch size.
    """

    s_min: float
    e_min: float

    @property
    def b_crit(self) -> float:
        """The critical batch size ``E_min / S_min``."""
        return self.e_min / self.s_min

    def steps(self, batch_size: Any) -> np.ndarray:
        """Predicted updates ``S_min + E_min / B`` (``B`` a number or array, > 0)."""
        return self.s_min + self.e_min / np.asarray(batch_size, dtype=float)

    def samples(self, batch_size: Any) -> np.ndarray:
        """Predicted samples ``E_min + S_min · B``."""
        return self.e_min + self.s_min * np.asarray(batch_size, dtype=float)


def fit_tradeoff(steps: Sequence[float], samples: Sequence[float]) -> TradeoffFit:
    """Fit ``S_min`` and ``E_min`` to measured pairs ``(S_i, E_i)`` (at least two, all > 0).

    The relation is ``S_min/S + E_min/E = 1`` (the formula with ``B = E/S``), linear in the two unknowns;
    the fit minimises ``Σ (S_min/S_i + E_min/E_i − 1)²``, i.e. relative errors, so small and large
    counts weigh alike. Points that follow the formula exactly are recovered exactly. Raises
    ValueError when the points show no trade-off (a fitted value <= 0).

    Taught in: notebook 07 § 2. Updates and samples against the batch size.
    """
    s = np.asarray(steps, dtype=float)
    e = np.asarray(samples, dtype=float)
    if s.ndim != 1 or s.shape != e.shape or len(s) < 2:
        raise ValueError(f"steps and samples must be 1-D of equal length >= 2, got {s.shape} and {e.shape}")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(e)) and np.all(s > 0) and np.all(e > 0)):
        raise ValueError("steps and samples must be finite and > 0")
    (s_min, e_min), *_ = np.linalg.lstsq(np.column_stack([1 / s, 1 / e]), np.ones_like(s), rcond=None)
    if not (s_min > 1e-9 * s.min() and e_min > 1e-9 * e.min()):
        raise ValueError(f"the points show no steps-samples trade-off (fitted S_min = {s_min:.3g}, "
                         f"E_min = {e_min:.3g}; both must be > 0)")
    return TradeoffFit(float(s_min), float(e_min))


def _per_seed(summary: TargetSummary) -> tuple[np.ndarray, np.ndarray]:
    """``steps_per_seed`` and ``samples_per_seed`` of ``summary``, shape ``(n_sizes, n_seeds)``, checked."""
    require_instance("summary", summary, TargetSummary)
    if summary.samples_per_seed is None or summary.steps_per_seed.shape != summary.samples_per_seed.shape:
        raise ValueError("summary must hold steps_per_seed and samples_per_seed of one shape "
                         "(from summarize)")
    return summary.steps_per_seed, summary.samples_per_seed


def b_crit_per_seed(summary: TargetSummary) -> np.ndarray:
    """The fitted ``B_crit`` of each seed alone: :func:`fit_tradeoff` of one seed's ``(S, E)`` pairs.

    Returns shape ``(n_seeds,)``, one value per seed of ``summary`` in order, for paired comparisons
    (:func:`batchlab.stats.compare_paired`), e.g. of two targets read off the same runs. A seed whose
    points show no trade-off raises ValueError (from :func:`fit_tradeoff`). Taught in: notebook 07.
    """
    steps, samples = _per_seed(summary)
    return np.array([fit_tradeoff(steps[:, j], samples[:, j]).b_crit for j in range(steps.shape[1])])


def b_crit_interval(summary: TargetSummary, *, confidence: float = 0.95,
                    resamples: int = 2000) -> tuple[float, float, float]:
    """``(B_crit, low, high)``: the fit of the seeds' mean ``S(B)`` and ``E(B)``, with a bootstrap interval
    over the seeds (:func:`batchlab.stats.seed_interval`, seeded, so the same summary gives the same
    interval).

    Each resample draws seeds with replacement, averages their ``S`` and ``E`` per batch size and fits
    again: the interval says how much ``B_crit`` would move with other seeds, the rates held fixed. A
    resample whose points show no trade-off counts as NaN. Needs at least 2 seeds. Taught in: notebook 07.
    """
    steps, samples = _per_seed(summary)

    def b_crit(seed_indices: np.ndarray) -> float:
        chosen = np.asarray(seed_indices, dtype=int)
        try:
            return fit_tradeoff(steps[:, chosen].mean(axis=1), samples[:, chosen].mean(axis=1)).b_crit
        except ValueError:
            return math.nan

    return seed_interval(np.arange(steps.shape[1]), b_crit, confidence=confidence, resamples=resamples)


def _model_arguments(b_noise: float, rate_ratio: float) -> tuple[float, float]:
    b_noise = require_positive_float("b_noise", b_noise)
    if not (isinstance(rate_ratio, int | float | np.floating | np.integer) and rate_ratio > 0):
        raise ValueError(f"rate_ratio must be a number > 0 (math.inf: no cap), got {rate_ratio!r}")
    return b_noise, float(rate_ratio)


def capped_steps(batch_sizes: Any, b_noise: float, rate_ratio: float) -> np.ndarray:
    """``S(B) / S_min`` in McCandlish et al.'s model when the learning rate may not exceed a cap.

    The model: one SGD step at rate ``ε`` with batch ``B`` lowers the loss by
    ``ε|G|² − ε²/2 · (GᵀHG + tr(HΣ)/B)``; the best rate is ``ε_opt(B) = ε_max / (1 + B_noise/B)`` with
    ``ε_max = |G|²/GᵀHG``, and the updates to a target are ``S(B) = S_min (1 + B_noise/B)``. With a cap
    ``ε ≤ rate_ratio · ε_max`` (``rate_ratio < 1``: a stability limit below ``ε_max``), every ``B`` whose
    ``ε_opt`` would exceed the cap runs at the cap instead, and its loss drop per update is
    ``2r − r² (1 + B_noise/B)`` times the uncapped best (``r = rate_ratio``): more batch buys little.

    ``batch_sizes``: a number or array (> 0, samples); ``b_noise`` > 0 (samples); ``rate_ratio`` > 0
    (``math.inf``: no cap). Returns ``S(B) / S_min`` (``S_min``: the uncapped fewest updates), a float
    array of the shape of ``batch_sizes``. Taught in: notebook 07 § Why B_crit is far below B_simple.
    """
    b_noise, r = _model_arguments(b_noise, rate_ratio)
    b = np.asarray(batch_sizes, dtype=float)
    if b.size == 0 or not (np.all(np.isfinite(b)) and np.all(b > 0)):
        raise ValueError(f"batch_sizes must be finite numbers > 0, got {batch_sizes!r}")
    excess = 1 + b_noise / b
    if r >= 1:
        return excess
    drop = np.where(excess >= 1 / r, 1 / excess, 2 * r - r**2 * excess)  # ε_opt ≤ cap ⇔ excess ≥ 1/r
    return 1 / drop


def capped_b_crit(b_noise: float, rate_ratio: float) -> float:
    """``B_crit`` of :func:`capped_steps`: the ``B`` whose updates are twice the fewest under the cap.

    Without a cap (``rate_ratio ≥ 1``) this is ``B_noise`` (``S(B_noise) = 2 S_min``). With it, the
    fewest updates become ``S_min / (r(2 − r))`` and twice that is reached at
    ``B_crit = B_noise · r(2 − r) / (1 + (1 − r)²)``, about ``r · B_noise`` for a small ``r``: a rate
    capped far below ``ε_max`` lowers ``B_crit`` in proportion. Arguments as for :func:`capped_steps`.
    Taught in: notebook 07 § Why B_crit is far below B_simple.
    """
    b_noise, r = _model_arguments(b_noise, rate_ratio)
    if r >= 1:
        return b_noise
    return b_noise * r * (2 - r) / (1 + (1 - r) ** 2)


def grid_table_text(sweep: CriticalSweep, target: float | None = None) -> str:
    """The learning-rate search as a table: one row per ``B``, one column per rate of the grid.

    A cell shows the mean updates to ``target`` over the seeds, ``*`` marking the row's best; ``cut``: cut
    once it could no longer beat the best (or at the step cap); ``div``: a seed diverged; ``·``: not tried.

    Taught in: notebook 07 § The learning-rate search, in full.
    """
    summary = summarize(sweep, target)
    best = dict(zip(summary.batch_sizes.tolist(), summary.best_lr.tolist(), strict=True))
    lines = [f"{'B':>6} " + "".join(f"{f'lr {lr:g}':>10}" for lr in sweep.learning_rates)]
    for b in sweep.batch_sizes:
        cells = []
        for lr in sweep.learning_rates:
            runs = sweep.select(b, lr)
            steps = [r.steps(summary.target) for r in runs]
            if not runs:
                cells.append("·")
            elif any(r.outcome == "diverged" for r in runs):
                cells.append("div")
            elif len(runs) < len(sweep.seeds) or None in steps:
                cells.append("cut")
            else:
                cells.append(f"{np.mean(steps):g}" + ("*" if best.get(b) == lr else ""))
        lines.append(f"{b:>6} " + "".join(f"{c:>10}" for c in cells))
    return "\n".join(lines)
