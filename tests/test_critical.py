"""batchlab.critical: steps to a target, the rate search, the trade-off fit; and notebook 07's app."""

from __future__ import annotations

import base64
import math
from dataclasses import replace

import numpy as np
import pytest

from batchlab import history as history_module
from batchlab.apps.critical import CriticalBatchApp, winner
from batchlab.critical import (
    CriticalSweep,
    TargetRun,
    TargetSummary,
    b_crit_interval,
    b_crit_per_seed,
    capped_b_crit,
    capped_steps,
    fit_tradeoff,
    grid_table_text,
    rate_grid,
    rerun_at_best,
    run_to_target,
    steps_to_target,
    summarize,
    tune_to_target,
)
from batchlab.data import load_digits_split
from batchlab.plots.mirror import live_figure
from batchlab.stats import round_to_error

# ------------------------------------------------------------------------------------------ steps


def test_steps_to_target_counts_the_first_update_that_meets_it():
    assert steps_to_target([2.0, 1.0, 0.5, 0.7, 0.4], 0.5) == 3  # equal counts as met
    assert steps_to_target([0.1, 0.2], 0.5) == 1  # met after the very first update
    assert steps_to_target([2.0, 1.0], 0.5) is None
    assert steps_to_target([], 0.5) is None
    assert steps_to_target([float("nan"), 0.3], 0.5) == 2  # a NaN never meets it


def test_steps_to_target_validates():
    with pytest.raises(TypeError, match="target"):
        steps_to_target([1.0], "0.5")
    with pytest.raises(ValueError, match="target"):
        steps_to_target([1.0], float("nan"))


def test_smoothed_rule_waits_for_a_running_mean_under_the_target():
    dip = [2.0, 1.0, 0.4, 0.9, 0.8, 0.45, 0.45, 0.4, 0.3, 0.3]  # a lucky dip at update 3
    assert steps_to_target(dip, 0.5) == 3
    # at update k the mean of the last ceil(k/2) losses: k = 6 averages 0.9, 0.8, 0.45 (0.72);
    # k = 7 averages 0.9, 0.8, 0.45, 0.45 (0.65); k = 8: 0.8, 0.45, 0.45, 0.4 (0.525); k = 9 adds 0.3 (0.48)
    assert steps_to_target(dip, 0.5, smoothing=0.5) == 9
    assert steps_to_target(dip, 0.5, smoothing=0.0) == 3  # 0 is the first crossing
    # the smoothed rule never stops before the first crossing
    rng = np.random.default_rng(1)
    for _ in range(20):
        losses = np.exp(-np.linspace(0, 3, 200)) + rng.normal(0, 0.05, 200)
        first, smooth = steps_to_target(losses, 0.2), steps_to_target(losses, 0.2, smoothing=0.1)
        assert first is not None and (smooth is None or smooth >= first)
    assert steps_to_target([0.1, float("nan"), 0.1, 0.1, 0.1, 0.1], 0.5, smoothing=0.5) == 1
    assert steps_to_target([0.9, float("nan"), 0.1, 0.1, 0.1, 0.1], 0.5, smoothing=0.5) == 4  # NaN gone


@pytest.mark.parametrize(("smoothing", "error"), [(-0.1, ValueError), (1.5, ValueError), ("0.1", TypeError)])
def test_steps_to_target_validates_smoothing(smoothing, error):
    with pytest.raises(error, match="smoothing"):
        steps_to_target([1.0], 0.5, smoothing=smoothing)
    with pytest.raises(ValueError, match="losses"):
        steps_to_target([[1.0]], 0.5)


