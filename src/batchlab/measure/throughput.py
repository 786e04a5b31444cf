"""Throughput: how many samples per second a training step processes, as a function of batch size."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from batchlab.devices import resolve_device
from batchlab.validation import require_int, require_positive_float

__all__ = ["Throughput", "bare_step_throughput", "synchronize"]


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
) -> list[Throughput]:
    """Time the bare training step (forward, loss, backward, SGD update) on one pre-made batch.

    This is the *floor* for any training loop: no data loading, no slicing, no logging, no
    synchronisation except one at the end of each timing. For each batch size the step is repeated
    until ``min_seconds`` have passed (after 3 warm-up steps). Inputs are random ``(B, n_features)``
    features and labels in ``[0, n_classes)``.
    """
    if not callable(model_factory):
        raise TypeError(f"model_factory must be callable, got {type(model_factory).__name__}")
    if isinstance(batch_sizes, (str, bytes)) or not isinstance(batch_sizes, Sequence) or not batch_sizes:
        raise TypeError(f"batch_sizes must be a non-empty sequence of integers, got {batch_sizes!r}")
    sizes = [require_int(f"batch_sizes[{i}]", b, minimum=1) for i, b in enumerate(batch_sizes)]
    n_features = require_int("n_features", n_features, minimum=1)
    n_classes = require_int("n_classes", n_classes, minimum=2)
    lr = require_positive_float("lr", lr)
    min_seconds = require_positive_float("min_seconds", min_seconds)
    seed = require_int("seed", seed, minimum=0)
    device = resolve_device(device)

    generator = torch.Generator().manual_seed(seed)
    results = []
    for b in sizes:
        model = model_factory().to(device)
        opt = torch.optim.SGD(model.parameters(), lr=lr)
        xb = torch.rand(b, n_features, generator=generator).to(device)
        yb = torch.randint(0, n_classes, (b,), generator=generator).to(device)

        def step(model: nn.Module = model, opt: torch.optim.Optimizer = opt,
                 xb: torch.Tensor = xb, yb: torch.Tensor = yb) -> None:
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

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
