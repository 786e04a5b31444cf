"""Throughput measurements (batchlab.measure.throughput): shapes, consistency and argument checks.

No speed targets here (the machine is shared and timings vary): those live in
benchmarks/loop_throughput.py. These tests check that each measurement is internally consistent.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from batchlab.data import load_digits_split
from batchlab.measure.throughput import (
    Throughput,
    bare_step_throughput,
    dataloader_loop_throughput,
    engine_throughput,
)
from batchlab.models import make_mlp

SPLIT = load_digits_split().take(200)
MEASUREMENTS = {
    "floor": lambda sizes, **kw: bare_step_throughput(make_mlp, sizes, **kw),
    "engine": lambda sizes, **kw: engine_throughput(make_mlp, SPLIT, sizes, **kw),
    "dataloader": lambda sizes, **kw: dataloader_loop_throughput(make_mlp, SPLIT, sizes, **kw),
}


@pytest.mark.parametrize("kind", MEASUREMENTS)
def test_results_are_consistent(kind):
    results = MEASUREMENTS[kind]([4, 64], device="cpu", min_seconds=0.02)
    assert [r.batch_size for r in results] == [4, 64]
    for r in results:
        assert isinstance(r, Throughput)
        assert r.iterations >= 1 and r.seconds_per_iteration > 0
        # samples/s and s/iteration describe one timing; the last batch of an epoch may be short.
        full_rate = r.batch_size / r.seconds_per_iteration
        assert 0.5 * full_rate <= r.samples_per_second <= full_rate * 1.0000001


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_bare_step_makes_the_engines_updates(optimizer):
    model = make_mlp()
    before = [p.detach().clone() for p in model.parameters()]
    bare_step_throughput(lambda: model, [8], device="cpu", min_seconds=0.01, optimizer=optimizer)
    assert not any(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


@pytest.mark.parametrize("kind", ["engine", "dataloader"])
def test_loops_take_the_optimizer(kind):
    results = MEASUREMENTS[kind]([16], device="cpu", min_seconds=0.01, optimizer="adam", lr=1e-3)
    assert results[0].iterations >= 1
    with pytest.raises(ValueError, match="optimizer must be one of"):
        MEASUREMENTS[kind]([16], device="cpu", optimizer="lbfgs")


@pytest.mark.parametrize("kind", MEASUREMENTS)
def test_bad_arguments(kind):
    measure = MEASUREMENTS[kind]
    with pytest.raises(TypeError, match="batch_sizes"):
        measure([], device="cpu")
    with pytest.raises(TypeError, match="batch_sizes"):
        measure("32", device="cpu")
    with pytest.raises(ValueError, match=r"batch_sizes\[1\]"):
        measure([4, 0], device="cpu")
    with pytest.raises(ValueError, match="min_seconds"):
        measure([4], device="cpu", min_seconds=0)
    with pytest.raises(ValueError, match="device"):
        measure([4], device="tpu")
    with pytest.raises(ValueError, match=r"seed must be an integer >= 0 and <= 18446744073709551615"):
        measure([4], device="cpu", seed=2**64)


def test_factories_and_data_are_checked():
    with pytest.raises(TypeError, match="model_factory must be a function"):
        bare_step_throughput(make_mlp(), [4])
    with pytest.raises(TypeError, match="model_factory must be a function"):
        engine_throughput(make_mlp(), SPLIT, [4])
    with pytest.raises(TypeError, match="must return"):
        bare_step_throughput(lambda: nn.ReLU, [4], device="cpu")
    with pytest.raises(TypeError, match="split must be"):
        dataloader_loop_throughput(make_mlp, (SPLIT.x_train, SPLIT.y_train), [4])
    with pytest.raises(ValueError, match="batch_sizes"):
        engine_throughput(make_mlp, SPLIT, [201])  # larger than the 200 training samples
    with pytest.raises(ValueError, match="optimizer"):
        bare_step_throughput(make_mlp, [4], optimizer="lbfgs")