def test_rate_grid():
    assert rate_grid(0.05, 1.6, per_doubling=1) == (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
    fine = rate_grid(0.05, 2.3)
    assert len(fine) == 12 and fine[8] == 0.8 and fine[9] == 1.13 and fine[-1] == 2.26
    assert np.allclose(np.diff(np.log(fine)), np.log(2) / 2, atol=0.01)
    with pytest.raises(ValueError, match="high"):
        rate_grid(1.0, 0.5)
    with pytest.raises(ValueError, match="low"):
        rate_grid(0.0, 1.0)
    with pytest.raises(ValueError, match="per_doubling"):
        rate_grid(0.1, 1.0, per_doubling=0)


@pytest.fixture(scope="module")
def small():
    return load_digits_split().take(200)


def test_run_to_target_stops_at_the_first_update_that_meets_it(small):
    run, model = run_to_target(small, 50, 0.4, 1.2, seed=0, max_steps=400)
    assert run.outcome == "reached"
    assert run.steps() == len(run.losses)  # stopped right there
    assert run.losses[-1] <= 1.2 < min(run.losses[:-1])
    assert run.samples[-1] == 50 * len(run.losses)  # B divides N = 200: every batch is full
    assert list(run.seconds) == sorted(run.seconds) and run.seconds[0] > 0
    assert sum(p.numel() for p in model.parameters()) == 4810


def test_run_to_target_drop_last_skips_the_short_batch(small):
    run, _ = run_to_target(small, 64, 0.4, 1.2, max_steps=400, drop_last=True)  # 200 = 3 × 64 + 8
    assert run.samples[:4] == (64, 128, 192, 256)  # the 8-sample batch never trains
    with pytest.raises(TypeError, match="drop_last"):
        run_to_target(small, 64, 0.4, 1.2, drop_last=1)


def test_run_to_target_smoothed_rule_records_until_the_running_mean_meets_it(small):
    first, _ = run_to_target(small, 10, 0.4, 0.8, seed=0, max_steps=600)
    smooth, _ = run_to_target(small, 10, 0.4, 0.8, seed=0, max_steps=600, smoothing=0.2)
    assert smooth.outcome == "reached" and smooth.smoothing == 0.2
    assert smooth.steps() == len(smooth.losses)  # stopped right where the rule is met
    assert smooth.losses[:len(first.losses)] == first.losses  # same seed, same run until the first stopped
    assert smooth.steps(smoothing=0.0) == first.steps() <= smooth.steps()
    assert first.steps(smoothing=0.2) is None or first.steps(smoothing=0.2) == len(first.losses)
    with pytest.raises(ValueError, match="smoothing"):
        run_to_target(small, 10, 0.4, 0.8, smoothing=2.0)


def test_run_to_target_cut_and_diverged(small):
    cut, _ = run_to_target(small, 200, 0.01, 0.1, max_steps=7)
    assert (cut.outcome, len(cut.losses), cut.steps()) == ("cut", 7, None)
    wild, _ = run_to_target(small, 8, 50.0, 0.1, max_steps=500)
    assert wild.outcome == "diverged" and len(wild.losses) < 500


def test_run_to_target_shares_the_training_rule_for_not_learning(small, monkeypatch):
    """One rule (batchlab.history.loss_verdict) for train and run_to_target: with a margin that every
    loss exceeds, the run is marked diverged ("not learning") once an epoch of updates is done."""
    monkeypatch.setattr(history_module, "CHANCE_MARGIN", -100.0)
    run, _ = run_to_target(small, 50, 0.4, 0.01, max_steps=400)  # 200 / 50: 4 updates per epoch
    assert (run.outcome, len(run.losses)) == ("diverged", 4)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"batch_size": 201}, ValueError, "batch_size"),
    ({"lr": -1.0}, ValueError, "lr"),
    ({"target": 0}, ValueError, "target"),
    ({"max_steps": 1.5}, TypeError, "max_steps"),
])
def test_run_to_target_validates(small, kwargs, error, match):
    arguments = {"batch_size": 10, "lr": 0.1, "target": 1.0} | kwargs
    with pytest.raises(error, match=match):
        run_to_target(small, arguments.pop("batch_size"), arguments.pop("lr"), arguments.pop("target"),
                      **arguments)


# ------------------------------------------------------------------------------------------ the search


