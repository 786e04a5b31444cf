"""The training engine: one correct, fast loop that every notebook uses.

What it guarantees (each is tested in ``tests/test_training.py``):

* **Counting.** The number of optimizer updates equals :func:`batchlab.arithmetic.total_steps`;
  ``History.planned_steps`` says what was planned and ``History.steps`` what was made.
* **Averaging.** Per-epoch losses are per-sample means (sum of per-sample losses / samples), not means
  of batch means, which are biased when the last batch is smaller.
* **Exact gradient accumulation.** With ``accumulation_steps = A`` each update uses exactly the
  gradient of one big batch made of the group's samples: every batch's mean loss is weighted by
  ``samples in the batch / samples in its group``, so a shorter last group is weighted correctly.
* **No host–device synchronisation inside the iteration loop.** Data live on the device
  (:class:`batchlab.data.BatchIterator`); losses and predictions stay there and are read in one
  transfer per epoch, or when a callback asks for them (:meth:`TrainingState.pending_losses`).
* **Stoppable.** A callback's :meth:`TrainingState.request_stop` (or a keyboard interrupt, i.e. the
  notebook's Stop button) ends training cleanly after the current iteration; the history stays
  consistent (an unfinished accumulation group is discarded, not applied).

Where the time goes, and what the engine does about it (measured in ``benchmarks/loop_throughput.py``):
per iteration it runs the forward pass, the loss, the backward pass and (at the end of each
accumulation group) the update, plus a few list appends and integer counters. It never calls
``.item()`` per iteration, never collates samples in Python, and applies the update with
:class:`Updater`, which skips ``torch.optim.Optimizer.step``'s per-call profiling and hook machinery.
Once per epoch it scores the kept logits, runs the validation pass and reads everything back in one
transfer. On a CPU at B = 32 the whole costs about 10 % over the bare training step (the floor), most
of it the per-epoch work and the epoch's short last batch: see ``benchmarks/README.md``.
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Iterable, Sequence
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

__all__ = [
    "OPTIMIZERS",
    "Callback",
    "History",
    "TrainingState",
    "Updater",
    "evaluate",
    "make_optimizer",
    "train",
]

OPTIMIZERS = ("sgd", "momentum", "adam")

# Device types with fused optimizer kernels for SGD and Adam in the pinned PyTorch.
_FUSED_DEVICE_TYPES = ("cpu", "cuda")


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
        the first iteration. Computed on access: a view of the epoch's permutation, no device sync."""
        if self.global_iteration < 0:
            return None
        b = self.batches.batch_size
        k = self.iteration_in_epoch
        return self.batches.permutation[k * b : (k + 1) * b]

    def request_stop(self) -> None:
        """End training cleanly after the current iteration."""
        self.stop_requested = True

    def pending_losses(self) -> list[float]:
        """The current epoch's per-iteration mean losses not yet in ``history`` (one device sync).

        Call it only when you need the numbers (e.g. to redraw a plot every few hundred ms): reading
        them waits for the device to finish the queued work.
        """
        if not self._losses:
            return []
        return torch.stack(self._losses).tolist()

    def _clear_epoch(self) -> None:
        self._losses.clear()
        self._logits.clear()


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
        """After the last iteration (also when stopped early)."""


def make_optimizer(
    name: str,
    parameters: Any,
    lr: float,
    weight_decay: float = 0.0,
) -> torch.optim.Optimizer:
    """``"sgd"`` (plain), ``"momentum"`` (SGD with momentum 0.9) or ``"adam"``.

    ``parameters``: an iterable of tensors (e.g. ``model.parameters()``); ``lr`` > 0; ``weight_decay``
    >= 0 (L2 penalty coefficient). On the CPU and CUDA the optimizer uses PyTorch's fused kernels (one
    kernel for all parameters); elsewhere its default implementation.
    """
    name = require_choice("optimizer", name, OPTIMIZERS)
    lr = require_positive_float("lr", lr)
    weight_decay = require_float("weight_decay", weight_decay, minimum=0.0)
    params = list(parameters)
    kwargs: dict[str, Any] = {"lr": lr, "weight_decay": weight_decay}
    if params and all(
        isinstance(p, torch.Tensor) and p.device.type in _FUSED_DEVICE_TYPES and p.is_floating_point()
        for p in params
    ):
        kwargs["fused"] = True
    if name == "adam":
        return torch.optim.Adam(params, **kwargs)
    return torch.optim.SGD(params, momentum=0.9 if name == "momentum" else 0.0, **kwargs)


