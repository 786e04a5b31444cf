"""Property tests: every formula of batchlab.arithmetic against what PyTorch's own objects do.

The reference is never another formula: batches come from ``BatchSampler`` / ``DataLoader`` and
per-rank shards from ``DistributedSampler`` (with explicit ``num_replicas`` and ``rank``, no process
group). Datasets are plain ``range`` objects so that thousands of cases run in a few seconds.
"""

from __future__ import annotations

import doctest
import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import BatchSampler, DataLoader, DistributedSampler, SequentialSampler

import batchlab.arithmetic as arithmetic
from batchlab.arithmetic import (
    SCALING_RULES,
    TrainingPlan,
    epochs_for_steps,
    global_batch_size,
    iterations_per_epoch,
    last_batch_size,
    per_rank_iterations,
    per_rank_samples,
    samples_dropped,
    samples_seen,
    scaled_learning_rate,
    steps_per_epoch,
    total_steps,
    warmup_learning_rate,
)

n_samples = st.integers(min_value=0, max_value=600)
batch_sizes = st.integers(min_value=1, max_value=700)  # B > N is allowed and worth testing
flags = st.booleans()
epochs = st.integers(min_value=0, max_value=12)
accumulations = st.integers(min_value=1, max_value=9)
world_sizes = st.integers(min_value=1, max_value=12)
learning_rates = st.floats(min_value=1e-6, max_value=10.0)


# ---------------------------------------------------------------------------------------------------
# What PyTorch actually does (the reference side of every comparison)
# ---------------------------------------------------------------------------------------------------


def torch_batch_sizes(sampler, batch_size: int, drop_last: bool) -> list[int]:
    """Sizes of the batches a ``BatchSampler`` yields in one epoch, in order."""
    return [len(batch) for batch in BatchSampler(sampler, batch_size, drop_last)]


def epoch_batches(n: int, batch_size: int, drop_last: bool) -> list[int]:
    return torch_batch_sizes(SequentialSampler(range(n)), batch_size, drop_last)


def rank_sampler(n: int, world_size: int, rank: int, drop_last: bool) -> DistributedSampler:
    return DistributedSampler(
        range(n), num_replicas=world_size, rank=rank, shuffle=False, drop_last=drop_last
    )


def simulate_updates(batches_per_epoch: int, n_epochs: int, accumulation_steps: int) -> int:
    """Count ``optimizer.step()`` calls of a loop that accumulates gradients over groups of batches.

    A group ends after ``accumulation_steps`` batches or at the end of the epoch (a shorter last
    group still makes one update; nothing carries over into the next epoch).
    """
    updates = 0
    for _ in range(n_epochs):
        pending = 0
        for k in range(batches_per_epoch):
            pending += 1  # loss.backward() on batch k
            if pending == accumulation_steps or k == batches_per_epoch - 1:
                updates += 1  # optimizer.step(); optimizer.zero_grad()
                pending = 0
    return updates


# ---------------------------------------------------------------------------------------------------
# Single-process loaders
# ---------------------------------------------------------------------------------------------------


@settings(max_examples=600)
@given(n=n_samples, b=batch_sizes)
def test_iterations_per_epoch_is_len_of_dataloader(n, b):
    for drop_last in (False, True):
        loader = DataLoader(range(n), batch_size=b, drop_last=drop_last)
        assert iterations_per_epoch(n, b, drop_last) == len(loader)
        assert iterations_per_epoch(n, b, drop_last) == len(epoch_batches(n, b, drop_last))


def test_iterations_per_epoch_on_every_small_case():
    """Exhaustive where hypothesis samples: every N <= 150, B <= 160, both drop_last (48,320 cases)."""
    for n in range(151):
        for b in range(1, 161):
            for drop_last in (False, True):
                expected = len(DataLoader(range(n), batch_size=b, drop_last=drop_last))
                assert iterations_per_epoch(n, b, drop_last) == expected, (n, b, drop_last)