def test_tune_to_target_searches_and_summarizes(small):
    sweep = tune_to_target(small, [10, 200], [0.1, 0.2, 0.4, 0.8, 1.6], 1.0, seeds=(0, 1), start_lr=0.4)
    summary = summarize(sweep)
    assert list(summary.batch_sizes) == [10, 200] and summary.missing == ()
    for b, lr, steps in zip(summary.batch_sizes, summary.best_lr, summary.steps, strict=True):
        runs = sweep.select(int(b), float(lr))
        assert steps == np.mean([r.steps() for r in runs])
        # no other rate the search tried reached the target in fewer mean updates
        for other in sweep.learning_rates:
            others = sweep.select(int(b), other)
            if len(others) == 2 and all(r.steps() for r in others):
                assert np.mean([r.steps() for r in others]) >= steps
    # the search starts at start_lr and only moves to neighbours of the grid
    assert (sweep.select(10, 0.4) and not sweep.select(10, 0.1)) or sweep.select(10, 0.2)
    table = grid_table_text(sweep)
    assert "*" in table and table.count("\n") == 2
    easier = summarize(sweep, 1.5)  # read off the same runs: fewer updates
    assert np.all(easier.steps <= summary.steps)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"batch_sizes": [20, 10]}, ValueError, "batch_sizes"),
    ({"batch_sizes": [10, 500]}, ValueError, r"batch_sizes\[1\]"),
    ({"learning_rates": [0.1]}, ValueError, "learning_rates"),
    ({"learning_rates": [0.2, 0.1]}, ValueError, "learning_rates"),
    ({"learning_rates": "0.1"}, TypeError, "learning_rates"),
    ({"seeds": [0, 0]}, ValueError, "seeds"),
    ({"learning_rates": [0.1, 0.1]}, ValueError, "strictly increasing"),
    ({"seeds": [-1]}, ValueError, r"seeds\[0\]"),
    ({"start_lr": 0.3}, ValueError, "start_lr"),
    ({"target": -1.0}, ValueError, "target"),
    ({"cut_factor": 0.5}, ValueError, "cut_factor"),
])
def test_tune_to_target_validates(small, kwargs, error, match):
    arguments = {"batch_sizes": [10], "learning_rates": [0.1, 0.2], "target": 1.0} | kwargs
    with pytest.raises(error, match=match):
        tune_to_target(small, arguments.pop("batch_sizes"), arguments.pop("learning_rates"),
                       arguments.pop("target"), **arguments)


def test_tune_then_rerun_on_held_out_seeds(small):
    sweep = tune_to_target(small, [10, 200], [0.2, 0.4, 0.8, 1.6], 1.0, seeds=(0, 1), start_lr=0.4,
                           drop_last=True)
    assert sweep.drop_last and all(r.drop_last for r in sweep.runs)
    best = summarize(sweep)
    held = rerun_at_best(small, sweep, (2, 3, 4), smoothing=0.1)
    assert held.seeds == (2, 3, 4) and held.smoothing == 0.1 and held.drop_last
    assert len(held.runs) == 3 * len(best.batch_sizes)
    for b, lr in zip(best.batch_sizes.tolist(), best.best_lr.tolist(), strict=True):
        assert [r.seed for r in held.select(b, lr)] == [2, 3, 4]  # one rate per B: the tuned one
    first, smooth = summarize(held, smoothing=0.0), summarize(held)
    assert list(first.best_lr) == list(best.best_lr) and first.seeds == (2, 3, 4)
    assert first.steps_per_seed.shape == (2, 3) and first.samples_per_seed.shape == (2, 3)
    assert np.all(smooth.steps >= first.steps)  # the smoothed rule never stops earlier
    assert np.allclose(first.samples_per_seed, first.steps_per_seed * first.batch_sizes[:, None])  # drop_last
    with pytest.raises(ValueError, match="smoothing"):
        summarize(sweep, smoothing=0.1)  # the tuning runs stopped at the first crossing
    with pytest.raises(ValueError, match="held out"):
        rerun_at_best(small, sweep, (1, 2))
    with pytest.raises(ValueError, match="data"):
        rerun_at_best(small.take(100), sweep, (2,))
    with pytest.raises(TypeError, match="sweep"):
        rerun_at_best(small, "sweep", (2,))


def summary_on_the_formula(s_min: float, e_min: float, noise: float, seeds: int = 8) -> TargetSummary:
    """A summary whose seeds scatter (log-normal, ``noise``) around S = S_min + E_min/B, E = S·B."""
    rng = np.random.default_rng(0)
    b = 2.0 ** np.arange(11)
    steps = (s_min + e_min / b)[:, None] * np.exp(rng.normal(0, noise, (b.size, seeds)))
    samples = steps * b[:, None]
    return TargetSummary(0.3, b.astype(np.int64), np.full(b.size, 0.1), steps.mean(axis=1), steps,
                         samples.mean(axis=1), np.zeros(b.size), (), samples, 0.0, tuple(range(seeds)))


