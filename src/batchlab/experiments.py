"""Batch-size sweeps: train the same model with several batch sizes under several rules, and compare.

A *regime* says how the other settings follow the batch size ``B``:

* the **budget**: ``"epochs"`` (every ``B`` trains the same number of epochs, so a larger ``B`` makes fewer
  updates) or ``"updates"`` (every ``B`` makes about as many updates as the smallest batch size does in
  that many epochs: "train longer", Hoffer et al., 2017; the epochs come from
  :func:`batchlab.arithmetic.epochs_for_steps`);
* the **learning-rate rule**: ``"none"`` (the base rate for every ``B``), ``"linear"`` (``η·B/B0``, with a
  linear warm-up, Goyal et al., 2017) or ``"sqrt"`` (``η·√(B/B0)``, with the same warm-up).

:data:`STANDARD_REGIMES` are the four that notebook 04 compares. Every run goes through
:func:`batchlab.training.train`, seeded: the seed fixes the initial weights, the batch order and
dropout, so a sweep is reproducible.

After training, each run is also evaluated on the *whole* training set with the final weights
(:attr:`SweepRun.final_train_accuracy`): the per-epoch training metrics of the history are running
averages taken while the weights were still changing, which overstates the loss of the final model.
The generalization gap is measured with the final-weights numbers.
"""

from __future__ import annotations

import dataclasses
import html
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import product
from typing import Any

import numpy as np
from torch import nn

from batchlab.arithmetic import SCALING_RULES, TrainingPlan, epochs_for_steps, steps_per_epoch
from batchlab.data import DigitsSplit, to_tensors
from batchlab.history import Callback, History
from batchlab.markup import html_table
from batchlab.models import make_mlp
from batchlab.optim import OPTIMIZERS
from batchlab.training import evaluate, train
from batchlab.validation import (
    checked_items,
    require_bool,
    require_choice,
    require_float,
    require_instance,
    require_int,
)

__all__ = ["METRICS", "REGIME_BUDGETS", "STANDARD_REGIMES", "Regime", "SummaryRow", "Sweep", "SweepConfig",
           "SweepRun", "mean_curve", "plan_table_text", "run_one", "run_sweep", "summarize",
           "summary_table_html", "summary_values"]

REGIME_BUDGETS = ("epochs", "updates")  # what a regime holds fixed across batch sizes
METRICS = ("train_loss", "val_loss", "train_accuracy", "val_accuracy")


@dataclass(frozen=True)
class Regime:
    """How the epochs and the learning rate follow the batch size (see the module docstring).

    ``warmup``: use a linear warm-up (length :attr:`SweepConfig.warmup_epochs`); by default on exactly
    when a scaling rule is used.

    Taught in: notebook 04 § The experiment.
    """

    name: str
    budget: str
    scaling_rule: str
    warmup: bool | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise TypeError(f"name must be a non-empty str, got {self.name!r}")
        require_choice("budget", self.budget, REGIME_BUDGETS)
        require_choice("scaling_rule", self.scaling_rule, SCALING_RULES)
        if self.warmup is None:
            object.__setattr__(self, "warmup", self.scaling_rule != "none")
        require_bool("warmup", self.warmup)


STANDARD_REGIMES = (
    Regime("equal epochs", "epochs", "none"),
    Regime("linear rule + warm-up", "epochs", "linear"),
    Regime("sqrt rule + warm-up", "epochs", "sqrt"),
    Regime("equal updates", "updates", "none"),
)


