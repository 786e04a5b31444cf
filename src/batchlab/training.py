"""The training engine: one correct, fast loop that every notebook uses.

What it guarantees (each is tested):

* **Counting.** The number of optimizer updates equals :func:`batchlab.arithmetic.total_steps`;
  ``History.planned_steps`` says what was planned and ``History.steps`` what was made.
* **Averaging.** Per-epoch losses are per-sample means (sum of per-sample losses / samples), not means
  of batch means, which are biased when the last batch is smaller.
* **Exact gradient accumulation.** With ``accumulation_steps = A`` each update uses exactly the
  gradient of one big batch made of the group's samples: every batch's summed loss is divided by the
  number of samples *in its group*, so a shorter last group is weighted correctly.
* **No host–device synchronisation inside the iteration loop.** Data live on the device
  (:class:`batchlab.data.BatchIterator`); losses stay there as tensors and are read once per epoch, or
  when a callback asks for them (:meth:`TrainingState.pending_losses`).
* **Stoppable.** A callback's :meth:`TrainingState.request_stop` (or a keyboard interrupt, i.e. the
  notebook's Stop button) ends training cleanly after the current iteration; the history stays
  consistent (an unfinished accumulation group is discarded, not applied).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from batchlab.arithmetic import (
    SCALING_RULES,
    TrainingPlan,
    scaled_learning_rate,
    warmup_learning_rate,
)
from batchlab.data import BatchIterator, DigitsSplit, to_tensors
from batchlab.devices import resolve_device
from batchlab.validation import (
    require_bool,
    require_choice,
    require_float,
    require_int,
    require_positive_float,
)

__all__ = ["OPTIMIZERS", "Callback", "History", "TrainingState", "evaluate", "make_optimizer", "train"]

OPTIMIZERS = ("sgd", "momentum", "adam")


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
      ``planned_steps`` (``plan.total_steps``); ``stopped`` is True when a stop ended the run early;
    * ``wall_time_s``: seconds from start to end, evaluation included.
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
    wall_time_s: float = 0.0

    @property
    def planned_steps(self) -> int:
        """Updates the plan promises: :func:`batchlab.arithmetic.total_steps`."""
        return self.plan.total_steps

    @property
    def best_epoch(self) -> int | None:
        """Index of the epoch with the lowest validation loss (early stopping's pick), or None."""
        if not self.val_loss:
            return None
        return min(range(len(self.val_loss)), key=self.val_loss.__getitem__)

    @property
    def epoch_end_steps(self) -> list[int]:
        """Optimizer updates made by the end of each completed epoch (x-axis "updates")."""
        return [self.plan.steps_per_epoch * (e + 1) for e in range(self.epochs_completed)]


class TrainingState:
    """What a callback sees: where training is, the model, and two requests it can make."""

    def __init__(self, model: nn.Module, history: History, batches: BatchIterator) -> None:
        self.model = model
        self.history = history
        self.batches = batches
        self.epoch = 0
        self.iteration_in_epoch = 0
        self.global_iteration = 0
        self.step = 0
        self.learning_rate = 0.0
        self.batch_indices: torch.Tensor | None = None
        self.stop_requested = False
        self._epoch_loss_sums: list[torch.Tensor] = []
        self._epoch_sizes: list[int] = []

    def request_stop(self) -> None:
        """End training cleanly after the current iteration."""
        self.stop_requested = True

    def pending_losses(self) -> list[float]:
        """The current epoch's per-iteration mean losses not yet in ``history`` (one device sync)."""
        if not self._epoch_loss_sums:
            return []
        sums = torch.stack(self._epoch_loss_sums).float().cpu()
        sizes = torch.tensor(self._epoch_sizes, dtype=sums.dtype)
        return (sums / sizes).tolist()


class Callback:
    """Base class for training callbacks: override the hooks you need (each gets the state)."""

    def on_train_start(self, state: TrainingState) -> None:
        """Before the first iteration."""

    def on_iteration_end(self, state: TrainingState) -> None:
        """After every iteration (forward, backward, and the update when the group is complete)."""

    def on_epoch_end(self, state: TrainingState) -> None:
        """After an epoch's metrics were added to ``state.history``."""

    def on_train_end(self, state: TrainingState) -> None:
        """After the last iteration (also when stopped early)."""


def make_optimizer(
    name: str,
    parameters: Any,
    lr: float,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """``"sgd"`` (plain), ``"momentum"`` (SGD with momentum 0.9) or ``"adam"``."""
    name = require_choice("optimizer", name, OPTIMIZERS)
    lr = require_positive_float("lr", lr)
    weight_decay = require_float("weight_decay", weight_decay, minimum=0.0)
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=weight_decay)
    momentum = 0.9 if name == "momentum" else 0.0
    return torch.optim.SGD(parameters, lr=lr, momentum=momentum, weight_decay=weight_decay)


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096
) -> tuple[float, float]:
    """Per-sample mean cross-entropy loss and accuracy (0–1) of ``model`` on ``(x, y)``.

    ``x``: ``(n, features)``; ``y``: ``(n,)`` class indices. Runs in eval mode (dropout off) and
    restores the model's previous mode. Evaluated in chunks of ``batch_size`` to bound memory.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"x and y must hold the same, non-zero number of samples, got {len(x)}, {len(y)}")
    batch_size = require_int("batch_size", batch_size, minimum=1)
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    correct = torch.zeros((), device=x.device, dtype=torch.long)
    for start in range(0, len(y), batch_size):
        logits = model(x[start : start + batch_size])
        target = y[start : start + batch_size]
        loss_sum += F.cross_entropy(logits, target, reduction="sum")
        correct += (logits.argmax(dim=1) == target).sum()
    model.train(was_training)
    return loss_sum.item() / len(y), correct.item() / len(y)


def _group_sample_counts(sizes: Sequence[int], accumulation_steps: int) -> list[int]:
    """For each batch of an epoch, the number of samples in its accumulation group."""
    counts: list[int] = []
    for start in range(0, len(sizes), accumulation_steps):
        group = sizes[start : start + accumulation_steps]
        counts += [sum(group)] * len(group)
    return counts


def train(
    model: nn.Module,
    data: DigitsSplit,
    *,
    batch_size: int,
    epochs: int,
    lr: float = 0.1,
    optimizer: str = "sgd",
    weight_decay: float = 0.0,
    drop_last: bool = False,
    accumulation_steps: int = 1,
    scaling_rule: str = "none",
    base_batch_size: int | None = None,
    warmup_steps: int = 0,
    seed: int = 0,
    device: str | torch.device | None = None,
    callbacks: Sequence[Callback] = (),
    progress: bool = True,
    refresh_every: float | None = None,
) -> History:
    """Train ``model`` on ``data`` with mini-batches and return the :class:`History`.

    Parameters
    ----------
    model:
        A classifier mapping ``(B, features)`` to logits ``(B, classes)``; moved to ``device``.
    data:
        A :class:`batchlab.data.DigitsSplit` (train and validation arrays).
    batch_size, epochs, drop_last, accumulation_steps:
        B, E, whether to discard the short last batch, and how many batches make one update.
    lr, optimizer, weight_decay:
        Base learning rate and optimizer (``"sgd"``, ``"momentum"``, ``"adam"``).
    scaling_rule, base_batch_size:
        Scale ``lr`` from ``base_batch_size`` to the global batch size with ``"linear"`` or ``"sqrt"``
        (:func:`batchlab.arithmetic.scaled_learning_rate`); ``"none"`` uses ``lr`` as it is.
    warmup_steps:
        Linear warm-up over this many updates (:func:`batchlab.arithmetic.warmup_learning_rate`).
    seed:
        Seeds the batch order and dropout; the model's initial weights come from its own constructor.
    device:
        ``None`` picks ``cuda``, then ``mps``, then ``cpu``.
    callbacks:
        :class:`Callback` objects; see :class:`TrainingState` for what they can read and request.
    progress, refresh_every:
        Show ``tqdm`` progress bars (epochs, and iterations within the epoch); ``refresh_every`` is the
        bars' minimum refresh interval in seconds (tqdm's default when None).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(data, DigitsSplit):
        raise TypeError(f"data must be a batchlab.data.DigitsSplit, got {type(data).__name__}")
    plan = TrainingPlan(data.n_train, batch_size, epochs, drop_last, accumulation_steps)
    if drop_last and batch_size > data.n_train:
        raise ValueError(
            f"batch_size must be <= the {data.n_train} training samples when drop_last=True "
            f"(otherwise every batch is dropped), got {batch_size}"
        )
    lr = require_positive_float("lr", lr)
    scaling_rule = require_choice("scaling_rule", scaling_rule, SCALING_RULES)
    if scaling_rule != "none":
        if base_batch_size is None:
            raise ValueError(f"scaling_rule={scaling_rule!r} needs base_batch_size (an integer >= 1)")
        peak_lr = scaled_learning_rate(lr, base_batch_size, plan.global_batch_size, scaling_rule)
    else:
        peak_lr = lr
    warmup_steps = require_int("warmup_steps", warmup_steps, minimum=0)
    seed = require_int("seed", seed, minimum=0)
    progress = require_bool("progress", progress)
    if refresh_every is not None:
        refresh_every = require_positive_float("refresh_every", refresh_every)
    callbacks = list(callbacks)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be batchlab.training.Callback objects, got {type(cb).__name__}")

    device = resolve_device(device)
    model.to(device)
    model.train()
    x_train, y_train, x_val, y_val = to_tensors(data, device)
    batches = BatchIterator(x_train, y_train, batch_size, shuffle=True, drop_last=drop_last, seed=seed)
    opt = make_optimizer(optimizer, model.parameters(), warmup_learning_rate(0, peak_lr, warmup_steps),
                         weight_decay)
    sizes = batches.batch_sizes()
    group_counts = _group_sample_counts(sizes, accumulation_steps)
    last_in_group = [(k + 1) % accumulation_steps == 0 or k == len(sizes) - 1 for k in range(len(sizes))]

    history = History(plan=plan)
    state = TrainingState(model, history, batches)
    bars = _ProgressBars(progress, epochs, len(sizes), refresh_every)
    torch.manual_seed(seed)  # dropout masks
    started = time.perf_counter()
    for cb in callbacks:
        cb.on_train_start(state)
    try:
        for epoch in range(epochs):
            state.epoch = epoch
            history.epoch_starts.append(history.iterations)
            correct_sum = torch.zeros((), device=device, dtype=torch.long)
            bars.start_epoch(epoch)
            for k, (xb, yb) in enumerate(batches):
                logits = model(xb)
                loss_sum = F.cross_entropy(logits, yb, reduction="sum")
                (loss_sum / group_counts[k]).backward()
                state._epoch_loss_sums.append(loss_sum.detach())
                state._epoch_sizes.append(sizes[k])
                correct_sum += (logits.detach().argmax(dim=1) == yb).sum()
                if last_in_group[k]:
                    state.learning_rate = warmup_learning_rate(history.steps, peak_lr, warmup_steps)
                    for group in opt.param_groups:
                        group["lr"] = state.learning_rate
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                    history.learning_rates.append(state.learning_rate)
                    history.steps += 1
                history.iterations += 1
                history.samples_seen += sizes[k]
                state.iteration_in_epoch = k
                state.global_iteration = history.iterations - 1
                state.step = history.steps
                state.batch_indices = batches.permutation[k * batch_size : (k + 1) * batch_size]
                bars.iteration_done()
                for cb in callbacks:
                    cb.on_iteration_end(state)
                if state.stop_requested:
                    break
            if state.stop_requested:
                _flush_epoch(state)
                break
            _finish_epoch(state, correct_sum, x_val, y_val)
            bars.epoch_done(history)
            for cb in callbacks:
                cb.on_epoch_end(state)
    except KeyboardInterrupt:  # the notebook's Stop button: keep what was measured
        state.stop_requested = True
        _flush_epoch(state)
    finally:
        bars.close()
    if state.stop_requested:
        history.stopped = True
        opt.zero_grad(set_to_none=True)  # an unfinished accumulation group is discarded
    history.wall_time_s = time.perf_counter() - started
    for cb in callbacks:
        cb.on_train_end(state)
    return history


