"""The training engine: the loop notebook 05 writes by hand, plus the bookkeeping every notebook needs.

:func:`train` runs, for every batch, the five steps notebook 05 teaches, in public PyTorch only:
``optimizer.zero_grad()``, forward, loss, ``loss.backward()``, ``optimizer.step()``. Read its source:
it is meant to be copied. Its docstring lists the speed habits it keeps and what it guarantees (each
guarantee is tested in ``tests/test_training.py``): updates counted as :mod:`batchlab.arithmetic`
says, per-sample averages, exact gradient accumulation, divergence reported, a clean stop anywhere.
"""

from __future__ import annotations

import bisect
import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from batchlab.arithmetic import TrainingPlan
from batchlab.data import CHANCE_LOSS, BatchIterator, DigitsSplit, to_tensors
from batchlab.devices import resolve_device
from batchlab.history import DIVERGENCE_FACTOR, Callback, History, TrainingState, loss_verdict
from batchlab.models import eval_mode, require_classifier
from batchlab.optim import OPTIMIZERS, make_optimizer
from batchlab.validation import (
    require_bool,
    require_choice,
    require_float,
    require_int,
    require_module,
    require_positive_float,
    require_samples,
    require_seed,
)

__all__ = ["DIVERGENCE_FACTOR", "evaluate", "train", "train_epoch"]


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096
             ) -> tuple[float, float]:
    """Per-sample mean cross-entropy loss and accuracy (0–1) of ``model`` on ``(x, y)``.

    ``x``: ``(n, features)`` (float64 is converted to float32, the models' dtype); ``y``: ``(n,)`` class
    indices. Runs in eval mode (dropout off, batch norm on its running statistics) under
    ``torch.no_grad()``, and restores the model's previous mode even when interrupted. Evaluated in
    chunks of ``batch_size`` to bound memory; the two numbers are read from the device in one transfer.

    Taught in: notebook 04 § 7. Early stopping.
    """
    require_module("model", model)
    require_samples(x, y)
    batch_size = require_int("batch_size", batch_size, minimum=1)
    loss_sum, correct = _evaluate_sums(model, x.float() if x.dtype == torch.float64 else x, y, batch_size)
    total_loss, n_correct = torch.stack([loss_sum, correct.double()]).tolist()
    return total_loss / len(y), n_correct / len(y)


def _evaluate_sums(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096):
    """Summed cross-entropy (float64) and number of correct predictions on ``(x, y)``, as device scalars."""
    loss_sum = torch.zeros((), dtype=torch.float64, device=x.device)
    correct = 0
    with eval_mode(model), torch.no_grad():
        for start in range(0, len(y), batch_size):
            logits = model(x[start : start + batch_size])
            target = y[start : start + batch_size]
            loss_sum = loss_sum + F.cross_entropy(logits, target, reduction="sum").double()
            correct = correct + (logits.argmax(dim=1) == target).sum()
    return loss_sum, correct


