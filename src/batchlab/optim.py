"""The update rule and its rate: the optimizers :func:`batchlab.training.train` offers
(:func:`make_optimizer`, with plain SGD written out as :class:`PlainSGD`) and linear warm-up counted in
updates (:func:`learning_rate_at`, which is :func:`batchlab.arithmetic.warmup_learning_rate`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from batchlab.arithmetic import warmup_learning_rate
from batchlab.validation import require_choice, require_float, require_positive_float

__all__ = ["OPTIMIZERS", "PlainSGD", "learning_rate_at", "make_optimizer"]

OPTIMIZERS = ("sgd", "momentum", "adam")


class PlainSGD:
    """Plain SGD written out: after ``backward()``, ``p ← p − lr × (p.grad + weight_decay × p)``.

    The arithmetic of ``torch.optim.SGD(params, lr, weight_decay=...)`` without momentum, bit for bit
    (the same ``p.add_(grad, alpha=-lr)``), with the interface :func:`train` uses:
    :meth:`zero_grad`, :meth:`step` and ``param_groups`` (one group, whose ``"lr"`` may be changed
    between steps, e.g. for warm-up). Written out because it is the clearest statement of what SGD
    does, and because ``Optimizer.step()``'s own bookkeeping (hooks, profiler records) costs as much
    as this update on a small model (``benchmarks/README.md``).

    Taught in: notebook 05 § The same loop through batchlab.training.train.
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
        lr = self.param_groups[0]["lr"]
        weight_decay = self.param_groups[0]["weight_decay"]
        for p in self.params:
            if p.grad is not None:
                grad = p.grad if weight_decay == 0 else p.grad.add(p, alpha=weight_decay)
                p.add_(grad, alpha=-lr)


def make_optimizer(name: str, parameters: Any, lr: float, weight_decay: float = 0.0) -> Any:
    """``"sgd"`` (plain: :class:`PlainSGD`), ``"momentum"`` (``torch.optim.SGD`` with momentum 0.9) or
    ``"adam"`` (``torch.optim.Adam``).

    ``parameters``: an iterable of tensors (e.g. ``model.parameters()``); ``lr`` > 0; ``weight_decay`` >= 0
    (L2 penalty coefficient). On the CPU and CUDA the ``torch.optim`` optimizers are *fused* (``fused=True``:
    one kernel updates every parameter, instead of a few small operations per parameter tensor); elsewhere
    PyTorch's default implementation. Fused or not, the arithmetic is the same.

    Taught in: notebook 05 § The same loop through batchlab.training.train.
    """
    name = require_choice("optimizer", name, OPTIMIZERS)
    lr = require_positive_float("lr", lr)
    weight_decay = require_float("weight_decay", weight_decay, minimum=0.0)
    params = list(parameters)
    if name == "sgd":
        return PlainSGD(params, lr, weight_decay)
    fused = bool(params) and all(isinstance(p, torch.Tensor) and p.is_floating_point()
                                 and p.device.type in ("cpu", "cuda") for p in params)
    kwargs: dict[str, Any] = {"lr": lr, "weight_decay": weight_decay, "fused": fused or None}
    if name == "adam":
        return torch.optim.Adam(params, **kwargs)
    return torch.optim.SGD(params, momentum=0.9, **kwargs)


# The warm-up rate of update ``step``: one function, in batchlab.arithmetic (see its docstring).
learning_rate_at = warmup_learning_rate
