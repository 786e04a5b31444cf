"""Throughput: how many samples per second training processes, as a function of batch size.

Three measurements, from the bottom up (``benchmarks/loop_throughput.py`` prints all three):

* :func:`bare_step_throughput`: the *floor*, the training step alone on one pre-made batch;
* :func:`engine_throughput`: :func:`batchlab.training.train`, whole epochs, evaluation included;
* :func:`dataloader_loop_throughput`: the standard loop written with ``DataLoader(TensorDataset(...),
  shuffle=True)``, ``optimizer.step()`` and ``loss.item()`` every iteration, plus a validation pass per
  epoch like the engine's.

Every clock is read after :func:`synchronize`, so queued GPU work is counted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from batchlab.data import MAX_SEED, DigitsSplit
from batchlab.devices import resolve_device
from batchlab.validation import require_choice, require_int, require_positive_float

__all__ = [
    "Throughput",
    "bare_step_throughput",
    "dataloader_loop_throughput",
    "engine_throughput",
    "synchronize",
]


@dataclass(frozen=True)
class Throughput:
    """One timing: ``batch_size`` samples per iteration, seconds per iteration, samples per second."""

    batch_size: int
    seconds_per_iteration: float
    samples_per_second: float
    iterations: int


def synchronize(device: torch.device) -> None:
    """Wait until every queued kernel on ``device`` finished (a no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def bare_step_throughput(
    model_factory: Callable[[], nn.Module],
    batch_sizes: Sequence[int],
    *,
    n_features: int = 64,
    n_classes: int = 10,
    device: str | torch.device | None = None,
    lr: float = 0.1,
    min_seconds: float = 0.2,
    seed: int = 0,
    optimizer: str = "sgd",
) -> list[Throughput]:
    """Time the bare training step (forward, loss, backward, update) on one pre-made batch.

    This is the *floor* for a training loop: no data loading, no slicing, no logging, no
    synchronisation except one at the end of each timing. The update is the one
    :func:`batchlab.training.train` makes (:func:`~batchlab.training.make_optimizer` with
    ``optimizer``, then ``optimizer.step()`` and ``optimizer.zero_grad()``), so the gap between
    ``train`` and this floor is the loop's own overhead. For each batch size the step is repeated until
    ``min_seconds`` have passed (after 3 warm-up steps). Inputs are random ``(B, n_features)`` features
    and labels in ``[0, n_classes)``; a fresh model from ``model_factory`` per batch size.
    """
    from batchlab.training import OPTIMIZERS, make_optimizer

    if not callable(model_factory) or isinstance(model_factory, nn.Module):
        raise TypeError(
            "model_factory must be a function that returns a new model (e.g. make_mlp), "
            f"got {type(model_factory).__name__}"
        )
    if isinstance(batch_sizes, (str, bytes)) or not isinstance(batch_sizes, Sequence) or not batch_sizes:
        raise TypeError(f"batch_sizes must be a non-empty sequence of integers, got {batch_sizes!r}")
    sizes = [require_int(f"batch_sizes[{i}]", b, minimum=1) for i, b in enumerate(batch_sizes)]
    n_features = require_int("n_features", n_features, minimum=1)
    n_classes = require_int("n_classes", n_classes, minimum=2)
    lr = require_positive_float("lr", lr)
    min_seconds = require_positive_float("min_seconds", min_seconds)
    seed = require_int("seed", seed, minimum=0, maximum=MAX_SEED)
    optimizer = require_choice("optimizer", optimizer, OPTIMIZERS)
    device = resolve_device(device)

    generator = torch.Generator().manual_seed(seed)
    results = []
    for b in sizes:
        model = model_factory()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model_factory must return a torch.nn.Module, got {type(model).__name__}")
        model.to(device).train()
        opt = make_optimizer(optimizer, model.parameters(), lr)
        xb = torch.rand(b, n_features, generator=generator).to(device)
        yb = torch.randint(0, n_classes, (b,), generator=generator).to(device)

        def step(model: nn.Module = model, opt: torch.optim.Optimizer = opt,
                 xb: torch.Tensor = xb, yb: torch.Tensor = yb) -> None:
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            opt.step()

        for _ in range(3):
            step()
        synchronize(device)
        iterations, started = 0, time.perf_counter()
        elapsed = 0.0
        while elapsed < min_seconds:
            for _ in range(10):
                step()
            iterations += 10
            synchronize(device)
            elapsed = time.perf_counter() - started
        results.append(Throughput(b, elapsed / iterations, b * iterations / elapsed, iterations))
    return results


def _check_common(
    model_factory: Any, split: Any, batch_sizes: Any, min_seconds: Any, seed: Any
) -> tuple[list[int], float, int]:
    if not callable(model_factory) or isinstance(model_factory, nn.Module):
        raise TypeError(
            "model_factory must be a function that returns a new model (e.g. make_mlp), "
            f"got {type(model_factory).__name__}"
        )
    if not isinstance(split, DigitsSplit):
        raise TypeError(f"split must be a batchlab.data.DigitsSplit, got {type(split).__name__}")
    if isinstance(batch_sizes, (str, bytes)) or not isinstance(batch_sizes, Sequence) or not batch_sizes:
        raise TypeError(f"batch_sizes must be a non-empty sequence of integers, got {batch_sizes!r}")
    sizes = [require_int(f"batch_sizes[{i}]", b, minimum=1, maximum=split.n_train)
             for i, b in enumerate(batch_sizes)]
    seed = require_int("seed", seed, minimum=0, maximum=MAX_SEED)
    return sizes, require_positive_float("min_seconds", min_seconds), seed


def _make_model(model_factory: Callable[[], nn.Module], device: torch.device) -> nn.Module:
    model = model_factory()
    if not isinstance(model, nn.Module):
        raise TypeError(f"model_factory must return a torch.nn.Module, got {type(model).__name__}")
    return model.to(device)


def engine_throughput(
    model_factory: Callable[[], nn.Module],
    split: DigitsSplit,
    batch_sizes: Sequence[int],
    *,
    device: str | torch.device | None = None,
    lr: float = 0.1,
    min_seconds: float = 0.2,
    seed: int = 0,
    optimizer: str = "sgd",
) -> list[Throughput]:
    """Samples per second of :func:`batchlab.training.train` on ``split``, for each batch size.

    One warm-up epoch, then a run of whole epochs lasting about ``min_seconds``; the rate is
    ``history.samples_seen / history.wall_time_s`` (per-epoch evaluation included, set-up excluded).
    A fresh model from ``model_factory`` per run; no progress bars. ``optimizer``: as in ``train``.
    """
    from batchlab.training import OPTIMIZERS, train

    sizes, min_seconds, seed = _check_common(model_factory, split, batch_sizes, min_seconds, seed)
    lr = require_positive_float("lr", lr)
    optimizer = require_choice("optimizer", optimizer, OPTIMIZERS)
    device = resolve_device(device)
    results = []
    for b in sizes:
        settings = {"batch_size": b, "lr": lr, "optimizer": optimizer, "seed": seed, "device": device,
                    "progress": False}
        warmup = train(_make_model(model_factory, device), split, epochs=1, **settings)
        epochs = max(1, math.ceil(min_seconds / max(warmup.wall_time_s, 1e-6)))
        history = train(_make_model(model_factory, device), split, epochs=epochs, **settings)
        seconds = history.wall_time_s
        results.append(Throughput(b, seconds / history.iterations, history.samples_seen / seconds,
                                  history.iterations))
    return results


def _standard_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, loader: Any, device: torch.device
) -> tuple[int, int, float]:
    """One epoch of the textbook loop; returns (iterations, samples, summed batch losses)."""
    model.train()
    iterations = samples = 0
    running_loss = 0.0
    for xb, yb in loader:
        xb, yb = xb.to(device), yb.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        optimizer.step()
        running_loss += loss.item()  # a host-device sync every iteration
        iterations += 1
        samples += len(yb)
    return iterations, samples, running_loss


