"""Memory of one training step as the batch size grows: what grows with B and what does not.

A common rule of thumb says "memory ≈ B × (model size + activations)". It is wrong: of the four parts
below only the last two grow with the batch size B.

* **parameters**: every weight and bias (float32: 4 bytes each), whatever B is;
* **gradients**: one number per parameter after ``backward``;
* **optimizer state**: none for plain SGD, one buffer per parameter for momentum, two for Adam (plus a
  step counter per parameter tensor);
* **inputs and activations**: the batch and its labels, and the intermediate results autograd saves
  during the forward pass for the backward pass. These are proportional to B.

Two ways to get the numbers, side by side:

* :func:`analytic_memory` counts them from the layer shapes (``nn.Sequential`` of ``Linear``, ``ReLU``
  and ``Dropout``, cross-entropy loss), following what PyTorch's autograd saves for each operation;
* :func:`measure_memory` runs a real step and measures: the sizes of the parameter, gradient and
  optimizer-state tensors that exist afterwards, and every tensor autograd saves (recorded with
  ``torch.autograd.graph.saved_tensors_hooks``; a tensor saved twice, or a view of a parameter, is
  counted once or not at all). On a CUDA device it also reads ``torch.cuda.max_memory_allocated``.

The second way counts tensors, so it agrees with the first by construction. :func:`measure_peak_memory`
asks the allocator instead: PyTorch's profiler (``torch.profiler.profile(profile_memory=True)``) records
every allocation and free of CPU memory during a real step, and the running total of those gives the
peak, temporaries and gradient buffers included. (Python's ``tracemalloc`` does not see these bytes:
tensors are allocated by PyTorch's C++ allocator, not by Python's.)

All sizes are in bytes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.profiler import ProfilerActivity, profile

from batchlab.devices import resolve_device
from batchlab.models import new_model
from batchlab.optim import make_optimizer
from batchlab.validation import require_choice, require_int, require_seed

__all__ = ["OPTIMIZER_BUFFERS", "MemoryBreakdown", "SavedTensor", "analytic_memory", "measure_memory",
           "measure_peak_memory"]

#: Optimizer state per parameter, in parameter-sized buffers.
OPTIMIZER_BUFFERS = {"sgd": 0, "momentum": 1, "adam": 2}


@dataclass(frozen=True)
class SavedTensor:
    """One tensor autograd keeps for the backward pass: where it comes from, its shape and size."""

    layer: str
    what: str
    shape: tuple[int, ...]
    bytes: int


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes of each part of one training step at batch size ``batch_size``.

    ``saved`` lists the input and activation tensors (analytic: one entry per tensor the layers save;
    measured: one per distinct tensor the hooks saw). ``cuda_peak`` is the measured peak of
    ``torch.cuda.max_memory_allocated`` during the step above what was allocated before it (CUDA only,
    else None).
    """

    batch_size: int
    parameters: int
    gradients: int
    optimizer_state: int
    inputs: int
    activations: int
    saved: tuple[SavedTensor, ...] = field(default=(), repr=False)
    cuda_peak: int | None = None

    @property
    def fixed(self) -> int:
        """Parameters, gradients and optimizer state: the same for every batch size."""
        return self.parameters + self.gradients + self.optimizer_state

    @property
    def per_batch(self) -> int:
        """Inputs and saved activations: proportional to the batch size."""
        return self.inputs + self.activations

    @property
    def total(self) -> int:
        return self.fixed + self.per_batch