def test_b_crit_interval_and_per_seed():
    exact = summary_on_the_formula(50, 600, 0.0)
    assert b_crit_interval(exact) == pytest.approx((12, 12, 12))
    assert np.allclose(b_crit_per_seed(exact), 12)
    noisy = summary_on_the_formula(50, 600, 0.1)
    estimate, low, high = b_crit_interval(noisy)
    assert low < estimate < high and low < 12 < high
    assert b_crit_interval(noisy) == (estimate, low, high)  # seeded: the same interval every time
    wider = b_crit_interval(summary_on_the_formula(50, 600, 0.3))
    assert wider[2] - wider[1] > high - low
    per_seed = b_crit_per_seed(noisy)
    assert per_seed.shape == (8,) and np.all((per_seed > 6) & (per_seed < 24))
    with pytest.raises(TypeError, match="summary"):
        b_crit_interval("summary")
    with pytest.raises(ValueError, match=r"seeds|at least"):
        b_crit_interval(summary_on_the_formula(50, 600, 0.1, seeds=1))


def test_summarize_refuses_a_target_below_the_sweeps():
    with pytest.raises(ValueError, match="target"):
        summarize(synthetic_sweep(), 0.1)
    with pytest.raises(TypeError, match="sweep"):
        summarize("sweep")


# ------------------------------------------------------------------------------------------ the fit


@pytest.mark.parametrize(("s_min", "e_min"), [(50.0, 600.0), (12.5, 40_000.0), (300.0, 300.0)])
def test_fit_recovers_s_min_and_e_min_from_points_on_the_formula(s_min, e_min):
    b = np.array([1, 2, 4, 16, 64, 256, 1347], dtype=float)
    steps, samples = s_min + e_min / b, e_min + s_min * b
    assert np.allclose((steps / s_min - 1) * (samples / e_min - 1), 1)
    fit = fit_tradeoff(steps, samples)
    assert fit.s_min == pytest.approx(s_min, rel=1e-9)
    assert fit.e_min == pytest.approx(e_min, rel=1e-9)
    assert fit.b_crit == pytest.approx(e_min / s_min, rel=1e-9)
    assert np.allclose(fit.steps(b), steps) and np.allclose(fit.samples(b), samples)
    # the fitted curve is McCandlish's trade-off: (S/S_min − 1)(E/E_min − 1) = 1 at every B
    assert np.allclose((fit.steps(b) / fit.s_min - 1) * (fit.samples(b) / fit.e_min - 1), 1)


def test_fit_with_noise_stays_close():
    rng = np.random.default_rng(0)
    b = 2.0 ** np.arange(11)
    steps = (50 + 600 / b) * np.exp(rng.normal(0, 0.03, b.size))
    fit = fit_tradeoff(steps, steps * b)
    assert fit.b_crit == pytest.approx(12, rel=0.15)