@settings(max_examples=500)
@given(n=n_samples, b=batch_sizes)
def test_last_batch_and_dropped_samples_match_batch_sampler(n, b):
    for drop_last in (False, True):
        sizes = epoch_batches(n, b, drop_last)
        assert last_batch_size(n, b, drop_last) == (sizes[-1] if sizes else 0)
        assert samples_dropped(n, b, drop_last) == n - sum(sizes)
        assert all(size == b for size in sizes[:-1])  # every batch but the last is full


@settings(max_examples=500)
@given(n=n_samples, b=batch_sizes, e=epochs, a=accumulations)
def test_total_steps_matches_a_simulated_accumulation_loop(n, b, e, a):
    for drop_last in (False, True):
        batches = len(DataLoader(range(n), batch_size=b, drop_last=drop_last))
        assert steps_per_epoch(n, b, drop_last, a) == simulate_updates(batches, 1, a)
        assert total_steps(n, b, e, drop_last, a) == simulate_updates(batches, e, a)


@settings(max_examples=300)
@given(n=n_samples, b=batch_sizes, e=epochs)
def test_samples_seen_counts_the_samples_actually_yielded(n, b, e):
    for drop_last in (False, True):
        yielded = sum(sum(epoch_batches(n, b, drop_last)) for _ in range(e))
        assert samples_seen(n, b, e, drop_last) == yielded


@settings(max_examples=500)
@given(target=st.integers(min_value=0, max_value=5000), n=n_samples, b=batch_sizes)
def test_epochs_for_steps_is_the_fewest_epochs_that_reach_the_target(target, n, b):
    for drop_last in (False, True):
        per_epoch = len(DataLoader(range(n), batch_size=b, drop_last=drop_last))
        if per_epoch == 0 and target > 0:
            with pytest.raises(ValueError, match=rf"target_steps={target} can never be reached"):
                epochs_for_steps(target, n, b, drop_last)
            continue
        e = epochs_for_steps(target, n, b, drop_last)
        assert per_epoch * e >= target  # enough updates (one per batch) ...
        if e > 0:
            assert per_epoch * (e - 1) < target  # ... and one epoch fewer is not enough


def test_the_worked_examples_of_the_notes():
    assert total_steps(10_000, 100, 50) == 5_000
    assert (iterations_per_epoch(1_000, 32), last_batch_size(1_000, 32)) == (32, 8)
    assert (iterations_per_epoch(1_000, 32, True), samples_dropped(1_000, 32, True)) == (31, 8)
    # N / B × E drops the ceiling: 312.5 is not a number of updates, 320 is.
    assert 1_000 / 32 * 10 == 312.5 and total_steps(1_000, 32, 10) == 320


# ---------------------------------------------------------------------------------------------------
# Data-parallel workers
# ---------------------------------------------------------------------------------------------------


@settings(max_examples=400)
@given(n=n_samples, w=world_sizes)
def test_per_rank_samples_is_len_of_distributed_sampler_on_every_rank(n, w):
    for drop_last in (False, True):
        for rank in range(w):
            sampler = rank_sampler(n, w, rank, drop_last)
            assert per_rank_samples(n, w, drop_last) == len(sampler) == len(list(sampler))


@settings(max_examples=400)
@given(n=n_samples, b=batch_sizes, w=world_sizes)
def test_per_rank_iterations_is_len_of_a_dataloader_over_distributed_sampler(n, b, w):
    for sampler_drop, loader_drop in itertools.product((False, True), repeat=2):
        for rank in range(w):
            sampler = rank_sampler(n, w, rank, sampler_drop)
            loader = DataLoader(range(n), batch_size=b, sampler=sampler, drop_last=loader_drop)
            assert per_rank_iterations(n, b, w, sampler_drop, loader_drop) == len(loader)


@settings(max_examples=300)
@given(
    b=st.integers(min_value=1, max_value=40),
    w=st.integers(min_value=1, max_value=8),
    a=st.integers(min_value=1, max_value=6),
    extra=st.integers(min_value=0, max_value=300),
)
def test_global_batch_size_is_the_samples_behind_one_full_update(b, w, a, extra):
    n = b * w * a + extra  # large enough that every rank's first group of batches is full
    behind_first_update = 0
    for rank in range(w):
        sizes = torch_batch_sizes(rank_sampler(n, w, rank, False), b, False)
        behind_first_update += sum(sizes[:a])  # the batches accumulated before the first step
    assert global_batch_size(b, w, a) == behind_first_update