def train(
    model: nn.Module, data: DigitsSplit, *, batch_size: int, epochs: int, lr: float = 0.1,
    optimizer: str = "sgd", weight_decay: float = 0.0, drop_last: bool = False, accumulation_steps: int = 1,
    scaling_rule: str = "none", base_batch_size: int | None = None, warmup_steps: int = 0,
    warmup_start_lr: float = 0.0, seed: int = 0, device: str | torch.device | None = None,
    callbacks: Sequence[Callback] = (), progress: bool = True, refresh_every: float | None = None,
) -> History:
    """Train ``model`` on ``data`` with mini-batches and return the :class:`History`.

    Every batch goes through the five steps of notebook 05: ``optimizer.zero_grad()`` (once per
    accumulation group), forward, loss, ``backward()``, ``optimizer.step()`` (at the end of the group).
    What it guarantees:

    * **counting**: the updates made (``History.steps``) equal :func:`batchlab.arithmetic.total_steps`;
    * **averaging**: per-epoch losses are per-sample means, not means of batch means (biased when the
      last batch is smaller);
    * **exact accumulation**: with ``accumulation_steps = A`` every batch's mean loss is multiplied by
      ``len(yb) / samples_in_group`` before ``backward()``, so each update is the gradient of one big
      batch of the group's samples, a short last group included;
    * **divergence reported**: a loss that becomes non-finite, or an epoch's training loss above
      ``DIVERGENCE_FACTOR`` times its start, ends the run after that epoch (checked on the numbers
      read once per epoch) with ``History.diverged``, ``History.divergence`` in words and a warning;
    * **a clean stop anywhere**: a callback's :meth:`TrainingState.request_stop`, or a keyboard
      interrupt (the notebook's Stop button) wherever it lands, ends the run with the model's mode
      restored, a consistent history that says ``stopped``, and an unfinished group discarded.

    Three habits make it fast, and each is a line or two you can copy into your own loop:

    1. **the data live on the device and are sliced per epoch**: ``to_tensors`` moves them once, and
       :class:`batchlab.data.BatchIterator` shuffles on the device and cuts batches as views, instead of
       a ``DataLoader`` collating samples one at a time in Python;
    2. **losses stay on the device and are read once per epoch**: ``loss.detach()`` is kept in a list and
       read with one ``.tolist()`` after the epoch, never ``loss.item()`` per iteration (a
       synchronisation on a GPU);
    3. **a fused optimizer** where PyTorch has one (:func:`make_optimizer`).

    Parameters
    ----------
    model:
        A classifier mapping ``(B, features)`` to logits ``(B, classes)``; moved to ``device``. One
        sample is run through it first to check that it gives one logit per class.
    data:
        A :class:`batchlab.data.DigitsSplit` (train and validation arrays; float64 features are stored
        as float32).
    batch_size, epochs, drop_last, accumulation_steps:
        B, E, whether to discard the short last batch, and A, how many batches make one update.
    lr, optimizer, weight_decay:
        Base learning rate and optimizer (``"sgd"``, ``"momentum"``, ``"adam"``), L2 coefficient.
    scaling_rule, base_batch_size:
        Scale ``lr`` from ``base_batch_size`` to the global batch size ``B × A`` with ``"linear"`` or
        ``"sqrt"`` (:func:`batchlab.arithmetic.scaled_learning_rate`); ``"none"`` uses ``lr`` as it is.
    warmup_steps, warmup_start_lr:
        Linear warm-up over this many *updates*, from ``warmup_start_lr`` (0: from zero; the base rate
        ``lr``: Goyal et al.'s warm-up) to the (scaled) rate: :meth:`TrainingPlan.learning_rate`.

    The counts, the rate and the warm-up make one :class:`batchlab.arithmetic.TrainingPlan` (checked
    there, kept as ``History.plan``); ``train(model, data, **plan.train_arguments())`` trains a plan.
    seed:
        Seeds the batch order and dropout (0 to 2**64 - 1); the model's initial weights come from its
        own constructor.
    device:
        ``None`` picks ``cuda``, then ``mps``, then ``cpu``.
    callbacks:
        :class:`Callback` objects; see :class:`TrainingState` for what they can read and request.
    progress, refresh_every:
        Show ``tqdm`` progress bars (epochs, and iterations within the epoch); ``refresh_every`` is the
        bars' minimum refresh interval in seconds (tqdm's default when None).

    Taught in: notebook 05 § The same loop through batchlab.training.train.
    """
    run = _checked_arguments(model, data, batch_size, epochs, lr, optimizer, weight_decay, drop_last,
                             accumulation_steps, scaling_rule, base_batch_size, warmup_steps,
                             warmup_start_lr, seed, callbacks, progress, refresh_every)
    device = resolve_device(device)
    model.to(device)
    x_train, y_train, x_val, y_val = to_tensors(data, device)
    require_classifier(model, x_train[:1], data.n_classes)  # trainable, one logit per class

    # --- Set up: the optimizer, the batches, the record, the progress bars, the seeds. ---
    plan = run.plan
    opt = make_optimizer(run.optimizer, model.parameters(), plan.peak_lr, run.weight_decay)
    batches = BatchIterator(x_train, y_train, batch_size, shuffle=True, drop_last=drop_last, seed=run.seed)
    sizes = batches.batch_sizes()
    history = History(plan=plan)
    state = TrainingState(model, history, batches)
    state.learning_rate = plan.learning_rate(0)
    bars = _ProgressBars(epochs, len(sizes), run.progress, run.refresh_every)
    callbacks = (bars, *run.callbacks)
    # Seed the dropout masks: the CPU's generator (and the device's); torch.manual_seed does the same
    # for every accelerator back end PyTorch knows, which costs milliseconds per call.
    torch.default_generator.manual_seed(run.seed)
    if device.type in ("cuda", "mps"):
        getattr(torch, device.type).manual_seed(run.seed)

    # --- The run: one train_epoch per epoch, then the epoch's numbers into the history. ---
    was_training = model.training
    model.train()
    started = time.perf_counter()
    try:
        for cb in callbacks:
            cb.on_train_start(state)
        for epoch in range(epochs):
            if state.stop_requested or history.diverged:
                break
            state.epoch = epoch
            history.epoch_starts.append(history.iterations)
            bars.iterations.reset()
            train_epoch(model, batches, opt, state, accumulation_steps=accumulation_steps,
                        rate_at=plan.learning_rate, warmup_steps=plan.warmup_steps, callbacks=callbacks)
            if history.iterations - history.epoch_starts[-1] < len(sizes):  # stopped mid-epoch
                break
            _finish_epoch(state, sizes, x_val, y_val)
            for cb in callbacks:
                cb.on_epoch_end(state)
    except KeyboardInterrupt:  # the notebook's Stop button, wherever it lands: keep what was measured
        state.stop_requested = True
    finally:
        _flush_epoch(state, sizes)  # a stopped epoch's losses (nothing when the epoch was finished)
        opt.zero_grad()  # an unfinished accumulation group is discarded
        model.train(was_training)
        bars.close()
    history.stopped = state.stop_requested and history.epochs_completed < epochs and not history.diverged
    history.wall_time_s = time.perf_counter() - started
    if history.diverged:
        warnings.warn(f"training diverged: {history.divergence}", RuntimeWarning, stacklevel=2)
    for cb in run.callbacks:
        cb.on_train_end(state)
    return history