@dataclass(frozen=True)
class SweepConfig:
    """The fixed settings of a sweep; everything that varies is the batch size, the regime and the seed.

    * ``batch_sizes``: the ``B`` values (each ``1 ≤ B ≤ N``, increasing); ``base_batch_size`` is ``B0``,
      the batch size at which the base learning rate ``lr`` is taken as tuned (scaling rules scale
      from it);
    * ``epochs``: the epoch budget; the update budget is what ``min(batch_sizes)`` makes in ``epochs``
      epochs (:attr:`target_updates`);
    * ``warmup_epochs``: length of the linear warm-up, in epochs of the run's own batch size;
    * ``hidden``, ``optimizer``, ``seeds``: the MLP's hidden widths, the optimizer and the seeds.

    Taught in: notebook 04 § The experiment.
    """

    batch_sizes: tuple[int, ...] = (8, 32, 128, 400)
    epochs: int = 20
    lr: float = 0.2
    base_batch_size: int = 32
    optimizer: str = "sgd"
    hidden: tuple[int, ...] = (64,)
    warmup_epochs: int = 2
    seeds: tuple[int, ...] = (0, 1, 2)

    def __post_init__(self) -> None:
        checked_items("batch_sizes", self.batch_sizes, partial(require_int, minimum=1), increasing=True)
        require_int("epochs", self.epochs, minimum=1)
        require_float("lr", self.lr, minimum=0, strict_min=True)
        require_int("base_batch_size", self.base_batch_size, minimum=1)
        require_choice("optimizer", self.optimizer, OPTIMIZERS)
        checked_items("hidden", self.hidden, partial(require_int, minimum=1))
        require_int("warmup_epochs", self.warmup_epochs, minimum=0)
        seeds = checked_items("seeds", self.seeds, partial(require_int, minimum=0))
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct, got {self.seeds!r}")

    def target_updates(self, n_train: int) -> int:
        """The update budget: updates made by the smallest batch size in ``epochs`` epochs."""
        return steps_per_epoch(n_train, self.batch_sizes[0]) * self.epochs

    def plan(self, n_train: int, batch_size: int, regime: Regime) -> TrainingPlan:
        """The :class:`batchlab.arithmetic.TrainingPlan` of one ``(B, regime)`` cell: its epochs (the
        regime's budget), base rate, scaling rule and warm-up.

        ``plan.peak_lr`` is the rate after warm-up; ``train(model, data, **plan.train_arguments())``
        trains the cell (:func:`run_one` adds the optimizer, the seed and the device).

        Taught in: notebook 04 § The experiment.
        """
        n_train = require_int("n_train", n_train, minimum=1)
        batch_size = require_int("batch_size", batch_size, minimum=1, maximum=n_train)
        require_instance("regime", regime, Regime)
        epochs = (self.epochs if regime.budget == "epochs"
                  else epochs_for_steps(self.target_updates(n_train), n_train, batch_size))
        warmup = self.warmup_epochs * steps_per_epoch(n_train, batch_size) if regime.warmup else 0
        scaled = regime.scaling_rule != "none"
        return TrainingPlan(n_train, batch_size, epochs, lr=self.lr, scaling_rule=regime.scaling_rule,
                            base_batch_size=self.base_batch_size if scaled else None, warmup_steps=warmup)


@dataclass
class SweepRun:
    """One trained cell of the sweep: its settings, history, final model and final-weights metrics.

    ``final_train_loss`` / ``final_train_accuracy``: the trained model evaluated on the whole training
    set (per-sample mean loss, accuracy 0–1). ``model`` is kept (on the CPU) for sharpness measurements.

    Taught in: notebook 04 § 7. Early stopping.
    """

    batch_size: int
    regime: Regime
    seed: int
    history: History
    model: nn.Module
    final_train_loss: float
    final_train_accuracy: float
    peak_lr: float

    @property
    def final_val_accuracy(self) -> float:
        """Validation accuracy (0–1) after the last completed epoch."""
        return self.history.val_accuracy[-1]

    @property
    def final_val_loss(self) -> float:
        """Validation loss (per-sample mean) after the last completed epoch."""
        return self.history.val_loss[-1]

    @property
    def accuracy_gap(self) -> float:
        """Train − validation accuracy of the final model (0–1; positive when it fits train better)."""
        return self.final_train_accuracy - self.final_val_accuracy

    @property
    def loss_gap(self) -> float:
        """Validation − train loss of the final model (nats per sample)."""
        return self.final_val_loss - self.final_train_loss

    @property
    def early_stopping_accuracy(self) -> float:
        """Validation accuracy at the epoch of lowest validation loss (what early stopping keeps)."""
        return self.history.val_accuracy[self.history.best_epoch]


