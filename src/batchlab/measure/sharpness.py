"""Sharp and flat minima: how fast the loss rises when a trained model's parameters are moved.

Four measurements of the loss landscape around the parameters ``θ`` of a model, all for a loss given as a
function ``loss_fn(model) -> scalar tensor`` (:func:`dataset_loss` builds the usual one: the mean
cross-entropy over a whole data set, one forward pass):

* :func:`loss_slice`: the 1-D slice ``t ↦ L(θ + t·d)`` along a direction ``d`` (a list of tensors shaped
  like the parameters), at the distances ``t`` asked for;
* :func:`filter_normalized_direction`: a random direction scaled the way Li et al. (2018, "Visualizing
  the loss landscape of neural nets") do, so that slices of different models are comparable. For an MLP a
  "filter" is one output neuron: every row of a weight matrix (the neuron's incoming weights) is scaled
  to the norm of the same row of the model's weights; bias directions are set to zero, as in their code.
  Distance ``t = 1`` then moves every neuron by as much as its own weights' length;
* :func:`slice_sharpness`: the mean loss rise at a fixed filter-normalised distance ``α``, averaged over
  random directions and both signs: ``mean_d [(L(θ+αd) + L(θ−αd))/2] − L(θ)``. For a quadratic loss
  ``½·θᵀHθ`` at its minimum this is exactly ``½·α²·mean_d(dᵀHd)``;
* :func:`epsilon_sharpness`: the measure of Keskar et al. (2017, "On large-batch training for deep learning:
  generalization gap and sharp minima"): the largest loss increase inside the box ``|δ_i| ≤ ε·(|θ_i| + 1)``,
  relative to ``1 + L(θ)``, in percent. The maximum is searched by projected sign-gradient ascent from a
  random point of the box, so for a non-convex loss the number is a lower bound of the true maximum (for a
  convex one, e.g. a quadratic, the ascent reaches the exact maximum, a corner of the box);
* :func:`epsilon_first_order`: the part of the ε-box rise that the gradient alone predicts;
* :func:`gradient_norm`: ``‖∇L(θ)‖``, how far from a stationary point ``θ`` is (the ε-box measure grows
  with it: its first-order part is ``ε·Σ|∂L/∂θ_i|·(|θ_i| + 1)``);
* :func:`top_hessian_eigenvalue`: the largest eigenvalue ``λ_max`` of the Hessian (power iteration on
  Hessian-vector products). Plain gradient descent with learning rate ``η`` is stable near a minimum
  only while ``η < 2 / λ_max``.

Every function reads the loss as a function of the parameters with ``torch.func``: ``functional_call``
evaluates ``loss_fn`` with other parameter values swapped in for the call, ``grad`` differentiates it and
``jvp(grad(...))`` gives Hessian-vector products (forward-over-reverse). The model itself is never
changed: its parameters, ``requires_grad`` flags and ``.grad`` fields stay as they were, and its
train/eval mode is restored. Losses are evaluated in eval mode (dropout off).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, grad_and_value, jvp

from batchlab.models import eval_mode
from batchlab.validation import (
    require_bool,
    require_int,
    require_module,
    require_positive_float,
    require_samples,
    require_sequence,
)

__all__ = [
    "LossFn", "dataset_loss", "epsilon_first_order", "epsilon_sharpness", "filter_normalized_direction",
    "gradient_norm", "loss_slice", "mean_slice", "slice_sharpness", "top_hessian_eigenvalue",
]

LossFn = Callable[[nn.Module], torch.Tensor]
"""A function of the model that returns a scalar loss tensor (differentiable in the parameters)."""


def dataset_loss(x: torch.Tensor, y: torch.Tensor) -> LossFn:
    """The mean cross-entropy of a classifier on ``(x, y)``: ``x`` ``(n, features)``, ``y`` ``(n,)``.

    The returned function runs one forward pass over all ``n`` samples (keep ``n`` small: thousands).

    Taught in: notebook 04 § 5. Scaling the learning rate: when does each rule hold?.
    """
    require_samples(x, y)
    return lambda model: F.cross_entropy(model(x), y)


def _parameters(model: nn.Module) -> list[torch.nn.Parameter]:
    params = list(require_module("model", model).parameters())
    if not params:
        raise ValueError("model has no parameters")
    return params


def _scalar(value: torch.Tensor) -> float:
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise TypeError(f"loss_fn must return a scalar tensor, got {value!r}")
    return float(value.detach())


Params = dict[str, torch.Tensor]  # parameter name -> value, as model.named_parameters() names them


class _LossOf(nn.Module):
    """``loss_fn(model)`` as a module that owns the model, so ``functional_call`` can swap its parameters."""

    def __init__(self, model: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self) -> torch.Tensor:
        return self.loss_fn(self.model)


@contextmanager
def _loss_of_parameters(model: nn.Module, loss_fn: LossFn
                        ) -> Iterator[tuple[Callable[[Params], torch.Tensor], Params]]:
    """Check ``model`` and ``loss_fn``; inside eval mode, yield ``L`` (the loss as a function of a
    ``{name: tensor}`` of parameter values) and ``θ`` (the model's parameters now, detached)."""
    _parameters(model)
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function of the model returning a scalar tensor, got {loss_fn!r}")
    theta = {name: p.detach() for name, p in model.named_parameters()}
    wrapper = _LossOf(model, loss_fn)

    def loss_at(params: Params) -> torch.Tensor:
        return functional_call(wrapper, {f"model.{name}": value for name, value in params.items()}, ())

    with eval_mode(model):
        yield loss_at, theta


def _moved(theta: Params, step: Sequence[torch.Tensor], t: float) -> Params:
    """``θ + t·step``, one tensor per parameter."""
    return {name: p0 + t * d for (name, p0), d in zip(theta.items(), step, strict=True)}


def filter_normalized_direction(model: nn.Module, *, seed: int = 0, include_biases: bool = False
                                ) -> list[torch.Tensor]:
    """A random Gaussian direction, filter-normalised (Li et al., 2018), shaped like the parameters.

    For every 2-D weight ``W`` of shape ``(out, in)``, row ``i`` of the direction is rescaled to the norm
    of ``W[i]`` (one output neuron's incoming weights); a row of zeros in ``W`` gives a zero row. 1-D
    parameters (biases) get a zero direction unless ``include_biases``, in which case each is rescaled as
    a whole to the parameter's norm; higher-dimensional tensors are normalised per slice along dim 0.
    The draw uses a private generator seeded with ``seed`` (the global random state is untouched).
    """
    params = _parameters(model)
    seed = require_int("seed", seed, minimum=0)
    include_biases = require_bool("include_biases", include_biases)
    generator = torch.Generator().manual_seed(seed)
    direction = []
    for p in params:
        w = p.detach().to("cpu", torch.float64)  # drawn and scaled on the CPU (MPS has no float64)
        d = torch.randn(w.shape, generator=generator, dtype=torch.float64)
        if w.dim() <= 1:
            d = d * (w.norm() / d.norm()) if include_biases else torch.zeros_like(d)
        else:
            rows_w = w.reshape(w.shape[0], -1).norm(dim=1)
            rows_d = d.reshape(d.shape[0], -1).norm(dim=1)
            d = d * (rows_w / rows_d).reshape((-1,) + (1,) * (w.dim() - 1))
        direction.append(d.to(device=p.device, dtype=p.dtype))
    return direction


def loss_slice(model: nn.Module, loss_fn: LossFn, direction: Sequence[torch.Tensor],
               distances: Sequence[float] | np.ndarray) -> np.ndarray:
    """The loss ``L(θ + t·d)`` at each distance ``t`` (a 1-D array of floats, same length).

    ``direction`` holds one tensor per parameter (same shapes); ``t = 0`` gives the loss at ``θ``.
    """
    ts = np.asarray(distances, dtype=np.float64)
    if ts.ndim != 1 or ts.size == 0 or not np.all(np.isfinite(ts)):
        raise ValueError(f"distances must be a non-empty 1-D sequence of finite numbers, got {distances!r}")
    with _loss_of_parameters(model, loss_fn) as (loss_at, theta):
        params = list(theta.values())
        direction = require_sequence("direction", direction, "tensors (one per parameter)", nonempty=False)
        if len(direction) != len(params):
            raise ValueError(f"direction must hold one tensor per parameter ({len(params)}), "
                             f"got {len(direction)}")
        for i, (p, d) in enumerate(zip(params, direction, strict=True)):
            if not isinstance(d, torch.Tensor):
                raise TypeError(f"direction[{i}] must be a tensor, got {type(d).__name__}")
            if d.shape != p.shape:
                raise ValueError(f"direction[{i}] must have shape {tuple(p.shape)}, got {tuple(d.shape)}")
        step = [d.detach().to(device=p.device, dtype=p.dtype) for p, d in zip(params, direction, strict=True)]
        losses = np.empty(ts.size)
        with torch.no_grad():
            for i, t in enumerate(ts):
                losses[i] = _scalar(loss_at(_moved(theta, step, float(t))))
    return losses


def mean_slice(model: nn.Module, loss_fn: LossFn, distances: Sequence[float] | np.ndarray, *,
               n_directions: int = 4, seed: int = 0) -> np.ndarray:
    """The loss slice averaged over ``n_directions`` filter-normalised directions (seeds ``seed``, ...).

    Returns a 1-D array of losses, one per distance, like :func:`loss_slice`.

    Taught in: notebook 04 § 8. Sharp and flat minima.
    """
    n_directions = require_int("n_directions", n_directions, minimum=1)
    seed = require_int("seed", seed, minimum=0)
    return np.mean([loss_slice(model, loss_fn, filter_normalized_direction(model, seed=seed + k), distances)
                    for k in range(n_directions)], axis=0)


def slice_sharpness(model: nn.Module, loss_fn: LossFn, *, distance: float = 0.25, n_directions: int = 4,
                    seed: int = 0) -> float:
    """Mean loss rise at filter-normalised distance ``distance`` (both signs, ``n_directions`` draws).

    ``mean over d of [L(θ + α·d) + L(θ − α·d)] / 2 − L(θ)``, with ``d`` from
    :func:`filter_normalized_direction` (seeds ``seed``, ``seed + 1``, ...). In loss units (nats for
    cross-entropy). Averaging both signs cancels the slope term, leaving the curvature's effect.

    Taught in: notebook 04 § 8. Sharp and flat minima.
    """
    distance = require_positive_float("distance", distance)
    low, mid, high = mean_slice(model, loss_fn, [-distance, 0.0, distance], n_directions=n_directions,
                                seed=seed)
    return float((low + high) / 2 - mid)


def epsilon_sharpness(model: nn.Module, loss_fn: LossFn, *, epsilon: float = 1e-3, steps: int = 10,
                      seed: int = 0) -> float:
    """Keskar et al.'s (2017) sharpness in percent: ``100 · (max_δ L(θ+δ) − L(θ)) / (1 + L(θ))``.

    The box is ``|δ_i| ≤ ε·(|θ_i| + 1)`` for every scalar parameter. The maximum is approximated by
    ``steps`` steps of projected sign-gradient ascent (each step moves every coordinate by half its box
    half-width, then clips to the box), starting from a random point of the box drawn with ``seed``; the
    best loss seen is kept. For a non-convex loss this is a lower bound on the true maximum.

    Taught in: notebook 04 § 8. Sharp and flat minima.
    """
    epsilon = require_positive_float("epsilon", epsilon)
    steps = require_int("steps", steps, minimum=1)
    seed = require_int("seed", seed, minimum=0)
    generator = torch.Generator().manual_seed(seed)
    with _loss_of_parameters(model, loss_fn) as (loss_at, theta):
        base = list(theta.values())
        with torch.no_grad():
            base_loss = _scalar(loss_at(theta))
        radius = [epsilon * (b.abs() + 1) for b in base]
        delta = [(2 * torch.rand(b.shape, generator=generator, dtype=torch.float64) - 1).to(b) * r
                 for b, r in zip(base, radius, strict=True)]
        best = base_loss
        for _ in range(steps):
            grads, loss = grad_and_value(loss_at)(_moved(theta, delta, 1.0))
            best = max(best, _scalar(loss))
            delta = [torch.clamp(d + 0.5 * r * torch.sign(g), -r, r)
                     for d, r, g in zip(delta, radius, grads.values(), strict=True)]
        with torch.no_grad():
            best = max(best, _scalar(loss_at(_moved(theta, delta, 1.0))))
    return 100.0 * (best - base_loss) / (1.0 + base_loss)


def _loss_and_gradients(model: nn.Module, loss_fn: LossFn
                        ) -> tuple[float, list[torch.Tensor], list[torch.Tensor]]:
    """``L(θ)``, ``∇L(θ)`` (one tensor per parameter; zeros where the loss does not use it) and ``θ``."""
    with _loss_of_parameters(model, loss_fn) as (loss_at, theta):
        grads, loss = grad_and_value(loss_at)(theta)
    return _scalar(loss), list(grads.values()), list(theta.values())


def gradient_norm(model: nn.Module, loss_fn: LossFn) -> float:
    """The Euclidean norm ``‖∇L(θ)‖`` of the loss's gradient over all parameters (0 at a minimum).

    Taught in: notebook 04 § 8. Sharp and flat minima.
    """
    _, grads, _ = _loss_and_gradients(model, loss_fn)
    return math.sqrt(sum(float((g.cpu().double() ** 2).sum()) for g in grads))


def epsilon_first_order(model: nn.Module, loss_fn: LossFn, *, epsilon: float = 1e-3) -> float:
    """The first-order part of :func:`epsilon_sharpness`, in percent: what the gradient alone predicts.

    ``100 · ε · Σ_i |∂L/∂θ_i| · (|θ_i| + 1) / (1 + L(θ))``: the largest rise of the *linearised* loss
    over the same box. Where this is close to :func:`epsilon_sharpness`, the box measure reads the
    leftover gradient (distance from a stationary point), not the curvature.

    Taught in: notebook 04 § 8. Sharp and flat minima.
    """
    epsilon = require_positive_float("epsilon", epsilon)
    loss, grads, params = _loss_and_gradients(model, loss_fn)
    rise = sum(float((g.cpu().double().abs() * (p.detach().cpu().double().abs() + 1)).sum())
               for g, p in zip(grads, params, strict=True))
    return 100.0 * epsilon * rise / (1.0 + loss)


def top_hessian_eigenvalue(model: nn.Module, loss_fn: LossFn, *, iterations: int = 20, seed: int = 0
                           ) -> float:
    """The Hessian's eigenvalue of largest magnitude at ``θ`` (power iteration, ``iterations`` rounds).

    Each round is one Hessian-vector product (``jvp`` of ``grad``: forward-mode over reverse-mode).
    Near a minimum the Hessian is (almost) positive semi-definite, so this is ``λ_max``, the curvature
    of the sharpest direction; then gradient descent with a learning rate above ``2 / λ_max`` moves
    away from the minimum.

    Taught in: notebook 04 § 5. Scaling the learning rate: when does each rule hold?.
    """
    iterations = require_int("iterations", iterations, minimum=1)
    seed = require_int("seed", seed, minimum=0)
    generator = torch.Generator().manual_seed(seed)
    with _loss_of_parameters(model, loss_fn) as (loss_at, theta):
        v = [torch.randn(p.shape, generator=generator, dtype=torch.float64).to(p) for p in theta.values()]
        eigenvalue = 0.0
        for _ in range(iterations):
            norm = math.sqrt(sum(float((u * u).sum()) for u in v))
            if norm == 0.0:
                return 0.0
            v = [u / norm for u in v]
            # H·v: the derivative of the gradient along v (forward-mode over reverse-mode).
            _, hv = jvp(grad(loss_at), (theta,), (dict(zip(theta, v, strict=True)),))
            eigenvalue = sum(float((u * h).sum()) for u, h in zip(v, hv.values(), strict=True))
            v = [h.detach() for h in hv.values()]
    return float(eigenvalue)