def train_epoch(model: nn.Module, batches: BatchIterator, optimizer: Any, state: TrainingState, *,
                accumulation_steps: int = 1, rate_at: Callable[[int], float], warmup_steps: int = 0,
                callbacks: Sequence[Callback] = ()) -> None:
    """One epoch of notebook 05's loop: for every batch the five steps, then the bookkeeping.

    ``rate_at(update)`` is the learning rate of an update during warm-up (the first ``warmup_steps``
    updates). Counts, losses (kept on the device) and the stop request live in ``state``.
    Called by :func:`train`, which checks every argument first. Taught in: notebook 05 §2.
    """
    history = state.history
    sizes = batches.batch_sizes()
    A = accumulation_steps
    samples_in_group = [sum(sizes[k - k % A : k - k % A + A]) for k in range(len(sizes))]
    for k, (xb, yb) in enumerate(batches):
        if k % A == 0:
            optimizer.zero_grad()  # 1. clear the gradients (once per accumulation group)
        logits = model(xb)  # 2. forward
        loss = F.cross_entropy(logits, yb)  # 3. the batch's mean loss
        # 4. gradients. Exact accumulation: weigh the batch's mean by its share of the group.
        (loss * (len(yb) / samples_in_group[k]) if A > 1 else loss).backward()
        if k % A == A - 1 or k == len(sizes) - 1:  # 5. update, at the end of each group
            if history.steps <= warmup_steps:  # warm-up: this update's rate (then the peak)
                state.learning_rate = rate_at(history.steps)
                for group in optimizer.param_groups:
                    group["lr"] = state.learning_rate
            optimizer.step()
            history.learning_rates.append(state.learning_rate)
            history.steps += 1
            state.step = history.steps
        # The bookkeeping: the loss stays on the device (no .item() here), the counts, the callbacks.
        state._losses.append(loss.detach())
        state._logits.append(logits.detach())
        history.iterations += 1
        history.samples_seen += sizes[k]
        state.iteration_in_epoch = k
        state.global_iteration = history.iterations - 1
        for cb in callbacks:
            cb.on_iteration_end(state)
        if state.stop_requested:
            break