# ---------------------------------------------------------------------------------------------------
# TrainingPlan: every property against the objects, and against the functions
# ---------------------------------------------------------------------------------------------------


@settings(max_examples=400)
@given(n=n_samples, b=batch_sizes, e=epochs, drop_last=flags, a=accumulations, w=world_sizes)
def test_training_plan_matches_simulated_ranks(n, b, e, drop_last, a, w):
    plan = TrainingPlan(n, b, e, drop_last=drop_last, accumulation_steps=a, world_size=w)
    samplers = [rank_sampler(n, w, rank, False) for rank in range(w)]  # the plan's padding sampler
    per_rank = [torch_batch_sizes(s, b, drop_last) for s in samplers]
    rank0 = per_rank[0]
    assert all(len(sizes) == len(rank0) for sizes in per_rank)  # ranks stay in lockstep

    assert plan.per_rank_samples == len(samplers[0])
    assert plan.padded_samples == sum(len(s) for s in samplers) - n
    assert plan.iterations_per_epoch == len(rank0)
    assert plan.last_batch_size == (rank0[-1] if rank0 else 0)
    assert plan.samples_dropped == len(samplers[0]) - sum(rank0)
    assert plan.steps_per_epoch == simulate_updates(len(rank0), 1, a)
    assert plan.total_iterations == len(rank0) * e
    assert plan.total_steps == simulate_updates(len(rank0), e, a)
    assert plan.samples_seen == e * sum(sum(sizes) for sizes in per_rank)
    assert plan.global_batch_size == b * w * a


@settings(max_examples=300)
@given(n=n_samples, b=batch_sizes, e=epochs, drop_last=flags, a=accumulations, w=world_sizes)
def test_training_plan_agrees_with_the_functions(n, b, e, drop_last, a, w):
    plan = TrainingPlan(n, b, e, drop_last=drop_last, accumulation_steps=a, world_size=w)
    n_rank = per_rank_samples(n, w)
    assert plan.per_rank_samples == n_rank
    assert plan.iterations_per_epoch == per_rank_iterations(n, b, w, False, drop_last)
    assert plan.iterations_per_epoch == iterations_per_epoch(n_rank, b, drop_last)
    assert plan.last_batch_size == last_batch_size(n_rank, b, drop_last)
    assert plan.samples_dropped == samples_dropped(n_rank, b, drop_last)
    assert plan.steps_per_epoch == steps_per_epoch(n_rank, b, drop_last, a)
    assert plan.total_steps == total_steps(n_rank, b, e, drop_last, a)
    assert plan.samples_seen == samples_seen(n_rank, b, e, drop_last) * w
    assert plan.global_batch_size == global_batch_size(b, w, a)
    if w == 1:  # one worker: the plan is the plain single-process arithmetic of N
        assert plan.padded_samples == 0
        assert plan.total_steps == total_steps(n, b, e, drop_last, a)
        assert plan.samples_seen == samples_seen(n, b, e, drop_last)
    values = dict(plan.rows())
    assert values["total updates"] == plan.total_steps
    assert values["iterations per epoch I"] == plan.iterations_per_epoch
    assert values["samples seen"] == plan.samples_seen


# ---------------------------------------------------------------------------------------------------
# Learning-rate rules: their defining identities
# ---------------------------------------------------------------------------------------------------


def test_scaling_rules_name_a_rate_too_large_for_a_float():
    """Not a bare OverflowError from the integer division, nor an inf learning rate."""
    with pytest.raises(ValueError, match=r"batch_size / base_batch_size must fit a float .* about 2\*\*1328"):
        scaled_learning_rate(0.1, 1, 10**400)
    for rule in ("linear", "sqrt"):
        with pytest.raises(ValueError, match=f"the {rule} rule gives a learning rate too large for a float"):
            scaled_learning_rate(1e308, 1, 10**30, rule)
    assert scaled_learning_rate(1e308, 1, 10**400, "none") == 1e308  # "none" never divides
    assert scaled_learning_rate(1e-300, 1, 10**300) == pytest.approx(1.0)  # large but finite: fine


