"""Which device training runs on: ``cuda``, then ``mps``, then ``cpu``."""

from __future__ import annotations

import torch

__all__ = ["default_device", "describe_device", "resolve_device"]


def default_device() -> torch.device:
    """The fastest device present: a CUDA GPU, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Turn ``None`` (pick the default), a name such as ``"cpu"`` or a ``torch.device`` into a device.

    Raises ``TypeError`` for other types and ``ValueError`` for a device that is not available here.
    """
    if device is None:
        return default_device()
    if isinstance(device, str):
        try:
            device = torch.device(device)
        except RuntimeError as exc:
            raise ValueError(f"device must be 'cpu', 'cuda' or 'mps', got {device!r}") from exc
    if not isinstance(device, torch.device):
        raise TypeError(f"device must be a str, torch.device or None, got {type(device).__name__}")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but no CUDA GPU is available (use 'cpu' or None)")
    if device.type == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise ValueError("device 'mps' was asked for but MPS is not available (use 'cpu' or None)")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'mps', got {str(device)!r}")
    return device


def describe_device(device: str | torch.device | None = None) -> str:
    """A one-line human description, e.g. ``"cuda (NVIDIA H100)"`` or ``"cpu (2 threads)"``."""
    device = resolve_device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'' if n == 1 else 's'})"
    return device.type
