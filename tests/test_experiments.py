"""Batch-size sweeps: budgets, scaling rules, reproducibility, summaries (tiny models, fast)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from batchlab.arithmetic import epochs_for_steps, steps_per_epoch, total_steps
from batchlab.data import load_digits_split, to_tensors
from batchlab.experiments import (
    STANDARD_REGIMES,
    Regime,
    Sweep,
    SweepConfig,
    mean_curve,
    plan_table_text,
    run_one,
    run_sweep,
    summarize,
    summary_table_html,
    summary_values,
)
from batchlab.training import evaluate


def regime_by_name(name):
    """The standard regime called ``name``."""
    return next(r for r in STANDARD_REGIMES if r.name == name)


N = 60


@pytest.fixture(scope="module")
def data():
    return load_digits_split().take(N)


@pytest.fixture(scope="module")
def config():
    return SweepConfig(batch_sizes=(4, 16, N), epochs=2, lr=0.1, base_batch_size=4, hidden=(8,),
                       warmup_epochs=1, seeds=(0, 1))


@pytest.fixture(scope="module")
def sweep(data, config):
    return run_sweep(data, config)


# ----------------------------------------------------------------------------- the plan of each cell
def test_equal_epochs_budget_keeps_epochs_and_lr(config):
    regime = regime_by_name("equal epochs")
    for b in config.batch_sizes:
        plan = config.plan(N, b, regime)
        assert plan.epochs == 2
        assert plan.lr == plan.peak_lr == 0.1 and plan.scaling_rule == "none"
        assert plan.warmup_steps == 0
        assert "base_batch_size" not in plan.train_arguments()


def test_equal_updates_budget_matches_the_smallest_batch(config):
    regime = regime_by_name("equal updates")
    target = steps_per_epoch(N, 4) * 2
    assert config.target_updates(N) == target == 30
    for b in config.batch_sizes:
        epochs = config.plan(N, b, regime).epochs
        assert epochs == epochs_for_steps(target, N, b)
        made = total_steps(N, b, epochs)
        assert target <= made < target + steps_per_epoch(N, b)


def test_scaling_rules_and_warmup(config):
    linear, sqrt = regime_by_name("linear rule + warm-up"), regime_by_name("sqrt rule + warm-up")
    assert config.plan(N, 16, linear).peak_lr == pytest.approx(0.4)
    assert config.plan(N, N, linear).peak_lr == pytest.approx(0.1 * N / 4)
    assert config.plan(N, 16, sqrt).peak_lr == pytest.approx(0.2)
    assert config.plan(N, 16, regime_by_name("equal epochs")).peak_lr == 0.1
    plan = config.plan(N, 16, linear)
    assert plan.warmup_steps == steps_per_epoch(N, 16) * 1
    assert plan.base_batch_size == 4 and plan.scaling_rule == "linear"


def test_regime_defaults_and_validation():
    assert Regime("a", "epochs", "linear").warmup is True
    assert Regime("a", "epochs", "none").warmup is False
    assert Regime("a", "updates", "sqrt", warmup=False).warmup is False
    with pytest.raises(ValueError, match="budget"):
        Regime("a", "samples", "none")
    with pytest.raises(ValueError, match="scaling_rule"):
        Regime("a", "epochs", "cubic")
    with pytest.raises(TypeError, match="name"):
        Regime("", "epochs", "none")
    assert [r.name for r in STANDARD_REGIMES] == [
        "equal epochs", "linear rule + warm-up", "sqrt rule + warm-up", "equal updates"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"batch_sizes": (32, 8)}, ValueError, "increasing"),
        ({"batch_sizes": (8, 8)}, ValueError, "increasing"),
        ({"batch_sizes": ()}, TypeError, "batch_sizes"),
        ({"batch_sizes": (0, 8)}, ValueError, "batch_sizes"),
        ({"batch_sizes": (True, 8)}, TypeError, "batch_sizes"),
        ({"epochs": 0}, ValueError, "epochs"),
        ({"lr": 0.0}, ValueError, "lr"),
        ({"optimizer": "lbfgs"}, ValueError, "optimizer"),
        ({"seeds": (1, 1)}, ValueError, "distinct"),
        ({"warmup_epochs": -1}, ValueError, "warmup_epochs"),
        ({"hidden": "64"}, TypeError, "hidden"),
    ],
)
def test_config_rejects_bad_values(kwargs, error, match):
    with pytest.raises(error, match=match):
        SweepConfig(**kwargs)


def test_plan_rejects_batch_larger_than_data(config):
    with pytest.raises(ValueError, match="batch_size"):
        config.plan(N, N + 1, STANDARD_REGIMES[0])
    with pytest.raises(TypeError, match="regime"):
        config.plan(N, 4, "equal epochs")


# ----------------------------------------------------------------------------- running
def test_sweep_has_every_cell_and_the_planned_updates(sweep, config):
    assert isinstance(sweep, Sweep)
    assert len(sweep.runs) == len(STANDARD_REGIMES) * len(config.batch_sizes) * len(config.seeds)
    for run in sweep.runs:
        h = run.history
        plan = config.plan(N, run.batch_size, run.regime)
        assert h.epochs_completed == plan.epochs
        assert h.steps == h.planned_steps == total_steps(N, run.batch_size, plan.epochs) == plan.total_steps
        assert h.learning_rates[-1] == pytest.approx(run.peak_lr)
        assert not h.stopped


def test_identical_cells_are_trained_once(sweep):
    a = sweep.select("equal epochs", 4, 0)[0]
    b = sweep.select("equal updates", 4, 0)[0]
    assert a.history is b.history
    assert a.regime.name != b.regime.name
    # B = B0: the linear and square-root rules give the same rate, so the same run.
    assert sweep.select("linear rule + warm-up", 4, 1)[0].history is \
        sweep.select("sqrt rule + warm-up", 4, 1)[0].history
    assert sweep.select("equal epochs", 16, 0)[0].history is not \
        sweep.select("equal updates", 16, 0)[0].history


def test_runs_are_reproducible_and_seeds_differ(data, config):
    regime = STANDARD_REGIMES[0]
    state = torch.random.get_rng_state()
    first = run_one(data, config, 16, regime, seed=0)
    second = run_one(data, config, 16, regime, seed=0)
    other = run_one(data, config, 16, regime, seed=1)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert first.history.iteration_losses == second.history.iteration_losses
    assert first.history.val_loss == second.history.val_loss
    assert first.history.iteration_losses != other.history.iteration_losses


def test_final_train_metrics_are_the_final_model_on_all_training_data(data, config, sweep):
    run = sweep.select("equal updates", 16, 1)[0]
    x, y, _, _ = to_tensors(data, "cpu")
    loss, accuracy = evaluate(run.model, x, y)
    assert (loss, accuracy) == (run.final_train_loss, run.final_train_accuracy)
    assert run.accuracy_gap == run.final_train_accuracy - run.history.val_accuracy[-1]
    assert run.loss_gap == run.history.val_loss[-1] - run.final_train_loss
    assert run.early_stopping_accuracy == run.history.val_accuracy[run.history.best_epoch]


def test_run_sweep_reports_each_run_and_rejects_bad_input(data, config):
    seen = []
    small = SweepConfig(batch_sizes=(N,), epochs=1, hidden=(4,), seeds=(0,))
    result = run_sweep(data, small, STANDARD_REGIMES[:1], on_run=seen.append)
    assert seen == result.runs and len(seen) == 1
    with pytest.raises(ValueError, match="batch sizes"):
        run_sweep(data, SweepConfig(batch_sizes=(N + 1,), seeds=(0,)))
    with pytest.raises(TypeError, match="config"):
        run_sweep(data, {"epochs": 1})
    with pytest.raises(TypeError, match="data"):
        run_sweep("digits", small)
    with pytest.raises(ValueError, match="distinct names"):
        run_sweep(data, small, [STANDARD_REGIMES[0], STANDARD_REGIMES[0]])
    with pytest.raises(TypeError, match="Regime"):
        run_sweep(data, small, ["equal epochs"])
    with pytest.raises(TypeError, match="progress"):
        run_sweep(data, small, progress="yes")


# ----------------------------------------------------------------------------- curves and summary
def test_mean_curve_averages_seeds(sweep):
    runs = sweep.select("equal updates", N)
    xs, mean, std = mean_curve(runs, "val_accuracy", "epochs")
    values = np.array([r.history.val_accuracy for r in runs])
    np.testing.assert_allclose(mean, values.mean(axis=0))
    np.testing.assert_allclose(std, values.std(axis=0))
    assert xs.tolist() == list(range(1, len(mean) + 1))
    xs_updates, _, _ = mean_curve(runs, "val_accuracy", "updates")
    assert xs_updates.tolist() == runs[0].history.epoch_end_steps
    with pytest.raises(ValueError, match="metric"):
        mean_curve(runs, "accuracy")
    with pytest.raises(ValueError, match="runs"):
        mean_curve([], "val_loss")


def test_summary_rows_match_the_runs(sweep, config):
    rows = summarize(sweep)
    assert len(rows) == len(STANDARD_REGIMES) * len(config.batch_sizes)
    row = next(r for r in rows if r.regime == "equal epochs" and r.batch_size == 16)
    runs = sweep.select("equal epochs", 16)
    finals = [r.history.val_accuracy[-1] for r in runs]
    assert row.final_val_accuracy == pytest.approx((np.mean(finals), np.std(finals)))
    assert row.best_val_accuracy[0] == pytest.approx(np.mean([max(r.history.val_accuracy) for r in runs]))
    assert row.accuracy_gap[0] == pytest.approx(np.mean([r.accuracy_gap for r in runs]))
    assert row.updates == total_steps(N, 16, 2) and row.epochs == 2 and row.seeds == 2
    assert row.best_epoch == pytest.approx(np.mean([r.history.best_epoch + 1 for r in runs]))
    assert math.isfinite(row.wall_time_s)


def test_summary_tables_show_the_numbers_and_keep_time_out_by_default(sweep):
    rows = summarize(sweep)
    html = summary_table_html(rows)
    first = rows[0]
    expected = f"{100 * first.final_val_accuracy[0]:.1f} ± {100 * first.final_val_accuracy[1]:.1f}"
    assert expected in html
    assert "time" not in html
    assert "time s" in summary_table_html(rows, include_time=True)
    assert html.count("<tr>") == len(rows) + 1
    with pytest.raises(TypeError, match="include_time"):
        summary_table_html(rows, include_time=1)
    with pytest.raises(TypeError, match="sweep"):
        summarize([])


def test_plan_table_lists_every_cell_before_training(config):
    text = plan_table_text(config, N)
    lines = text.splitlines()
    assert len(lines) == 1 + len(STANDARD_REGIMES) * len(config.batch_sizes)
    # equal updates, full batch: 30 epochs of one update each
    assert lines[-1].split()[-5:] == [str(N), "30", "30", "0.1", "0"]
    assert lines[6].split()[-2] == "1.5"  # linear rule at B = N: 0.1 · 60 / 4
    with pytest.raises(ValueError, match="n_train"):
        plan_table_text(config, N - 1)
    with pytest.raises(TypeError, match="config"):
        plan_table_text(None, N)


def test_summary_values_regroups_rows_by_regime(sweep):
    rows = summarize(sweep)
    values = summary_values(rows, "final_val_accuracy")
    assert list(values) == [r.name for r in STANDARD_REGIMES]
    for row in rows:
        assert values[row.regime][row.batch_size] == row.final_val_accuracy
    with pytest.raises(ValueError, match="field"):
        summary_values(rows, "regime")