@settings(max_examples=300)
@given(lr=learning_rates, b0=st.integers(1, 4096), b=st.integers(1, 4096), k=st.integers(1, 64))
def test_scaling_rules_defining_identities(lr, b0, b, k):
    linear = scaled_learning_rate(lr, b0, b, "linear")
    sqrt = scaled_learning_rate(lr, b0, b, "sqrt")
    # linear: proportional to B, so k times the batch gives k times the rate
    assert math.isclose(scaled_learning_rate(lr, b0, k * b, "linear"), k * linear, rel_tol=1e-12)
    # sqrt: 4x the batch gives 2x the rate, and squaring it gives the linear rule's factor
    assert math.isclose(scaled_learning_rate(lr, b0, 4 * b, "sqrt"), 2 * sqrt, rel_tol=1e-12)
    assert math.isclose(sqrt**2, lr * linear, rel_tol=1e-12)
    # none: unchanged; every rule is the identity at the base batch size
    assert scaled_learning_rate(lr, b0, b, "none") == lr
    for rule in SCALING_RULES:
        assert scaled_learning_rate(lr, b0, b0, rule) == lr
    # a bigger batch never lowers the rate; the sqrt rule lies between none and linear
    assert min(lr, linear) <= sqrt * (1 + 1e-12) and sqrt <= max(lr, linear) * (1 + 1e-12)


@settings(max_examples=200)
@given(lr=learning_rates, b0=st.integers(1, 512), b=st.integers(1, 512))
def test_scaling_is_monotone_in_batch_size(lr, b0, b):
    for rule in SCALING_RULES:
        assert scaled_learning_rate(lr, b0, b, rule) <= scaled_learning_rate(lr, b0, b + 1, rule)


@settings(max_examples=300)
@given(peak=learning_rates, warmup=st.integers(0, 200), after=st.integers(1, 50))
def test_warmup_is_monotone_reaches_peak_at_its_last_step_then_flat(peak, warmup, after):
    rates = [warmup_learning_rate(s, peak, warmup) for s in range(warmup + after)]
    assert all(x <= y for x, y in itertools.pairwise(rates))
    assert all(rate > 0 for rate in rates)  # the first update is not wasted with a zero rate
    if warmup > 0:
        assert math.isclose(rates[0], peak / warmup, rel_tol=1e-12)
        assert rates[warmup - 1] == peak  # exactly the peak at step warmup - 1, never above
        assert all(rate < peak for rate in rates[: warmup - 1])
        steps = [y - x for x, y in itertools.pairwise(rates[:warmup])]
        assert all(math.isclose(d, peak / warmup, rel_tol=1e-9) for d in steps)  # linear climb
    assert all(rate == peak for rate in rates[warmup:])  # flat afterwards


# ---------------------------------------------------------------------------------------------------
# Docstring examples
# ---------------------------------------------------------------------------------------------------