def _standard_validation(model: nn.Module, loader: Any, device: torch.device) -> float:
    model.eval()
    correct = 0
    with torch.no_grad():
        for xb, yb in loader:
            xb, yb = xb.to(device), yb.to(device)
            correct += (model(xb).argmax(dim=1) == yb).sum().item()
    return correct


def dataloader_loop_throughput(
    model_factory: Callable[[], nn.Module],
    split: DigitsSplit,
    batch_sizes: Sequence[int],
    *,
    device: str | torch.device | None = None,
    lr: float = 0.1,
    min_seconds: float = 0.2,
    seed: int = 0,
    optimizer: str = "sgd",
) -> list[Throughput]:
    """Samples per second of the standard ``DataLoader`` loop on ``split``, for each batch size.

    The loop: ``DataLoader(TensorDataset(x, y), batch_size=B, shuffle=True)`` on CPU tensors, each
    batch moved to ``device``, ``zero_grad``/forward/loss/backward/``optimizer.step()``, and
    ``loss.item()`` every iteration; after each epoch a validation pass (batches of 4,096) like the
    engine's. The optimizer is built as a tutorial builds it, with PyTorch's defaults:
    ``torch.optim.SGD(params, lr)`` (``"sgd"``; ``"momentum"`` adds ``momentum=0.9``) or
    ``torch.optim.Adam(params, lr)``. One warm-up epoch, then whole epochs until ``min_seconds`` have
    passed.
    """
    from torch.utils.data import DataLoader, TensorDataset

    sizes, min_seconds, seed = _check_common(model_factory, split, batch_sizes, min_seconds, seed)
    from batchlab.training import OPTIMIZERS

    lr = require_positive_float("lr", lr)
    optimizer = require_choice("optimizer", optimizer, OPTIMIZERS)
    device = resolve_device(device)
    train_set = TensorDataset(torch.as_tensor(split.x_train), torch.as_tensor(split.y_train))
    val_loader = DataLoader(TensorDataset(torch.as_tensor(split.x_val), torch.as_tensor(split.y_val)),
                            batch_size=4096)
    results = []
    for b in sizes:
        model = _make_model(model_factory, device)
        if optimizer == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        else:
            opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9 if optimizer == "momentum" else 0)
        loader = DataLoader(train_set, batch_size=b, shuffle=True,
                            generator=torch.Generator().manual_seed(seed))
        _standard_epoch(model, opt, loader, device)  # warm-up
        synchronize(device)
        iterations = samples = 0
        started = time.perf_counter()
        elapsed = 0.0
        while elapsed < min_seconds:
            done, seen, _ = _standard_epoch(model, opt, loader, device)
            _standard_validation(model, val_loader, device)
            iterations += done
            samples += seen
            synchronize(device)
            elapsed = time.perf_counter() - started
        results.append(Throughput(b, elapsed / iterations, samples / elapsed, iterations))
    return results
