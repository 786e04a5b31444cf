"""Gradient noise measurements against exact theory (batchlab.measure.gradients).

Tolerances come from the number of draws: a measured mean of ``n`` independent draws has standard
error ``sd/√n``; we accept |measured − predicted| ≤ 4 standard errors (a false alarm has probability
about 6e-5 per comparison for a normal error; the draws are seeded, so the tests are deterministic).
Where the standard error can be computed exactly (B = 1) the test uses the exact one.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from batchlab.line_fit import make_regression_problem
from batchlab.measure.gradients import (
    draw_minibatch_gradients,
    gradient_moments,
    measure_minibatch_noise,
    minibatch_variance,
    noise_scale,
    step_progress,
    torch_noise_scale,
)
from batchlab.models import make_mlp

PROBLEM = make_regression_problem(n_samples=100, seed=3)
START = np.array([3.0, 2.5])
GRADS = PROBLEM.per_sample_gradients(START)
N = PROBLEM.n_samples
SIGMAS = 4.0


def test_gradient_moments_are_population_moments():
    moments = gradient_moments(GRADS)
    np.testing.assert_allclose(moments.mean, PROBLEM.gradient(START), rtol=1e-12)
    np.testing.assert_allclose(moments.component_variance, GRADS.var(axis=0), rtol=1e-12)
    assert moments.trace_covariance == pytest.approx(GRADS.var(axis=0).sum(), rel=1e-12)
    assert moments.n_samples == N


def test_minibatch_variance_formula():
    assert minibatch_variance(3.0, 10, 1) == pytest.approx(3.0)  # B = 1: the per-sample variance
    assert minibatch_variance(3.0, 10, 10) == 0.0  # B = N: the full gradient, no noise
    assert minibatch_variance(3.0, 10, 5) == pytest.approx(3.0 / 5 * 5 / 9)
    assert minibatch_variance(3.0, 10, 5, replacement=True) == pytest.approx(0.6)
    np.testing.assert_allclose(minibatch_variance(1.0, 4, np.array([1, 2, 4])), [1, 1 / 3, 0])
    with pytest.raises(ValueError, match="batch_size"):
        minibatch_variance(1.0, 4, 5)
    with pytest.raises(ValueError, match="sigma2"):
        minibatch_variance(-1.0, 4, 2)


def test_minibatch_variance_equals_exact_enumeration():
    # All C(6, 3) = 20 batches of a tiny population: the formula is exact, not asymptotic.
    from itertools import combinations

    grads = np.random.default_rng(0).normal(size=(6, 2))
    g = grads.mean(axis=0)
    batches = np.array([grads[list(c)].mean(axis=0) for c in combinations(range(6), 3)])
    exact = np.mean(((batches - g) ** 2).sum(axis=1))
    assert exact == pytest.approx(minibatch_variance(gradient_moments(grads).trace_covariance, 6, 3))


def test_draws_have_distinct_indices_within_a_batch_and_are_seeded():
    drawn, index = draw_minibatch_gradients(GRADS, 30, 500, seed=5)
    assert drawn.shape == (500, 2) and index.shape == (500, 30)
    assert all(len(set(row)) == 30 for row in index.tolist())
    np.testing.assert_allclose(drawn, GRADS[index].mean(axis=1))
    again, _ = draw_minibatch_gradients(GRADS, 30, 500, seed=5)
    np.testing.assert_array_equal(drawn, again)
    # every sample is equally likely: each index appears about 500·30/100 = 150 times
    counts = np.bincount(index.ravel(), minlength=N)
    expected = 150
    # multivariate hypergeometric counts have variance below the binomial 150·(1 − 0.3) = 105
    assert np.all(np.abs(counts - expected) <= SIGMAS * np.sqrt(105) + 1)


def test_sgd_variance_within_exact_standard_error():
    """B = 1: each draw is one per-sample gradient, so Var of |g − G|² is known exactly."""
    n_draws = 4000
    (result,) = measure_minibatch_noise(GRADS, [1], n_draws=n_draws, seed=11)
    z = ((GRADS - GRADS.mean(axis=0)) ** 2).sum(axis=1)  # |g_i − G|² over the population
    exact_stderr = np.sqrt(z.var() / n_draws)
    assert result.predicted == pytest.approx(z.mean())
    assert abs(result.variance - result.predicted) <= SIGMAS * exact_stderr
    assert result.variance_stderr == pytest.approx(exact_stderr, rel=0.25)  # the estimate is close


@pytest.mark.parametrize("batch_size", [2, 5, 16, 50, 99])
def test_variance_matches_without_replacement_theory(batch_size):
    (result,) = measure_minibatch_noise(GRADS, [batch_size], n_draws=4000, seed=batch_size)
    assert abs(result.z_score) <= SIGMAS
    # per component too: chi-square-free bound from the draws' own spread
    drawn, _ = draw_minibatch_gradients(GRADS, batch_size, 4000, seed=batch_size)
    squared = (drawn - GRADS.mean(axis=0)) ** 2
    stderr = squared.std(axis=0, ddof=1) / np.sqrt(4000)
    predicted = minibatch_variance(GRADS.var(axis=0), N, batch_size)
    assert np.all(np.abs(squared.mean(axis=0) - predicted) <= SIGMAS * stderr)


def test_the_tolerance_can_fail_with_replacement_theory_is_rejected():
    (result,) = measure_minibatch_noise(GRADS, [50], n_draws=4000, seed=3)
    gap = abs(result.variance - result.predicted_with_replacement)
    assert gap > 10 * SIGMAS * result.variance_stderr  # σ²/B is twice the truth at B = N/2


def test_minibatch_mean_is_unbiased():
    for result in measure_minibatch_noise(GRADS, [1, 7, 60], n_draws=4000, seed=21):
        assert np.all(np.abs(result.mean - result.full_gradient) <= SIGMAS * result.mean_stderr)


def test_full_batch_has_no_noise():
    (result,) = measure_minibatch_noise(GRADS, [N], n_draws=50)
    assert result.predicted == 0.0
    assert result.variance < 1e-24
    assert result.z_score == 0.0


def test_standard_errors_are_calibrated():
    """Over many independent repetitions about 95% of |z| should be ≤ 2 (normal approximation)."""
    z = np.array([r.z_score for s in range(200)
                  for r in measure_minibatch_noise(GRADS, [1, 4, 32], n_draws=400, seed=1000 * s)])
    coverage = np.mean(np.abs(z) <= 2)
    spread = np.sqrt(0.95 * 0.05 / len(z))  # binomial standard deviation of the coverage
    assert abs(coverage - 0.95) <= SIGMAS * spread


def test_noise_scale_definition_and_growth_near_the_optimum():
    moments = gradient_moments(GRADS)
    scale = noise_scale(GRADS)
    norm_sq = float(moments.mean @ moments.mean)
    assert scale.gradient_norm_sq == pytest.approx(norm_sq)
    assert scale.b_simple == pytest.approx(moments.trace_covariance / norm_sq)
    assert scale.b_noise is None and scale.n_samples == N
    optimum = PROBLEM.minimum()
    values = [noise_scale(PROBLEM.per_sample_gradients(optimum + f * (START - optimum))).b_simple
              for f in (1.0, 0.3, 0.1, 0.03, 0.01)]
    assert values == sorted(values) and values[-1] > 100 * values[0]


def test_b_noise_equals_b_simple_for_isotropic_curvature():
    scale = noise_scale(GRADS, hessian=3.0 * np.eye(2))
    assert scale.b_noise == pytest.approx(scale.b_simple)
    moments = gradient_moments(GRADS)
    h = PROBLEM.hessian()
    centred = GRADS - moments.mean
    expected = np.trace(h @ centred.T @ centred / N) / (moments.mean @ h @ moments.mean)
    assert noise_scale(GRADS, hessian=h).b_noise == pytest.approx(expected)


def test_step_progress_matches_the_quadratic_prediction():
    point = PROBLEM.minimum() + 0.05 * (START - PROBLEM.minimum())
    grads = PROBLEM.per_sample_gradients(point)
    sizes = [1, 3, 10, 30, 99, N]
    progress = step_progress(lambda p: PROBLEM.loss(p[:, 0], p[:, 1]), point, grads,
                             PROBLEM.hessian(), sizes, n_draws=3000, seed=2)
    assert np.all(np.diff(progress.predicted) > 0)  # bigger batches never hurt per step
    assert progress.predicted[-1] == pytest.approx(progress.ideal)  # B = N: the noise-free step
    inner = progress.stderr[:-1]
    assert np.all(np.abs(progress.measured[:-1] - progress.predicted[:-1]) <= SIGMAS * inner)
    assert progress.measured[-1] == pytest.approx(progress.ideal, rel=1e-9)
    # per sample, small batches are far more efficient than B = N
    per_sample = progress.measured / np.array(sizes)
    assert per_sample[0] > 5 * per_sample[-1]


def loop_per_sample_gradients(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor):
    """Per-sample gradients by plain autograd, one sample at a time (independent of torch.func)."""
    rows = []
    for xi, yi in zip(x, y, strict=True):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(xi[None]), yi[None]).backward()
        rows.append(torch.cat([p.grad.reshape(-1) for p in model.parameters()]))
    return torch.stack(rows)


def test_torch_noise_scale_matches_per_sample_gradients_from_a_loop():
    torch.manual_seed(0)
    model = make_mlp(n_features=5, n_classes=3, hidden=(7,), seed=1)
    x = torch.randn(40, 5)
    y = torch.randint(0, 3, (40,))
    slow = loop_per_sample_gradients(model, x, y)
    expected = noise_scale(slow.double().numpy())
    got = torch_noise_scale(model, x, y, chunk_size=9)
    assert got.b_simple == pytest.approx(expected.b_simple, rel=1e-4)
    assert got.trace_covariance == pytest.approx(expected.trace_covariance, rel=1e-4)
    assert got.n_samples == 40
    assert model.training  # mode restored


def softmax_regression(n: int = 30, features: int = 4, classes: int = 3, seed: int = 0):
    """A float64 softmax regression ``nn.Linear`` on random data, with its exact per-sample gradients and
    mean-loss Hessian in NumPy (closed forms, no autograd): for logits ``Wx + b`` and probabilities ``p``,
    ``g_i = (p_i − e_{y_i}) ⊗ [x_i, 1]`` and ``H = 1/n Σ_i (diag p_i − p_i p_iᵀ) ⊗ [x_i, 1][x_i, 1]ᵀ``,
    laid out as ``named_parameters`` flattens them (the weight row by row, then the bias)."""
    generator = torch.Generator().manual_seed(seed)
    model = torch.nn.Linear(features, classes).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(classes, features, generator=generator, dtype=torch.float64))
        model.bias.copy_(torch.randn(classes, generator=generator, dtype=torch.float64))
    x = torch.randn(n, features, generator=generator, dtype=torch.float64)
    y = torch.randint(0, classes, (n,), generator=generator)
    w, bias, xs = model.weight.detach().numpy(), model.bias.detach().numpy(), x.numpy()
    logits = xs @ w.T + bias
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    residual = p - np.eye(classes)[y.numpy()]
    grads = np.hstack([np.einsum("nk,nj->nkj", residual, xs).reshape(n, -1), residual])
    d = classes * (features + 1)
    hessian = np.zeros((d, d))
    for pi, xi in zip(p, xs, strict=True):
        a = np.diag(pi) - np.outer(pi, pi)
        weight_rows = slice(0, classes * features)
        bias_rows = slice(classes * features, d)
        hessian[weight_rows, weight_rows] += np.kron(a, np.outer(xi, xi))
        hessian[weight_rows, bias_rows] += np.kron(a, xi[:, None])
        hessian[bias_rows, weight_rows] += np.kron(a, xi[None, :])
        hessian[bias_rows, bias_rows] += a
    return model, x, y, grads, hessian / n


def test_torch_b_noise_matches_the_exact_hessian_of_softmax_regression():
    model, x, y, grads, hessian = softmax_regression()
    expected = noise_scale(grads, hessian=hessian)
    got = torch_noise_scale(model, x, y, chunk_size=8, curvature=True)
    assert got.b_simple == pytest.approx(expected.b_simple, rel=1e-9)
    assert got.curvature == pytest.approx(expected.curvature, rel=1e-9)
    assert got.trace_h_sigma == pytest.approx(expected.trace_h_sigma, rel=1e-9)
    assert got.b_noise == pytest.approx(expected.b_noise, rel=1e-9)
    assert got.max_rate == pytest.approx(expected.gradient_norm_sq / expected.curvature, rel=1e-9)
    assert got.b_noise != pytest.approx(got.b_simple, rel=0.01)  # the curvature matters here
    assert torch_noise_scale(model, x, y).b_noise is None  # curvature=False: B_simple only


def test_torch_b_noise_from_a_seeded_subset_of_samples():
    model, x, y, grads, hessian = softmax_regression(n=40, seed=1)
    n = len(grads)
    everyone = torch_noise_scale(model, x, y, curvature=True, curvature_samples=n)
    assert everyone.b_noise == pytest.approx(noise_scale(grads, hessian=hessian).b_noise, rel=1e-9)
    subset = torch_noise_scale(model, x, y, curvature=True, curvature_samples=10, seed=3)
    chosen = torch.randperm(n, generator=torch.Generator().manual_seed(3))[:10].numpy()
    centred = grads[chosen] - grads.mean(axis=0)
    forms = np.einsum("nd,de,ne->n", centred, hessian, centred)
    assert subset.trace_h_sigma == pytest.approx(forms.mean(), rel=1e-9)
    assert subset.curvature == pytest.approx(everyone.curvature, rel=1e-12)  # G and H use every sample
    again = torch_noise_scale(model, x, y, curvature=True, curvature_samples=10, seed=3)
    assert again.b_noise == subset.b_noise  # seeded


def test_noise_scale_with_a_hessian_reports_its_terms():
    h = PROBLEM.hessian()
    scale = noise_scale(GRADS, hessian=h)
    g = GRADS.mean(axis=0)
    assert scale.curvature == pytest.approx(g @ h @ g)
    assert scale.b_noise == pytest.approx(scale.trace_h_sigma / scale.curvature)
    assert scale.max_rate == pytest.approx((g @ g) / (g @ h @ g))
    assert noise_scale(GRADS).max_rate is None
    assert noise_scale(GRADS, hessian=-np.eye(2)).max_rate == np.inf  # no best rate on a concave loss


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda: gradient_moments(np.zeros(5)), ValueError),
        (lambda: gradient_moments(np.full((3, 2), np.nan)), ValueError),
        (lambda: draw_minibatch_gradients(GRADS, 0, 10), ValueError),
        (lambda: draw_minibatch_gradients(GRADS, N + 1, 10), ValueError),
        (lambda: draw_minibatch_gradients(GRADS, 2.5, 10), TypeError),
        (lambda: draw_minibatch_gradients(GRADS, 2, 1), ValueError),
        (lambda: measure_minibatch_noise(GRADS, []), ValueError),
        (lambda: noise_scale(GRADS, hessian=np.eye(3)), ValueError),
        (lambda: torch_noise_scale("model", torch.zeros(2, 2), torch.zeros(2)), TypeError),
        (lambda: torch_noise_scale(torch.nn.Linear(2, 2), torch.zeros(3, 2), torch.zeros(3, dtype=torch.long),
                                   curvature="yes"), TypeError),
        (lambda: torch_noise_scale(torch.nn.Linear(2, 2), torch.zeros(3, 2), torch.zeros(3, dtype=torch.long),
                                   curvature=True, curvature_samples=4), ValueError),
        (lambda: torch_noise_scale(torch.nn.Linear(2, 2), torch.zeros(3, 2), torch.zeros(3, dtype=torch.long),
                                   curvature=True, curvature_samples=1), ValueError),
        (lambda: torch_noise_scale(torch.nn.Linear(2, 2), torch.zeros(3, 2), torch.zeros(3, dtype=torch.long),
                                   curvature=True, seed=-1), ValueError),
        (lambda: step_progress(lambda p: p[:, 0], np.zeros(3), GRADS, np.eye(2), [1]), ValueError),
    ],
)
def test_validation(call, error):
    with pytest.raises(error):
        call()
