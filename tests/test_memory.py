"""Memory of a training step (batchlab.measure.memory): the analytic count equals the measurement of the
saved tensors; the allocator's peak (measure_peak_memory) sees the temporaries too."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn

from batchlab.measure.memory import OPTIMIZER_BUFFERS, analytic_memory, measure_memory, measure_peak_memory
from batchlab.models import count_parameters, make_mlp

PARTS = ("parameters", "gradients", "optimizer_state", "inputs", "activations")


def parts(breakdown):
    return tuple(getattr(breakdown, name) for name in PARTS)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
@pytest.mark.parametrize(
    "kwargs", [{}, {"hidden": (64, 32)}, {"hidden": ()}, {"hidden": (32,), "dropout": 0.3}]
)
@pytest.mark.parametrize("batch_size", [1, 7, 128])
def test_analytic_count_equals_the_measured_step(optimizer, kwargs, batch_size):
    analytic = analytic_memory(make_mlp(**kwargs), batch_size, optimizer)
    measured = measure_memory(partial(make_mlp, **kwargs), batch_size, optimizer, device="cpu")
    assert parts(analytic) == parts(measured)
    assert measured.cuda_peak is None


def test_what_grows_with_the_batch_size():
    small, large = (analytic_memory(make_mlp(), b, "adam") for b in (16, 512))
    assert small.fixed == large.fixed  # parameters, gradients and optimizer state
    assert large.per_batch / small.per_batch == pytest.approx(512 / 16, rel=1e-3)  # ~B (plus a scalar)
    assert large.activations > large.parameters > small.activations


def test_the_parts_of_the_default_model():
    n = count_parameters(make_mlp())  # 64*64 + 64 + 64*10 + 10 = 4,810
    m = analytic_memory(make_mlp(), 32, "momentum")
    assert (m.parameters, m.gradients, m.optimizer_state) == (4 * n, 4 * n, 4 * n)
    assert m.inputs == 32 * 64 * 4 + 32 * 8  # the batch and its int64 labels
    assert m.activations == 32 * 64 * 4 + 32 * 10 * 4 + 4  # ReLU output, log-softmax output, a scalar
    assert m.total == m.fixed + m.per_batch
    assert OPTIMIZER_BUFFERS["adam"] == 2


def test_bad_arguments():
    with pytest.raises(TypeError, match=r"model must be a torch\.nn\.Sequential"):
        analytic_memory(nn.Linear(3, 2), 4)
    with pytest.raises(TypeError, match="Conv1d"):
        analytic_memory(nn.Sequential(nn.Linear(3, 2), nn.Conv1d(1, 1, 1)), 4)
    with pytest.raises(ValueError, match="at least one"):
        analytic_memory(nn.Sequential(nn.ReLU()), 4)
    with pytest.raises(ValueError, match="batch_size"):
        analytic_memory(make_mlp(), 0)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        analytic_memory(make_mlp(), 4, "rmsprop")
    with pytest.raises(TypeError, match="model_factory"):
        measure_memory(make_mlp(), 4)
    with pytest.raises(TypeError, match=r"must return a torch\.nn\.Module"):
        measure_memory(lambda: "model", 4)
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0 and <= 18446744073709551615"):
        measure_memory(make_mlp, 4, seed=2**64)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_peak_covers_activations_and_gradients():
    measured = measure_memory(make_mlp, 4096, device="cuda")
    assert measured.cuda_peak >= measured.activations + measured.gradients


def test_the_allocator_peak_covers_what_the_step_must_hold_and_grows_with_the_batch(capfd):
    small, large = 64, 1024
    peaks = {b: measure_peak_memory(make_mlp, b, "adam") for b in (small, large)}
    for b, peak in peaks.items():
        counted = analytic_memory(make_mlp(), b, "adam")
        assert peak >= counted.gradients  # the gradients exist when the step ends
        # the batch and the ReLU output stay alive from the forward pass until backward needs them
        assert peak >= counted.inputs + 4 * b * 64
    slope = (peaks[large] - peaks[small]) / (large - small)
    saved_per_sample = analytic_memory(make_mlp(), 1, "adam").per_batch - 4  # less the scalar
    assert saved_per_sample <= slope < 3 * saved_per_sample  # grows like B, with backward's buffers on top
    # the same step, another seed and another optimizer: allocations do not depend on the numbers
    assert measure_peak_memory(make_mlp, large, "sgd", seed=5) == peaks[large]
    assert "profiler_start" not in capfd.readouterr().err  # the profiler's engine stays quiet


def test_peak_of_a_wider_model_is_larger():
    narrow = measure_peak_memory(make_mlp, 256)
    wide = measure_peak_memory(partial(make_mlp, hidden=(256,)), 256)
    assert wide > narrow + 4 * 256 * (256 - 64)  # at least the wider ReLU output


def test_peak_bad_arguments():
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got 0"):
        measure_peak_memory(make_mlp, 0)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        measure_peak_memory(make_mlp, 4, "rmsprop")
    with pytest.raises(TypeError, match="model_factory"):
        measure_peak_memory(make_mlp(), 4)
    with pytest.raises(ValueError, match="n_classes must be an integer >= 2"):
        measure_peak_memory(make_mlp, 4, n_classes=1)
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        measure_peak_memory(make_mlp, 4, seed=-1)
