"""The training engine: the loop notebook 05 writes by hand, plus the bookkeeping every notebook needs.

:func:`train` runs, for every batch, the five steps notebook 05 teaches, in public PyTorch only:
``optimizer.zero_grad()``, forward, loss, ``loss.backward()``, ``optimizer.step()``. Read its source:
it is meant to be copied. Its docstring lists the speed habits it keeps and what it guarantees (each
guarantee is tested in ``tests/test_training.py``): updates counted as :mod:`batchlab.arithmetic`
says, per-sample averages, exact gradient accumulation, divergence reported, a clean stop anywhere.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from batchlab.arithmetic import SCALING_RULES, TrainingPlan, scaled_learning_rate
from batchlab.data import MAX_SEED, BatchIterator, DigitsSplit, to_tensors
from batchlab.devices import resolve_device
from batchlab.validation import (
    require_bool,
    require_choice,
    require_float,
    require_int,
    require_positive_float,
)

__all__ = [
    "DIVERGENCE_FACTOR",
    "OPTIMIZERS",
    "Callback",
    "History",
    "PlainSGD",
    "TrainingState",
    "evaluate",
    "learning_rate_at",
    "make_optimizer",
    "train",
]

OPTIMIZERS = ("sgd", "momentum", "adam")

# A run has diverged when an epoch's training loss exceeds this many times its start: the larger of the
# first iteration's loss and the chance loss ln(classes) (for 10 classes 10 x 2.3 = 23, far above chance).
DIVERGENCE_FACTOR = 10.0


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
      ``divergence`` says what happened in words; :attr:`status` sums the three outcomes up;
    * ``wall_time_s``: seconds from start to end, evaluation included.

    While training runs, ``iteration_losses`` and ``iteration_sizes`` lag behind the counters by the
    current epoch (its losses are still on the device: see :meth:`TrainingState.pending_losses`).
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
        """How the run ended: ``"diverged"``, ``"stopped"`` (early, on request) or ``"finished"``."""
        if self.diverged:
            return "diverged"
        return "stopped" if self.stopped else "finished"

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
    """What a callback sees: where training is, the model, and two requests it can make.

    Attributes (read them, do not assign): ``epoch`` (0-based), ``iteration_in_epoch`` (0-based index
    of the batch just trained), ``global_iteration`` (0-based, over the run; -1 before the first
    iteration), ``step`` (updates made so far), ``learning_rate`` (of the latest update; before the
    first, the rate it will use), ``history`` (the :class:`History` being filled),
    ``model``, ``batches`` (the :class:`batchlab.data.BatchIterator`) and :attr:`batch_indices`.
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
    """

    def on_train_start(self, state: TrainingState) -> None:
        """Before the first iteration."""

    def on_iteration_end(self, state: TrainingState) -> None:
        """After every iteration (forward, backward, and the update when the group is complete)."""

    def on_epoch_end(self, state: TrainingState) -> None:
        """After an epoch's metrics were added to ``state.history``."""

    def on_train_end(self, state: TrainingState) -> None:
        """After the last iteration (also when stopped early or diverged)."""


class PlainSGD:
    """Plain SGD written out: after ``backward()``, ``p ← p − lr × (p.grad + weight_decay × p)``.

    The arithmetic of ``torch.optim.SGD(params, lr, weight_decay=...)`` without momentum, bit for bit
    (the same ``p.add_(grad, alpha=-lr)``), with the interface :func:`train` uses:
    :meth:`zero_grad`, :meth:`step` and ``param_groups`` (one group, whose ``"lr"`` may be changed
    between steps, e.g. for warm-up). Written out because it is the clearest statement of what SGD
    does, and because ``Optimizer.step()``'s own bookkeeping (hooks, profiler records) costs as much
    as this update on a small model (``benchmarks/README.md``).
    """

    def __init__(self, params: Iterable[torch.Tensor], lr: float, weight_decay: float = 0.0) -> None:
        self.params = list(params)
        self.param_groups = [{"params": self.params, "lr": lr, "weight_decay": weight_decay}]
        self.state: dict[torch.Tensor, dict[str, Any]] = {}  # no buffers (momentum would keep one)

    def zero_grad(self) -> None:
        """Forget the gradients (as ``Optimizer.zero_grad()`` does: set them to None)."""
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """Move every parameter against its gradient: ``p ← p − lr × grad``."""
        lr, weight_decay = self.param_groups[0]["lr"], self.param_groups[0]["weight_decay"]
        for p in self.params:
            if p.grad is not None:
                grad = p.grad if weight_decay == 0 else p.grad.add(p, alpha=weight_decay)
                p.add_(grad, alpha=-lr)