def test_fit_validates():
    with pytest.raises(ValueError, match="length"):
        fit_tradeoff([1.0], [1.0])
    with pytest.raises(ValueError, match="> 0"):
        fit_tradeoff([1.0, -2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="trade-off"):
        fit_tradeoff([10.0, 20.0, 40.0], [10.0, 40.0, 160.0])  # steps grow with B


# ------------------------------------------------------------------------------------------ the app


def synthetic_sweep(s_min: float = 40.0, e_min: float = 400.0) -> CriticalSweep:
    """Runs whose loss falls so that S(B) at the target 0.3 is ``ceil(s_min + e_min/B)``; seconds 1 ms per
    step. Two rates per B, the larger one always slower; two seeds."""
    sizes, runs = (1, 4, 16, 64, 256), []
    for b in sizes:
        for lr, factor in ((0.1, 1.0), (0.2, 1.5)):
            for seed in (0, 1):
                n = math.ceil((s_min + e_min / b) * factor) + seed  # seed 1: one update more
                losses = (*np.linspace(2.0, 0.3, n).tolist(), 0.2)
                run = TargetRun(b, lr, seed, 0.3, losses, tuple(b * np.arange(1, n + 2)),
                                tuple(1e-3 * np.arange(1, n + 2)), "reached")
                runs.append(run)
    return CriticalSweep(2000, sizes, (0.1, 0.2), (0, 1), 0.3, runs)


def assert_live_points(app, name):
    """The live view shows panel ``name``'s points as the figure does: filled within the budget,
    hollow over it, the winner starred, and the axes' limits."""
    view = live_figure(app.fig)
    filled, hollow = view.marks_of(app.points[name])
    offsets = app.points[name].get_offsets()
    inside = app.points[name].get_facecolors()[:, 3] > 0
    np.testing.assert_allclose(np.column_stack([filled.x, filled.y]).reshape(-1, 2), offsets[inside])
    np.testing.assert_allclose(np.column_stack([hollow.x, hollow.y]).reshape(-1, 2), offsets[~inside])
    assert filled.fill and not hollow.fill
    star = view.marks_of(app.stars[name])[0]
    assert list(star.text) == ["★"] * len(app.stars[name].get_offsets())
    ax = app.axes[name]
    x_scale, y_scale = view.scales_of(ax)
    assert type(x_scale).__name__ == type(y_scale).__name__ == "LogScale"
    assert (x_scale.min, x_scale.max) == tuple(sorted(ax.get_xlim()))
    assert (y_scale.min, y_scale.max) == tuple(sorted(ax.get_ylim()))


def test_app_plots_the_measured_sweep_and_the_fit():
    sweep = synthetic_sweep()
    app = CriticalBatchApp(sweep)
    expected = summarize(sweep)
    assert list(expected.best_lr) == [0.1] * 5
    assert np.allclose(expected.steps, [math.ceil(40 + 400 / b) + 0.5 for b in sweep.batch_sizes])
    offsets = {name: app.points[name].get_offsets() for name in ("steps", "pareto")}
    assert np.allclose(offsets["steps"], np.column_stack([expected.batch_sizes, expected.steps]))
    assert np.allclose(offsets["pareto"], np.column_stack([expected.steps, expected.samples]))
    fit = fit_tradeoff(expected.steps, expected.samples)
    assert app.fit == fit and fit.b_crit == pytest.approx(10, rel=0.1)
    assert app.crit_lines[0].get_xdata()[0] == pytest.approx(fit.b_crit)
    x, y = app.fit_lines["steps"].get_data()
    assert np.allclose(y, fit.s_min + fit.e_min / x)
    _, low, high = b_crit_interval(expected)
    assert app.b_crit_range == pytest.approx(b_crit_interval(expected))
    assert app.b_crit_text() == round_to_error(fit.b_crit, (high - low) / 2)
    assert app.b_crit_text() in app.numbers.value and f"{fit.s_min:,.0f}" in app.numbers.value
    for name in app.axes:
        assert_live_points(app, name)
    fit_mark = live_figure(app.fig).marks_of(app.fit_lines["steps"])[0]
    np.testing.assert_allclose(fit_mark.y, y)
    assert fit_mark.line_style == "dashed"
    assert live_figure(app.fig).marks_of(app.crit_lines[0])[0].x[0] == pytest.approx(fit.b_crit)


def test_app_prints_b_crit_at_the_precision_its_seeds_support():
    close = CriticalBatchApp(synthetic_sweep())  # the two seeds differ by one update: a narrow interval
    _, low, high = close.b_crit_range
    assert 0.05 < (high - low) / 2 < 0.2
    assert close.b_crit_text() == f"{close.fit.b_crit:.2f} ± {(high - low) / 2:.2f}"
    # seed 0 has B_crit 10, seed 1 B_crit 30: a wide interval
    runs = ([r for r in synthetic_sweep(e_min=400).runs if r.seed == 0]
            + [r for r in synthetic_sweep(e_min=1200).runs if r.seed == 1])
    spread = CriticalBatchApp(replace(synthetic_sweep(), runs=runs))
    _, low, high = spread.b_crit_range
    half = (high - low) / 2
    assert half > 1 and spread.b_crit_text() == round_to_error(spread.fit.b_crit, half)
    assert "." not in spread.b_crit_text()  # whole samples at most: the decimals would be noise
    alone = CriticalBatchApp(replace(synthetic_sweep(), seeds=(0,),
                                     runs=[r for r in synthetic_sweep().runs if r.seed == 0]))
    assert alone.b_crit_range is None and "one seed: no interval" in alone.b_crit_text()
    assert f"B_crit={spread.b_crit_text()}," in spread._repr_mimebundle_()["text/plain"]


def test_app_moving_the_target_moves_s_e_and_b_crit(redraws):
    sweep = synthetic_sweep()
    app = CriticalBatchApp(sweep, max_target=1.5)
    before = app.points["steps"].get_offsets().copy()
    b_crit = app.fit.b_crit
    redraws.clear()
    app.target.value = 1.0
    after = summarize(sweep, 1.0)
    assert np.all(after.steps < summarize(sweep).steps)
    assert np.allclose(app.points["steps"].get_offsets()[:, 1], after.steps)
    assert not np.allclose(before, app.points["steps"].get_offsets())
    assert app.fit.b_crit != b_crit and app.b_crit_text() in app.numbers.value
    assert app.b_crit_range == pytest.approx(b_crit_interval(after))
    assert "≤ 1.00" in app.numbers.value and redraws == [app.fig]  # one sync of the live view
    assert_live_points(app, "steps")
    assert "≤ 1.00" in live_figure(app.fig).header.value  # the suptitle, above the panels


def test_app_budget_picks_the_winner(redraws):
    app = CriticalBatchApp(synthetic_sweep())
    s = app.summary
    app.budget.value = 70.0  # steps: B = 16 (65.5), 64 (47.5), 256 (42.5) fit; the fewest samples: 16
    assert list(s.batch_sizes[app.feasible]) == [16, 64, 256] and app.best == 16
    assert "B = 16 (lr 0.1): 66 updates" in app.numbers.value
    assert app.budget_lines["steps"].get_visible() and not app.budget_lines["samples"].get_visible()
    alpha = app.points["steps"].get_facecolors()[:, 3]
    assert list(alpha) == [0, 0, 1, 1, 1]  # the batch sizes over the budget are hollow
    assert_live_points(app, "steps")
    budget = live_figure(app.fig).marks_of(app.budget_lines["steps"])[0]
    assert budget.visible and budget.y[0] == 70.0 and budget.line_style == "dotted"
    assert not live_figure(app.fig).marks_of(app.budget_lines["samples"])[0].visible
    app.budget_kind.value = "samples"
    assert app.budget_lines["samples"].get_visible()
    app.budget.value = 1000.0  # samples: B = 1 (440.5), 4 (562), 16 (1048: over); fewest steps is B = 4
    assert app.best == 4 and list(app.summary.batch_sizes[app.feasible]) == [1, 4]
    assert np.allclose(app.stars["samples"].get_offsets(), [[4, app.summary.samples[1]]])
    assert_live_points(app, "samples")
    app.budget_kind.value = "seconds"
    app.budget.value = app.budget.min
    assert app.best is None and "no batch size" in app.numbers.value
    assert_live_points(app, "seconds")
    assert not live_figure(app.fig).marks_of(app.stars["seconds"])[0].visible  # no winner: no star


def test_app_log_axes_read_as_plain_numbers_in_the_live_view():
    """label_log_axes' plain numbers (1, 10, 100 on B; 1, 2, 5, ... on the counts) label the live axes."""
    app = CriticalBatchApp(synthetic_sweep())
    view = live_figure(app.fig)
    for name, ax in app.axes.items():
        for bq_axis, axis in ((view.views[list(app.axes).index(name)].x_axis, ax.xaxis),
                              (view.views[list(app.axes).index(name)].y_axis, ax.yaxis)):
            low, high = sorted(axis.get_view_interval())
            ticks = [t for t in axis.get_majorticklocs() if low <= t <= high]
            assert list(bq_axis.tick_values) == ticks
            expected = [f"{t:,.0f}" if t >= 1 else f"{t:.2g}" for t in ticks]
            assert list(bq_axis.tick_labels.values()) == expected
    assert "10" in view.views[0].x_axis.tick_labels.values()


def test_winner_function():
    s = summarize(synthetic_sweep())
    feasible, best = winner(s, "steps", 1e9)
    assert feasible.all() and best == 1  # every B fits: the fewest samples is the smallest batch
    assert winner(s, "samples", 1e9)[1] == 256  # the fewest steps is the largest batch
    with pytest.raises(ValueError, match="kind"):
        winner(s, "epochs", 10)
    with pytest.raises(ValueError, match="budget"):
        winner(s, "steps", 0)


def test_app_static_fallback():
    app = CriticalBatchApp(synthetic_sweep())
    bundle = app._repr_mimebundle_()
    assert set(bundle) == {"application/vnd.jupyter.widget-view+json", "image/png", "text/html", "text/plain"}
    png = base64.b64decode(bundle["image/png"])
    width = int.from_bytes(png[16:20], "big")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and width >= 1000
    assert "B_crit" in bundle["text/html"] and "VBox" not in bundle["text/plain"]


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"target": 0.2}, ValueError, "target"),
    ({"max_target": 0.3}, ValueError, "max_target"),
    ({"budget_kind": "epochs"}, ValueError, "budget_kind"),
    ({"budget": -1}, ValueError, "budget"),
])
def test_app_validates(kwargs, error, match):
    with pytest.raises(error, match=match):
        CriticalBatchApp(synthetic_sweep(), **kwargs)
    with pytest.raises(TypeError, match="sweep"):
        CriticalBatchApp("sweep")


