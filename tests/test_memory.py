"""Memory of a training step (batchlab.measure.memory): the analytic count equals the measurement."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch import nn

from batchlab.measure.memory import OPTIMIZER_BUFFERS, analytic_memory, measure_memory
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
