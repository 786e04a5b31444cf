"""The training simulator's insights: rules that explain a run's settings and react to what it does.

Every rule is a pure function: of the run's :class:`batchlab.arithmetic.TrainingPlan` alone (N, B, E,
``drop_last`` and the learning rate: the one object that describes a run), or of the plan and a
:class:`batchlab.history.History` (complete, or filled up to the moment of the call). A rule returns
an :class:`Insight` or ``None`` when it has nothing to say. :func:`insights` collects them in reading
order, and :func:`insights_html` renders them; nothing here imports widgets.

Two kinds of rules:

* **the regime** (plan only): ``B = 1`` is stochastic gradient descent, ``B = N`` is batch gradient
  descent, small and large mini-batches, a learning rate above the best one measured for the batch
  size, what ``drop_last`` throws away, and how many updates the run will make;
* **the run** (plan and history): a loss that became NaN/inf, a loss that rose above its starting
  value, a run stuck at chance level, validation loss rising while training loss falls (overfitting),
  noisy validation losses, a plateau, and good progress.

The thresholds are rules of thumb for this model (``make_mlp()``: 64-64-10, plain SGD) on the digits.
The learning-rate warning is a measurement, not a formula: notebook 07 tunes the rate of this model for
every batch size on a grid of factors of √2 (:func:`batchlab.critical.full_benchmark`, the full
benchmark it shows), and :func:`measured_best_rate` reads the rate that reached the target fastest for
the batch size. The grid's next larger rate was already slower there, or diverged. Too large a step
wrecks the network (its ReLUs die) instead of producing NaN: a validation accuracy of 0.10 is chance
(10 classes).
"""

from __future__ import annotations

import bisect
import functools
import html
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from batchlab.arithmetic import TrainingPlan
from batchlab.critical import full_benchmark
from batchlab.data import CHANCE_LOSS
from batchlab.history import History
from batchlab.validation import require_choice, require_instance, require_int

__all__ = ["LEVELS", "MEASURED_SWEEP", "Insight", "batch_regime", "diverged", "drop_last_cost",
           "good_progress", "insights", "insights_html", "learning_rate_risk", "measured_best_rate",
           "noisy_validation", "overfitting", "plateau", "regime_insights", "rising_loss", "run_insights",
           "stuck_at_chance", "update_budget"]

#: Accuracy of a uniform guess over the 10 digits (its cross-entropy is ``CHANCE_LOSS = ln 10 ≈ 2.303``).
CHANCE_ACCURACY = 0.1
LEVELS = ("info", "good", "warning", "danger")

SMALL_BATCH = 8  # 2 <= B <= 8: "small" mini-batches
LARGE_BATCH_ITERATIONS = 4  # B < N with at most 4 iterations per epoch: "large" batches
FEW_UPDATES = 100  # fewer updates than this in the whole run: warn that it is a small budget
DROP_WARNING_FRACTION = 0.1  # drop_last discarding at least 10 % of the data: warn
PLATEAU_EPOCHS = 5  # a plateau is judged over this many epochs ...
PLATEAU_CHANGE = 0.01  # ... in which the validation loss moved by less than 1 %
OVERFIT_RISE = 0.05  # validation loss 5 % above its minimum, on average over the last 3 epochs ...
OVERFIT_PATIENCE = 3  # ... which are all after the minimum
NOISY_SWING = 0.2  # validation loss moving by 20 % or more between epochs, up and down: noisy
GOOD_ACCURACY = 0.9
#: The sweep of notebook 07's full benchmark whose tuned rates the learning-rate warning uses.
MEASURED_SWEEP = "sqrt2 grid, tuned by first crossing"


@dataclass(frozen=True)
class Insight:
    """One message of the insights panel.

    ``key`` names the rule that produced it (stable, for tests and styling); ``level`` is one of
    :data:`LEVELS`; ``title`` is a few words, ``text`` one or two sentences with the numbers.

    Taught in: notebook 06.
    """

    key: str
    level: str
    title: str
    text: str

    def __post_init__(self) -> None:
        require_choice("level", self.level, LEVELS)


def _check_plan(plan: TrainingPlan) -> TrainingPlan:
    return require_instance("plan", plan, TrainingPlan, "batchlab.arithmetic.TrainingPlan")


def _check_history(history: History) -> History:
    return require_instance("history", history, History, "batchlab.history.History")