def test_app_refuses_a_sweep_that_never_reached_its_target():
    """Not NumPy's "zero-size array to reduction operation minimum": the sweep, in words."""
    sweep = synthetic_sweep()
    never = CriticalSweep(sweep.n_train, sweep.batch_sizes, sweep.learning_rates, sweep.seeds, 0.1,
                          [TargetRun(r.batch_size, r.lr, r.seed, 0.1, r.losses, r.samples, r.seconds, "cut")
                           for r in sweep.runs])  # every loss stays above 0.1
    with pytest.raises(ValueError, match=r"sweep must have a batch size whose every seed reached its target "
                                         r"val loss 0\.1, but none did \(batch sizes \[1, 4, 16, 64, 256\]"):
        CriticalBatchApp(never)


def test_app_refuses_a_sweep_without_measured_seconds():
    """Not "math domain error" from log10(0): the seconds, in words."""
    sweep = synthetic_sweep()
    runs = [TargetRun(r.batch_size, r.lr, r.seed, r.target, r.losses, r.samples, (0.0,) * len(r.seconds),
                      r.outcome) for r in sweep.runs]
    timeless = CriticalSweep(sweep.n_train, sweep.batch_sizes, sweep.learning_rates, sweep.seeds,
                             sweep.target, runs)
    with pytest.raises(ValueError, match=r"sweep must hold seconds > 0 for every run that reached"):
        CriticalBatchApp(timeless)