def run_one(data: DigitsSplit, config: SweepConfig, batch_size: int, regime: Regime, seed: int = 0, *,
            callbacks: Sequence[Callback] = ()) -> SweepRun:
    """Train one ``(batch_size, regime, seed)`` cell with :func:`batchlab.training.train`.

    ``callbacks`` are passed through (the live app uses them). It trains on the CPU: these models are
    tiny and a GPU would only add launch overhead.

    Taught in: notebook 04 § 7. Early stopping.
    """
    require_instance("data", data, DigitsSplit)
    require_instance("config", config, SweepConfig)
    seed = require_int("seed", seed, minimum=0)
    return _run_cell(data, config, config.plan(data.n_train, batch_size, regime), regime, seed, callbacks)


def _run_cell(data: DigitsSplit, config: SweepConfig, plan: TrainingPlan, regime: Regime, seed: int,
              callbacks: Sequence[Callback] = ()) -> SweepRun:
    """:func:`run_one` on checked arguments and the cell's plan (:func:`run_sweep` has them already)."""
    # make_mlp draws the initial weights from its own generator seeded with ``seed``.
    model = make_mlp(data.n_features, data.n_classes, hidden=config.hidden, seed=seed)
    history = train(model, data, optimizer=config.optimizer, seed=seed, callbacks=callbacks, progress=False,
                    device="cpu", **plan.train_arguments())  # type: ignore[arg-type]
    train_loss, train_accuracy = evaluate(model, *to_tensors(data, "cpu")[:2])
    return SweepRun(plan.batch_size, regime, seed, history, model, train_loss, train_accuracy, plan.peak_lr)


@dataclass
class Sweep:
    """All runs of a sweep, with the config, the regimes and the number of training samples.

    Taught in: notebook 04 § 2. Running the sweep.
    """

    config: SweepConfig
    regimes: tuple[Regime, ...]
    n_train: int
    runs: list[SweepRun] = field(default_factory=list)
    wall_time_s: float = 0.0

    def select(self, regime: str | Regime | None = None, batch_size: int | None = None,
               seed: int | None = None) -> list[SweepRun]:
        """The runs matching every criterion given (a regime by name or object)."""
        name = regime.name if isinstance(regime, Regime) else regime
        return [r for r in self.runs
                if (name is None or r.regime.name == name)
                and (batch_size is None or r.batch_size == batch_size)
                and (seed is None or r.seed == seed)]


def run_sweep(data: DigitsSplit, config: SweepConfig, regimes: Sequence[Regime] = STANDARD_REGIMES, *,
              progress: bool = False, on_run: Callable[[SweepRun], None] | None = None) -> Sweep:
    """Train every ``(regime, batch size, seed)`` cell; runs shared by two regimes are trained once.

    Cells that would train identically (same batch size, seed, epochs, peak learning rate and warm-up,
    e.g. ``"equal epochs"`` and ``"equal updates"`` for the smallest batch size, whose update budget *is*
    its epoch budget, or the linear and square-root rules at ``B = B0``) are trained once and shared.
    ``progress`` shows one ``tqdm`` bar over the cells; ``on_run`` is called after each.

    Taught in: notebook 04 § 2. Running the sweep.
    """
    require_instance("config", config, SweepConfig)
    require_instance("data", data, DigitsSplit)
    regimes = tuple(regimes)
    if not regimes or not all(isinstance(r, Regime) for r in regimes):
        raise TypeError("regimes must be a non-empty sequence of Regime objects")
    if len({r.name for r in regimes}) != len(regimes):
        raise ValueError("regimes must have distinct names")
    if config.batch_sizes[-1] > data.n_train:
        raise ValueError(f"batch sizes must be <= the {data.n_train} training samples, "
                         f"got {config.batch_sizes[-1]}")
    progress = require_bool("progress", progress)
    from tqdm.auto import tqdm

    cells = [(r, b, s) for r in regimes for b in config.batch_sizes for s in config.seeds]
    sweep = Sweep(config, regimes, data.n_train)
    done: dict[tuple, SweepRun] = {}
    started = time.perf_counter()
    with tqdm(total=len(cells), desc="sweep", unit="run", disable=not progress) as bar:
        for regime, batch_size, seed in cells:
            plan = config.plan(data.n_train, batch_size, regime)
            # What the run does, whatever the regime is called: same B, seed, epochs, rate and warm-up.
            key = (batch_size, seed, plan.epochs, plan.peak_lr, plan.warmup_steps)
            if key in done:
                run = dataclasses.replace(done[key], regime=regime)
            else:
                run = done[key] = _run_cell(data, config, plan, regime, seed)
            sweep.runs.append(run)
            if on_run is not None:
                on_run(run)
            bar.update()
    sweep.wall_time_s = time.perf_counter() - started
    return sweep