# --------------------------------------------------------------------------- rules on the settings
def batch_regime(plan: TrainingPlan) -> Insight:
    """Which gradient-descent regime ``B`` selects: SGD, batch GD, small, medium or large mini-batches.

    Taught in: notebook 06.
    """
    s = _check_plan(plan)
    n = s.n_samples
    b = s.batch_size
    i = s.iterations_per_epoch
    if b == 1 and n > 1:
        return Insight("sgd", "info", "B = 1: stochastic gradient descent",
                       f"Every update uses one sample, so an epoch is {n:,} updates. Each point of the "
                       "loss chart is one sample's loss: expect a very noisy curve (the per-epoch means "
                       "are smooth). One sample per iteration also makes each epoch slow in wall time: "
                       "the per-iteration overhead is paid N times.")
    if b == n:
        return Insight("full-batch", "info", "B = N: batch gradient descent",
                       f"Every update uses all {n:,} samples: the exact gradient of the training loss, a "
                       f"smooth curve, and one update per epoch, so only {s.epochs} updates in the whole "
                       "run. Each update costs a full pass over the data.")
    if b <= SMALL_BATCH:
        return Insight("small-batch", "info", f"B = {b}: small mini-batches",
                       f"{i:,} updates per epoch, each from {b} samples: the gradient estimate is noisy "
                       "(its variance falls like 1/B), which shows as a jagged loss curve; many cheap "
                       "updates per epoch.")
    if i <= LARGE_BATCH_ITERATIONS:
        return Insight("large-batch", "info", f"B = {b}: large mini-batches",
                       f"Only {i} updates per epoch (I = {i}): each gradient is accurate but you get few "
                       "of them. Large batches need more epochs or a larger learning rate to make the "
                       "same progress per epoch (notebook 04 measures the linear and √ scaling rules).")
    return Insight("mini-batch", "info", f"B = {b}: mini-batch gradient descent",
                   f"{i:,} updates per epoch of {b} samples each: a gradient much less noisy than with "
                   "B = 1 and many more updates per epoch than with B = N.")


@functools.cache
def _measured_rates() -> tuple[list[int], list[float]]:
    """Notebook 07's tuned batch sizes and best rates (read once)."""
    sweep = next(s for s in full_benchmark()["sweeps"] if s["label"] == MEASURED_SWEEP)
    return sweep["batch_sizes"], sweep["best_lr"]


def measured_best_rate(batch_size: int) -> tuple[int, float]:
    """``(B_measured, rate)``: the learning rate that reached notebook 07's target fastest for the largest
    measured batch size ``B_measured <= batch_size`` (plain SGD, ``make_mlp()``, the full benchmark's
    √2 grid tuned by the first crossing). There the grid's next larger rate was slower, or diverged.

    The measured rates grow with B, so using the batch size just below is the cautious choice.

    Taught in: notebook 06 (the numbers: notebook 07 § The learning-rate search, in full).
    """
    batch_size = require_int("batch_size", batch_size, minimum=1)
    sizes, rates = _measured_rates()
    k = max(bisect.bisect_right(sizes, batch_size) - 1, 0)
    return sizes[k], rates[k]


def learning_rate_risk(plan: TrainingPlan) -> Insight | None:
    """Warn when the learning rate is above :func:`measured_best_rate` for the batch size.

    Taught in: notebook 06.
    """
    p = _check_plan(plan)
    measured_at, limit = measured_best_rate(p.batch_size)
    if p.peak_lr <= limit:
        return None
    small = p.batch_size <= SMALL_BATCH
    why = ("a small batch is sharper than the whole dataset (notebook 03: per-sample curvature), so "
           "it tolerates a smaller step" if small
           else "even an accurate gradient overshoots when the step passes the stability limit (notebook 03)")
    return Insight("high-lr", "warning",
                   "High learning rate" + (" with a small batch" if small else ""),
                   f"lr = {p.peak_lr:.4g} is above {limit:.4g}, the rate that trained this model fastest "
                   f"with B = {measured_at} in notebook 07's measurement (a larger rate was already "
                   f"slower there, or diverged): {why}. Watch for a loss that jumps up or settles at "
                   f"ln 10 ≈ {CHANCE_LOSS:.2f} (chance).")