def test_docstring_examples_run_and_pass():
    result = doctest.testmod(arithmetic, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted >= 15  # the examples were found, not silently skipped


# ---------------------------------------------------------------------------------------------------
# One epoch cut into batches; DistributedSampler.set_epoch; schedulers counted in updates
# ---------------------------------------------------------------------------------------------------


@given(n=n_samples, b=batch_sizes, drop_last=flags)
def test_batch_bounds_are_the_batch_samplers_positions(n, b, drop_last):
    batches = [list(batch) for batch in BatchSampler(SequentialSampler(range(n)), b, drop_last)]
    bounds = arithmetic.batch_bounds(n, b, drop_last)
    assert [list(range(start, end)) for start, end in bounds] == batches
    assert arithmetic.batch_sizes(n, b, drop_last) == [len(batch) for batch in batches]


def test_batch_bounds_reject_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        arithmetic.batch_bounds(10, 0)
    with pytest.raises(TypeError, match="drop_last"):
        arithmetic.batch_sizes(10, 3, drop_last=1)


def _rank_orders(n: int, world_size: int, epochs: int, call_set_epoch: bool) -> list[list[list[int]]]:
    """Each epoch's index list on every rank of a shuffling DistributedSampler."""
    samplers = [DistributedSampler(range(n), num_replicas=world_size, rank=r, shuffle=True, seed=0)
                for r in range(world_size)]
    orders = []
    for epoch in range(epochs):
        if call_set_epoch:
            for sampler in samplers:
                sampler.set_epoch(epoch)
        orders.append([list(sampler) for sampler in samplers])
    return orders


def test_distributed_sampler_repeats_one_permutation_without_set_epoch():
    without = _rank_orders(10, 4, 3, call_set_epoch=False)
    assert without[0] == without[1] == without[2]  # the same shards, the same padding, every epoch
    with_set_epoch = _rank_orders(10, 4, 3, call_set_epoch=True)
    assert with_set_epoch[0] != with_set_epoch[1] != with_set_epoch[2]
    for shards in with_set_epoch:  # every epoch still covers all samples, plus the padding
        flat = [i for shard in shards for i in shard]
        assert set(flat) == set(range(10))
        assert len(flat) == 4 * per_rank_samples(10, 4)


def _run_schedule(n, b, epochs, accumulation, total, drop_last=False):
    """Step a OneCycleLR once per optimizer update of a real loader loop.

    Returns the number of updates and the learning rate the last update used."""
    import torch

    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=0.1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.1, total_steps=total)
    loader = DataLoader(range(n), batch_size=b, drop_last=drop_last)
    updates = 0
    for _ in range(epochs):
        for k, _batch in enumerate(loader):
            if (k + 1) % accumulation == 0 or k + 1 == len(loader):  # the last, short group too
                used = optimizer.param_groups[0]["lr"]
                optimizer.step()
                scheduler.step()
                updates += 1
    return updates, used


@settings(max_examples=30, deadline=None)
@given(n=st.integers(min_value=1, max_value=300), b=st.integers(min_value=1, max_value=64),
       e=st.integers(min_value=1, max_value=4), a=accumulations, drop_last=flags)
def test_scheduler_total_steps_is_arithmetic_total_steps(n, b, e, a, drop_last):
    total = total_steps(n, b, e, drop_last, a)
    if total < 2:  # OneCycleLR needs at least two steps to have a warm-up and an annealing phase
        return
    updates, last_lr = _run_schedule(n, b, e, a, total, drop_last)
    assert updates == total  # one scheduler.step() per update, and the schedule ends exactly then
    assert last_lr < 0.1 * 1e-3  # the last update uses OneCycleLR's final, annealed rate


def test_len_loader_times_epochs_is_wrong_with_accumulation_or_a_new_batch_size():
    import torch

    n, b, e, a = 1_000, 32, 3, 4
    loader_count = len(DataLoader(range(n), batch_size=b)) * e  # 96: counts batches, not updates
    updates, last_lr = _run_schedule(n, b, e, a, loader_count)
    assert updates == total_steps(n, b, e, accumulation_steps=a) == 24
    assert last_lr > 0.05  # a quarter of the way through: the rate never anneals
    # Stepping per batch against a schedule sized in updates raises inside PyTorch.
    with pytest.raises(ValueError, match="total"):
        _run_schedule(n, b, e, 1, total_steps(n, b, e, accumulation_steps=a))
    # B halved, the schedule sized for the old B: it runs out and raises; B doubled: it stops halfway.
    with pytest.raises(ValueError, match="total"):
        _run_schedule(n, b // 2, e, 1, total_steps(n, b, e))
    updates, last_lr = _run_schedule(n, 2 * b, e, 1, total_steps(n, b, e))
    assert updates < total_steps(n, b, e) and last_lr > 0.05
    assert torch.optim.lr_scheduler.OneCycleLR  # the objects above are PyTorch's own