def make_optimizer(name: str, parameters: Any, lr: float, weight_decay: float = 0.0) -> Any:
    """``"sgd"`` (plain: :class:`PlainSGD`), ``"momentum"`` (``torch.optim.SGD`` with momentum 0.9) or
    ``"adam"`` (``torch.optim.Adam``).

    ``parameters``: an iterable of tensors (e.g. ``model.parameters()``); ``lr`` > 0; ``weight_decay``
    >= 0 (L2 penalty coefficient). On the CPU and CUDA the ``torch.optim`` optimizers are *fused*
    (``fused=True``: one kernel updates every parameter, instead of a few small operations per
    parameter tensor); elsewhere PyTorch's default implementation. Fused or not, the arithmetic is the
    same.
    """
    name = require_choice("optimizer", name, OPTIMIZERS)
    lr = require_positive_float("lr", lr)
    weight_decay = require_float("weight_decay", weight_decay, minimum=0.0)
    params = list(parameters)
    if name == "sgd":
        return PlainSGD(params, lr, weight_decay)
    fused = bool(params) and all(
        isinstance(p, torch.Tensor) and p.is_floating_point() and p.device.type in ("cpu", "cuda")
        for p in params
    )
    kwargs: dict[str, Any] = {"lr": lr, "weight_decay": weight_decay, "fused": fused or None}
    if name == "adam":
        return torch.optim.Adam(params, **kwargs)
    return torch.optim.SGD(params, momentum=0.9, **kwargs)