def drop_last_cost(plan: TrainingPlan) -> Insight | None:
    """What ``drop_last`` discards per epoch (nothing to say without it).

    Taught in: notebook 06.
    """
    s = _check_plan(plan)
    if not s.drop_last:
        return None
    dropped = s.samples_dropped
    if dropped == 0:
        return Insight("drop-last-none", "info", "drop_last drops nothing here",
                       f"B = {s.batch_size} divides N = {s.n_samples:,}: every batch is full, so "
                       "drop_last changes nothing.")
    share = dropped / s.n_samples
    level = "warning" if share >= DROP_WARNING_FRACTION else "info"
    return Insight("drop-last", level, f"drop_last discards {dropped} samples per epoch",
                   f"N mod B = {s.n_samples:,} mod {s.batch_size} = {dropped} samples ({share:.1%} of "
                   "the data) are left out of every epoch; the order is reshuffled each epoch, so "
                   "different samples are left out each time.")


def update_budget(plan: TrainingPlan) -> Insight | None:
    """Warn when the whole run makes fewer than :data:`FEW_UPDATES` updates.

    Taught in: notebook 06.
    """
    s = _check_plan(plan)
    total = s.total_iterations
    if total >= FEW_UPDATES:
        return None
    return Insight("few-updates", "warning", f"Only {total} updates in the whole run",
                   f"I × E = {s.iterations_per_epoch} × {s.epochs} = {total} updates. Training makes "
                   "progress one update at a time: with this few, the loss may still be falling when "
                   "the run ends. More epochs, a smaller B or a larger learning rate help.")


def regime_insights(plan: TrainingPlan) -> list[Insight]:
    """The insights that depend on the plan only (N, B, E, drop_last, rate), in reading order.

    Taught in: notebook 06.
    """
    rules = (batch_regime, learning_rate_risk, update_budget, drop_last_cost)
    return [found for rule in rules if (found := rule(plan)) is not None]


# --------------------------------------------------------------------------- rules on the run
def _first_nonfinite(values: Sequence[float]) -> int | None:
    return next((k for k, v in enumerate(values) if not math.isfinite(v)), None)


def diverged(history: History) -> Insight | None:
    """The run diverged (``History.diverged``, in the engine's words), or its loss became NaN or
    infinite: the updates overshot until the numbers overflowed.

    Taught in: notebook 06.
    """
    h = _check_history(history)
    if h.diverged:
        return Insight("diverged", "danger", "Diverged",
                       f"{h.divergence or 'The loss stopped being a finite number.'} The updates "
                       "overshot. Lower the learning rate (÷ 10) or raise the batch size.")
    at = _first_nonfinite(h.iteration_losses)
    if at is not None:
        where = f"iteration {at + 1:,}"
    elif (epoch := _first_nonfinite(h.val_loss)) is not None:
        where = f"the validation of epoch {epoch + 1}"
    else:
        return None
    return Insight("diverged", "danger", "Diverged: the loss is NaN/inf",
                   f"The loss stopped being a number at {where}. The updates overshot until the "
                   "weights overflowed. Lower the learning rate (÷ 10) or raise the batch size.")


def rising_loss(history: History) -> Insight | None:
    """After an epoch or more, the loss is above where it started: the steps overshoot.

    Taught in: notebook 06.
    """
    h = _check_history(history)
    if not h.train_loss or _first_nonfinite(h.iteration_losses) is not None:
        return None
    first = h.iteration_losses[:10]  # the loss at the start: the mean of the first (at most 10) losses
    start = sum(first) / len(first) if first else CHANCE_LOSS
    latest = h.val_loss[-1] if h.val_loss else h.train_loss[-1]
    worst = max(v for v in h.train_loss if math.isfinite(v))
    if latest <= 1.1 * start and worst <= 1.5 * start:
        return None
    return Insight("rising", "danger", "The loss went up, not down",
                   f"It started near {start:.4g}; an epoch's training loss reached {worst:.4g} and "
                   f"the latest validation loss is {latest:.4g}. The steps overshoot the minimum: "
                   "lower the learning rate or raise the batch size.")