@dataclass(frozen=True)
class _Arguments:
    """The arguments of :func:`train` after the checks: the run's plan (counts, rate and warm-up) and
    the rest."""

    plan: TrainingPlan
    optimizer: str
    weight_decay: float
    seed: int
    callbacks: tuple[Callback, ...]
    progress: bool
    refresh_every: float | None


def _checked_arguments(model, data, batch_size, epochs, lr, optimizer, weight_decay, drop_last,
                       accumulation_steps, scaling_rule, base_batch_size, warmup_steps, warmup_start_lr,
                       seed, callbacks, progress, refresh_every) -> _Arguments:
    """:func:`train`'s door: each error names the parameter, the value and the allowed range.

    The counts, the rate and the warm-up are checked by the :class:`TrainingPlan` they make."""
    require_module("model", model)
    if not isinstance(data, DigitsSplit):
        raise TypeError(f"data must be a batchlab.data.DigitsSplit, got {type(data).__name__}")
    plan = TrainingPlan(data.n_train, batch_size, epochs, drop_last, accumulation_steps, lr=lr,
                        scaling_rule=scaling_rule, base_batch_size=base_batch_size, warmup_steps=warmup_steps,
                        warmup_start_lr=warmup_start_lr)
    if drop_last and batch_size > data.n_train:
        raise ValueError(f"batch_size must be <= the {data.n_train} training samples when drop_last=True "
                         f"(otherwise every batch is dropped), got {batch_size}")
    optimizer = require_choice("optimizer", optimizer, OPTIMIZERS)
    weight_decay = require_float("weight_decay", weight_decay, minimum=0.0)
    seed = require_seed("seed", seed)
    if isinstance(callbacks, Callback | str | bytes) or not isinstance(callbacks, Iterable):
        raise TypeError("callbacks must be a sequence of batchlab.history.Callback objects "
                        f"(e.g. [callback]), got {type(callbacks).__name__}")
    callbacks = tuple(callbacks)
    if bad := [type(cb).__name__ for cb in callbacks if not isinstance(cb, Callback)]:
        raise TypeError(f"callbacks must hold batchlab.history.Callback objects, got {', '.join(bad)}")
    progress = require_bool("progress", progress)
    if refresh_every is not None:
        refresh_every = require_positive_float("refresh_every", refresh_every)
    return _Arguments(plan, optimizer, weight_decay, seed, callbacks, progress, refresh_every)


class _ProgressBars(Callback):
    """tqdm bars for the epochs and the iterations within the epoch (none when ``progress`` is False)."""

    def __init__(self, epochs: int, iterations: int, progress: bool, refresh_every: float | None) -> None:
        from tqdm.auto import tqdm

        options = {"disable": not progress}
        if refresh_every is not None:
            options["mininterval"] = refresh_every
        self.epochs = tqdm(total=epochs, desc="epochs", unit="epoch", **options)
        self.iterations = tqdm(total=iterations, desc="iterations", unit="it", leave=False, **options)

    def on_iteration_end(self, state: TrainingState) -> None:
        self.iterations.update()

    def on_epoch_end(self, state: TrainingState) -> None:
        self.epochs.set_postfix(val_acc=f"{state.history.val_accuracy[-1]:.3f}", refresh=False)
        self.epochs.update()

    def close(self) -> None:
        self.iterations.close()
        self.epochs.close()