def analytic_memory(model: nn.Sequential, batch_size: int, optimizer: str = "sgd") -> MemoryBreakdown:
    """Count the memory of one training step of ``model`` on a batch of ``batch_size``, from shapes.

    ``model``: an ``nn.Sequential`` of ``Linear``, ``ReLU`` and ``Dropout`` layers (float32) ending in
    logits, trained with cross-entropy. What autograd saves, per operation (PyTorch's CPU kernels):

    * the input batch ``(B, n_features)`` and the labels ``(B,)`` int64 (**inputs**);
    * each ``ReLU``: its output ``(B, width)``, which the next ``Linear`` also saves (counted once);
    * each ``Dropout`` with ``p > 0`` in training: its mask ``(B, width)`` (float32 on the CPU) and its
      output ``(B, width)``, which the next ``Linear`` saves;
    * a ``Linear`` saves its input (counted above) and a view of its weight (no new memory);
    * the loss: the log-softmax output ``(B, classes)`` and a 4-byte scalar.

    Taught in: notebook 05 § Memory: what grows with the batch size.
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(f"model must be a torch.nn.Sequential (e.g. make_mlp()), got {type(model).__name__}")
    for m in model:
        if not isinstance(m, nn.Linear | nn.ReLU | nn.Dropout):
            raise TypeError("the analytic count knows Linear, ReLU and Dropout layers, "
                            f"got {type(m).__name__}")
    first = next((m for m in model if isinstance(m, nn.Linear)), None)
    if first is None:
        raise ValueError("model must contain at least one torch.nn.Linear layer")
    b = require_int("batch_size", batch_size, minimum=1)
    buffers = OPTIMIZER_BUFFERS[require_choice("optimizer", optimizer, OPTIMIZER_BUFFERS)]
    params = [p for p in model.parameters() if p.requires_grad]
    parameter_bytes = sum(p.nbytes for p in params)
    steps = 4 * len(params) if optimizer == "adam" else 0  # Adam's float32 step counter per tensor
    width = first.in_features
    saved = [SavedTensor("input", "batch", (b, width), 4 * b * width),
             SavedTensor("loss", "labels (int64)", (b,), 8 * b)]
    input_saved = True  # the tensor entering the next layer is already counted
    for index, module in enumerate(model):
        name = f"{index}: {type(module).__name__}"
        if isinstance(module, nn.Linear):
            if not input_saved:
                saved.append(SavedTensor(name, "input", (b, width), 4 * b * width))
            width = module.out_features
            input_saved = False
        elif isinstance(module, nn.ReLU) or module.p > 0:
            whats = ["output"] if isinstance(module, nn.ReLU) else ["mask", "output"]
            saved += [SavedTensor(name, what, (b, width), 4 * b * width) for what in whats]
            input_saved = True
    saved += [SavedTensor("loss", "log-softmax output", (b, width), 4 * b * width),
              SavedTensor("loss", "total weight (scalar)", (), 4)]
    inputs = sum(s.bytes for s in saved if s.layer == "input" or s.what.startswith("labels"))
    return MemoryBreakdown(b, parameter_bytes, parameter_bytes, buffers * parameter_bytes + steps, inputs,
                           sum(s.bytes for s in saved) - inputs, tuple(saved))


def measure_memory(
    model_factory: Callable[[], nn.Module], batch_size: int, optimizer: str = "sgd", *, n_features: int = 64,
    n_classes: int = 10, device: str | torch.device | None = None, seed: int = 0,
) -> MemoryBreakdown:
    """Measure the memory of one real training step (forward, cross-entropy, backward, update).

    A fresh model from ``model_factory`` on ``device`` trains on one random batch of ``batch_size``
    samples (``n_features`` features, labels in ``[0, n_classes)``) with ``optimizer`` (made by
    :func:`batchlab.optim.make_optimizer`). Measured: the bytes of the parameters, of the gradients
    after ``backward``, of the optimizer's state after the update, and of every distinct tensor autograd
    saved during the forward pass (inputs: the batch and the labels; activations: the rest; views of
    parameters are not counted). On CUDA, a warm-up step runs first and ``cuda_peak`` is the peak
    allocated during the measured step above the memory allocated before it.

    Taught in: notebook 05 § Memory: what grows with the batch size.
    """
    b = require_int("batch_size", batch_size, minimum=1)
    require_choice("optimizer", optimizer, OPTIMIZER_BUFFERS)
    n_features = require_int("n_features", n_features, minimum=1)
    n_classes = require_int("n_classes", n_classes, minimum=2)
    seed = require_seed("seed", seed)
    device = resolve_device(device)
    model = new_model(model_factory, device).train()
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(b, n_features, generator=generator).to(device)
    y = torch.randint(0, n_classes, (b,), generator=generator).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(optimizer, params, lr=1e-3)
    cuda = device.type == "cuda"
    if cuda:  # warm-up: the optimizer state and the allocator's caches exist before measuring
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        opt.zero_grad()
        torch.cuda.synchronize(device)
        baseline = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
    records: dict[tuple[int, int, torch.dtype], tuple[torch.Tensor, str]] = {}
    parameter_storages = {p.untyped_storage().data_ptr() for p in params}
    input_storages = {x.untyped_storage().data_ptr(), y.untyped_storage().data_ptr()}

    def record(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage().data_ptr()
        if storage not in parameter_storages:
            kind = "input" if storage in input_storages else "activation"
            records.setdefault((t.data_ptr(), t.numel(), t.dtype), (t, kind))
        return t

    with torch.autograd.graph.saved_tensors_hooks(record, lambda t: t):
        loss = F.cross_entropy(model(x), y)
    loss.backward()
    gradient_bytes = sum(p.grad.nbytes for p in params if p.grad is not None)
    opt.step()
    cuda_peak = None
    if cuda:
        torch.cuda.synchronize(device)
        cuda_peak = torch.cuda.max_memory_allocated(device) - baseline
    saved = tuple(SavedTensor(kind, str(t.dtype).replace("torch.", ""), tuple(t.shape), t.nbytes)
                  for t, kind in records.values())
    inputs = sum(s.bytes for s in saved if s.layer == "input")
    # The optimizer's buffers (momentum, Adam's moments); plain SGD keeps none.
    state = sum(v.nbytes for s in opt.state.values() for v in s.values() if isinstance(v, torch.Tensor))
    return MemoryBreakdown(b, sum(p.nbytes for p in params), gradient_bytes, state, inputs,
                           sum(s.bytes for s in saved) - inputs, saved, cuda_peak)


def measure_peak_memory(
    model_factory: Callable[[], nn.Module], batch_size: int, optimizer: str = "sgd", *, n_features: int = 64,
    n_classes: int = 10, seed: int = 0,
) -> int:
    """The peak of CPU memory allocated during one real training step, in bytes, read from the allocator.

    A fresh model from ``model_factory`` (on the CPU) and its ``optimizer`` (made by
    :func:`batchlab.optim.make_optimizer`) first take one warm-up step, so that the optimizer's state
    exists and the gradients are cleared (``None``). Then, under
    ``torch.profiler.profile(activities=[ProfilerActivity.CPU], profile_memory=True)``, the measured step
    creates a random batch of ``batch_size`` samples (``n_features`` features, labels in
    ``[0, n_classes)``), runs forward, cross-entropy, ``backward`` and the update. The profiler records
    each allocation and free of the CPU allocator; each recorded operation reports the bytes it allocated
    itself (minus what it freed), and this function adds them up in time order, an operation's
    allocations from its start and its frees at its end. The result is the largest running total: the
    peak above the memory allocated before the step (the parameters and the optimizer's state do not
    count; the batch, the saved activations, the gradients and every temporary buffer do). A buffer an
    operation allocates and frees inside one kernel, below the profiler's view, is not seen.

    CPU only: on a CUDA device, :func:`measure_memory`'s ``cuda_peak`` reads the CUDA allocator's peak.
    Sets the environment variable ``KINETO_LOG_LEVEL`` to 6 unless it is set already: the profiler's
    engine otherwise prints two lines to stderr at every profile, which a notebook shows under the cell.

    Taught in: notebook 05 § Memory: what grows with the batch size.
    """
    b = require_int("batch_size", batch_size, minimum=1)
    require_choice("optimizer", optimizer, OPTIMIZER_BUFFERS)
    n_features = require_int("n_features", n_features, minimum=1)
    n_classes = require_int("n_classes", n_classes, minimum=2)
    generator = torch.Generator().manual_seed(require_seed("seed", seed))
    model = new_model(model_factory, torch.device("cpu")).train()
    opt = make_optimizer(optimizer, [p for p in model.parameters() if p.requires_grad], lr=1e-3)

    def step() -> None:
        x = torch.rand(b, n_features, generator=generator)
        y = torch.randint(0, n_classes, (b,), generator=generator)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    step()  # warm-up: the optimizer's state now exists
    # Kineto, the profiler's engine, otherwise prints "profiler_start" and "profiler_stop" lines to stderr
    # (a notebook shows them under the cell); level 6 silences its messages. A value you set is kept.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    opt.zero_grad()  # gradients to None (the default of every optimizer here)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    changes = []  # (time in µs, bytes): an operation's own allocations at its start, its frees at its end
    for event in prof.events():
        own = event.self_cpu_memory_usage
        if own > 0:
            changes.append((event.time_range.start, own))
        elif own < 0:
            changes.append((event.time_range.end, own))
    total = 0
    peak = 0
    for _, change in sorted(changes, key=lambda c: (c[0], -c[1])):  # at equal times, allocations first
        total += change
        peak = max(peak, total)
    return peak