def _flush_epoch(state: TrainingState) -> None:
    """Move the current epoch's per-iteration losses from the device into the history."""
    state.history.iteration_losses += state.pending_losses()
    state.history.iteration_sizes += state._epoch_sizes
    state._epoch_loss_sums, state._epoch_sizes = [], []


def _finish_epoch(
    state: TrainingState, correct_sum: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor
) -> None:
    history = state.history
    n_epoch = sum(state._epoch_sizes)
    loss_total = torch.stack(state._epoch_loss_sums).sum().item() if state._epoch_sizes else 0.0
    _flush_epoch(state)
    history.train_loss.append(loss_total / n_epoch if n_epoch else float("nan"))
    history.train_accuracy.append(correct_sum.item() / n_epoch if n_epoch else float("nan"))
    val_loss, val_accuracy = evaluate(state.model, x_val, y_val)
    history.val_loss.append(val_loss)
    history.val_accuracy.append(val_accuracy)
    history.epochs_completed += 1


class _ProgressBars:
    """An epoch bar and an iteration bar (reset each epoch) from ``tqdm.auto``; no-ops when off."""

    def __init__(self, enabled: bool, epochs: int, per_epoch: int, refresh_every: float | None):
        self.enabled = enabled
        if not enabled:
            return
        from tqdm.auto import tqdm

        kwargs = {} if refresh_every is None else {"mininterval": refresh_every}
        self.epoch_bar = tqdm(total=epochs, desc="epochs", unit="epoch", **kwargs)
        self.iter_bar = tqdm(total=per_epoch, desc="iterations", unit="it", leave=False, **kwargs)

    def start_epoch(self, epoch: int) -> None:
        if self.enabled and epoch > 0:
            self.iter_bar.reset()

    def iteration_done(self) -> None:
        if self.enabled:
            self.iter_bar.update()

    def epoch_done(self, history: History) -> None:
        if self.enabled:
            self.epoch_bar.set_postfix(val_acc=f"{history.val_accuracy[-1]:.3f}", refresh=False)
            self.epoch_bar.update()

    def close(self) -> None:
        if self.enabled:
            self.iter_bar.close()
            self.epoch_bar.close()
