"""Gradient noise: how far a minibatch gradient strays from the full gradient, measured and predicted.

Notation. ``N`` samples have per-sample gradients ``g_i`` (rows of an ``(N, d)`` array), the full gradient is
their mean ``G``, and their covariance over the data set is ``Σ = 1/N · Σ_i (g_i − G)(g_i − G)ᵀ`` with trace
``σ² = tr Σ = 1/N · Σ_i |g_i − G|²``. A minibatch gradient ``ĝ_B`` is the mean of ``g_i`` over ``B``
*distinct* indices drawn uniformly (sampling without replacement, as a shuffled epoch does). Then, exactly,

* ``E[ĝ_B] = G`` (unbiased), and
* ``E|ĝ_B − G|² = σ²/B · (N − B)/(N − 1)``: the familiar ``σ²/B`` times the finite-population factor,
  which is 1 at ``B = 1`` and 0 at ``B = N`` (a "batch" of everything is the full gradient).

:func:`measure_minibatch_noise` draws many minibatches per batch size and reports the measured mean and
variance with their standard errors beside both predictions. :func:`noise_scale` computes the gradient
noise scale ``B_simple = tr Σ / |G|²`` of McCandlish et al. (2018, "An Empirical Model of Large-Batch
Training"); :func:`torch_noise_scale` does so for a PyTorch classifier from per-sample gradients
(``torch.func.vmap`` over ``torch.func.grad``). :func:`step_progress` measures, for a quadratic loss, the
loss decrease of one step at the best learning rate for each ``B``, which that paper predicts to be
``ΔL_max / (1 + B_noise/B)`` (with the finite-population factor here).

Numerics only: NumPy (and PyTorch, imported lazily by the torch functions); no widgets.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from batchlab.validation import require_int, require_module, require_samples

__all__ = [
    "GradientMoments", "NoiseMeasurement", "NoiseScale", "StepProgress", "draw_minibatch_gradients",
    "gradient_moments", "measure_minibatch_noise", "minibatch_variance", "noise_scale", "step_progress",
    "torch_noise_scale",
]


def _as_gradients(per_sample_grads: Any) -> np.ndarray:
    """Validate an ``(N, d)`` array of finite per-sample gradients (N ≥ 2) and return it as float64."""
    grads = np.asarray(per_sample_grads, dtype=np.float64)
    if grads.ndim != 2 or grads.shape[0] < 2 or grads.shape[1] < 1:
        raise ValueError(f"per_sample_grads must have shape (N >= 2, d >= 1), got {grads.shape}")
    if not np.all(np.isfinite(grads)):
        raise ValueError("per_sample_grads must be finite")
    return grads


def _as_batch_sizes(batch_sizes: Sequence[int], n_samples: int) -> list[int]:
    sizes = [require_int("batch_size", b, minimum=1, maximum=n_samples)
             for b in ([batch_sizes] if isinstance(batch_sizes, int | np.integer) else batch_sizes)]
    if not sizes:
        raise ValueError("batch_sizes must not be empty")
    return sizes


def _hessian_terms(grads: np.ndarray, hessian: Any) -> tuple[float, float]:
    """``GᵀHG`` and ``tr(HΣ)`` for the ``(N, d)`` per-sample gradients and a ``(d, d)`` Hessian."""
    n, d = grads.shape
    h = np.asarray(hessian, dtype=np.float64)
    if h.shape != (d, d) or not np.all(np.isfinite(h)):
        raise ValueError(f"hessian must be a finite ({d}, {d}) array, got shape {h.shape}")
    g = grads.mean(axis=0)
    centred = grads - g
    return float(g @ h @ g), float(np.trace(h @ (centred.T @ centred / n)))


@dataclass(frozen=True, eq=False)
class GradientMoments:
    """First and second moments of the per-sample gradients over the data set.

    ``mean``: the full gradient ``G``, shape ``(d,)``. ``trace_covariance``: ``σ² = tr Σ`` (population
    covariance, divisor ``N``). ``component_variance``: the diagonal of ``Σ``, shape ``(d,)``.
    """

    mean: np.ndarray
    trace_covariance: float
    component_variance: np.ndarray
    n_samples: int


def gradient_moments(per_sample_grads: np.ndarray) -> GradientMoments:
    """``G``, ``tr Σ`` and ``diag Σ`` of an ``(N, d)`` array of per-sample gradients.

    Taught in: notebook 03 § Gradient noise, measured against theory.
    """
    grads = _as_gradients(per_sample_grads)
    mean = grads.mean(axis=0)
    component = ((grads - mean) ** 2).mean(axis=0)
    return GradientMoments(mean, float(component.sum()), component, grads.shape[0])


def minibatch_variance(sigma2: float | np.ndarray, n_samples: int, batch_size: int | np.ndarray, *,
                       replacement: bool = False) -> np.ndarray:
    """Predicted ``E|ĝ_B − G|²`` for per-sample variance ``sigma2 = tr Σ`` (broadcasts over arrays).

    Without replacement (a shuffled epoch): ``σ²/B · (N − B)/(N − 1)``; with replacement: ``σ²/B``.
    Returns a float64 array (0-d for scalar input).
    """
    n_samples = require_int("n_samples", n_samples, minimum=2)
    b = np.asarray(batch_size, dtype=np.float64)
    if np.any(b < 1) or np.any(b > n_samples) or np.any(b != np.rint(b)):
        raise ValueError(f"batch_size must be integers in [1, {n_samples}], got {batch_size!r}")
    s2 = np.asarray(sigma2, dtype=np.float64)
    if np.any(s2 < 0) or not np.all(np.isfinite(s2)):
        raise ValueError(f"sigma2 must be finite and >= 0, got {sigma2!r}")
    return s2 / b if replacement else s2 / b * (n_samples - b) / (n_samples - 1)


def draw_minibatch_gradients(per_sample_grads: np.ndarray, batch_size: int, n_draws: int, *, seed: int = 0
                             ) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_draws`` independent minibatches of ``batch_size`` distinct indices each.

    Returns ``(gradients, indices)``: the minibatch mean gradients, shape ``(n_draws, d)``, and the
    indices of each batch, shape ``(n_draws, batch_size)``. Within a batch no index repeats; different
    draws are independent. Seeded.
    """
    grads = _as_gradients(per_sample_grads)
    n = grads.shape[0]
    batch_size = require_int("batch_size", batch_size, minimum=1, maximum=n)
    n_draws = require_int("n_draws", n_draws, minimum=2, maximum=10_000_000)
    rng = np.random.default_rng(require_int("seed", seed, minimum=0))
    indices = np.empty((n_draws, batch_size), dtype=np.int64)
    chunk = max(1, 2_000_000 // n)  # bounded memory: at most ~2M indices permuted at once
    for first in range(0, n_draws, chunk):
        rows = min(chunk, n_draws - first)
        shuffled = rng.permuted(np.broadcast_to(np.arange(n), (rows, n)), axis=1)
        indices[first: first + rows] = shuffled[:, :batch_size]
    return grads[indices].mean(axis=1), indices


@dataclass(frozen=True, eq=False)
class NoiseMeasurement:
    """Measured minibatch-gradient statistics at one batch size, beside the predictions.

    ``variance``: the mean of ``|ĝ_B − G|²`` over the draws (uses the exact ``G``, so it is an unbiased
    estimate of the trace variance); ``variance_stderr``: its standard error, ``std/√n_draws``.
    ``mean`` and ``mean_stderr``: mean of the draws and its standard error per component, shape ``(d,)``.
    ``component_variance``: per-component mean of ``(ĝ_B − G)²``, shape ``(d,)``.
    ``predicted`` (without replacement) and ``predicted_with_replacement`` (``σ²/B``).
    """

    batch_size: int
    n_draws: int
    mean: np.ndarray
    mean_stderr: np.ndarray
    full_gradient: np.ndarray
    variance: float
    variance_stderr: float
    component_variance: np.ndarray
    predicted: float
    predicted_with_replacement: float

    @property
    def z_score(self) -> float:
        """``(measured − predicted) / standard error``; at ``B = N``: 0 if the variance is only rounding."""
        if self.predicted == 0.0:  # B = N: every draw is G itself, up to rounding
            return 0.0 if self.variance <= 1e-20 * self.predicted_with_replacement else np.inf
        return float((self.variance - self.predicted) / self.variance_stderr)


def measure_minibatch_noise(per_sample_grads: np.ndarray, batch_sizes: Sequence[int], *, n_draws: int = 2000,
                            seed: int = 0) -> list[NoiseMeasurement]:
    """For each ``B`` in ``batch_sizes`` draw ``n_draws`` minibatches and measure the gradient noise.

    Each batch size gets its own seeded stream (``seed + i``), so results do not depend on the order.

    Taught in: notebook 03 § Gradient noise, measured against theory.
    """
    grads = _as_gradients(per_sample_grads)
    n = grads.shape[0]
    moments = gradient_moments(grads)
    results = []
    for i, b in enumerate(_as_batch_sizes(batch_sizes, n)):
        drawn, _ = draw_minibatch_gradients(grads, b, n_draws, seed=seed + i)
        deviation = drawn - moments.mean
        squared = (deviation**2).sum(axis=1)
        results.append(NoiseMeasurement(
            b, n_draws, drawn.mean(axis=0), drawn.std(axis=0, ddof=1) / np.sqrt(n_draws), moments.mean,
            float(squared.mean()), float(squared.std(ddof=1) / np.sqrt(n_draws)), (deviation**2).mean(axis=0),
            float(minibatch_variance(moments.trace_covariance, n, b)),
            float(minibatch_variance(moments.trace_covariance, n, b, replacement=True))))
    return results


@dataclass(frozen=True)
class NoiseScale:
    """The gradient noise scale at one point.

    ``trace_covariance``: ``tr Σ`` of the per-sample gradients; ``gradient_norm_sq``: ``|G|²``;
    ``b_simple = tr Σ / |G|²`` (a batch size, in samples). When the curvature was measured (a Hessian given
    to :func:`noise_scale`, or ``curvature=True`` for :func:`torch_noise_scale`; ``None`` otherwise):
    ``curvature = GᵀHG`` and ``trace_h_sigma = tr(HΣ)`` (loss units per squared step) and
    ``b_noise = tr(HΣ) / GᵀHG``, the exact version for a quadratic loss (``inf`` when ``GᵀHG ≤ 0``).
    ``max_rate = |G|² / GᵀHG``: the best learning rate of a noise-free step on the local quadratic
    (``inf`` when ``GᵀHG ≤ 0``), ``ε_max`` in McCandlish et al.'s notation.
    """

    trace_covariance: float
    gradient_norm_sq: float
    b_simple: float
    b_noise: float | None = None
    n_samples: int | None = None
    curvature: float | None = None
    trace_h_sigma: float | None = None

    @property
    def max_rate(self) -> float | None:
        """``ε_max = |G|² / GᵀHG`` (``inf`` when ``GᵀHG ≤ 0``; ``None`` without a curvature measurement)."""
        if self.curvature is None:
            return None
        return self.gradient_norm_sq / self.curvature if self.curvature > 0 else float("inf")


def _scale(trace: float, norm_sq: float, n: int, curvature: float | None = None,
           trace_h_sigma: float | None = None) -> NoiseScale:
    """A :class:`NoiseScale` from its measured terms (the ratios ``inf`` where the denominator is ≤ 0)."""
    b_noise = None
    if curvature is not None and trace_h_sigma is not None:
        b_noise = trace_h_sigma / curvature if curvature > 0 else float("inf")
    return NoiseScale(trace, norm_sq, trace / norm_sq if norm_sq > 0 else float("inf"), b_noise, n,
                      curvature, trace_h_sigma)


def noise_scale(per_sample_grads: np.ndarray, hessian: np.ndarray | None = None) -> NoiseScale:
    """``B_simple = tr Σ / |G|²`` (and ``B_noise`` if ``hessian``, shape ``(d, d)``, is given).

    Taught in: notebook 03 § The gradient noise scale.
    """
    grads = _as_gradients(per_sample_grads)
    moments = gradient_moments(grads)
    norm_sq = float(moments.mean @ moments.mean)
    curvature = noise = None
    if hessian is not None:
        curvature, noise = _hessian_terms(grads, hessian)
    return _scale(moments.trace_covariance, norm_sq, grads.shape[0], curvature, noise)


@dataclass(frozen=True, eq=False)
class StepProgress:
    """Loss decrease of one step at the best learning rate for each batch size (quadratic loss).

    All arrays have one entry per batch size. ``learning_rate``: ``η*(B) = |G|² / (GᵀHG + tr(HΣ_B))``
    with ``Σ_B`` the minibatch covariance. ``measured``: mean over draws of ``L(θ) − L(θ − η*ĝ_B)``,
    with ``stderr``; ``predicted``: ``|G|⁴ / (2 (GᵀHG + tr(HΣ_B)))``; ``ideal``: the noise-free value
    ``|G|⁴ / (2 GᵀHG)`` (a scalar), the most one step can gain.
    """

    batch_sizes: np.ndarray
    learning_rate: np.ndarray
    measured: np.ndarray
    stderr: np.ndarray
    predicted: np.ndarray
    ideal: float


def step_progress(loss: Callable[[np.ndarray], np.ndarray], params: np.ndarray, per_sample_grads: np.ndarray,
                  hessian: np.ndarray, batch_sizes: Sequence[int], *, n_draws: int = 2000, seed: int = 0
                  ) -> StepProgress:
    """Measure one optimally tuned SGD step per batch size on a quadratic loss.

    ``loss`` maps parameter rows ``(k, d)`` to losses ``(k,)``; ``params`` (shape ``(d,)``) is the
    point, ``per_sample_grads`` its ``(N, d)`` per-sample gradients and ``hessian`` ``(d, d)``.

    Taught in: notebook 03 § Progress per step, measured.
    """
    grads = _as_gradients(per_sample_grads)
    n, d = grads.shape
    params = np.asarray(params, dtype=np.float64)
    if params.shape != (d,):
        raise ValueError(f"params must have shape ({d},), got {params.shape}")
    curvature, trace_h_sigma = _hessian_terms(grads, hessian)
    sizes = np.array(_as_batch_sizes(batch_sizes, n))
    g = grads.mean(axis=0)
    noise = trace_h_sigma * minibatch_variance(1.0, n, sizes)
    lr = float(g @ g) / (curvature + noise)
    start_loss = float(np.asarray(loss(params[None, :]))[0])
    measured, stderr = [], []
    for i, (b, eta) in enumerate(zip(sizes, lr, strict=True)):
        drawn, _ = draw_minibatch_gradients(grads, int(b), n_draws, seed=seed + i)
        gain = start_loss - np.asarray(loss(params - eta * drawn))
        measured.append(gain.mean())
        stderr.append(gain.std(ddof=1) / np.sqrt(n_draws))
    return StepProgress(sizes, lr, np.array(measured), np.array(stderr),
                        float(g @ g) ** 2 / (2 * (curvature + noise)), float(g @ g) ** 2 / (2 * curvature))


def torch_noise_scale(model: Any, x: Any, y: Any, *, chunk_size: int = 256, curvature: bool = False,
                      curvature_samples: int | None = None, seed: int = 0) -> NoiseScale:
    """``B_simple`` (and, with ``curvature=True``, ``B_noise``) of a classifier's cross-entropy on ``(x, y)``.

    Accumulates ``Σ g_i`` and ``Σ |g_i|²`` in float64 on the CPU (MPS has no float64) chunk by chunk, so
    memory stays at one chunk of per-sample gradients. ``tr Σ = mean |g_i|² − |G|²``. ``x``: ``(n, features)``
    tensor, ``y``: ``(n,)`` class indices; the per-sample gradients come from
    ``torch.func.vmap(torch.func.grad(...))`` in chunks of ``chunk_size`` samples. The model is put in eval
    mode for the measurement (no dropout) and its mode restored.

    ``curvature=True`` also measures ``GᵀHG`` and ``tr(HΣ) = 1/n · Σ_i (g_i − G)ᵀ H (g_i − G)`` (the same
    population covariance ``Σ``, divisor ``n``, as ``tr Σ``), with ``H`` the Hessian of the mean loss over
    all ``n`` samples, by Hessian-vector products (``torch.func.jvp`` of ``torch.func.grad``, batched with
    ``vmap``; each costs about three passes over the ``n`` samples, so ``H`` is never formed).
    ``curvature_samples``: how many samples ``i`` enter the sum for ``tr(HΣ)`` (``None``: all ``n``; fewer:
    a seeded random subset drawn with ``seed`` without replacement, whose mean is an unbiased estimate);
    ``G`` and ``H`` always use all ``n``. Then ``b_noise = tr(HΣ)/GᵀHG`` (McCandlish et al. 2018) and
    ``max_rate = |G|²/GᵀHG``.

    Taught in: notebook 03 § The noise scale of a real network (``B_simple``); notebook 07 § Why
    ``B_crit`` is far below ``B_simple`` (``B_noise``).
    """
    import torch
    from torch.func import functional_call, grad, jvp, vmap

    from batchlab.models import eval_mode

    require_module("model", model)
    require_samples(x, y)
    if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[0] < 2:
        raise ValueError(f"x must be (n >= 2, features) and y (n,), got {tuple(x.shape)}, {tuple(y.shape)}")
    chunk_size = require_int("chunk_size", chunk_size, minimum=1)
    if not isinstance(curvature, bool):
        raise TypeError(f"curvature must be True or False, got {curvature!r}")
    n = x.shape[0]
    if curvature_samples is not None:
        curvature_samples = require_int("curvature_samples", curvature_samples, minimum=2, maximum=n)
    seed = require_int("seed", seed, minimum=0)
    params = {name: p.detach() for name, p in model.named_parameters()}

    def sample_loss(p: dict, xi: Any, yi: Any) -> Any:
        logits = functional_call(model, p, (xi.unsqueeze(0),))
        return torch.nn.functional.cross_entropy(logits, yi.unsqueeze(0))

    def flatten(g: dict) -> Any:
        return torch.cat([g[name].reshape(g[name].shape[0], -1) for name in params], dim=1)

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    total, total_sq = 0.0, 0.0
    with eval_mode(model):
        for first in range(0, n, chunk_size):
            flat64 = flatten(per_sample(params, x[first: first + chunk_size], y[first: first + chunk_size])
                             ).to("cpu", torch.float64)
            total = total + flat64.sum(dim=0)
            total_sq += float((flat64 * flat64).sum())
        mean = total / n
        norm_sq = float(mean @ mean)
        trace = max(total_sq / n - norm_sq, 0.0)
        if not curvature:
            return _scale(trace, norm_sq, n)

        def mean_loss(p: dict) -> Any:
            return torch.nn.functional.cross_entropy(functional_call(model, p, (x,)), y)

        def hessian_vector(v: dict) -> dict:
            return jvp(grad(mean_loss), (params,), (v,))[1]

        def quadratic_forms(v: dict) -> Any:  # vᵀHv for each row of the tangents v, float64 on the CPU
            hv = vmap(hessian_vector)(v)
            return (flatten(v).double() * flatten(hv).double()).sum(dim=1).cpu()

        # G as the parameters' shapes and dtype: the float64 mean of the per-sample gradients, not a new one
        sizes = [p.numel() for p in params.values()]
        g = {name: piece.reshape((1, *p.shape)).to(p)
             for (name, p), piece in zip(params.items(), torch.split(mean, sizes), strict=True)}
        g_h_g = float(quadratic_forms(g)[0])
        if curvature_samples is None or curvature_samples == n:
            chosen = torch.arange(n)
        else:
            generator = torch.Generator().manual_seed(seed)
            chosen = torch.randperm(n, generator=generator)[:curvature_samples]
        hvp_chunk = max(1, chunk_size // 8)  # each tangent holds activations of all n samples
        sum_forms = 0.0
        for first in range(0, len(chosen), hvp_chunk):
            index = chosen[first: first + hvp_chunk].to(x.device)
            chunk = per_sample(params, x[index], y[index])
            deviations = {name: value - g[name] for name, value in chunk.items()}
            sum_forms += float(quadratic_forms(deviations).sum())
    return _scale(trace, norm_sq, n, g_h_g, sum_forms / len(chosen))
