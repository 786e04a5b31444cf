"""The simulator's insight rules: pure functions of the settings and of a run's History."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchlab import arithmetic
from batchlab.data import CHANCE_LOSS, load_digits_split
from batchlab.history import History
from batchlab.insights import (
    Insight,
    batch_regime,
    diverged,
    drop_last_cost,
    good_progress,
    insights,
    insights_html,
    learning_rate_risk,
    measured_best_rate,
    noisy_validation,
    overfitting,
    plateau,
    regime_insights,
    rising_loss,
    run_insights,
    stuck_at_chance,
    update_budget,
)
from batchlab.models import make_mlp
from batchlab.training import train


def settings(n=1347, b=32, lr=0.1, epochs=20, drop_last=False):
    return arithmetic.TrainingPlan(n, b, epochs, drop_last, lr=lr)


def history(val_loss, *, train_loss=None, val_accuracy=None, iteration_losses=None, n=1347, b=32):
    """A History as the engine fills it, for the given per-epoch curves."""
    epochs = len(val_loss)
    plan = arithmetic.TrainingPlan(n, b, max(epochs, 1))
    per_epoch = plan.iterations_per_epoch
    if train_loss is None:
        train_loss = list(val_loss)
    if val_accuracy is None:
        val_accuracy = [0.95] * epochs
    if iteration_losses is None:
        iteration_losses = [CHANCE_LOSS] * 10 + [0.5] * max(per_epoch * epochs - 10, 0)
    h = History(plan=plan, iteration_losses=list(iteration_losses), train_loss=list(train_loss),
                val_loss=list(val_loss), val_accuracy=list(val_accuracy))
    h.epoch_starts = [per_epoch * e for e in range(epochs)]
    h.iterations = h.steps = len(iteration_losses)
    h.samples_seen = min(h.iterations * b, n * epochs)
    h.epochs_completed = epochs
    return h


# --------------------------------------------------------------------------- the plan's rate
@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"lr": 0.0}, ValueError, "lr"),
        ({"lr": "0.1"}, TypeError, "lr"),
        ({"scaling_rule": "cubic"}, ValueError, "scaling_rule"),
        ({"scaling_rule": "linear"}, ValueError, "base_batch_size"),
        ({"warmup_steps": -1}, ValueError, "warmup_steps"),
        ({"warmup_start_lr": 0.2}, ValueError, "warmup_start_lr"),
    ],
)
def test_plan_checks_its_rate(kwargs, error, name):
    with pytest.raises(error, match=name):
        arithmetic.TrainingPlan(1347, 32, 5, **kwargs)


def test_insight_level_is_checked():
    with pytest.raises(ValueError, match="level"):
        Insight("x", "loud", "title", "text")


# --------------------------------------------------------------------------- regime rules
@pytest.mark.parametrize(
    ("n", "b", "key"),
    [(1347, 1, "sgd"), (1347, 1347, "full-batch"), (100, 100, "full-batch"), (1347, 4, "small-batch"),
     (1347, 8, "small-batch"), (1347, 9, "mini-batch"), (1347, 32, "mini-batch"),
     (1347, 337, "large-batch"), (1347, 1000, "large-batch"), (1347, 336, "mini-batch")],
)
def test_batch_regime(n, b, key):
    found = batch_regime(settings(n=n, b=b))
    assert found.key == key
    assert found.level == "info"


def test_regime_texts_quote_the_counts():
    assert "1,347 updates" in batch_regime(settings(b=1)).text
    assert "only 7 updates" in batch_regime(settings(b=1347, epochs=7)).text
    assert "Only 2 updates per epoch" in batch_regime(settings(b=1000)).text


@given(n=st.integers(2, 2000), data=st.data())
def test_exactly_one_regime_and_it_matches_its_definition(n, data):
    b = data.draw(st.integers(1, n))
    key = batch_regime(settings(n=n, b=b)).key
    expected = ("sgd" if b == 1 else "full-batch" if b == n else "small-batch" if b <= 8
                else "large-batch" if math.ceil(n / b) <= 4 else "mini-batch")
    assert key == expected


def test_measured_best_rate_is_notebook_07s_tuned_rate():
    from batchlab.critical import full_benchmark

    sweep = next(s for s in full_benchmark()["sweeps"] if s["label"] == "sqrt2 grid, tuned by first crossing")
    best = dict(zip(sweep["batch_sizes"], sweep["best_lr"], strict=True))
    assert measured_best_rate(1) == (1, best[1])
    assert measured_best_rate(8) == (8, best[8])
    assert measured_best_rate(100) == (64, best[64])  # the measured batch size just below
    assert measured_best_rate(5000) == (1347, best[1347])
    with pytest.raises(ValueError, match="batch_size"):
        measured_best_rate(0)


@given(st.integers(1, 5000), st.integers(1, 5000))
def test_measured_best_rate_never_falls_as_the_batch_grows(b1, b2):
    small, large = sorted((b1, b2))
    assert measured_best_rate(small)[1] <= measured_best_rate(large)[1]


@pytest.mark.parametrize(("b", "lr", "warns"), [(1, 0.1, False), (1, 0.3, True), (8, 0.3, False),
                                               (8, 3.0, True), (256, 1.0, False), (1347, 2.0, True)])
def test_learning_rate_risk(b, lr, warns):
    found = learning_rate_risk(settings(b=b, lr=lr))
    assert (found is not None) == warns
    if warns:
        assert found.key == "high-lr" and found.level == "warning"
        assert ("small batch" in found.title) == (b <= 8)


def test_drop_last_cost():
    assert drop_last_cost(settings(n=1000, b=300)) is None
    found = drop_last_cost(settings(n=1000, b=300, drop_last=True))
    assert found.key == "drop-last" and found.level == "warning"
    assert "100 samples" in found.title and "10.0%" in found.text
    small = drop_last_cost(settings(n=1347, b=32, drop_last=True))  # 1347 mod 32 = 3
    assert small.level == "info" and "3 samples" in small.title
    assert drop_last_cost(settings(n=1000, b=250, drop_last=True)).key == "drop-last-none"
    assert drop_last_cost(settings(n=1000, b=1000, drop_last=True)).key == "drop-last-none"


def test_update_budget():
    assert update_budget(settings(b=32, epochs=3)) is None  # 43 × 3 = 129
    found = update_budget(settings(b=1347, epochs=20))
    assert found.key == "few-updates" and "1 × 20 = 20" in found.text


def test_regime_insights_in_order():
    keys = [f.key for f in regime_insights(settings(n=1001, b=4, lr=1.0, epochs=1, drop_last=True))]
    assert keys == ["small-batch", "high-lr", "drop-last"]
    assert [f.key for f in regime_insights(settings())] == ["mini-batch"]


# --------------------------------------------------------------------------- run rules
def test_diverged_names_the_first_bad_iteration():
    h = history([0.5], iteration_losses=[2.3, 5.0, float("nan"), float("inf")], b=1347)
    found = diverged(h)
    assert found.key == "diverged" and found.level == "danger"
    assert "iteration 3" in found.text
    assert diverged(history([0.5, float("inf")])).text.count("epoch 2") == 1
    assert diverged(history([0.5, 0.4])) is None


def test_rising_loss():
    up = history([2.5, 4.0], train_loss=[3.0, 5.0])
    assert rising_loss(up).key == "rising"
    assert rising_loss(history([1.0, 0.5])) is None
    assert rising_loss(history([], train_loss=[])) is None


def test_stuck_at_chance_tells_collapse_from_slowness():
    flat = dict(val_accuracy=[0.1, 0.1, 0.1])
    # Learned, then lost it: collapsed, whatever the learning rate.
    lost = history([1.0, 2.3, 2.3], **flat)
    assert stuck_at_chance(settings(lr=0.1), lost).key == "collapsed"
    # Never learned, with a risky rate: collapsed; with a small one: too slow.
    never = history([2.3, 2.3, 2.3], **flat)
    assert stuck_at_chance(settings(b=8, lr=3.0), never).key == "collapsed"
    slow = stuck_at_chance(settings(b=1347, lr=0.01), never)
    assert slow.key == "too-slow" and slow.level == "warning"
    assert stuck_at_chance(settings(), history([2.3], val_accuracy=[0.1])) is None  # one epoch: wait
    assert stuck_at_chance(settings(), history([2.0, 1.5], val_accuracy=[0.3, 0.5])) is None


def test_overfitting_needs_a_sustained_rise_while_training_loss_falls():
    val = [1.0, 0.5, 0.4, 0.42, 0.45, 0.48]
    train_loss = [1.2, 0.5, 0.3, 0.2, 0.1, 0.05]
    found = overfitting(history(val, train_loss=train_loss))
    assert found.key == "overfitting"
    assert "epoch 3" in found.text and "20% higher" in found.text
    # A single bad evaluation is not a trend (SGD at B = 1: 0.207, 0.356, 0.260).
    assert overfitting(history([0.207, 0.356, 0.260], train_loss=[0.7, 0.3, 0.16])) is None
    # Training loss not falling either: not overfitting.
    assert overfitting(history(val, train_loss=[1.2, 0.5, 0.3, 0.35, 0.4, 0.45])) is None
    # Nothing learned (accuracy at chance at the best epoch): not overfitting.
    assert overfitting(history(val, train_loss=train_loss, val_accuracy=[0.1] * 6)) is None
    assert overfitting(history([1.0, 0.5, 0.4, 0.39, 0.38, 0.37], train_loss=train_loss)) is None


def test_noisy_validation_with_mini_batches_blames_the_gradient_noise():
    found = noisy_validation(settings(b=1), history([0.207, 0.356, 0.260], b=1))
    assert found.key == "noisy" and "estimated from 1 of the 1,347 samples" in found.text
    assert noisy_validation(settings(), history([1.0, 0.7, 0.5])) is None  # falling steadily
    assert noisy_validation(settings(), history([0.5, 0.55, 0.5])) is None  # small swings


def test_noisy_validation_with_full_batches_never_blames_noise():
    """B = N has no gradient noise: a swinging validation loss over a steadily falling training loss
    gets no insight, and one over a swinging training loss is called overshooting, not noise."""
    full = settings(b=1347, lr=1.0)
    steady = history([0.9, 0.6, 0.8, 0.5], train_loss=[1.5, 1.0, 0.8, 0.6], b=1347)
    assert noisy_validation(full, steady) is None
    swinging = history([0.9, 0.6, 0.8, 0.5], train_loss=[1.5, 0.9, 1.1, 0.6], b=1347)
    found = noisy_validation(full, swinging)
    assert found.key == "oscillating" and "not noise" in found.text and "small batch" not in found.text


def test_diverged_uses_the_history_flag_and_its_words():
    h = history([0.5, 0.4])
    h.diverged, h.divergence = True, "the loss rose to 5.6e+32, far above its start"
    found = diverged(h)
    assert found.key == "diverged" and "5.6e+32" in found.text
    assert [f.key for f in run_insights(settings(), h)] == ["diverged"]


def test_plateau_advice_depends_on_accuracy():
    flat = [0.9, 0.3, 0.3, 0.301, 0.3, 0.299, 0.3]
    good = plateau(history(flat))
    assert good.key == "plateau" and "more data" in good.text
    poor = plateau(history(flat, val_accuracy=[0.5] * 7))
    assert "larger learning rate" in poor.text
    assert plateau(history([0.9, 0.5, 0.4, 0.3, 0.25])) is None
    assert plateau(history([0.3] * 4)) is None  # too few epochs to tell


def test_good_progress():
    found = good_progress(history([2.0, 0.5], val_accuracy=[0.5, 0.93]))
    assert found.key == "good" and found.level == "good"
    assert "93.0%" in found.text and "2 → 0.5" in found.text
    assert good_progress(history([2.0, 1.5], val_accuracy=[0.3, 0.6])) is None


def test_run_insights_report_a_failure_alone():
    bad = history([0.5, float("nan")], val_accuracy=[0.9, 0.1])
    assert [f.key for f in run_insights(settings(), bad)] == ["diverged"]
    overfit = history([1.0, 0.5, 0.4, 0.42, 0.45, 0.48], train_loss=[1.2, 0.5, 0.3, 0.2, 0.1, 0.05])
    keys = [f.key for f in run_insights(settings(), overfit)]
    assert keys[0] == "overfitting" and "good" in keys and "plateau" not in keys


def test_insights_put_the_run_before_the_regime():
    s = settings(b=1)
    assert [f.key for f in insights(s)] == ["sgd"]
    keys = [f.key for f in insights(s, history([2.0, 0.5], val_accuracy=[0.5, 0.93], b=1))]
    assert keys == ["good", "sgd"]


def test_insights_html_escapes_and_colours():
    text = insights_html([Insight("k", "danger", "a < b", "x & y")])
    assert "a &lt; b" in text and "x &amp; y" in text and "batchlab-danger" in text
    assert insights_html([]) == ""
    with pytest.raises(TypeError, match="Insight"):
        insights_html(["plain text"])


@pytest.mark.parametrize("rule", [batch_regime, learning_rate_risk, drop_last_cost, update_budget,
                                  regime_insights])
def test_plan_rules_reject_other_types(rule):
    with pytest.raises(TypeError, match="plan"):
        rule({"batch_size": 32})


@pytest.mark.parametrize("rule", [diverged, rising_loss, overfitting, plateau, good_progress])
def test_history_rules_reject_other_types(rule):
    with pytest.raises(TypeError, match="history"):
        rule([0.5, 0.4])


# --------------------------------------------------------------------------- on real runs
@pytest.fixture(scope="module")
def digits():
    """The digits (conftest.py runs the tests on one torch thread)."""
    return load_digits_split()


def test_rules_on_real_runs(digits):
    """The thresholds describe what this model really does (the rates measured in notebook 07)."""
    collapsed = train(make_mlp(seed=0), digits, batch_size=8, epochs=3, lr=3.0, progress=False,
                      device="cpu")
    found = insights(settings(b=8, lr=3.0, epochs=3), collapsed)
    assert found[0].key == "collapsed", [f.key for f in found]
    assert "high-lr" in [f.key for f in found]
    good = train(make_mlp(seed=0), digits.take(500), batch_size=25, epochs=15, lr=0.1, progress=False,
                 device="cpu")
    assert [f.key for f in insights(settings(n=500, b=25, epochs=15), good)] == ["good", "mini-batch"]


def test_full_batch_gradient_descent_at_rate_one_gets_no_noise_insight(digits):
    """Notebook 06's experiment 2: batch GD at learning rate 1 must not be told about batch noise."""
    h = train(make_mlp(seed=0), digits, batch_size=1347, epochs=50, lr=1.0, progress=False, device="cpu")
    keys = [f.key for f in insights(settings(b=1347, lr=1.0, epochs=50), h)]
    assert "noisy" not in keys and "full-batch" in keys
    if "oscillating" in keys:  # then the training loss really went up and down
        assert any(b > a for a, b in zip(h.train_loss[-6:], h.train_loss[-5:], strict=False))
