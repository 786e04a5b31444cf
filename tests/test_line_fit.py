"""The two-parameter problem and its descent paths (batchlab.line_fit)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchlab.arithmetic import iterations_per_epoch, last_batch_size
from batchlab.line_fit import (
    RegressionProblem,
    descent_path,
    log_batch_sizes,
    make_regression_problem,
    steps_for_budget,
)

PROBLEM = make_regression_problem(n_samples=100, seed=3)
START = np.array([3.0, 2.5])
finite = st.floats(-20, 20, allow_nan=False)


def direct_loss(problem: RegressionProblem, w: float, c: float) -> float:
    return 0.5 * float(np.mean((w * problem.x + c - problem.y) ** 2))


def test_generation_is_seeded_and_float64():
    a, b = make_regression_problem(seed=1), make_regression_problem(seed=1)
    assert a.n_samples == 256
    assert a.x.dtype == np.float64 and a.y.dtype == np.float64
    np.testing.assert_array_equal(a.x, b.x)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.y, make_regression_problem(seed=2).y)


def test_noise_free_data_recover_the_line():
    problem = make_regression_problem(50, slope=2.0, intercept=-3.0, noise=0.0)
    np.testing.assert_allclose(problem.minimum(), [2.0, -3.0], atol=1e-10)
    assert problem.loss_at(np.array([2.0, -3.0])) == pytest.approx(0.0, abs=1e-20)


@given(finite, finite)
def test_loss_from_statistics_equals_the_direct_mean(w, c):
    expected = direct_loss(PROBLEM, w, c)
    assert float(PROBLEM.loss(w, c)) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_loss_surface_matches_pointwise_loss():
    w_grid, c_grid, loss = PROBLEM.loss_surface((-1, 3), (-2, 2), resolution=7)
    assert w_grid.shape == c_grid.shape == loss.shape == (7, 7)
    assert loss[3, 5] == pytest.approx(direct_loss(PROBLEM, w_grid[3, 5], c_grid[3, 5]))
    assert w_grid[0, 0] == -1 and w_grid[0, -1] == 3 and c_grid[-1, 0] == 2


@given(finite, finite)
def test_gradient_is_mean_of_per_sample_gradients_and_matches_finite_differences(w, c):
    params = np.array([w, c])
    per_sample = PROBLEM.per_sample_gradients(params)
    assert per_sample.shape == (PROBLEM.n_samples, 2)
    np.testing.assert_allclose(PROBLEM.gradient(params), per_sample.mean(axis=0), rtol=1e-9,
                               atol=1e-9)
    h = 1e-6
    numeric = [(direct_loss(PROBLEM, w + h, c) - direct_loss(PROBLEM, w - h, c)) / (2 * h),
               (direct_loss(PROBLEM, w, c + h) - direct_loss(PROBLEM, w, c - h)) / (2 * h)]
    np.testing.assert_allclose(PROBLEM.gradient(params), numeric, rtol=1e-5, atol=1e-5)


def test_batch_gradient_is_the_mean_over_the_batch():
    params = np.array([0.3, -1.2])
    index = np.array([4, 17, 17, 60])
    expected = PROBLEM.per_sample_gradients(params)[index].mean(axis=0)
    np.testing.assert_allclose(PROBLEM.batch_gradient(params, index), expected)
    np.testing.assert_allclose(PROBLEM.batch_gradient(params, np.arange(PROBLEM.n_samples)),
                               PROBLEM.gradient(params))


def test_minimum_hessian_and_stability_limit():
    optimum = PROBLEM.minimum()
    np.testing.assert_allclose(PROBLEM.gradient(optimum), [0, 0], atol=1e-12)
    h = PROBLEM.hessian()
    for direction in (np.array([1.0, 0.0]), np.array([0.3, -0.7])):
        # L is quadratic: L(θ* + d) − L* = ½ dᵀHd exactly.
        gap = PROBLEM.loss_at(optimum + direction) - PROBLEM.loss_at(optimum)
        assert gap == pytest.approx(0.5 * direction @ h @ direction, rel=1e-9)
    assert PROBLEM.max_stable_learning_rate() == pytest.approx(2 / np.linalg.eigvalsh(h).max())


def gradient_descent(problem: RegressionProblem, start: np.ndarray, lr: float, steps: int):
    """Plain full-batch gradient descent, written independently of batchlab."""
    design = np.stack([problem.x, np.ones_like(problem.x)], axis=1)
    theta, out = start.copy(), [start.copy()]
    for _ in range(steps):
        theta = theta - lr * design.T @ (design @ theta - problem.y) / len(problem.y)
        out.append(theta)
    return np.array(out)


def test_full_batch_path_is_exact_gradient_descent():
    path = descent_path(PROBLEM, START, batch_size=100, learning_rate=0.2, steps=40)
    np.testing.assert_allclose(path.params, gradient_descent(PROBLEM, START, 0.2, 40), rtol=1e-10,
                               atol=1e-12)
    assert path.steps == 40 and not path.diverged
    assert path.samples_seen == 40 * 100 and path.epochs == 40


@pytest.mark.parametrize("batch_size", [1, 7, 32, 100])
def test_every_update_uses_its_recorded_batch(batch_size):
    lr = 0.05
    path = descent_path(PROBLEM, START, batch_size=batch_size, learning_rate=lr, steps=35, seed=4)
    for k in range(path.steps):
        index = path.batch_indices(k)
        x, y = PROBLEM.x[index], PROBLEM.y[index]
        w, c = path.params[k]
        r = w * x + c - y
        expected = path.params[k] - lr * np.array([np.mean(r * x), np.mean(r)])
        np.testing.assert_allclose(path.params[k + 1], expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(path.losses, [direct_loss(PROBLEM, *p) for p in path.params],
                               rtol=1e-9)


@pytest.mark.parametrize("batch_size", [1, 3, 8, 30, 99, 100])
def test_batches_follow_a_shuffled_loader_without_drop_last(batch_size):
    n = PROBLEM.n_samples
    per_epoch = iterations_per_epoch(n, batch_size)
    path = descent_path(PROBLEM, START, batch_size=batch_size, learning_rate=0.01,
                        steps=2 * per_epoch, seed=7)
    epochs = [[path.batch_indices(e * per_epoch + k) for k in range(per_epoch)] for e in range(2)]
    for batches in epochs:
        sizes = [len(b) for b in batches]
        assert sizes[:-1] == [batch_size] * (per_epoch - 1)
        assert sizes[-1] == last_batch_size(n, batch_size)
        assert sorted(np.concatenate(batches).tolist()) == list(range(n))  # a permutation
    if batch_size < n:  # reshuffled each epoch
        assert not np.array_equal(np.concatenate(epochs[0]), np.concatenate(epochs[1]))


def test_sgd_uses_exactly_one_sample_per_update():
    path = descent_path(PROBLEM, START, batch_size=1, learning_rate=0.01, steps=250)
    assert all(len(path.batch_indices(k)) == 1 for k in range(250))
    assert path.samples_seen == 250


def test_paths_are_seeded_and_longer_runs_extend_shorter_ones():
    short = descent_path(PROBLEM, START, batch_size=8, learning_rate=0.05, steps=20, seed=1)
    long = descent_path(PROBLEM, START, batch_size=8, learning_rate=0.05, steps=50, seed=1)
    again = descent_path(PROBLEM, START, batch_size=8, learning_rate=0.05, steps=20, seed=1)
    other = descent_path(PROBLEM, START, batch_size=8, learning_rate=0.05, steps=20, seed=2)
    np.testing.assert_array_equal(short.params, again.params)
    np.testing.assert_array_equal(short.params, long.params[:21])
    assert not np.array_equal(short.params, other.params)


@pytest.mark.parametrize("batch_size", [1, 10, 100])
def test_divergence_stops_cleanly_without_warnings(batch_size):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = descent_path(PROBLEM, START, batch_size=batch_size, learning_rate=5.0, steps=10_000,
                            max_loss=1e6)
    assert path.diverged and 1 <= path.diverged_at < 10_000
    assert path.steps == path.diverged_at
    assert np.all(np.isfinite(path.params)) and np.all(np.isfinite(path.losses))
    assert path.losses[-1] > 1e6 and np.all(path.losses[:-1] <= 1e6)


def test_stable_learning_rate_does_not_diverge_but_twice_the_limit_does():
    limit = PROBLEM.max_stable_learning_rate()
    stable = descent_path(PROBLEM, START, batch_size=100, learning_rate=0.95 * limit, steps=500)
    unstable = descent_path(PROBLEM, START, batch_size=100, learning_rate=1.05 * limit, steps=5000)
    assert not stable.diverged
    assert stable.final_loss == pytest.approx(PROBLEM.loss_at(PROBLEM.minimum()), rel=1e-6)
    assert unstable.diverged


def test_steps_for_budget():
    assert steps_for_budget(256, 1, 5) == 5
    assert steps_for_budget(256, 256, 5, "equal updates") == 5
    assert steps_for_budget(256, 256, 5, "equal samples") == 5
    assert steps_for_budget(256, 1, 5, "equal samples") == 1280
    assert steps_for_budget(256, 100, 5, "equal samples") == 15  # ceil(256/100) = 3 per epoch
    with pytest.raises(ValueError, match="budget"):
        steps_for_budget(256, 1, 5, "equal time")
    with pytest.raises(ValueError, match="batch_size"):
        steps_for_budget(256, 257, 5)


@given(st.integers(1, 5000), st.integers(1, 4))
def test_log_batch_sizes_span_one_to_n(n, per_doubling):
    sizes = log_batch_sizes(n, per_doubling)
    assert sizes[0] == 1 and sizes[-1] == n
    assert sizes == sorted(set(sizes))
    assert all(isinstance(b, int) for b in sizes)


def test_log_batch_sizes_example():
    assert log_batch_sizes(256, 1) == [1, 2, 4, 8, 16, 32, 64, 128, 256]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 101}, ValueError, "batch_size"),
        ({"batch_size": 2.0}, TypeError, "batch_size"),
        ({"batch_size": True}, TypeError, "batch_size"),
        ({"learning_rate": 0.0}, ValueError, "learning_rate"),
        ({"learning_rate": float("nan")}, ValueError, "learning_rate"),
        ({"steps": 0}, ValueError, "steps"),
        ({"max_loss": -1.0}, ValueError, "max_loss"),
    ],
)
def test_descent_path_validates_arguments(kwargs, error, match):
    arguments = {"batch_size": 4, "learning_rate": 0.1, "steps": 3, **kwargs}
    with pytest.raises(error, match=match):
        descent_path(PROBLEM, START, **arguments)


def test_other_validation():
    with pytest.raises(ValueError, match="start"):
        descent_path(PROBLEM, [1.0, 2.0, 3.0], batch_size=1, learning_rate=0.1, steps=1)
    with pytest.raises(ValueError, match="start"):
        descent_path(PROBLEM, [np.inf, 2.0], batch_size=1, learning_rate=0.1, steps=1)
    with pytest.raises(TypeError, match="problem"):
        descent_path("data", START, batch_size=1, learning_rate=0.1, steps=1)
    with pytest.raises(ValueError, match="n_samples"):
        make_regression_problem(1)
    with pytest.raises(ValueError, match="x_std"):
        make_regression_problem(x_std=0.0)
    with pytest.raises(ValueError, match="indices"):
        PROBLEM.batch_gradient(START, np.array([0, 100]))
    with pytest.raises(ValueError, match="indices"):
        PROBLEM.batch_gradient(START, np.array([], dtype=int))
    with pytest.raises(ValueError, match="ranges"):
        PROBLEM.loss_surface((1, 0), (0, 1))
    with pytest.raises(ValueError, match="x and y"):
        RegressionProblem(np.zeros(3), np.zeros(4))
    path = descent_path(PROBLEM, START, batch_size=4, learning_rate=0.1, steps=3)
    with pytest.raises(ValueError, match="step"):
        path.batch_indices(3)
