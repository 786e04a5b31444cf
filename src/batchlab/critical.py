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
* :func:`steps_to_target`: the first update (1-based) at which a loss curve meets a target;
* :func:`tune_to_target`: every ``B`` of a sweep with its learning rate tuned on a log grid;
* :func:`summarize` and :func:`fit_tradeoff`: ``S(B)``, ``E(B)``, seconds, and the fit of the formula.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from batchlab.arithmetic import iterations_per_epoch
from batchlab.data import DigitsSplit, to_tensors
from batchlab.history import Callback, TrainingState
from batchlab.models import make_mlp
from batchlab.training import train
from batchlab.validation import (
    checked_items,
    require_float,
    require_instance,
    require_int,
    require_positive_float,
)

__all__ = [
    "CriticalSweep", "TargetRun", "TargetSummary", "TradeoffFit", "fit_tradeoff", "grid_table_text",
    "run_to_target", "steps_to_target", "summarize", "tune_to_target",
]


def steps_to_target(losses: Sequence[float], target: float) -> int | None:
    """The first update at which ``losses`` meets ``target``: 1-based, or None if it never does.

    ``losses[k]`` is the loss measured after update ``k + 1`` (so ``losses[0]`` is after the first
    update). "Meets" means ``<= target``; a NaN never meets it.

    >>> steps_to_target([2.1, 0.9, 0.4, 0.5, 0.2], 0.5)
    3
    """
    target = require_float("target", target)
    return next((k + 1 for k, value in enumerate(losses) if value <= target), None)


@dataclass(frozen=True)
class TargetRun:
    """One run of :func:`run_to_target`. Per update ``k`` (1-based, index ``k − 1``) it recorded:

    ``losses`` the validation loss (per-sample mean cross-entropy, nats), ``samples`` the samples seen
    so far and ``seconds`` the training time so far (wall clock, the recording's own evaluations left
    out). ``outcome``: ``"reached"`` the target, ``"cut"`` at the step cap, or ``"diverged"`` (a loss
    non-finite or above four times the starting one; a brief spike below that may recover).
    """

    batch_size: int
    lr: float
    seed: int
    target: float
    losses: tuple[float, ...]
    samples: tuple[int, ...]
    seconds: tuple[float, ...]
    outcome: str

    def steps(self, target: float | None = None) -> int | None:
        """Updates to first reach ``target`` (default: the run's own), or None."""
        return steps_to_target(self.losses, self.target if target is None else target)


class _RecordUntilTarget(Callback):
    """Measures the validation loss after every update; stops at the target, divergence or the cap."""

    def __init__(self, x_val: torch.Tensor, y_val: torch.Tensor, target: float, max_steps: int) -> None:
        self.x, self.y, self.target, self.max_steps = x_val, y_val, target, max_steps
        self.losses, self.samples, self.seconds, self.outcome = [], [], [], "cut"  # per update; see TargetRun

    def _loss(self, state: TrainingState) -> float:
        with torch.inference_mode():
            return float(F.cross_entropy(state.model(self.x), self.y))

    def on_train_start(self, state: TrainingState) -> None:
        self.start_loss = self._loss(state)
        self.training_s, self.mark = 0.0, time.perf_counter()

    def on_iteration_end(self, state: TrainingState) -> None:  # every iteration is an update here
        self.training_s += time.perf_counter() - self.mark
        loss = self._loss(state)
        self.losses.append(loss)
        self.samples.append(state.history.samples_seen)
        self.seconds.append(self.training_s)
        if not math.isfinite(loss) or loss > 4 * self.start_loss:
            self.outcome = "diverged"
        elif loss <= self.target:
            self.outcome = "reached"
        if self.outcome != "cut" or state.step >= self.max_steps:
            state.request_stop()
        self.mark = time.perf_counter()