def learning_rate_at(step: int, peak_lr: float, warmup_steps: int, warmup_start_lr: float = 0.0) -> float:
    """The learning rate of update ``step`` (0-based) under linear warm-up, then flat at ``peak_lr``.

    During the first ``warmup_steps`` updates the rate climbs by ``(peak_lr - warmup_start_lr) /
    warmup_steps`` per update: update ``step`` uses ``warmup_start_lr + (peak_lr - warmup_start_lr) ×
    (step + 1) / warmup_steps``, and update ``warmup_steps - 1`` reaches ``peak_lr`` exactly.

    * ``warmup_start_lr = 0`` (the default) is the usual warm-up *from zero*, the same rates as
      :func:`batchlab.arithmetic.warmup_learning_rate` (the first update uses ``peak_lr / warmup_steps``,
      not a wasted zero);
    * Goyal et al. (2017) warm up *from the base rate*: with the linear rule, ``warmup_start_lr = η₀``
      (the rate tuned for the small batch) and ``peak_lr = k η₀``, over about 5 epochs of updates.

    >>> [learning_rate_at(s, 0.4, 4) for s in range(6)]
    [0.1, 0.2, 0.30000000000000004, 0.4, 0.4, 0.4]
    >>> [learning_rate_at(s, 0.4, 3, warmup_start_lr=0.1) for s in range(4)]
    [0.2, 0.30000000000000004, 0.4, 0.4]
    """
    step = require_int("step", step, minimum=0)
    peak_lr = require_positive_float("peak_lr", peak_lr)
    warmup_steps = require_int("warmup_steps", warmup_steps, minimum=0)
    warmup_start_lr = require_float("warmup_start_lr", warmup_start_lr, minimum=0.0, maximum=peak_lr)
    if step >= warmup_steps:
        return peak_lr
    return warmup_start_lr + (peak_lr - warmup_start_lr) * ((step + 1) / warmup_steps)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096) -> tuple[float, float]:
    """Per-sample mean cross-entropy loss and accuracy (0–1) of ``model`` on ``(x, y)``.

    ``x``: ``(n, features)`` (float64 is converted to float32, the models' dtype); ``y``: ``(n,)`` class
    indices. Runs in eval mode (dropout off, batch norm on its running statistics) under
    ``torch.no_grad()``, and restores the model's previous mode even when interrupted. Evaluated in
    chunks of ``batch_size`` to bound memory; the two numbers are read from the device in one transfer.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError("x and y must be torch tensors (see batchlab.data.to_tensors)")
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"x and y must hold the same, non-zero number of samples, got {len(x)}, {len(y)}")
    batch_size = require_int("batch_size", batch_size, minimum=1)
    loss_sum, correct = _evaluate_sums(model, x.float() if x.dtype == torch.float64 else x, y, batch_size)
    total_loss, n_correct = torch.stack([loss_sum, correct.double()]).tolist()
    return total_loss / len(y), n_correct / len(y)


def _evaluate_sums(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096):
    """Summed cross-entropy (float64) and number of correct predictions on ``(x, y)``, as device scalars."""
    was_training = model.training
    model.eval()
    try:
        loss_sum, correct = torch.zeros((), dtype=torch.float64, device=x.device), 0
        with torch.no_grad():
            for start in range(0, len(y), batch_size):
                logits = model(x[start : start + batch_size])
                target = y[start : start + batch_size]
                loss_sum = loss_sum + F.cross_entropy(logits, target, reduction="sum").double()
                correct = correct + (logits.argmax(dim=1) == target).sum()
        return loss_sum, correct
    finally:
        model.train(was_training)


def _check_outputs(model: nn.Module, x: torch.Tensor, n_classes: int) -> None:
    """Run one sample through ``model`` (eval mode, no gradients): it must give one logit per class."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            shape = tuple(model(x[:1]).shape)
    finally:
        model.train(was_training)
    if shape != (1, n_classes):
        raise ValueError(
            f"model must map a batch of samples with {x.shape[1]} features to {n_classes} logits each "
            f"(one per class), got output shape {shape} for a batch of 1"
        )


