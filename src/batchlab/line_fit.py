"""A two-parameter problem whose whole loss surface can be drawn: fitting a line ``y ≈ w·x + c``.

The data are ``N`` points ``(x_i, y_i)`` generated from a known line plus Gaussian noise (seeded). The
loss of the parameters ``θ = (w, c)`` is half the mean squared error over all ``N`` samples,

    L(θ) = 1/(2N) · Σ_i (w·x_i + c − y_i)²,

so the per-sample gradient is ``g_i(θ) = r_i · (x_i, 1)`` with residual ``r_i = w·x_i + c − y_i``, the
full-batch gradient is their mean ``G(θ)``, and a minibatch gradient is the mean over the batch's
indices. The surface is an elliptic bowl with Hessian ``H = mean((x_i, 1)(x_i, 1)ᵀ)``; with ``x`` not
centred, ``w`` and ``c`` are coupled and the ellipses are tilted, so plain gradient descent curves.

Everything is float64 NumPy and vectorised. The loss is evaluated as ``L* + ½ (θ − θ*)ᵀH(θ − θ*)``
from a few precomputed numbers, so a 200×200 contour grid costs no more than 40,000 quadratics.

:func:`descent_path` runs gradient descent with any batch size on this problem the way a PyTorch
``DataLoader(shuffle=True, drop_last=False)`` feeds batches: a fresh permutation each epoch, consecutive
slices of ``B`` indices, a shorter last batch when ``B`` does not divide ``N``. It records every
parameter vector, the full-batch loss after every update and the sample indices of every batch, and it
stops cleanly (no overflow, no warnings) when the loss exceeds ``max_loss``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from batchlab.arithmetic import batch_bounds, iterations_per_epoch
from batchlab.validation import require_choice, require_float, require_int, require_positive_float

__all__ = ["BUDGETS", "DescentPath", "RegressionProblem", "descent_path", "log_batch_sizes",
           "make_regression_problem", "steps_for_budget"]

BUDGETS = ("equal updates", "equal samples")


def _as_params(name: str, value: object) -> np.ndarray:
    """``value`` as a float64 array of shape (2,) holding finite ``(w, c)``."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be a pair of numbers (w, c), got {value!r}") from error
    if array.shape != (2,):
        raise ValueError(f"{name} must have shape (2,) as (w, c), got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return array


@dataclass(frozen=True, eq=False)
class RegressionProblem:
    """Line fitting on ``N`` generated samples; parameters ``θ = (w, c)`` (slope, intercept).

    ``x`` and ``y`` have shape ``(N,)``, float64. Build one with :func:`make_regression_problem`.

    Taught in: notebook 03 § A problem you can see whole.
    """

    x: np.ndarray
    y: np.ndarray

    def __post_init__(self) -> None:
        x = np.asarray(self.x, dtype=np.float64)
        y = np.asarray(self.y, dtype=np.float64)
        if x.ndim != 1 or x.shape != y.shape or len(x) < 2:
            raise ValueError(f"x and y must be 1-D of equal length >= 2, got {x.shape} and {y.shape}")
        if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValueError("x and y must be finite")
        x.setflags(write=False)
        y.setflags(write=False)
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)
        # The few plain floats that the loss, the gradients and the minimum are computed from.
        means = np.array([np.mean(x * x), np.mean(x), np.mean(x * y), np.mean(y)]).tolist()
        object.__setattr__(self, "_stats", dict(zip(("xx", "x", "xy", "y"), means, strict=True)))
        w_opt, c_opt = np.linalg.solve(self.hessian(), means[2:]).tolist()
        loss_opt = 0.5 * float(np.mean((w_opt * x + c_opt - y) ** 2))
        self._stats.update(w_opt=w_opt, c_opt=c_opt, loss_opt=loss_opt)

    @property
    def n_samples(self) -> int:
        """``N``, the number of samples."""
        return len(self.x)

    def loss(self, w: np.ndarray | float, c: np.ndarray | float) -> np.ndarray:
        """Full-batch loss ``L(w, c)``; ``w`` and ``c`` broadcast (e.g. two meshgrid arrays).

        Returns an array of the broadcast shape (a 0-d array for scalars), in squared y units / 2.
        Evaluated as ``L* + ½ dᵀHd`` with ``d = θ − θ*``: exact for this quadratic, and free of the
        cancellation that expanding the squares would suffer near the minimum.
        """
        return self._stats["loss_opt"] + self.loss_gap(w, c)

    def loss_gap(self, w: np.ndarray | float, c: np.ndarray | float) -> np.ndarray:
        """``L(w, c) − L(θ*) = ½ dᵀHd ≥ 0`` (broadcasts like :meth:`loss`)."""
        s = self._stats
        dw = np.asarray(w, dtype=np.float64) - s["w_opt"]
        dc = np.asarray(c, dtype=np.float64) - s["c_opt"]
        with np.errstate(over="ignore", invalid="ignore"):
            return 0.5 * (dw * dw * s["xx"] + 2 * dw * dc * s["x"] + dc * dc)

    def loss_at(self, params: np.ndarray) -> float:
        """Full-batch loss at ``params = (w, c)``, as a float."""
        w, c = _as_params("params", params)
        return float(self.loss(w, c))

    def loss_surface(self, w_range: tuple[float, float], c_range: tuple[float, float],
                     resolution: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(W, C, L)``: meshgrids of shape ``(resolution, resolution)`` and the loss on them."""
        resolution = require_int("resolution", resolution, minimum=2, maximum=2000)
        w_lo, w_hi = (require_float("w_range", v) for v in w_range)
        c_lo, c_hi = (require_float("c_range", v) for v in c_range)
        if not (w_lo < w_hi and c_lo < c_hi):
            raise ValueError(f"ranges must be increasing, got w {w_range} and c {c_range}")
        w_grid, c_grid = np.meshgrid(np.linspace(w_lo, w_hi, resolution),
                                     np.linspace(c_lo, c_hi, resolution))
        return w_grid, c_grid, self.loss(w_grid, c_grid)

    def per_sample_gradients(self, params: np.ndarray) -> np.ndarray:
        """Gradients of each sample's loss ``½ r_i²`` with respect to ``(w, c)``: shape ``(N, 2)``, with
        the residuals ``r_i = w·x_i + c − y_i``."""
        w, c = _as_params("params", params)
        r = w * self.x + c - self.y
        return np.stack([r * self.x, r], axis=1)

    def gradient(self, params: np.ndarray) -> np.ndarray:
        """The exact full-batch gradient ``G(θ)`` (mean of the per-sample gradients), shape ``(2,)``."""
        w, c = _as_params("params", params)
        s = self._stats
        return np.array([w * s["xx"] + c * s["x"] - s["xy"], w * s["x"] + c - s["y"]])

    def batch_gradient(self, params: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """The minibatch gradient: mean of the per-sample gradients over ``indices``, shape ``(2,)``.

        ``indices`` is a non-empty 1-D integer array of sample indices in ``[0, N)``.
        """
        index = np.asarray(indices)
        if index.ndim != 1 or index.size == 0 or not np.issubdtype(index.dtype, np.integer):
            raise ValueError(f"indices must be a non-empty 1-D integer array, got {indices!r}")
        if index.min() < 0 or index.max() >= self.n_samples:
            raise ValueError(f"indices must lie in [0, {self.n_samples}), got {index.min()}..{index.max()}")
        w, c = _as_params("params", params)
        x, y = self.x[index], self.y[index]
        r = w * x + c - y
        return np.array([np.mean(r * x), np.mean(r)])

    def hessian(self) -> np.ndarray:
        """The (constant) Hessian of ``L``: ``[[mean x², mean x], [mean x, 1]]``, shape ``(2, 2)``."""
        s = self._stats
        return np.array([[s["xx"], s["x"]], [s["x"], 1.0]])

    def minimum(self) -> np.ndarray:
        """The least-squares solution ``θ* = (w*, c*)`` (where ``G = 0``), shape ``(2,)``."""
        return np.array([self._stats["w_opt"], self._stats["c_opt"]])

    def max_stable_learning_rate(self) -> float:
        """``2 / λ_max(H)``: full-batch gradient descent converges for learning rates below this."""
        return float(2.0 / np.linalg.eigvalsh(self.hessian())[-1])


def make_regression_problem(n_samples: int = 256, *, slope: float = 1.5, intercept: float = -0.5,
                            x_mean: float = 1.0, x_std: float = 1.0, noise: float = 0.8,
                            seed: int = 0) -> RegressionProblem:
    """Generate ``y = slope·x + intercept + noise·ε`` with ``x ~ Normal(x_mean, x_std)``, ``ε ~ N(0, 1)``.

    Seeded: the same arguments give the same data. A non-zero ``x_mean`` tilts the loss ellipses.

    Taught in: notebook 03 § A problem you can see whole.
    """
    n_samples = require_int("n_samples", n_samples, minimum=2, maximum=10_000_000)
    slope = require_float("slope", slope)
    intercept = require_float("intercept", intercept)
    x_mean = require_float("x_mean", x_mean)
    x_std = require_positive_float("x_std", x_std)
    noise = require_float("noise", noise, minimum=0)
    seed = require_int("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    x = rng.normal(x_mean, x_std, size=n_samples)
    y = slope * x + intercept + noise * rng.standard_normal(n_samples)
    return RegressionProblem(x, y)


@dataclass(frozen=True, eq=False)
class DescentPath:
    """One run of (minibatch) gradient descent on a :class:`RegressionProblem`.

    ``params`` has shape ``(k + 1, 2)``: row 0 is the start, row ``j`` the parameters after ``j``
    updates. ``losses`` (shape ``(k + 1,)``) is the full-batch loss at each row. ``k`` equals
    ``planned_steps`` unless the run diverged; then ``diverged_at = k`` is the update after which the
    loss first exceeded ``max_loss`` (that last, too-large point is kept, it is still finite).
    ``order`` holds the sample indices in the order the batches used them, epoch after epoch, and
    ``batch_starts`` / ``batch_ends`` the slice of ``order`` of each planned batch.

    Taught in: notebook 03 § What the defaults show, in numbers.
    """

    batch_size: int
    learning_rate: float
    params: np.ndarray
    losses: np.ndarray
    order: np.ndarray
    batch_starts: np.ndarray
    batch_ends: np.ndarray
    planned_steps: int
    n_samples: int
    max_loss: float
    diverged_at: int | None

    @property
    def steps(self) -> int:
        """Updates actually made (``planned_steps`` unless the run diverged)."""
        return len(self.params) - 1

    @property
    def diverged(self) -> bool:
        """Whether the loss exceeded ``max_loss`` (the run was stopped there)."""
        return self.diverged_at is not None

    @property
    def final_loss(self) -> float:
        """Full-batch loss after the last update made."""
        return float(self.losses[-1])

    @property
    def samples_seen(self) -> int:
        """Samples used by the updates made, repeats counted."""
        return int(np.sum(self.batch_ends[: self.steps] - self.batch_starts[: self.steps]))

    @property
    def epochs(self) -> float:
        """Passes over the data made by the updates so far: ``samples_seen / N``."""
        return self.samples_seen / self.n_samples

    def batch_indices(self, step: int) -> np.ndarray:
        """Sample indices of the batch used by update ``step`` (0-based), shape ``(batch size,)``."""
        step = require_int("step", step, minimum=0, maximum=self.planned_steps - 1)
        return self.order[self.batch_starts[step]: self.batch_ends[step]].copy()


def descent_path(problem: RegressionProblem, start: np.ndarray, *, batch_size: int, learning_rate: float,
                 steps: int, seed: int = 0, max_loss: float = 1e6) -> DescentPath:
    """Run ``steps`` updates ``θ ← θ − η·ĝ_B(θ)`` from ``start`` with batches of ``batch_size``.

    Batches are drawn like ``DataLoader(shuffle=True, drop_last=False)``: each epoch a fresh seeded
    permutation of the ``N`` indices, cut into consecutive slices of ``B`` (the last one shorter when B
    does not divide N). ``batch_size = N`` is plain (full-batch) gradient descent; ``1`` is SGD. The
    same seed gives the same batches, and a longer run extends a shorter one. If the full-batch loss
    exceeds ``max_loss`` the run stops there and is marked diverged (no overflow, no warning).

    Taught in: notebook 03 § What the defaults show, in numbers.
    """
    if not isinstance(problem, RegressionProblem):
        raise TypeError(f"problem must be a RegressionProblem, got {type(problem).__name__}")
    n = problem.n_samples
    w, c = _as_params("start", start)
    batch_size = require_int("batch_size", batch_size, minimum=1, maximum=n)
    learning_rate = require_positive_float("learning_rate", learning_rate)
    steps = require_int("steps", steps, minimum=1, maximum=10_000_000)
    seed = require_int("seed", seed, minimum=0)
    max_loss = require_positive_float("max_loss", max_loss)

    # Start and end offsets (into the concatenated epoch orders) of the first ``steps`` batches.
    bounds = np.array(batch_bounds(n, batch_size))  # (I, 2): one epoch's batches
    epochs = max(1, math.ceil(steps / len(bounds)))
    offsets = np.arange(epochs)[:, None] * n  # epoch e's positions start at e × N
    starts = (offsets + bounds[None, :, 0]).ravel()[:steps]
    ends = (offsets + bounds[None, :, 1]).ravel()[:steps]
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(n) for _ in range(epochs)])
    # Per batch: (mean x², mean x, mean xy, mean y) over its samples, by differences of cumsums.
    x, y = problem.x[order], problem.y[order]
    cumulative = np.vstack([np.zeros((1, 4)), np.cumsum(np.stack([x * x, x, x * y, y], axis=1), axis=0)])
    means = (cumulative[ends] - cumulative[starts]) / (ends - starts)[:, None]
    # The update loop on plain floats (two parameters: faster than NumPy calls per step).
    s = problem._stats
    sxx = s["xx"]
    sx = s["x"]
    w_opt = s["w_opt"]
    c_opt = s["c_opt"]
    loss_opt = s["loss_opt"]
    w, c = float(w), float(c)
    path = [(w, c)]
    losses = [problem.loss_at((w, c))]
    diverged_at = None
    for step, (bxx, bx, bxy, by) in enumerate(means.tolist(), start=1):
        grad_w, grad_c = w * bxx + c * bx - bxy, w * bx + c - by
        w, c = w - learning_rate * grad_w, c - learning_rate * grad_c
        dw, dc = w - w_opt, c - c_opt
        loss = loss_opt + 0.5 * (dw * dw * sxx + 2 * dw * dc * sx + dc * dc)
        path.append((w, c))
        losses.append(loss)
        if not loss <= max_loss:  # also catches inf and nan
            diverged_at = step
            break
    return DescentPath(batch_size, learning_rate, np.array(path), np.array(losses), order, starts,
                       ends, steps, n, max_loss, diverged_at)


def steps_for_budget(n_samples: int, batch_size: int, steps: int, budget: str = "equal updates") -> int:
    """Updates a run with batch size ``B`` gets under a budget of ``steps``.

    ``"equal updates"``: every batch size gets ``steps`` updates. ``"equal samples"``: every batch size
    processes the samples full-batch gradient descent processes in ``steps`` updates, that is
    ``steps`` epochs, so it gets ``steps × ceil(N / B)`` updates (``N·steps`` for SGD).

    Taught in: notebook 03 § What the defaults show, in numbers.
    """
    n_samples = require_int("n_samples", n_samples, minimum=1)
    batch_size = require_int("batch_size", batch_size, minimum=1, maximum=n_samples)
    steps = require_int("steps", steps, minimum=1)
    budget = require_choice("budget", budget, BUDGETS)
    return steps if budget == "equal updates" else steps * iterations_per_epoch(n_samples, batch_size)


def log_batch_sizes(n_samples: int, per_doubling: int = 2) -> list[int]:
    """Distinct integer batch sizes from 1 to ``N``, spaced evenly on a log scale (both ends included).

    ``per_doubling`` sizes per factor of two, e.g. ``N = 256, per_doubling = 1`` gives 1, 2, 4, …, 256.

    Taught in: notebook 03 § Gradient noise, measured against theory.
    """
    n_samples = require_int("n_samples", n_samples, minimum=1)
    per_doubling = require_int("per_doubling", per_doubling, minimum=1, maximum=16)
    if n_samples == 1:
        return [1]
    count = math.ceil(math.log2(n_samples) * per_doubling) + 1
    sizes = np.unique(np.rint(np.geomspace(1, n_samples, count)).astype(int))
    return [int(b) for b in sizes]
