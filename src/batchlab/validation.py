"""Argument checks shared by every public function of batchlab.

Each checker returns the (normalised) value or raises an error that names the parameter, the value that
was given and the allowed range, for example::

    ValueError: batch_size must be an integer >= 1, got 0

A ``bool`` is never accepted as a number: ``True`` is not a batch size.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = ["MAX_SEED", "checked_items", "require_bool", "require_choice", "require_float", "require_instance",
           "require_int", "require_module", "require_positive_float", "require_samples", "require_seed",
           "require_sequence"]

MAX_SEED = 2**64 - 1  # the largest seed a torch.Generator accepts


def _wanted(what: str, minimum: float | None, maximum: float | None, strict_min: bool = False) -> str:
    """``what`` and its range in words, e.g. "an integer >= 1": built only for an error message."""
    low = f"{'>' if strict_min else '>='} {minimum}" if minimum is not None else None
    bounds = " and ".join(part for part in (low, None if maximum is None else f"<= {maximum}") if part)
    return f"{what} {bounds}".strip()


def _is_bool(value: Any) -> bool:
    """True for Python and NumPy booleans (NumPy 2 names its type ``numpy.bool``)."""
    kind = type(value)
    return isinstance(value, bool) or (kind.__module__ == "numpy" and kind.__name__ in ("bool", "bool_"))


def require_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as a Python ``int`` if it is an integer within ``[minimum, maximum]``.

    Raises ``TypeError`` for non-integers (floats, strings, bools) and ``ValueError`` for an integer out
    of range. NumPy integer scalars are accepted and converted.
    """
    wanted = ("an integer", minimum, maximum)  # put into words only for an error: checks are frequent
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {_wanted(*wanted)}, got {type(value).__name__} {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {_wanted(*wanted)}, got {value}")
    return value


def require_float(name: str, value: Any, *, minimum: float | None = None, maximum: float | None = None,
                  strict_min: bool = False) -> float:
    """Return ``value`` as a finite ``float`` within the bounds (``> minimum`` when ``strict_min``)."""
    wanted = ("a finite number", minimum, maximum, strict_min)  # put into words only for an error
    if _is_bool(value) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {_wanted(*wanted)}, got {type(value).__name__} {value!r}")
    try:
        value = float(value)
    except OverflowError:  # an int too large for a float, e.g. 10**400
        raise ValueError(f"{name} must be {_wanted(*wanted)}, got {value!r}") from None
    too_low = minimum is not None and (value <= minimum if strict_min else value < minimum)
    too_high = maximum is not None and value > maximum
    if not math.isfinite(value) or too_low or too_high:
        raise ValueError(f"{name} must be {_wanted(*wanted)}, got {value!r}")
    return value


def require_positive_float(name: str, value: Any) -> float:
    """Return ``value`` as a finite ``float`` > 0 (learning rates, tolerances, durations)."""
    return require_float(name, value, minimum=0, strict_min=True)


def require_bool(name: str, value: Any) -> bool:
    """Return ``value`` if it is a ``bool`` (NumPy bools accepted); raise ``TypeError`` otherwise."""
    if not _is_bool(value):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def require_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``; raise ``ValueError`` listing them otherwise."""
    options = tuple(choices)
    if value not in options:
        listed = ", ".join(repr(c) for c in options)
        raise ValueError(f"{name} must be one of {listed}, got {value!r}")
    return value


def require_sequence(name: str, value: Any, of: str, *, nonempty: bool = True) -> list[Any]:
    """Return ``value`` as a list if it is a sequence (a list, tuple or range; not a string) that is not
    empty (unless ``nonempty`` is False); ``of`` says what it should hold, for the message."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or (nonempty and not value):
        wanted = f"a {'non-empty ' if nonempty else ''}sequence of {of}"
        raise TypeError(f"{name} must be {wanted}, got {type(value).__name__} {value!r}")
    return list(value)


def require_instance(name: str, value: Any, kind: type | tuple[type, ...], what: str = "") -> Any:
    """Return ``value`` if it is an instance of ``kind``; raise ``TypeError`` naming ``what`` (default: the
    type's name) and the type that was given otherwise."""
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be a {what or kind.__name__}, got {type(value).__name__}")
    return value


def require_seed(name: str, value: Any) -> int:
    """Return ``value`` as an ``int`` seed, 0 to :data:`MAX_SEED` (what a ``torch.Generator`` accepts)."""
    return require_int(name, value, minimum=0, maximum=MAX_SEED)


def checked_items(name: str, values: Any, check: Callable[[str, Any], Any], *,
                  increasing: bool = False) -> tuple:
    """``values`` (a non-empty sequence) as a tuple, each item passed through ``check(f"{name}[i]", item)``;
    with ``increasing``, the items must also be strictly increasing (ValueError otherwise)."""
    if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
        raise TypeError(f"{name} must be a non-empty sequence, got {values!r}")
    items = tuple(check(f"{name}[{i}]", v) for i, v in enumerate(values))
    if increasing and list(items) != sorted(set(items)):
        raise ValueError(f"{name} must be strictly increasing, got {list(items)}")
    return items


# The two checks below import torch only when called (whoever calls them already holds torch objects), so
# this module stays import-light: it sits under every other one.
def require_module(name: str, value: object) -> Any:
    """Return ``value`` if it is a ``torch.nn.Module``; raise ``TypeError`` naming ``name`` otherwise."""
    from torch import nn

    if not isinstance(value, nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module, got {type(value).__name__}")
    return value


def require_samples(x: Any, y: Any) -> None:
    """Check that ``x`` and ``y`` are tensors on one device holding the same number (>= 1) of samples."""
    import torch

    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise TypeError("x and y must be torch tensors (see batchlab.data.to_tensors)")
    if len(x) != len(y) or len(y) == 0:
        raise ValueError(f"x and y must hold the same number of samples (>= 1), got {len(x)}, {len(y)}")
    if x.device != y.device:
        raise ValueError(f"x and y must be on one device, got {x.device} and {y.device}")