def test_full_benchmark_is_shipped_with_the_package_and_names_its_designs():
    from batchlab.critical import full_benchmark

    stored = full_benchmark()
    labels = [sweep["label"] for sweep in stored["sweeps"]]
    assert "sqrt2 grid, tuned by first crossing" in labels  # the design notebook 07's live sweep follows
    assert full_benchmark() == stored  # read afresh, the same numbers


# ------------------------------------------------------------------------------------------ the capped model


def test_capped_model_without_a_cap_is_mccandlish():
    b = np.array([1.0, 10.0, 80.0, 1e4])
    for ratio in (1.0, 3.0, math.inf):
        assert np.allclose(capped_steps(b, 80.0, ratio), 1 + 80.0 / b)
        assert capped_b_crit(80.0, ratio) == 80.0


@pytest.mark.parametrize("ratio", [0.02, 0.25, 0.5, 0.9])
def test_capped_b_crit_doubles_the_fewest_updates(ratio):
    b_crit = capped_b_crit(80.0, ratio)
    fewest = capped_steps(1e15, 80.0, ratio)
    assert fewest == pytest.approx(1 / (ratio * (2 - ratio)))  # the cap raises the fewest updates
    assert capped_steps(b_crit, 80.0, ratio) == pytest.approx(2 * fewest, rel=1e-9)
    assert b_crit < 80.0 * ratio * 2  # far below B_noise for a low cap (about ratio · B_noise)
    b = np.geomspace(0.1, 1e6, 400)
    steps = capped_steps(b, 80.0, ratio)
    assert np.all(np.diff(steps) < 0) and np.all(steps >= 1 + 80.0 / b - 1e-12)  # never beats the uncapped
    assert np.allclose(steps[b < b_crit / 4], (1 + 80.0 / b)[b < b_crit / 4])  # small B: the cap never binds


def test_capped_model_validates():
    with pytest.raises(ValueError, match="b_noise"):
        capped_b_crit(0.0, 0.5)
    with pytest.raises(ValueError, match="rate_ratio"):
        capped_b_crit(10.0, 0.0)
    with pytest.raises(ValueError, match="rate_ratio"):
        capped_steps([1, 2], 10.0, float("nan"))
    with pytest.raises(ValueError, match="batch_sizes"):
        capped_steps([1, -2], 10.0, 0.5)
    with pytest.raises(TypeError, match="b_noise"):
        capped_b_crit("80", 0.5)
