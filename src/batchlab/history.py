"""What a training run records (:class:`History`) and what a callback sees and can ask for
(:class:`TrainingState`, :class:`Callback`). :func:`batchlab.training.train` fills them."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from batchlab.arithmetic import TrainingPlan
from batchlab.data import CHANCE_LOSS, BatchIterator

__all__ = ["CHANCE_MARGIN", "DIVERGENCE_FACTOR", "Callback", "History", "TimedCallback", "TrainingState",
           "loss_verdict"]

# The one rule for "this run is not going well", used by batchlab.training (epoch losses) and
# batchlab.critical (the validation loss after every update):
# * diverged: a loss that is not finite, or above DIVERGENCE_FACTOR times the start (the larger of the
#   run's first loss and the chance loss ln 10: for 10 classes 10 x 2.3 = 23, far above chance);
# * not learning: after the first epoch, a loss still above the chance loss by CHANCE_MARGIN nats
#   (ln 10 + 1 ≈ 3.3: worse than a uniform guess, so the steps are too large to learn anything).
DIVERGENCE_FACTOR = 10.0
CHANCE_MARGIN = 1.0


def loss_verdict(loss: float, start: float, *, after_first_epoch: bool) -> str:
    """``"diverged"``, ``"not learning"`` or ``""`` (fine) for a loss (nats, per-sample mean
    cross-entropy) measured during a run whose first loss was ``start``: the rule above, in one place.

    >>> loss_verdict(9.56, 2.3, after_first_epoch=True), loss_verdict(30.0, 2.3, after_first_epoch=False)
    ('not learning', 'diverged')
    """
    if not math.isfinite(loss) or loss > DIVERGENCE_FACTOR * max(start, CHANCE_LOSS):
        return "diverged"
    if after_first_epoch and loss > CHANCE_LOSS + CHANCE_MARGIN:
        return "not learning"
    return ""


@dataclass
class History:
    """Everything a run measured. Lists of floats are plain Python (already read from the device).

    * ``iteration_losses``: one per iteration, the batch's mean loss (per-sample mean over the batch);
    * ``iteration_sizes``: samples in each of those batches;
    * ``epoch_starts``: the iteration index at which each epoch began;
    * ``train_loss`` / ``train_accuracy``: one per completed epoch, per-sample means over the epoch's
      batches as they were trained (the running training metrics);
    * ``val_loss`` / ``val_accuracy``: one per completed epoch, on the whole validation set after it;
    * ``learning_rates``: the rate used by each optimizer step;
    * counts: ``iterations``, ``steps`` (updates made), ``samples_seen``, ``epochs_completed``,
      ``planned_steps`` (``plan.total_steps``); ``stopped`` is True when a stop (a callback's request
      or a keyboard interrupt) ended the run before its last epoch was complete;
    * ``diverged`` is True when a loss became non-finite or rose far above its start, and
      ``divergence`` says what happened in words; :attr:`not_learning` says in words when a run that
      did not diverge is still worse than chance after an epoch (:func:`loss_verdict`); :attr:`status`
      sums the four outcomes up;
    * ``wall_time_s``: seconds from start to end, evaluation included.

    While training runs, ``iteration_losses`` and ``iteration_sizes`` lag behind the counters by the
    current epoch (its losses are still on the device: see :meth:`TrainingState.pending_losses`).

    Taught in: notebook 05 § Watching training live: loss per iteration and epoch boundaries.
    """

    plan: TrainingPlan
    iteration_losses: list[float] = field(default_factory=list)
    iteration_sizes: list[int] = field(default_factory=list)
    epoch_starts: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    learning_rates: list[float] = field(default_factory=list)
    iterations: int = 0
    steps: int = 0
    samples_seen: int = 0
    epochs_completed: int = 0
    stopped: bool = False
    diverged: bool = False
    divergence: str = ""
    wall_time_s: float = 0.0

    @property
    def status(self) -> str:
        """How the run ended: ``"diverged"``, ``"stopped"`` (early, on request), ``"not learning"``
        (:attr:`not_learning`) or ``"finished"``."""
        if self.diverged or self.stopped:
            return "diverged" if self.diverged else "stopped"
        return "not learning" if self.not_learning else "finished"

    @property
    def not_learning(self) -> str:
        """Why the run is not learning, in words, or ``""``: after its first epoch the latest epoch's
        training loss is still more than ``CHANCE_MARGIN`` above the chance loss (:func:`loss_verdict`)."""
        if not self.train_loss or not self.iteration_losses:
            return ""
        loss = self.train_loss[-1]
        epochs = len(self.train_loss)
        if loss_verdict(loss, self.iteration_losses[0], after_first_epoch=True) != "not learning":
            return ""
        accuracy = f", validation accuracy {self.val_accuracy[-1]:.0%}" if self.val_accuracy else ""
        return (f"after {epochs} epoch{'s' if epochs > 1 else ''} the training loss is {loss:.3g}{accuracy}: "
                f"worse than a uniform guess (chance loss ln 10 ≈ {CHANCE_LOSS:.2f}), so the network is "
                "not learning; try a smaller learning rate")

    def status_words(self) -> str:
        """How the run ended, in words (the same in every view): diverged and how, stopped early, not
        learning and why, or finished. Taught in: notebook 05 §4 and notebook 06 (the simulator's status
        line)."""
        if self.status == "diverged":
            return f"Diverged: {self.divergence or 'the loss stopped being a finite number'}"
        if self.status == "stopped":
            return f"Stopped after {self.iterations:,} of {self.plan.total_iterations:,} iterations."
        if self.status == "not learning":
            return f"Not learning: {self.iterations:,} iterations ran as planned, but {self.not_learning}."
        return f"Finished: {self.iterations:,} iterations as planned (I × E)."

    @property
    def planned_steps(self) -> int:
        """Updates the plan promises: :func:`batchlab.arithmetic.total_steps`."""
        return self.plan.total_steps

    @property
    def best_epoch(self) -> int | None:
        """Index of the epoch with the lowest validation loss (early stopping's pick), or None."""
        return min(range(len(self.val_loss)), key=self.val_loss.__getitem__) if self.val_loss else None

    @property
    def epoch_end_steps(self) -> list[int]:
        """Optimizer updates made by the end of each completed epoch (x-axis "updates")."""
        return [self.plan.steps_per_epoch * (e + 1) for e in range(self.epochs_completed)]


class TrainingState:
    """What a callback sees: where training is, the model, and two requests it can make.

    Attributes (read them, do not assign): ``epoch`` (0-based), ``iteration_in_epoch`` (0-based index
    of the batch just trained), ``global_iteration`` (0-based, over the run; -1 before the first
    iteration), ``step`` (updates made so far), ``learning_rate`` (of the latest update; before the
    first, the rate it will use), ``history`` (the :class:`History` being filled),
    ``model``, ``batches`` (the :class:`batchlab.data.BatchIterator`) and :attr:`batch_indices`.

    Taught in: notebook 04 § 7. Early stopping.
    """

    def __init__(self, model: nn.Module, history: History, batches: BatchIterator) -> None:
        self.model = model
        self.history = history
        self.batches = batches
        self.epoch = 0
        self.iteration_in_epoch = 0
        self.global_iteration = -1
        self.step = 0
        self.learning_rate = 0.0
        self.stop_requested = False
        # The current epoch's per-iteration results, still on the device (read once per epoch).
        self._losses: list[torch.Tensor] = []  # mean loss of each batch, shape ()
        self._logits: list[torch.Tensor] = []  # (B_k, classes), for the epoch's training accuracy

    @property
    def batch_indices(self) -> torch.Tensor | None:
        """Sample indices (into the training set, on the device) of the batch just trained; None before
        the first iteration. A view of the epoch's permutation: no device sync."""
        return None if self.global_iteration < 0 else self.batches.batch_indices(self.iteration_in_epoch)

    def request_stop(self) -> None:
        """End training cleanly after the current iteration."""
        self.stop_requested = True

    def pending_losses(self) -> list[float]:
        """The current epoch's per-iteration mean losses not yet in ``history`` (one device sync).

        Call it only when you need the numbers (e.g. to redraw a plot every few hundred ms): reading
        them waits for the device to finish the queued work.
        """
        return torch.stack(self._losses).tolist() if self._losses else []


class Callback:
    """Base class for training callbacks: override the hooks you need (each gets the state).

    ``on_iteration_end`` runs after every iteration, so keep it cheap: do real work (drawing, reading
    losses with :meth:`TrainingState.pending_losses`) only every so often, e.g. by wall time.

    Taught in: notebook 04 § 7. Early stopping.
    """

    def on_train_start(self, state: TrainingState) -> None:
        """Before the first iteration."""

    def on_iteration_end(self, state: TrainingState) -> None:
        """After every iteration (forward, backward, and the update when the group is complete)."""

    def on_epoch_end(self, state: TrainingState) -> None:
        """After an epoch's metrics were added to ``state.history``."""

    def on_train_end(self, state: TrainingState) -> None:
        """After the last iteration (also when stopped early or diverged)."""


class TimedCallback(Callback):
    """Wrap a callback and measure the wall time spent inside its hooks: what a live view costs a run.

    ``train(model, data, ..., callbacks=[TimedCallback(plot)])`` runs ``plot``'s hooks as before and
    adds up their seconds. After the run (each start resets them):

    * ``seconds``: all the time inside the wrapped hooks (seconds);
    * ``final_seconds``: the part of it spent in ``on_train_end`` (a view's final redraw);
    * ``during_seconds``: ``seconds - final_seconds``, what it cost while training ran;
    * ``training_seconds``: wall time from the start of the run to its end (the final hook apart);
      ``during_seconds / training_seconds`` is the view's share of the run.

    The live views (``LiveTrainingPlot``, the apps' ``LiveCallback``) keep no timers of their own;
    the benchmarks (``benchmarks/loop_throughput.py --plot-cost``) and the simulator's ``app.timing``
    use this one.

    Taught in: notebook 05 § Watching training live (the live view it times).
    """

    def __init__(self, callback: Callback) -> None:
        if not isinstance(callback, Callback):
            raise TypeError(f"callback must be a batchlab.history.Callback, got {type(callback).__name__}")
        self.callback = callback
        self._reset()

    def _reset(self) -> None:
        """Zero the timers and start the run's clock."""
        self.seconds = 0.0
        self.final_seconds = 0.0
        self.training_seconds = 0.0
        self._started = time.perf_counter()

    def _timed(self, hook: Callable[[TrainingState], None], state: TrainingState) -> float:
        began = time.perf_counter()
        hook(state)
        return time.perf_counter() - began

    @property
    def during_seconds(self) -> float:
        """Seconds inside the hooks while training ran (the final hook apart)."""
        return self.seconds - self.final_seconds

    def on_train_start(self, state: TrainingState) -> None:
        self._reset()
        self.seconds += self._timed(self.callback.on_train_start, state)

    def on_iteration_end(self, state: TrainingState) -> None:
        self.seconds += self._timed(self.callback.on_iteration_end, state)

    def on_epoch_end(self, state: TrainingState) -> None:
        self.seconds += self._timed(self.callback.on_epoch_end, state)

    def on_train_end(self, state: TrainingState) -> None:
        self.training_seconds = time.perf_counter() - self._started
        self.final_seconds = self._timed(self.callback.on_train_end, state)
        self.seconds += self.final_seconds