class Updater:
    """Apply one update of a ``torch.optim`` optimizer and clear the gradients, with little overhead.

    ``Updater(optimizer)(lr)`` sets every group's learning rate to ``lr``, makes the update and sets
    every gradient to ``None`` (like ``optimizer.zero_grad(set_to_none=True)``). The arithmetic is the
    optimizer's own: plain SGD (no momentum) is the same ``param -= lr * grad`` (with ``grad +=
    weight_decay * param`` first) as ``torch.optim.SGD``, bit for bit; any other optimizer runs its own
    ``step`` body. What is skipped is the per-call wrapper of ``Optimizer.step`` (profiler record,
    step hooks), which costs tens of microseconds per call on a small model: optimizer step hooks
    registered with ``register_step_pre_hook`` and friends are therefore not called.
    """

    def __init__(self, optimizer: torch.optim.Optimizer) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        self.groups = optimizer.param_groups
        self.params = [p for group in self.groups for p in group["params"]]
        group = self.groups[0]
        self.plain_sgd = (
            type(optimizer) is torch.optim.SGD
            and len(self.groups) == 1
            and group["momentum"] == 0
            and not group["maximize"]
            and not group["differentiable"]
            and not isinstance(group["weight_decay"], torch.Tensor)
        )
        self.weight_decay = group["weight_decay"] if self.plain_sgd else 0.0
        self._step = inspect.unwrap(type(optimizer).step)  # the step body, without its wrappers

    def __call__(self, lr: float) -> None:
        """One update with learning rate ``lr``, then clear the gradients."""
        for group in self.groups:
            group["lr"] = lr
        with torch.no_grad():
            if self.plain_sgd:
                params = [p for p in self.params if p.grad is not None]
                grads = [p.grad for p in params]
                if self.weight_decay != 0:
                    grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
                torch._foreach_add_(params, grads, alpha=-lr)
            else:
                self._step(self.optimizer)
        for p in self.params:
            p.grad = None


# Module types whose forward pass is the same in training and in eval mode (exact types: a subclass
# may read ``self.training`` in its own forward).
_MODE_FREE_MODULES = (
    nn.Sequential, nn.ModuleList, nn.Linear, nn.Identity, nn.Flatten, nn.Unflatten,
    nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softmax, nn.LogSoftmax,
    nn.Conv1d, nn.Conv2d, nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d,
)


def _mode_matters(model: nn.Module) -> bool:
    """Whether switching ``model`` between training and eval mode can change what it computes.

    False only when every submodule is exactly one of the types in ``_MODE_FREE_MODULES`` (no dropout,
    no batch norm, nothing custom); then :func:`_evaluate_sums` may skip ``eval()`` / ``train()``.
    """
    return any(type(m) not in _MODE_FREE_MODULES for m in model.modules())


