"""Throughput: how many samples per second training processes, as a function of batch size.

Three measurements, from the bottom up (``benchmarks/loop_throughput.py`` prints all three):

* :func:`bare_step_throughput`: the *floor*, the training step alone on one pre-made batch;
* :func:`engine_throughput`: :func:`batchlab.training.train`, whole epochs, evaluation included;
* :func:`dataloader_loop_throughput`: the standard loop written with ``DataLoader(TensorDataset(...),
  shuffle=True)``, ``optimizer.step()`` and ``loss.item()`` every iteration, plus a validation pass per
  epoch like the engine's.

The step and the ``DataLoader`` loop are timed with ``torch.utils.benchmark.Timer.blocked_autorange``
(its first calls, which choose how many calls make one timed block, are the warm-up); every call ends
with :func:`synchronize`, so queued GPU work is counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils import benchmark

from batchlab.data import DigitsSplit
from batchlab.devices import resolve_device
from batchlab.models import new_model
from batchlab.optim import OPTIMIZERS, make_optimizer
from batchlab.validation import (
    require_choice,
    require_int,
    require_positive_float,
    require_seed,
    require_sequence,
)

__all__ = [
    "Throughput", "bare_step_throughput", "dataloader_loop_throughput", "engine_throughput", "synchronize",
]


@dataclass(frozen=True)
class Throughput:
    """One timing: ``batch_size`` samples per iteration, seconds per iteration, samples per second."""

    batch_size: int
    seconds_per_iteration: float
    samples_per_second: float
    iterations: int


def synchronize(device: torch.device) -> None:
    """Wait until every queued kernel on ``device`` finished (a no-op on the CPU).

    Taught in: notebook 05 § Where the time goes.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _checked(batch_sizes: Sequence[int], lr: float, min_seconds: float, seed: int, optimizer: str,
             device: str | torch.device | None, *split: DigitsSplit) -> tuple:
    """The arguments the three measurements share, checked and normalised, in this order. A ``split``, when
    passed, must be a :class:`DigitsSplit` and bounds the batch sizes."""
    if split and not isinstance(split[0], DigitsSplit):
        raise TypeError(f"split must be a batchlab.data.DigitsSplit, got {type(split[0]).__name__}")
    max_batch = split[0].n_train if split else None
    sizes = [require_int(f"batch_sizes[{i}]", b, minimum=1, maximum=max_batch)
             for i, b in enumerate(require_sequence("batch_sizes", batch_sizes, "integers"))]
    return (sizes, require_positive_float("lr", lr), require_positive_float("min_seconds", min_seconds),
            require_seed("seed", seed),
            require_choice("optimizer", optimizer, OPTIMIZERS), resolve_device(device))


def _timed(batch_size: int, run: Callable[[], object], iterations: int, samples: int, device: torch.device,
           min_seconds: float) -> Throughput:
    """Time ``run`` (each call does ``iterations`` iterations over ``samples`` samples) for at least
    ``min_seconds`` with ``torch.utils.benchmark.Timer.blocked_autorange``, on the current number of
    threads, synchronising ``device`` after every call."""
    timer = benchmark.Timer("run(); synchronize(device)", globals={"run": run, "synchronize": synchronize,
                                                                   "device": device},
                            num_threads=torch.get_num_threads())
    synchronize(device)
    measurement = timer.blocked_autorange(min_run_time=min_seconds)
    seconds = measurement.mean  # per call of run
    calls = measurement.number_per_run * len(measurement.times)
    return Throughput(batch_size, seconds / iterations, samples / seconds, calls * iterations)


def bare_step_throughput(
    model_factory: Callable[[], nn.Module], batch_sizes: Sequence[int], *, n_features: int = 64,
    n_classes: int = 10, device: str | torch.device | None = None, lr: float = 0.1, min_seconds: float = 0.2,
    seed: int = 0, optimizer: str = "sgd",
) -> list[Throughput]:
    """Time the bare training step (forward, loss, backward, update) on one pre-made batch.

    This is the *floor* for a training loop: no data loading, no slicing, no logging, no
    synchronisation except one at the end of each timing. The update is the one
    :func:`batchlab.training.train` makes (:func:`~batchlab.optim.make_optimizer` with
    ``optimizer``, then ``optimizer.step()`` and ``optimizer.zero_grad()``), so the gap between
    ``train`` and this floor is the loop's own overhead. For each batch size blocks of 10 steps are
    timed for at least ``min_seconds`` (after the timer's warm-up calls). Inputs are random
    ``(B, n_features)`` features and labels in ``[0, n_classes)``; a fresh model from ``model_factory``
    per batch size.

    Taught in: notebook 03 § The hardware side: time per iteration and samples per second.
    """
    sizes, lr, min_seconds, seed, optimizer, device = _checked(batch_sizes, lr, min_seconds, seed, optimizer,
                                                               device)
    n_features = require_int("n_features", n_features, minimum=1)
    n_classes = require_int("n_classes", n_classes, minimum=2)
    generator = torch.Generator().manual_seed(seed)
    results = []
    for b in sizes:
        model = new_model(model_factory, device).train()
        opt = make_optimizer(optimizer, model.parameters(), lr)
        xb = torch.rand(b, n_features, generator=generator).to(device)
        yb = torch.randint(0, n_classes, (b,), generator=generator).to(device)

        def ten_steps(model: nn.Module = model, opt: torch.optim.Optimizer = opt, xb: torch.Tensor = xb,
                      yb: torch.Tensor = yb) -> None:
            for _ in range(10):
                opt.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                opt.step()

        results.append(_timed(b, ten_steps, 10, 10 * b, device, min_seconds))
    return results


