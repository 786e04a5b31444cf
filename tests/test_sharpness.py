"""Sharpness measurements on losses whose answers are known in closed form (quadratics)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from batchlab.measure.sharpness import (
    dataset_loss,
    epsilon_first_order,
    epsilon_sharpness,
    filter_normalized_direction,
    gradient_norm,
    loss_slice,
    mean_slice,
    slice_sharpness,
    top_hessian_eigenvalue,
)
from batchlab.models import make_mlp


class Vector(nn.Module):
    """One float64 parameter vector ``w``; the loss is supplied separately."""

    def __init__(self, values: list[float]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(values, dtype=torch.float64))


class Matrix(nn.Module):
    """One float64 weight matrix ``W`` (out, in), as in a bias-free linear layer."""

    def __init__(self, values: np.ndarray) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.tensor(values, dtype=torch.float64))


def quadratic(a: float):
    """``L(w) = ½·a·‖w‖²`` for a module with one parameter."""
    def loss(model: nn.Module) -> torch.Tensor:
        (w,) = list(model.parameters())
        return 0.5 * a * (w**2).sum()
    return loss


def diagonal_quadratic(curvatures: list[float]):
    """``L(w) = ½·Σ a_i w_i²`` (Hessian diag(a))."""
    a = torch.tensor(curvatures, dtype=torch.float64)

    def loss(model: Vector) -> torch.Tensor:
        return 0.5 * (a * model.w**2).sum()
    return loss


# ----------------------------------------------------------------------------- loss_slice
def test_slice_of_a_quadratic_at_its_minimum_is_half_a_t_squared():
    a = 3.0
    model = Vector([0.0])
    ts = np.linspace(-2, 2, 9)
    losses = loss_slice(model, quadratic(a), [torch.tensor([1.0], dtype=torch.float64)], ts)
    np.testing.assert_allclose(losses, 0.5 * a * ts**2, rtol=0, atol=1e-15)


def test_slice_away_from_the_minimum_is_the_shifted_parabola():
    a, w0 = 2.0, 0.7
    model = Vector([w0, 0.0])
    d = torch.tensor([0.6, 0.8], dtype=torch.float64)  # a unit vector
    ts = np.array([-1.0, 0.0, 0.5, 2.0])
    losses = loss_slice(model, quadratic(a), [d], ts)
    expected = 0.5 * a * ((w0 + 0.6 * ts) ** 2 + (0.8 * ts) ** 2)
    np.testing.assert_allclose(losses, expected, rtol=1e-14)


@given(a=st.floats(0.01, 100.0), t=st.floats(-10.0, 10.0))
def test_slice_property_half_a_t_squared(a: float, t: float):
    losses = loss_slice(Vector([0.0]), quadratic(a), [torch.ones(1, dtype=torch.float64)], [t])
    assert math.isclose(losses[0], 0.5 * a * t * t, rel_tol=1e-12, abs_tol=1e-300)


def test_slice_leaves_the_model_exactly_as_it_was():
    model = make_mlp(hidden=(5,), seed=1)
    model.train()
    before = [p.detach().clone() for p in model.parameters()]
    x, y = torch.rand(7, 64), torch.randint(0, 10, (7,))
    model(x).sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    direction = filter_normalized_direction(model, seed=3)
    loss_slice(model, dataset_loss(x, y), direction, np.linspace(-1, 1, 5))
    assert model.training
    for p, p0, g in zip(model.parameters(), before, grads, strict=True):
        assert torch.equal(p, p0)
        assert torch.equal(p.grad, g)


def test_slice_at_zero_is_the_loss_itself():
    model = make_mlp(hidden=(4,), seed=0)
    x, y = torch.rand(9, 64), torch.randint(0, 10, (9,))
    loss_fn = dataset_loss(x, y)
    (at_zero,) = loss_slice(model, loss_fn, filter_normalized_direction(model), [0.0])
    assert at_zero == pytest.approx(float(loss_fn(model).detach()), rel=1e-7)


# ----------------------------------------------------------------------------- filter normalisation
def test_filter_normalised_rows_have_the_weights_row_norms_and_biases_are_zero():
    model = make_mlp(hidden=(6,), seed=2)
    direction = filter_normalized_direction(model, seed=5)
    for p, d in zip(model.parameters(), direction, strict=True):
        assert d.shape == p.shape and d.dtype == p.dtype
        if p.dim() == 2:
            torch.testing.assert_close(d.norm(dim=1), p.detach().norm(dim=1))
        else:
            assert torch.count_nonzero(d) == 0


def test_filter_normalisation_with_biases_scales_each_bias_to_its_norm():
    model = make_mlp(hidden=(6,), seed=2)
    for p, d in zip(model.parameters(), filter_normalized_direction(model, include_biases=True),
                    strict=True):
        if p.dim() == 1:
            torch.testing.assert_close(d.norm(), p.detach().norm())


def test_filter_normalisation_zero_row_gives_zero_row():
    weights = np.array([[3.0, 4.0], [0.0, 0.0]])
    (d,) = filter_normalized_direction(Matrix(weights), seed=0)
    assert d[1].abs().sum() == 0
    assert float(d[0].norm()) == pytest.approx(5.0)


def test_filter_normalised_direction_is_seeded_and_leaves_global_rng_alone():
    model = make_mlp(hidden=(4,), seed=0)
    state = torch.random.get_rng_state()
    a = filter_normalized_direction(model, seed=7)
    b = filter_normalized_direction(model, seed=7)
    c = filter_normalized_direction(model, seed=8)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(u, v) for u, v in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])


# ----------------------------------------------------------------------------- slice sharpness
def test_slice_sharpness_of_a_quadratic_is_half_a_alpha_squared_times_weight_norm_squared():
    # Filter normalisation makes ‖d‖_F = ‖W‖_F for every draw, so the answer does not depend on d.
    a, alpha = 4.0, 0.3
    weights = np.array([[1.0, -2.0, 0.5], [0.3, 0.1, 2.0]])
    value = slice_sharpness(Matrix(weights), quadratic(a), distance=alpha, n_directions=3, seed=1)
    assert value == pytest.approx(0.5 * a * alpha**2 * float((weights**2).sum()), rel=1e-12)


def test_mean_slice_of_a_quadratic_is_the_same_parabola_for_every_direction():
    a = 2.0
    weights = np.array([[1.0, 1.0], [2.0, 0.0]])
    ts = np.linspace(-1, 1, 5)
    # At a non-minimum point the slope term depends on d; the curvature term 0.5·a·t²·‖W‖² does not.
    curve = mean_slice(Matrix(weights), quadratic(a), ts, n_directions=2, seed=0)
    even = (curve + curve[::-1]) / 2
    np.testing.assert_allclose(even, 0.5 * a * (weights**2).sum() * (1 + ts**2), rtol=1e-12)


# ----------------------------------------------------------------------------- epsilon sharpness
def test_epsilon_sharpness_at_the_minimum_of_a_quadratic():
    # Box |δ| ≤ ε(|0| + 1) = ε; the maximum ½·a·ε² sits at a corner; L(θ) = 0.
    a, eps = 10.0, 0.01
    value = epsilon_sharpness(Vector([0.0]), quadratic(a), epsilon=eps, steps=5)
    assert value == pytest.approx(100 * 0.5 * a * eps**2, rel=1e-12)


def test_epsilon_sharpness_away_from_the_minimum_uses_the_scaled_box():
    a, eps, w0 = 2.0, 0.05, -2.0
    base = 0.5 * a * w0**2
    worst = 0.5 * a * (abs(w0) + eps * (abs(w0) + 1)) ** 2
    value = epsilon_sharpness(Vector([w0]), quadratic(a), epsilon=eps, steps=5, seed=3)
    assert value == pytest.approx(100 * (worst - base) / (1 + base), rel=1e-12)


def test_epsilon_sharpness_of_a_diagonal_quadratic_reaches_the_corner():
    curvatures, eps = [1.0, 4.0, 9.0], 0.1
    value = epsilon_sharpness(Vector([0.0, 0.0, 0.0]), diagonal_quadratic(curvatures), epsilon=eps,
                              steps=6, seed=0)
    assert value == pytest.approx(100 * 0.5 * sum(curvatures) * eps**2, rel=1e-12)


def test_epsilon_sharpness_grows_with_the_curvature():
    flat = epsilon_sharpness(Vector([0.0]), quadratic(1.0), epsilon=0.1)
    sharp = epsilon_sharpness(Vector([0.0]), quadratic(50.0), epsilon=0.1)
    assert sharp == pytest.approx(50 * flat)


def test_epsilon_first_order_is_the_linearised_box_rise():
    a, eps, w0 = 2.0, 0.05, -2.0
    base = 0.5 * a * w0**2
    expected = 100 * eps * (a * abs(w0)) * (abs(w0) + 1) / (1 + base)
    assert epsilon_first_order(Vector([w0]), quadratic(a), epsilon=eps) == pytest.approx(expected)
    # The full measure adds the curvature term ½·a·(ε(|w0|+1))², in % of 1 + L.
    full = epsilon_sharpness(Vector([w0]), quadratic(a), epsilon=eps)
    curvature = 100 * 0.5 * a * (eps * (abs(w0) + 1)) ** 2 / (1 + base)
    assert full == pytest.approx(expected + curvature)
    assert epsilon_first_order(Vector([0.0]), quadratic(a)) == 0.0  # at a minimum: curvature only
    with pytest.raises(ValueError, match="epsilon"):
        epsilon_first_order(Vector([0.0]), quadratic(a), epsilon=-1.0)


# ----------------------------------------------------------------------------- Hessian and gradient
def test_top_hessian_eigenvalue_of_a_diagonal_quadratic():
    value = top_hessian_eigenvalue(Vector([0.3, -1.0, 2.0]), diagonal_quadratic([1.0, 5.0, 3.0]),
                                   iterations=60)
    assert value == pytest.approx(5.0, rel=1e-6)


def test_top_hessian_eigenvalue_of_a_coupled_quadratic_matches_numpy():
    matrix = np.array([[2.0, 1.0, 0.0], [1.0, 3.0, 0.5], [0.0, 0.5, 1.0]])
    a = torch.tensor(matrix)

    def loss(model: Vector) -> torch.Tensor:
        return 0.5 * model.w @ a @ model.w

    value = top_hessian_eigenvalue(Vector([1.0, 0.0, -1.0]), loss, iterations=100)
    assert value == pytest.approx(np.linalg.eigvalsh(matrix).max(), rel=1e-6)


def test_gradient_norm_of_a_quadratic_is_a_times_the_distance_to_the_minimum():
    assert gradient_norm(Vector([3.0, 4.0]), quadratic(2.0)) == pytest.approx(10.0)
    assert gradient_norm(Vector([0.0, 0.0]), quadratic(2.0)) == 0.0


def test_measurements_leave_parameters_and_flags_untouched():
    model = Vector([1.0, 2.0])
    model.w.requires_grad_(False)
    for measure in (lambda: epsilon_sharpness(model, quadratic(1.0)),
                    lambda: top_hessian_eigenvalue(model, quadratic(1.0)),
                    lambda: gradient_norm(model, quadratic(1.0))):
        measure()
        assert model.w.tolist() == [1.0, 2.0]
        assert not model.w.requires_grad
        assert model.w.grad is None


def test_on_a_real_network_the_slice_is_lowest_near_zero_after_training():
    torch.manual_seed(0)
    x, y = torch.rand(40, 64), torch.randint(0, 10, (40,))
    model = make_mlp(hidden=(16,), seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loss_fn = dataset_loss(x, y)
    for _ in range(300):
        opt.zero_grad()
        loss_fn(model).backward()
        opt.step()
    ts = np.linspace(-0.5, 0.5, 11)
    curve = mean_slice(model, loss_fn, ts, n_directions=3)
    assert np.argmin(curve) in (4, 5, 6)
    assert slice_sharpness(model, loss_fn, distance=0.25) > 0
    assert top_hessian_eigenvalue(model, loss_fn) > 0


# ----------------------------------------------------------------------------- bad input
def test_bad_arguments_are_rejected_with_clear_errors():
    model = Vector([0.0, 1.0])
    good = [torch.ones(2, dtype=torch.float64)]
    with pytest.raises(TypeError, match="model"):
        loss_slice("model", quadratic(1.0), good, [0.0])
    with pytest.raises(TypeError, match="loss_fn"):
        loss_slice(model, 3, good, [0.0])
    with pytest.raises(ValueError, match="shape"):
        loss_slice(model, quadratic(1.0), [torch.ones(3)], [0.0])
    with pytest.raises(ValueError, match="one tensor per parameter"):
        loss_slice(model, quadratic(1.0), good * 2, [0.0])
    with pytest.raises(TypeError, match="direction"):
        loss_slice(model, quadratic(1.0), torch.ones(2), [0.0])
    with pytest.raises(ValueError, match="distances"):
        loss_slice(model, quadratic(1.0), good, [0.0, float("nan")])
    with pytest.raises(ValueError, match="distances"):
        loss_slice(model, quadratic(1.0), good, [])
    with pytest.raises(TypeError, match="scalar"):
        loss_slice(model, lambda m: m.w * 2, good, [0.0])
    with pytest.raises(ValueError, match="epsilon"):
        epsilon_sharpness(model, quadratic(1.0), epsilon=0.0)
    with pytest.raises(TypeError, match="steps"):
        epsilon_sharpness(model, quadratic(1.0), steps=2.5)
    with pytest.raises(ValueError, match="distance"):
        slice_sharpness(model, quadratic(1.0), distance=-1.0)
    with pytest.raises(ValueError, match="n_directions"):
        slice_sharpness(model, quadratic(1.0), n_directions=0)
    with pytest.raises(ValueError, match="iterations"):
        top_hessian_eigenvalue(model, quadratic(1.0), iterations=0)
    with pytest.raises(TypeError, match="include_biases"):
        filter_normalized_direction(model, include_biases=1)
    with pytest.raises(ValueError, match="same"):
        dataset_loss(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))
    with pytest.raises(TypeError, match="tensors"):
        dataset_loss(np.zeros((3, 2)), torch.zeros(3))
    with pytest.raises(ValueError, match="no parameters"):
        gradient_norm(nn.ReLU(), quadratic(1.0))