def _evaluate_sums(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, switch_mode: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy (float64) and number of correct predictions on ``(x, y)``, as device scalars.

    The model runs in eval mode, unless ``switch_mode`` is False (for a model where the mode changes
    nothing, see :func:`_mode_matters`: switching walks every submodule, twice per evaluation).
    """
    was_training = model.training
    if switch_mode:
        model.eval()
    losses, corrects = [], []
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            logits = model(x[start : start + batch_size])
            target = y[start : start + batch_size]
            losses.append(F.cross_entropy(logits, target, reduction="sum").double())
            corrects.append((logits.argmax(dim=1) == target).sum())
    if switch_mode:
        model.train(was_training)
    if len(losses) == 1:
        return losses[0], corrects[0]
    return torch.stack(losses).sum(), torch.stack(corrects).sum()


def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 4096
) -> tuple[float, float]:
    """Per-sample mean cross-entropy loss and accuracy (0–1) of ``model`` on ``(x, y)``.

    ``x``: ``(n, features)``; ``y``: ``(n,)`` class indices. Runs in eval mode (dropout off) and
    restores the model's previous mode. Evaluated in chunks of ``batch_size`` to bound memory; the two
    numbers are read from the device in one transfer.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError("x and y must be torch tensors (see batchlab.data.to_tensors)")
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"x and y must hold the same, non-zero number of samples, got {len(x)}, {len(y)}")
    batch_size = require_int("batch_size", batch_size, minimum=1)
    loss_sum, correct = _evaluate_sums(model, x, y, batch_size)
    total_loss, n_correct = torch.stack([loss_sum, correct.to(loss_sum.dtype)]).tolist()
    return total_loss / len(y), n_correct / len(y)


def _group_sample_counts(sizes: Sequence[int], accumulation_steps: int) -> list[int]:
    """For each batch of an epoch, the number of samples in its accumulation group."""
    counts: list[int] = []
    for start in range(0, len(sizes), accumulation_steps):
        group = sizes[start : start + accumulation_steps]
        counts += [sum(group)] * len(group)
    return counts


@dataclass(frozen=True)
class _Setup:
    """Validated arguments of :func:`train`."""

    plan: TrainingPlan
    peak_lr: float
    warmup_steps: int
    optimizer: str
    weight_decay: float
    seed: int
    device: torch.device
    callbacks: tuple[Callback, ...]
    progress: bool
    refresh_every: float | None


def _check_train_arguments(
    model: Any, data: Any, batch_size: Any, epochs: Any, lr: Any, optimizer: Any, weight_decay: Any,
    drop_last: Any, accumulation_steps: Any, scaling_rule: Any, base_batch_size: Any,
    warmup_steps: Any, seed: Any, device: Any, callbacks: Any, progress: Any, refresh_every: Any,
) -> _Setup:
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
    optimizer = require_choice("optimizer", optimizer, OPTIMIZERS)
    weight_decay = require_float("weight_decay", weight_decay, minimum=0.0)
    scaling_rule = require_choice("scaling_rule", scaling_rule, SCALING_RULES)
    if base_batch_size is not None:
        base_batch_size = require_int("base_batch_size", base_batch_size, minimum=1)
    if scaling_rule != "none":
        if base_batch_size is None:
            raise ValueError(f"scaling_rule={scaling_rule!r} needs base_batch_size (an integer >= 1)")
        peak_lr = scaled_learning_rate(lr, base_batch_size, plan.global_batch_size, scaling_rule)
    else:
        peak_lr = lr
    if isinstance(callbacks, Callback | str | bytes) or not isinstance(callbacks, Iterable):
        raise TypeError(
            "callbacks must be a sequence of batchlab.training.Callback objects (e.g. [callback]), "
            f"got {type(callbacks).__name__}"
        )
    callbacks = tuple(callbacks)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(
                f"callbacks must hold batchlab.training.Callback objects, got {type(cb).__name__}"
            )
    return _Setup(
        plan=plan,
        peak_lr=peak_lr,
        warmup_steps=require_int("warmup_steps", warmup_steps, minimum=0),
        optimizer=optimizer,
        weight_decay=weight_decay,
        seed=require_int("seed", seed, minimum=0),
        device=resolve_device(device),
        callbacks=callbacks,
        progress=require_bool("progress", progress),
        refresh_every=(
            None if refresh_every is None else require_positive_float("refresh_every", refresh_every)
        ),
    )


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
    setup = _check_train_arguments(
        model, data, batch_size, epochs, lr, optimizer, weight_decay, drop_last, accumulation_steps,
        scaling_rule, base_batch_size, warmup_steps, seed, device, callbacks, progress, refresh_every,
    )
    model.to(setup.device)
    model.train()
    x_train, y_train, x_val, y_val = to_tensors(data, setup.device)
    batches = BatchIterator(x_train, y_train, batch_size, shuffle=True, drop_last=drop_last, seed=setup.seed)
    update = Updater(make_optimizer(setup.optimizer, model.parameters(), setup.peak_lr, setup.weight_decay))
    history = History(plan=setup.plan)
    state = TrainingState(model, history, batches)
    loop = _EpochLoop(setup, state, update, accumulation_steps)
    state.learning_rate = loop.learning_rate(0)  # the rate the first update will use
    bars = _ProgressBars(setup.progress, epochs, len(batches), setup.refresh_every)
    _seed_dropout(setup.seed, setup.device)
    started = time.perf_counter()
    for cb in setup.callbacks:
        cb.on_train_start(state)
    try:
        for epoch in range(epochs):
            if state.stop_requested:  # asked for before the first iteration (on_train_start)
                break
            state.epoch = epoch
            history.epoch_starts.append(history.iterations)
            bars.start_epoch(epoch)
            finished = loop.run_epoch(bars.iteration_bar_update())
            if not finished:
                _flush_epoch(state)
                break
            _finish_epoch(loop, x_val, y_val)
            bars.epoch_done(history)
            for cb in setup.callbacks:
                cb.on_epoch_end(state)
            if state.stop_requested:
                break
    except KeyboardInterrupt:  # the notebook's Stop button: keep what was measured
        state.stop_requested = True
        _flush_epoch(state)
    finally:
        bars.close()
    if state.stop_requested:
        history.stopped = history.iterations < setup.plan.total_iterations
        for p in model.parameters():  # an unfinished accumulation group is discarded
            p.grad = None
    history.wall_time_s = time.perf_counter() - started
    for cb in setup.callbacks:
        cb.on_train_end(state)
    return history


