"""Figures of notebook 03 against the batch size ``B``: gradient noise, progress per step, throughput.

Each function draws measured points (with error bars where there is sampling error) beside the theory
curve on axes it is given, and returns the artists it made, so a notebook or test can inspect them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes

from batchlab.measure.gradients import NoiseMeasurement, StepProgress
from batchlab.plots.style import OKABE_ITO
from batchlab.validation import require_int, require_positive_float

__all__ = ["plot_gradient_noise", "plot_step_progress", "plot_throughput"]


def _log_axes(ax: Axes, yscale: str = "log") -> None:
    """Log x (and by default log y) axis labelled "batch size B", with a light major grid."""
    ax.set(xscale="log", yscale=yscale, xlabel="batch size B")
    ax.grid(True, which="major", alpha=0.3)


def plot_gradient_noise(ax: Axes, measurements: Sequence[NoiseMeasurement], sigma2: float,
                        n_samples: int) -> dict[str, object]:
    """Measured ``E|ĝ_B − G|²`` (±2 standard errors) against ``B`` on log–log axes, with both theories.

    Batch sizes whose predicted variance is 0 (``B = N``) cannot go on a log axis and are skipped.
    Returns the artists: ``{"measured", "theory", "with_replacement"}``.

    Taught in: notebook 03 § Gradient noise, measured against theory.
    """
    n_samples = require_int("n_samples", n_samples, minimum=2)
    sigma2 = require_positive_float("sigma2", sigma2)
    shown = [m for m in measurements if m.predicted > 0]
    if not shown:
        raise ValueError("no measurement with B < N to plot")
    b = np.array([m.batch_size for m in shown], dtype=np.float64)
    grid = np.unique(np.concatenate([np.geomspace(1, n_samples - 1, 200), b]))
    # The formulas hold at integer B; drawn through the real grid they are smooth curves.
    (with_replacement,) = ax.plot(grid, sigma2 / grid, "--", color="0.5", linewidth=1.2,
                                  label="σ²/B (with replacement)")
    theory_curve = sigma2 / grid * (n_samples - grid) / (n_samples - 1)
    (theory,) = ax.plot(grid, theory_curve, "-", color=OKABE_ITO["blue"], linewidth=1.6,
                        label="σ²/B·(N−B)/(N−1) (without)")
    measured = ax.errorbar(b, [m.variance for m in shown], yerr=[2 * m.variance_stderr for m in shown],
                           fmt="o", color=OKABE_ITO["vermillion"], markersize=4, capsize=2, linewidth=1,
                           label="measured (±2 s.e.)", zorder=3)
    _log_axes(ax)
    ax.set_ylabel("E|ĝ_B − G|²")
    ax.legend(fontsize=10, loc="lower left")
    return {"measured": measured, "theory": theory, "with_replacement": with_replacement}


def plot_step_progress(ax_step: Axes, ax_sample: Axes, progress: StepProgress,
                       b_noise: float | None = None) -> dict[str, object]:
    """Loss decrease of one optimally tuned step against ``B``: per step (left) and per sample (right).

    Measured means ±2 standard errors beside the prediction; the noise-free ideal as a horizontal line
    and ``B_noise`` (if given) as a vertical one. Returns the artists.

    Taught in: notebook 03 § Progress per step, measured.
    """
    b = progress.batch_sizes.astype(np.float64)
    artists: dict[str, object] = {}
    for ax, scale, name in ((ax_step, np.ones_like(b), "per step"), (ax_sample, b, "per sample")):
        (artists[f"predicted {name}"],) = ax.plot(b, progress.predicted / scale, "-",
                                                  color=OKABE_ITO["blue"], linewidth=1.6, label="theory")
        artists[f"measured {name}"] = ax.errorbar(
            b, progress.measured / scale, yerr=2 * progress.stderr / scale, fmt="o",
            color=OKABE_ITO["vermillion"], markersize=4, capsize=2, linewidth=1, label="measured (±2 s.e.)",
            zorder=3)
        if b_noise is not None and np.isfinite(b_noise):
            ax.axvline(b_noise, color="0.4", linestyle=":", linewidth=1.2,
                       label=f"B_noise ≈ {b_noise:.3g}")
        _log_axes(ax, "log" if ax is ax_sample else "linear")
    ax_step.axhline(progress.ideal, color="0.5", linestyle="--", linewidth=1.2,
                    label="noise-free limit")
    ax_step.set_ylabel("loss decrease per step")
    ax_sample.set_ylabel("loss decrease per sample")
    ax_step.legend(fontsize=10, loc="best")
    return artists


def plot_throughput(ax_time: Axes, ax_rate: Axes, batch_sizes: Sequence[int],
                    seconds_per_iteration: Sequence[float]) -> dict[str, object]:
    """Measured time per iteration (left) and samples per second (right) against ``B``, log–log.

    A dotted line on the left marks "time proportional to B" through the largest batch, i.e. what
    the time would be with no parallelism at all. Returns the artists.

    Taught in: notebook 03 § The hardware side: time per iteration and samples per second.
    """
    b = np.asarray(batch_sizes, dtype=np.float64)
    t = np.asarray(seconds_per_iteration, dtype=np.float64)
    if b.shape != t.shape or b.ndim != 1 or len(b) < 2 or np.any(t <= 0) or np.any(b < 1):
        raise ValueError("batch_sizes and seconds_per_iteration must be equal-length (>= 2), positive")
    (time_line,) = ax_time.plot(b, t * 1e3, "o-", color=OKABE_ITO["blue"], markersize=4, label="measured")
    (linear,) = ax_time.plot(b, t[-1] * 1e3 * b / b[-1], ":", color="0.5",
                             label="∝ B (no parallelism)")
    (rate_line,) = ax_rate.plot(b, b / t, "o-", color=OKABE_ITO["green"], markersize=4, label="measured")
    for ax in (ax_time, ax_rate):
        _log_axes(ax)
    ax_time.set_ylabel("ms per iteration")
    ax_rate.set_ylabel("samples per second")
    ax_time.legend(fontsize=10, loc="upper left")
    return {"time": time_line, "linear": linear, "rate": rate_line}
