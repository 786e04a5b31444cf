"""Which device training runs on: ``cuda``, then ``mps``, then ``cpu``."""

from __future__ import annotations

import torch

__all__ = ["default_device", "describe_device", "resolve_device"]


def default_device() -> torch.device:
    """The fastest device present: a CUDA GPU, else Apple's MPS, else the CPU.

    Taught in: notebook 03 § The hardware side: time per iteration and samples per second.
    """
    return torch.device(next(kind for kind in ("cuda", "mps", "cpu") if _available(kind)))


def _available(kind: str) -> bool:
    return kind == "cpu" or (kind == "cuda" and torch.cuda.is_available()) or (
        kind == "mps" and torch.backends.mps.is_available())


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Turn ``None`` (pick the default), a name such as ``"cpu"`` or a ``torch.device`` into a device.

    Raises ``TypeError`` for other types and ``ValueError`` for a device that is not available here.
    """
    if device is None:
        return default_device()
    if not isinstance(device, str | torch.device):
        raise TypeError(f"device must be a str, torch.device or None, got {type(device).__name__}")
    try:
        parsed = torch.device(device)
    except RuntimeError:
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'mps', got {str(device)!r}")
    if not _available(parsed.type):
        what = "no CUDA GPU is" if parsed.type == "cuda" else "MPS is not"
        raise ValueError(f"device {parsed.type!r} was asked for but {what} available (use 'cpu' or None)")
    return parsed


def describe_device(device: str | torch.device | None = None) -> str:
    """A one-line human description, e.g. ``"cuda (NVIDIA H100)"`` or ``"cpu (2 threads)"``.

    Taught in: notebook 00 § No GPU? No problem.
    """
    device = resolve_device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'' if n == 1 else 's'})"
    return device.type