def stuck_at_chance(plan: TrainingPlan, history: History) -> Insight | None:
    """After two epochs or more, validation accuracy is still at chance level (10 %).

    Taught in: notebook 06.
    """
    s = _check_plan(plan)
    h = _check_history(history)
    if h.epochs_completed < 2 or not h.val_accuracy or h.val_accuracy[-1] > 2 * CHANCE_ACCURACY:
        return None
    finite_val = [v for v in h.val_loss if math.isfinite(v)]
    learned_then_lost = bool(finite_val) and min(finite_val) < 0.8 * CHANCE_LOSS
    accuracy = h.val_accuracy[-1]
    if learned_then_lost or s.peak_lr > measured_best_rate(s.batch_size)[1]:
        return Insight("collapsed", "danger", "Stuck at chance: the network collapsed",
                       f"Validation accuracy is {accuracy:.1%} (chance is 10 %) after "
                       f"{h.epochs_completed} epochs. Steps this large push almost all hidden units into a "
                       "state where they output zero for every image (dead ReLUs), and plain SGD "
                       "cannot bring them back. Start again with a smaller learning rate.")
    return Insight("too-slow", "warning", "Still at chance: too little progress",
                   f"Validation accuracy is {accuracy:.1%} after {h.steps:,} updates. Each update is "
                   "small (learning rate) or there are few of them (I per epoch): raise the learning "
                   "rate or lower the batch size.")


def overfitting(history: History) -> Insight | None:
    """Validation loss has risen above its minimum for three epochs while training loss kept falling.

    Judged on the mean of the last three epochs (one noisy evaluation is not a trend).

    Taught in: notebook 06.
    """
    h = _check_history(history)
    best = h.best_epoch
    if best is None or _first_nonfinite(h.val_loss) is not None or not h.train_loss:
        return None
    last = len(h.val_loss) - 1
    recent = sum(h.val_loss[-OVERFIT_PATIENCE:]) / OVERFIT_PATIENCE
    rise = recent / h.val_loss[best] - 1 if h.val_loss[best] > 0 else 0.0
    if last - best < OVERFIT_PATIENCE or rise < OVERFIT_RISE or h.train_loss[last] >= h.train_loss[best]:
        return None
    if h.val_accuracy[best] < 2 * CHANCE_ACCURACY:
        return None  # nothing was learned: this is not overfitting
    now = h.val_loss[last] / h.val_loss[best] - 1
    return Insight("overfitting", "warning", "Overfitting: validation loss is rising",
                   f"Validation loss was lowest after epoch {best + 1} ({h.val_loss[best]:.4g}) and is "
                   f"{now:.0%} higher now ({h.val_loss[last]:.4g}), while the training loss kept "
                   f"falling ({h.train_loss[best]:.4g} → {h.train_loss[last]:.4g}): the model is "
                   f"memorising the training samples. Early stopping would keep epoch {best + 1} "
                   f"(validation accuracy {h.val_accuracy[best]:.1%}); more data (a larger N) helps too.")


def _swings(values: Sequence[float]) -> float | None:
    """The largest relative change between consecutive values when they go both up and down, else None."""
    if len(values) < 3 or _first_nonfinite(values) is not None or min(values) <= 0:
        return None
    changes = [b / a - 1 for a, b in itertools.pairwise(values)]
    if not (any(c > 0 for c in changes) and any(c < 0 for c in changes)):
        return None
    return max(abs(c) for c in changes)


def noisy_validation(plan: TrainingPlan, history: History) -> Insight | None:
    """Validation loss jumps up and down by 20 % or more between recent epochs, explained by the regime.

    With ``B < N`` the gradient of each update is an estimate from B samples (noise), and a large
    learning rate follows that noise far. With ``B = N`` there is no gradient noise: the rule fires only
    when the training loss swings up and down too (each exact step overshoots the minimum), and says so.

    Taught in: notebook 06.
    """
    s = _check_plan(plan)
    h = _check_history(history)
    swing = _swings(h.val_loss[-6:])
    if swing is None or swing < NOISY_SWING:
        return None
    if s.batch_size < s.n_samples:
        return Insight("noisy", "info", "Noisy validation loss",
                       f"Between recent epochs the validation loss moved by up to {swing:.0%}, up and "
                       f"down: the updates are not settling. Each update follows a gradient estimated "
                       f"from {s.batch_size:,} of the {s.n_samples:,} samples, and with learning rate "
                       f"{s.peak_lr:.4g} it follows that noise a long way. A smaller learning "
                       "rate (or a larger batch) smooths it.")
    if _swings(h.train_loss[-6:]) is None:
        return None  # exact gradients and a training loss that falls steadily: not noise, not overshoot
    return Insight("oscillating", "info", "Oscillating loss (no gradient noise: B = N)",
                   f"Between recent epochs the validation loss moved by up to {swing:.0%}, up and down, "
                   "and the training loss swings too. With B = N every update uses the exact gradient, "
                   f"so this is not noise: each step of learning rate {s.peak_lr:.4g} overshoots "
                   "the minimum and the next one comes back (near the stability limit of notebook 03). "
                   "A smaller learning rate settles it.")