def _seed_dropout(seed: int, device: torch.device) -> None:
    """Seed the generator that draws dropout masks on ``device`` (and the CPU's).

    Cheaper than ``torch.manual_seed``, which also queues seeding calls for every accelerator backend.
    """
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)
    elif device.type == "mps":
        torch.mps.manual_seed(seed)


def _overrides(callback: Callback, hook: str) -> bool:
    """Whether ``callback`` has its own ``hook`` (on its class or set on the instance)."""
    return getattr(type(callback), hook) is not getattr(Callback, hook) or hook in getattr(
        callback, "__dict__", {}
    )


class _EpochLoop:
    """The per-iteration work of :func:`train`, with everything that can be computed once hoisted out."""

    def __init__(self, setup: _Setup, state: TrainingState, update: Updater, accumulation_steps: int):
        self.setup = setup
        self.state = state
        self.update = update
        self.sizes = state.batches.batch_sizes()
        self.samples_per_epoch = sum(self.sizes)
        self.switch_mode = _mode_matters(state.model)
        groups = _group_sample_counts(self.sizes, accumulation_steps)
        # Weight of each batch's mean loss: B_k / (samples in its group); exactly 1.0 without accumulation.
        # It seeds the backward pass (``loss.backward(weight)`` is the gradient of ``weight * loss``), so
        # no extra multiplication enters the graph; one device scalar per distinct weight, made once.
        self.loss_weights = [b / g for b, g in zip(self.sizes, groups, strict=True)]
        device = state.batches.x.device
        seeds = {w: torch.tensor(w, device=device) for w in set(self.loss_weights)}
        self.backward_seeds = [seeds[w] for w in self.loss_weights]
        last = len(self.sizes) - 1
        self.ends_group = [(k + 1) % accumulation_steps == 0 or k == last for k in range(len(self.sizes))]
        self.iteration_callbacks = [cb for cb in setup.callbacks if _overrides(cb, "on_iteration_end")]

    def learning_rate(self, step: int) -> float:
        """The rate of update ``step`` (0-based): warm-up, then the (scaled) peak rate."""
        setup = self.setup
        if step >= setup.warmup_steps:
            return setup.peak_lr
        return warmup_learning_rate(step, setup.peak_lr, setup.warmup_steps)

    def run_epoch(self, tick: Callable[[], Any] | None) -> bool:
        """Train one epoch; True when all its iterations ran, False when a stop cut it short."""
        state, history, model, update = self.state, self.state.history, self.state.model, self.update
        losses, kept_logits = state._losses, state._logits
        sizes, seeds, ends_group = self.sizes, self.backward_seeds, self.ends_group
        callbacks = self.iteration_callbacks
        cross_entropy = F.cross_entropy
        k = -1
        for k, (xb, yb) in enumerate(state.batches):
            logits = model(xb)
            loss = cross_entropy(logits, yb)
            loss.backward(seeds[k])
            losses.append(loss.detach())
            kept_logits.append(logits.detach())
            if ends_group[k]:
                lr = self.learning_rate(history.steps)
                update(lr)
                history.learning_rates.append(lr)
                history.steps += 1
                state.learning_rate = lr
                state.step = history.steps
            history.iterations += 1
            history.samples_seen += sizes[k]
            state.iteration_in_epoch = k
            state.global_iteration = history.iterations - 1
            if tick is not None:
                tick()
            for cb in callbacks:
                cb.on_iteration_end(state)
            if state.stop_requested:
                break
        return k == len(sizes) - 1


