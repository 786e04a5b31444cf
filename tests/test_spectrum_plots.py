"""Figures of notebook 03 against the batch size (batchlab.plots.spectrum)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from batchlab.line_fit import make_regression_problem
from batchlab.measure.gradients import gradient_moments, measure_minibatch_noise, step_progress
from batchlab.plots.spectrum import plot_gradient_noise, plot_step_progress, plot_throughput

PROBLEM = make_regression_problem(n_samples=64, seed=2)
POINT = np.array([2.0, 1.0])
GRADS = PROBLEM.per_sample_gradients(POINT)


def test_noise_plot_shows_measurements_and_both_theories():
    noise = measure_minibatch_noise(GRADS, [1, 4, 16, 63, 64], n_draws=200)
    sigma2 = gradient_moments(GRADS).trace_covariance
    fig, ax = plt.subplots()
    artists = plot_gradient_noise(ax, noise, sigma2, 64)
    x, y = (np.asarray(v, dtype=float) for v in artists["measured"].lines[0].get_data())
    np.testing.assert_array_equal(x, [1, 4, 16, 63])  # B = N (zero variance) is left off the log axis
    np.testing.assert_allclose(y, [m.variance for m in noise[:4]])
    bx, by = artists["theory"].get_data()
    np.testing.assert_allclose(by, sigma2 / bx * (64 - bx) / 63)
    wx, wy = artists["with_replacement"].get_data()
    np.testing.assert_allclose(wy, sigma2 / wx)
    assert ax.get_xscale() == ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="B < N"):
        plot_gradient_noise(ax, noise[-1:], sigma2, 64)
    plt.close(fig)


def test_step_progress_plot_divides_by_batch_size_on_the_right():
    progress = step_progress(lambda p: PROBLEM.loss(p[:, 0], p[:, 1]), POINT, GRADS,
                             PROBLEM.hessian(), [1, 8, 64], n_draws=100)
    fig, (left, right) = plt.subplots(1, 2)
    artists = plot_step_progress(left, right, progress, b_noise=5.0)
    np.testing.assert_allclose(artists["predicted per step"].get_ydata(), progress.predicted)
    np.testing.assert_allclose(artists["predicted per sample"].get_ydata(),
                               progress.predicted / np.array([1, 8, 64]))
    assert any(line.get_xdata()[0] == 5.0 for line in left.lines)  # the B_noise marker
    plt.close(fig)


def test_throughput_plot():
    fig, (left, right) = plt.subplots(1, 2)
    artists = plot_throughput(left, right, [1, 10, 100], [0.001, 0.0012, 0.005])
    np.testing.assert_allclose(artists["rate"].get_ydata(), [1000, 10 / 0.0012, 20000])
    np.testing.assert_allclose(artists["time"].get_ydata(), [1.0, 1.2, 5.0])
    with pytest.raises(ValueError):
        plot_throughput(left, right, [1, 10], [0.001])
    with pytest.raises(ValueError):
        plot_throughput(left, right, [1, 10], [0.001, 0.0])
    plt.close(fig)