def mean_curve(runs: Sequence[SweepRun | History], metric: str,
               x: str = "epochs") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(x, mean, std)`` of a per-epoch ``metric`` over ``runs`` (same plan, different seeds).

    ``runs`` holds :class:`SweepRun` objects or Histories (one History, possibly of a run still in
    progress, gives that run's own curve: what the live app plots).
    ``metric`` is one of :data:`METRICS`; ``x`` is ``"epochs"`` (1, 2, ... completed epochs) or
    ``"updates"`` (updates made by the end of each epoch). ``std`` is the population standard deviation
    across runs (0 for a single run). Runs of different lengths are cut to the shortest.
    """
    metric = require_choice("metric", metric, METRICS)
    x = require_choice("x", x, ("epochs", "updates"))
    if not runs:
        raise ValueError("runs must not be empty")
    histories = [r.history if isinstance(r, SweepRun) else r for r in runs]
    length = min(len(getattr(h, metric)) for h in histories)
    values = np.array([getattr(h, metric)[:length] for h in histories], dtype=np.float64)
    xs = np.arange(1, length + 1) if x == "epochs" else histories[0].epoch_end_steps[:length]
    return np.asarray(xs, dtype=np.float64), values.mean(axis=0), values.std(axis=0)


@dataclass(frozen=True)
class SummaryRow:
    """One ``(regime, B)`` line of the summary: means and standard deviations over the seeds.

    Accuracies are fractions 0–1; the gap is train − validation accuracy of the final model; losses are
    per-sample means (nats); ``best_epoch`` is the mean 1-based epoch of lowest validation loss.
    """

    regime: str
    batch_size: int
    peak_lr: float
    epochs: int
    updates: int
    seeds: int
    final_val_accuracy: tuple[float, float]
    best_val_accuracy: tuple[float, float]
    early_stopping_accuracy: tuple[float, float]
    best_epoch: float
    final_train_accuracy: tuple[float, float]
    accuracy_gap: tuple[float, float]
    loss_gap: tuple[float, float]
    wall_time_s: float


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std())


def summarize(sweep: Sweep) -> list[SummaryRow]:
    """One :class:`SummaryRow` per ``(regime, batch size)``, in the sweep's order.

    Taught in: notebook 04.
    """
    require_instance("sweep", sweep, Sweep)
    rows = []
    for regime, batch_size in product(sweep.regimes, sweep.config.batch_sizes):
        runs = sweep.select(regime, batch_size)
        if not runs:
            continue
        first = runs[0].history
        stats = {name: _mean_std([getattr(r, name) for r in runs]) for name in (
            "final_val_accuracy", "early_stopping_accuracy", "final_train_accuracy", "accuracy_gap",
            "loss_gap")}
        rows.append(SummaryRow(
            regime=regime.name, batch_size=batch_size, peak_lr=runs[0].peak_lr,
            epochs=first.epochs_completed, updates=first.steps, seeds=len(runs),
            best_val_accuracy=_mean_std([max(r.history.val_accuracy) for r in runs]),
            best_epoch=float(np.mean([r.history.best_epoch + 1 for r in runs])),
            wall_time_s=float(np.mean([r.history.wall_time_s for r in runs])), **stats))
    return rows


_COLUMNS = (
    ("regime", "regime"), ("B", "batch size"), ("lr", "peak learning rate"), ("epochs", "epochs"),
    ("updates", "updates made"), ("val acc %", "final validation accuracy, mean ± std over seeds"),
    ("best val acc %", "highest validation accuracy over the epochs"),
    ("early-stop acc %", "validation accuracy at the epoch of lowest validation loss"),
    ("stop epoch", "that epoch (1-based, mean over seeds)"),
    ("train acc %", "final model on the whole training set"),
    ("gap (points)", "train − validation accuracy, percentage points"),
    ("loss gap", "validation − train loss, nats"),
)


def _pm(pair: tuple[float, float], seeds: int, scale: float = 100, digits: int = 1) -> str:
    """``"mean ± std"`` of ``scale × pair`` (only the mean for a single seed)."""
    mean, std = scale * pair[0], scale * pair[1]
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if seeds > 1 else f"{mean:.{digits}f}"


def summary_values(rows: Sequence[SummaryRow], field: str) -> dict[str, dict[int, Any]]:
    """``{regime: {B: row.<field>}}`` from :func:`summarize`'s rows (for plots against B).

    Taught in: notebook 04 § Is that a generalization gap?.
    """
    field = require_choice("field", field, [f.name for f in dataclasses.fields(SummaryRow)][2:])
    values: dict[str, dict[int, Any]] = {}
    for row in rows:
        values.setdefault(row.regime, {})[row.batch_size] = getattr(row, field)
    return values


def plan_table_text(config: SweepConfig, n_train: int, regimes: Sequence[Regime] = STANDARD_REGIMES) -> str:
    """What each ``(regime, B)`` cell will do, before training: epochs, updates, peak rate, warm-up.

    Taught in: notebook 04 § The experiment.
    """
    require_instance("config", config, SweepConfig)
    n_train = require_int("n_train", n_train, minimum=config.batch_sizes[-1])
    lines = [f"{'regime':<24}{'B':>5}{'epochs':>8}{'updates':>9}{'peak lr':>9}{'warm-up':>9}"]
    for regime in regimes:
        for b in config.batch_sizes:
            plan = config.plan(n_train, b, regime)
            lines.append(f"{regime.name:<24}{b:>5}{plan.epochs:>8}{plan.total_steps:>9,}"
                         f"{plan.peak_lr:>9.3g}{plan.warmup_steps:>9}")
    return "\n".join(lines)


def summary_table_html(rows: Sequence[SummaryRow], *, include_time: bool = False) -> str:
    """An HTML table of :func:`summarize`'s rows (accuracies in %, mean ± std over seeds).

    Wall time is left out unless ``include_time`` (it varies from run to run and machine to machine).
    Each column header carries its definition as a tooltip.

    Taught in: notebook 04 § 4. The summary table.
    """
    include_time = require_bool("include_time", include_time)
    columns = list(_COLUMNS) + ([("time s", "mean wall time per run, seconds")] if include_time else [])
    header = [f"<span title='{html.escape(tip)}'>{html.escape(name)}</span>" for name, tip in columns]
    body = []
    previous = None
    for row in rows:
        pct = [_pm(pair, row.seeds) for pair in (row.final_val_accuracy, row.best_val_accuracy,
                                                 row.early_stopping_accuracy)]
        cells = ["" if row.regime == previous else row.regime, f"{row.batch_size}", f"{row.peak_lr:.3g}",
                 f"{row.epochs}", f"{row.updates:,}", *pct, f"{row.best_epoch:.1f}",
                 _pm(row.final_train_accuracy, row.seeds), _pm(row.accuracy_gap, row.seeds),
                 _pm(row.loss_gap, row.seeds, 1, 3)] + ([f"{row.wall_time_s:.2f}"] if include_time else [])
        previous = row.regime
        body.append([html.escape(c) for c in cells])
    return html_table(body, header, css_class="batchlab-sweep", escape=False)