def _check_callbacks(callbacks: Any) -> tuple[Callback, ...]:
    if isinstance(callbacks, Callback | str | bytes) or not isinstance(callbacks, Iterable):
        raise TypeError("callbacks must be a sequence of batchlab.training.Callback objects "
                        f"(e.g. [callback]), got {type(callbacks).__name__}")
    callbacks = tuple(callbacks)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must hold batchlab.training.Callback objects, got {type(cb).__name__}")
    return callbacks


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
        ``lr``: Goyal et al.'s warm-up) to the (scaled) rate: :func:`learning_rate_at`.
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
    """
    # --- Check the arguments: each error names the parameter, the value and the allowed range. ---
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(data, DigitsSplit):
        raise TypeError(f"data must be a batchlab.data.DigitsSplit, got {type(data).__name__}")
    plan = TrainingPlan(data.n_train, batch_size, epochs, drop_last, accumulation_steps)
    if drop_last and batch_size > data.n_train:
        raise ValueError(f"batch_size must be <= the {data.n_train} training samples when drop_last=True "
                         f"(otherwise every batch is dropped), got {batch_size}")
    lr = require_positive_float("lr", lr)
    optimizer = require_choice("optimizer", optimizer, OPTIMIZERS)
    weight_decay = require_float("weight_decay", weight_decay, minimum=0.0)
    if require_choice("scaling_rule", scaling_rule, SCALING_RULES) != "none" and base_batch_size is None:
        raise ValueError(f"scaling_rule={scaling_rule!r} needs base_batch_size (an integer >= 1)")
    peak_lr = lr if scaling_rule == "none" else scaled_learning_rate(
        lr, base_batch_size, plan.global_batch_size, scaling_rule)
    warmup_steps = require_int("warmup_steps", warmup_steps, minimum=0)
    warmup_start_lr = require_float("warmup_start_lr", warmup_start_lr, minimum=0.0, maximum=peak_lr)
    seed = require_int("seed", seed, minimum=0, maximum=MAX_SEED)
    callbacks = _check_callbacks(callbacks)
    progress = require_bool("progress", progress)
    if refresh_every is not None:
        refresh_every = require_positive_float("refresh_every", refresh_every)
    device = resolve_device(device)
    model.to(device)
    x_train, y_train, x_val, y_val = to_tensors(data, device)
    _check_outputs(model, x_train, data.n_classes)

    # --- Set up: the optimizer, the batches, and each batch's weight for exact accumulation. ---
    opt = make_optimizer(optimizer, model.parameters(), peak_lr, weight_decay)
    batches = BatchIterator(x_train, y_train, batch_size, shuffle=True, drop_last=drop_last, seed=seed)
    sizes = batches.batch_sizes()
    A, last = accumulation_steps, len(sizes) - 1
    samples_in_group = [sum(sizes[k - k % A : k - k % A + A]) for k in range(len(sizes))]
    history = History(plan=plan)
    state = TrainingState(model, history, batches)
    state.learning_rate = learning_rate_at(0, peak_lr, warmup_steps, warmup_start_lr)
    chance_loss = math.log(data.n_classes)
    # Seed the dropout masks: the CPU's generator (and the device's); torch.manual_seed does the same
    # for every accelerator back end PyTorch knows, which costs milliseconds per call.
    torch.default_generator.manual_seed(seed)
    if device.type in ("cuda", "mps"):
        getattr(torch, device.type).manual_seed(seed)
    from tqdm.auto import tqdm

    bar = {"disable": not progress} | ({} if refresh_every is None else {"mininterval": refresh_every})
    epoch_bar = tqdm(total=epochs, desc="epochs", unit="epoch", **bar)
    iteration_bar = tqdm(total=len(sizes), desc="iterations", unit="it", leave=False, **bar)
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
            iteration_bar.reset()
            for k, (xb, yb) in enumerate(batches):
                if k % A == 0:
                    opt.zero_grad()  # 1. clear the gradients (once per accumulation group)
                logits = model(xb)  # 2. forward
                loss = F.cross_entropy(logits, yb)  # 3. the batch's mean loss
                # 4. gradients. Exact accumulation: weigh the batch's mean by its share of the group's samples.
                (loss * (len(yb) / samples_in_group[k]) if A > 1 else loss).backward()
                if k % A == A - 1 or k == last:  # 5. update, at the end of each group
                    if history.steps <= warmup_steps:  # warm-up: this update's rate (then the peak)
                        state.learning_rate = learning_rate_at(history.steps, peak_lr, warmup_steps,
                                                               warmup_start_lr)
                        for group in opt.param_groups:
                            group["lr"] = state.learning_rate
                    opt.step()
                    history.learning_rates.append(state.learning_rate)
                    history.steps += 1
                    state.step = history.steps
                state._losses.append(loss.detach())  # kept on the device: no .item() here
                state._logits.append(logits.detach())
                history.iterations += 1
                history.samples_seen += sizes[k]
                state.iteration_in_epoch, state.global_iteration = k, history.iterations - 1
                iteration_bar.update()
                for cb in callbacks:
                    cb.on_iteration_end(state)
                if state.stop_requested:
                    break
            if history.iterations - history.epoch_starts[-1] < len(sizes):  # stopped mid-epoch
                break
            _finish_epoch(state, sizes, x_val, y_val, chance_loss)
            epoch_bar.set_postfix(val_acc=f"{history.val_accuracy[-1]:.3f}", refresh=False)
            epoch_bar.update()
            for cb in callbacks:
                cb.on_epoch_end(state)
    except KeyboardInterrupt:  # the notebook's Stop button, wherever it lands: keep what was measured
        state.stop_requested = True
    finally:
        _flush_epoch(state, sizes)  # a stopped epoch's losses (nothing when the epoch was finished)
        opt.zero_grad()  # an unfinished accumulation group is discarded
        model.train(was_training)
        iteration_bar.close()
        epoch_bar.close()
    history.stopped = state.stop_requested and history.epochs_completed < epochs and not history.diverged
    history.wall_time_s = time.perf_counter() - started
    if history.diverged:
        warnings.warn(f"training diverged: {history.divergence}", RuntimeWarning, stacklevel=2)
    for cb in callbacks:
        cb.on_train_end(state)
    return history


def _finish_epoch(
    state: TrainingState, sizes: list[int], x_val: torch.Tensor, y_val: torch.Tensor, chance_loss: float
) -> None:
    """Add a completed epoch's metrics to the history, reading everything in one device transfer."""
    history, n_epoch = state.history, sum(sizes)
    # The epoch's labels in the order they were trained: the batches are consecutive slices of them.
    correct = torch.cat(state._logits).argmax(dim=1).eq(state.batches.epoch_targets()[:n_epoch]).sum()
    val_loss_sum, val_correct = _evaluate_sums(state.model, x_val, y_val)
    # One float64 tensor (stack and cat promote): float32 losses and integer counts convert exactly.
    values = torch.cat([torch.stack(state._losses), torch.stack([correct, val_loss_sum, val_correct])]).tolist()
    state._losses.clear()
    state._logits.clear()
    losses, (n_correct, val_loss_total, n_val_correct) = values[:-3], values[-3:]
    history.iteration_losses += losses
    history.iteration_sizes += sizes
    history.train_loss.append(math.fsum(m * b for m, b in zip(losses, sizes, strict=True)) / n_epoch)
    history.train_accuracy.append(n_correct / n_epoch)
    history.val_loss.append(val_loss_total / len(y_val))
    history.val_accuracy.append(n_val_correct / len(y_val))
    history.epochs_completed += 1
    _check_divergence(history, len(losses), chance_loss)


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