def plateau(history: History) -> Insight | None:
    """Validation loss moved by less than 1 % over the last five epochs (and is not rising).

    Taught in: notebook 06.
    """
    h = _check_history(history)
    if len(h.val_loss) < PLATEAU_EPOCHS or _first_nonfinite(h.val_loss) is not None:
        return None
    window = h.val_loss[-PLATEAU_EPOCHS:]
    change = (max(window) - min(window)) / min(window) if min(window) > 0 else 0.0
    if change >= PLATEAU_CHANGE:
        return None
    accuracy = h.val_accuracy[-1]
    if accuracy >= GOOD_ACCURACY:
        advice = ("the model has learned what it can from these samples: more epochs will not help, "
                  "more data (a larger N) might")
    else:
        advice = "try a larger learning rate, or a smaller batch for more updates per epoch"
    return Insight("plateau", "info", "Plateau",
                   f"Validation loss changed by less than {PLATEAU_CHANGE:.0%} over the last "
                   f"{PLATEAU_EPOCHS} epochs (now {h.val_loss[-1]:.4g}, accuracy {accuracy:.1%}): "
                   f"{advice}.")


def good_progress(history: History) -> Insight | None:
    """Validation accuracy at 90 % or more: say how far the run got and with how many updates.

    Taught in: notebook 06.
    """
    h = _check_history(history)
    if not h.val_accuracy or h.val_accuracy[-1] < GOOD_ACCURACY or not math.isfinite(h.val_loss[-1]):
        return None
    first = h.val_loss[0]
    return Insight("good", "good", "Good progress",
                   f"Validation accuracy {h.val_accuracy[-1]:.1%} after {h.epochs_completed} epochs "
                   f"({h.steps:,} updates, {h.samples_seen:,} samples seen); validation loss "
                   f"{first:.4g} → {h.val_loss[-1]:.4g}.")


def run_insights(plan: TrainingPlan, history: History) -> list[Insight]:
    """The insights about what the run did so far, most urgent first.

    A diverged or collapsed run gets only that diagnosis (the other rules would read noise).

    Taught in: notebook 06.
    """
    s = _check_plan(plan)
    h = _check_history(history)
    for urgent in (diverged(h), rising_loss(h), stuck_at_chance(s, h)):
        if urgent is not None:
            return [urgent]
    found = [f for f in (overfitting(h), noisy_validation(s, h), plateau(h), good_progress(h)) if f]
    overfit = any(f.key == "overfitting" for f in found)
    return [f for f in found if not (overfit and f.key == "plateau")]


def insights(plan: TrainingPlan, history: History | None = None) -> list[Insight]:
    """What the panel shows: the run's insights (if there is a run) first, then the regime's."""
    s = _check_plan(plan)
    found = run_insights(s, history) if history is not None else []
    return found + regime_insights(s)


_LEVEL_STYLE = {
    "info": ("#1f4e9a", "#eef3fb", "ℹ"),
    "good": ("#1a7f37", "#edf7ef", "✔"),
    "warning": ("#9a6700", "#fff8e5", "⚠"),
    "danger": ("#b3261e", "#fdeeee", "✖"),
}


def insights_html(found: Sequence[Insight]) -> str:
    """The insights as HTML boxes (one per insight, coloured by level).

    Taught in: notebook 06.
    """
    parts = []
    for insight in (require_instance("found", one, Insight, "list of Insight") for one in found):
        ink, background, mark = _LEVEL_STYLE[insight.level]
        parts.append(f"<div class='batchlab-insight batchlab-{insight.level}' style='border-left:4px solid "
                     f"{ink};background:{background};color:#1f2933;padding:4px 8px;margin:3px 0'>"
                     f"<b style='color:{ink}'>"
                     f"{mark} {html.escape(insight.title)}</b><br>{html.escape(insight.text)}</div>")
    return "".join(parts)