def _finish_epoch(state: TrainingState, sizes: list[int], x_val: torch.Tensor, y_val: torch.Tensor) -> None:
    """Add a completed epoch's metrics to the history, reading everything in one device transfer."""
    history = state.history
    n_epoch = sum(sizes)
    # The epoch's labels in the order they were trained: the batches are consecutive slices of them.
    correct = torch.cat(state._logits).argmax(dim=1).eq(state.batches.epoch_targets()[:n_epoch]).sum()
    val_loss_sum, val_correct = _evaluate_sums(state.model, x_val, y_val)
    # One float64 tensor (stack and cat promote): float32 losses and integer counts convert exactly.
    summary = torch.stack([correct, val_loss_sum, val_correct])
    values = torch.cat([torch.stack(state._losses), summary]).tolist()
    state._losses.clear()
    state._logits.clear()
    losses = values[:-3]
    n_correct, val_loss_total, n_val_correct = values[-3:]
    history.iteration_losses += losses
    history.iteration_sizes += sizes
    history.train_loss.append(math.fsum(m * b for m, b in zip(losses, sizes, strict=True)) / n_epoch)
    history.train_accuracy.append(n_correct / n_epoch)
    history.val_loss.append(val_loss_total / len(y_val))
    history.val_accuracy.append(n_val_correct / len(y_val))
    history.epochs_completed += 1
    _check_divergence(history, len(losses))


def _flush_epoch(state: TrainingState, sizes: list[int]) -> None:
    """Move a stopped epoch's per-iteration losses from the device into the history."""
    history = state.history
    done = history.iterations - history.epoch_starts[-1] if history.epoch_starts else 0
    del state._losses[done:]  # an iteration interrupted half-way is not counted
    if state._losses:
        history.iteration_losses += state.pending_losses()
        history.iteration_sizes += sizes[: len(state._losses)]
        _check_divergence(history, len(state._losses))
    state._losses.clear()
    state._logits.clear()


def _check_divergence(history: History, new: int) -> None:
    """Set ``history.diverged`` (and say why) when one of the ``new`` last iteration losses or the latest
    validation loss is non-finite, or the latest epoch's training loss is above ``DIVERGENCE_FACTOR``
    times the larger of the first iteration's loss and ``CHANCE_LOSS`` (ln of the number of classes:
    the loss of a uniform guess): :func:`batchlab.history.loss_verdict`. Plain Python on numbers
    already read from the device."""
    if history.diverged:
        return
    losses = history.iteration_losses
    start = len(history.iteration_losses) - new
    bad = next((i for i in range(start, len(losses)) if not math.isfinite(losses[i])), None)
    if bad is not None:
        epoch = bisect.bisect_right(history.epoch_starts, bad)  # 1-based: epochs started by then
        history.divergence = (f"the training loss became {losses[bad]} at iteration {bad + 1} (epoch "
                              f"{epoch}); try a smaller learning rate")
    elif history.val_loss and not math.isfinite(history.val_loss[-1]):
        history.divergence = (f"the validation loss became {history.val_loss[-1]} after epoch "
                              f"{len(history.val_loss)}")
    elif history.train_loss and loss_verdict(history.train_loss[-1], losses[0],
                                             after_first_epoch=False) == "diverged":
        history.divergence = (f"the training loss rose to {history.train_loss[-1]:.3g} in epoch "
                              f"{len(history.train_loss)}, more than {DIVERGENCE_FACTOR:g} times its start "
                              f"({max(losses[0], CHANCE_LOSS):.3g}); try a smaller learning rate")
    history.diverged = bool(history.divergence)