def run_to_target(
    data: DigitsSplit, batch_size: int, lr: float, target: float, *, seed: int = 0,
    max_steps: int = 5000, hidden: Sequence[int] = (64,), drop_last: bool = False,
) -> tuple[TargetRun, torch.nn.Module]:
    """Train ``make_mlp(hidden=hidden, seed=seed)`` with plain SGD at ``batch_size`` and ``lr`` until the
    validation loss first reaches ``target`` (nats), for at most ``max_steps`` updates, on the CPU.
    ``drop_last`` skips each epoch's short last batch (``N mod B`` samples), as in ``train``.

    Returns the :class:`TargetRun` and the model as it is when the run stopped.

    Taught in: notebook 07 § The learning-rate search, in full.
    """
    require_instance("data", data, DigitsSplit)
    batch_size = require_int("batch_size", batch_size, minimum=1, maximum=data.n_train)
    lr = require_positive_float("lr", lr)
    target = require_positive_float("target", target)
    max_steps = require_int("max_steps", max_steps, minimum=1, maximum=1_000_000)
    model = make_mlp(data.n_features, data.n_classes, hidden=hidden, seed=seed)
    _, _, x_val, y_val = to_tensors(data, "cpu")
    record = _RecordUntilTarget(x_val, y_val, target, max_steps)
    epochs = -(-max_steps // iterations_per_epoch(data.n_train, batch_size, drop_last))
    train(model, data, batch_size=batch_size, epochs=epochs, lr=lr, optimizer="sgd", seed=seed, device="cpu",
          progress=False, callbacks=[record], drop_last=drop_last)
    return TargetRun(batch_size, lr, seed, target, tuple(record.losses), tuple(record.samples),
                     tuple(record.seconds), record.outcome), model


@dataclass
class CriticalSweep:
    """Every run of :func:`tune_to_target`: the grid, the seeds, the target and the runs.

    Taught in: notebook 07 § 1. The experiment.
    """

    n_train: int
    batch_sizes: tuple[int, ...]
    learning_rates: tuple[float, ...]
    seeds: tuple[int, ...]
    target: float
    runs: list[TargetRun]
    wall_time_s: float = 0.0

    def select(self, batch_size: int, lr: float) -> list[TargetRun]:
        """The runs (one per seed) of one grid cell; empty when the search did not try it."""
        return [r for r in self.runs if r.batch_size == batch_size and r.lr == lr]


def tune_to_target(
    data: DigitsSplit, batch_sizes: Sequence[int], learning_rates: Sequence[float], target: float,
    *, seeds: Sequence[int] = (0, 1), start_lr: float | None = None, max_steps: int = 2000,
    cut_factor: float = 1.5,
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
    distinct and increasing; every run is one :func:`run_to_target`.

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
    sweep = CriticalSweep(data.n_train, sizes, rates, seeds, target, [])
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
                run, _ = run_to_target(data, b, rates[i], target, seed=seed, max_steps=budget)
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


@dataclass(frozen=True, eq=False)
class TargetSummary:
    """``S(B)``, ``E(B)`` and seconds to ``target`` with the best tried rate per batch size.

    One entry per batch size in ``batch_sizes`` (those where some tried rate reached the target for
    every seed): ``best_lr``; ``steps`` (mean updates over the seeds) and ``steps_per_seed`` (shape
    ``(n_sizes, n_seeds)``); ``samples`` (mean samples seen, repeats counted); ``seconds`` (mean
    training time on this machine, s). ``missing`` lists the batch sizes that never reached it.

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


def summarize(sweep: CriticalSweep, target: float | None = None) -> TargetSummary:
    """Read ``S(B)``, ``E(B)`` and seconds off ``sweep`` at ``target`` (default: the sweep's own).

    ``target`` must be at least the sweep's (the runs stopped there). For each ``B`` the rate with the
    fewest mean updates wins, among the rates tried whose every seed reached ``target``; ties go to the
    smaller rate. No training happens: this answers at once.

    Taught in: notebook 07 § 2. Updates and samples against the batch size.
    """
    require_instance("sweep", sweep, CriticalSweep)
    target = sweep.target if target is None else require_float("target", target, minimum=sweep.target)
    rows, missing = [], []
    for b in sweep.batch_sizes:
        best = None
        for lr in sweep.learning_rates:
            runs = sweep.select(b, lr)
            steps = [r.steps(target) for r in runs]
            complete = len(runs) == len(sweep.seeds) and None not in steps
            if complete and (best is None or np.mean(steps) < best[2]):
                pairs = list(zip(runs, steps, strict=True))
                best = (b, lr, float(np.mean(steps)), steps, np.mean([r.samples[s - 1] for r, s in pairs]),
                        np.mean([r.seconds[s - 1] for r, s in pairs]))
        rows.append(best) if best else missing.append(b)
    columns = list(zip(*rows, strict=True)) if rows else [()] * 6
    return TargetSummary(target, np.array(columns[0], dtype=np.int64),
                         *(np.array(c, dtype=float) for c in columns[1:]), tuple(missing))


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