def _check_divergence(history: History, new: int, chance_loss: float = math.inf) -> None:
    """Set ``history.diverged`` (and say why) when one of the ``new`` last iteration losses or the latest
    validation loss is non-finite, or the latest epoch's training loss is above ``DIVERGENCE_FACTOR``
    times the larger of the first iteration's loss and ``chance_loss`` (ln of the number of classes:
    the loss of a uniform guess). Plain Python on numbers already read from the device."""
    if history.diverged:
        return
    losses, start = history.iteration_losses, len(history.iteration_losses) - new
    bad = next((i for i in range(start, len(losses)) if not math.isfinite(losses[i])), None)
    if bad is not None:
        epoch = next(e for e in range(len(history.epoch_starts) - 1, -1, -1) if history.epoch_starts[e] <= bad)
        history.divergence = (f"the training loss became {losses[bad]} at iteration {bad + 1} (epoch "
                              f"{epoch + 1}); try a smaller learning rate")
    elif history.val_loss and not math.isfinite(history.val_loss[-1]):
        history.divergence = (f"the validation loss became {history.val_loss[-1]} after epoch "
                              f"{len(history.val_loss)}")
    elif history.train_loss and history.train_loss[-1] > DIVERGENCE_FACTOR * max(losses[0], chance_loss):
        history.divergence = (f"the training loss rose to {history.train_loss[-1]:.3g} in epoch "
                              f"{len(history.train_loss)}, more than {DIVERGENCE_FACTOR:g} times its start "
                              f"({max(losses[0], chance_loss):.3g}); try a smaller learning rate")
    history.diverged = bool(history.divergence)