def engine_throughput(
    model_factory: Callable[[], nn.Module], split: DigitsSplit, batch_sizes: Sequence[int], *,
    device: str | torch.device | None = None, lr: float = 0.1, min_seconds: float = 0.2, seed: int = 0,
    optimizer: str = "sgd",
) -> list[Throughput]:
    """Samples per second of :func:`batchlab.training.train` on ``split``, for each batch size.

    One warm-up epoch, then a run of whole epochs lasting about ``min_seconds``; the rate is
    ``history.samples_seen / history.wall_time_s`` (per-epoch evaluation included, set-up excluded).
    A fresh model from ``model_factory`` per run; no progress bars. ``optimizer``: as in ``train``.

    Taught in: notebook 05 § Throughput: samples per second against $B$.
    """
    from batchlab.training import train

    sizes, lr, min_seconds, seed, optimizer, device = _checked(batch_sizes, lr, min_seconds, seed, optimizer,
                                                               device, split)
    results = []
    for b in sizes:
        settings = {"batch_size": b, "lr": lr, "optimizer": optimizer, "seed": seed, "device": device,
                    "progress": False}
        warmup = train(new_model(model_factory, device), split, epochs=1, **settings)
        epochs = max(1, math.ceil(min_seconds / max(warmup.wall_time_s, 1e-6)))
        history = train(new_model(model_factory, device), split, epochs=epochs, **settings)
        seconds = history.wall_time_s
        results.append(Throughput(b, seconds / history.iterations, history.samples_seen / seconds,
                                  history.iterations))
    return results


def dataloader_loop_throughput(
    model_factory: Callable[[], nn.Module], split: DigitsSplit, batch_sizes: Sequence[int], *,
    device: str | torch.device | None = None, lr: float = 0.1, min_seconds: float = 0.2, seed: int = 0,
    optimizer: str = "sgd",
) -> list[Throughput]:
    """Samples per second of the standard ``DataLoader`` loop on ``split``, for each batch size.

    The loop: ``DataLoader(TensorDataset(x, y), batch_size=B, shuffle=True)`` on CPU tensors, each batch moved
    to ``device``, ``zero_grad``/forward/loss/backward/``optimizer.step()``, and ``loss.item()`` every
    iteration; after each epoch a validation pass (batches of 4,096) like the engine's. The optimizer is built
    as a tutorial builds it, with PyTorch's defaults: ``torch.optim.SGD(params, lr)`` (``"sgd"``;
    ``"momentum"`` adds ``momentum=0.9``) or ``torch.optim.Adam(params, lr)``. Whole epochs are timed for
    at least ``min_seconds`` (after the timer's warm-up calls, at least one epoch).

    Taught in: notebook 05 § Throughput: samples per second against $B$.
    """
    from torch.utils.data import DataLoader, TensorDataset

    sizes, lr, min_seconds, seed, optimizer, device = _checked(batch_sizes, lr, min_seconds, seed, optimizer,
                                                               device, split)
    train_set = TensorDataset(torch.tensor(split.x_train), torch.tensor(split.y_train))  # copies
    val_loader = DataLoader(TensorDataset(torch.tensor(split.x_val), torch.tensor(split.y_val)),
                            batch_size=4096)
    results = []
    for b in sizes:
        model = new_model(model_factory, device)
        if optimizer == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        else:
            opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9 if optimizer == "momentum" else 0)
        generator = torch.Generator().manual_seed(seed)
        loader = DataLoader(train_set, batch_size=b, shuffle=True, generator=generator)

        def epoch(model: nn.Module = model, opt: torch.optim.Optimizer = opt, loader: DataLoader = loader
                  ) -> None:
            """One epoch of the textbook loop, and a validation pass."""
            model.train()
            running_loss = 0.0
            for xb, yb in loader:
                xb, yb = xb.to(device), yb.to(device)
                opt.zero_grad()
                loss = F.cross_entropy(model(xb), yb)
                loss.backward()
                opt.step()
                running_loss += loss.item()  # a host-device sync every iteration
            model.eval()
            correct = 0
            with torch.no_grad():
                for xb, yb in val_loader:
                    xb, yb = xb.to(device), yb.to(device)
                    correct += (model(xb).argmax(dim=1) == yb).sum().item()

        results.append(_timed(b, epoch, len(loader), len(train_set), device, min_seconds))
    return results