def _flush_epoch(state: TrainingState) -> None:
    """Move the current epoch's per-iteration losses from the device into the history (stopped runs)."""
    history = state.history
    done = history.iterations - history.epoch_starts[-1] if history.epoch_starts else 0
    del state._losses[done:]  # an iteration interrupted half-way (keyboard interrupt) is not counted
    history.iteration_losses += state.pending_losses()
    history.iteration_sizes += state.batches.batch_sizes()[: len(state._losses)]
    state._clear_epoch()


def _finish_epoch(loop: _EpochLoop, x_val: torch.Tensor, y_val: torch.Tensor) -> None:
    """Add a completed epoch's metrics to the history, reading everything in one device transfer.

    Kept short on purpose: at B = 32 on a CPU each operation here costs a tenth to a whole training
    iteration, and the whole is about 6 % of an epoch (``benchmarks/README.md``).
    """
    state, sizes, n_epoch = loop.state, loop.sizes, loop.samples_per_epoch
    history = state.history
    # The epoch's labels in the order they were trained: the batches are consecutive slices of them.
    targets = state.batches.epoch_targets()[:n_epoch]
    correct = torch.cat(state._logits).argmax(dim=1).eq(targets).sum()
    val_loss_sum, val_correct = _evaluate_sums(state.model, x_val, y_val, 4096, loop.switch_mode)
    # One float64 tensor (stack and cat promote): float32 losses and integer counts convert exactly.
    summary = torch.stack([correct, val_loss_sum, val_correct])
    values = torch.cat([torch.stack(state._losses), summary]).tolist()
    state._clear_epoch()  # read: from here on the history holds them
    losses, (n_correct, val_loss_total, n_val_correct) = values[:-3], values[-3:]
    history.iteration_losses += losses
    history.iteration_sizes += sizes
    history.train_loss.append(math.fsum(m * b for m, b in zip(losses, sizes, strict=True)) / n_epoch)
    history.train_accuracy.append(n_correct / n_epoch)
    history.val_loss.append(val_loss_total / len(y_val))
    history.val_accuracy.append(n_val_correct / len(y_val))
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

    def iteration_bar_update(self) -> Callable[[], Any] | None:
        """The iteration bar's ``update`` (called once per iteration), or None when bars are off."""
        return self.iter_bar.update if self.enabled else None

    def epoch_done(self, history: History) -> None:
        if self.enabled:
            self.epoch_bar.set_postfix(val_acc=f"{history.val_accuracy[-1]:.3f}", refresh=False)
            self.epoch_bar.update()

    def close(self) -> None:
        if self.enabled:
            self.iter_bar.close()
            self.epoch_bar.close()
