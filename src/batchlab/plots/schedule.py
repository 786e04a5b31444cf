"""Learning-rate schedules: the rate at each optimizer step under each batch-size scaling rule.

:class:`WarmupPlot` draws one line per rule of :data:`batchlab.arithmetic.SCALING_RULES`: the rate
scaled from ``base_lr`` (tuned at ``base_batch_size``) to ``batch_size``, climbing linearly during
``warmup_steps`` and flat afterwards (:func:`batchlab.arithmetic.warmup_learning_rate`). The chosen
rule is drawn bold, the others dashed (at full contrast); :meth:`WarmupPlot.update` changes the
artists in place. Its key is HTML for beside the figure (:meth:`WarmupPlot.key_html`), not a legend in it.
"""

from __future__ import annotations

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from batchlab.arithmetic import SCALING_RULES, scaled_learning_rate, warmup_learning_rate
from batchlab.plots.live import request_redraw
from batchlab.plots.staircase import axes_or_new
from batchlab.plots.style import DPI, FULL_WIDTH, INK, OKABE_ITO, line_key
from batchlab.validation import require_choice, require_int

__all__ = ["WarmupPlot", "schedule"]

_COLOURS = {"linear": OKABE_ITO["vermillion"], "sqrt": OKABE_ITO["blue"], "none": INK}
# The chosen rule solid and bold; the others dashed, thinner, but at full contrast.
_CHOSEN = {"linewidth": 2.6, "linestyle": "-", "zorder": 3}
_OTHER = {"linewidth": 1.6, "linestyle": "--", "zorder": 2}


def schedule(peak_lr: float, warmup_steps: int, total_steps: int) -> np.ndarray:
    """Learning rate at steps ``0 … total_steps − 1``, shape ``(total_steps,)``: warm-up, then flat.

    Each warm-up step's rate comes from :func:`batchlab.arithmetic.warmup_learning_rate`; the flat part
    is filled at once (a slider drag recomputes up to three 2,000-step schedules).
    """
    total_steps = require_int("total_steps", total_steps, minimum=1)
    warmup_steps = require_int("warmup_steps", warmup_steps, minimum=0)
    rates = np.full(total_steps, warmup_learning_rate(warmup_steps, peak_lr, warmup_steps))  # the peak
    for step in range(min(warmup_steps, total_steps)):
        rates[step] = warmup_learning_rate(step, peak_lr, warmup_steps)
    return rates


class WarmupPlot:
    """Learning rate against optimizer step, one line per scaling rule, plus the base rate.

    Attributes: ``fig``, ``ax``, ``lines`` (``{rule: Line2D}``), ``base_line`` (the unscaled base
    rate, dashed), ``peak_marker`` (where the chosen rule reaches its peak).
    """

    def __init__(self, base_lr: float, base_batch_size: int, batch_size: int, rule: str = "linear",
                 warmup_steps: int = 0, total_steps: int = 100, *, ax: Axes | None = None,
                 figsize: tuple[float, float] = (FULL_WIDTH, 3.4), dpi: int = DPI) -> None:
        ax = axes_or_new(ax, figsize, dpi)
        self.ax = ax
        self.fig: Figure = ax.figure
        ax.set(xlabel="optimizer step", ylabel="learning rate")
        ax.grid(True, alpha=0.3)
        self.lines = {rule_name: ax.plot([], [], color=_COLOURS[rule_name], label=f"rule: {rule_name}")[0]
                      for rule_name in SCALING_RULES}
        self.base_line = ax.axhline(base_lr, color="0.3", linestyle=":", linewidth=1,
                                    label="base rate (at base batch size)")
        (self.peak_marker,) = ax.plot([], [], "o", color="black", markersize=6, zorder=5)
        ax.set_title(" ", fontsize=12)  # room for the title that update() writes
        self.fig.tight_layout()
        self.update(base_lr, base_batch_size, batch_size, rule, warmup_steps, total_steps)

    def key_html(self) -> str:
        """The key of the rules' lines and the base rate, in their current styles (the chosen rule solid,
        the others dashed): :func:`batchlab.plots.style.line_key`, for beside the figure."""
        return line_key([*self.lines.values(), self.base_line])

    def update(self, base_lr: float, base_batch_size: int, batch_size: int, rule: str = "linear",
               warmup_steps: int = 0, total_steps: int = 100) -> None:
        """Redraw for new settings, changing the existing artists in place."""
        rule = require_choice("rule", rule, SCALING_RULES)
        peaks = {}
        for rule_name, line in self.lines.items():
            peaks[rule_name] = scaled_learning_rate(base_lr, base_batch_size, batch_size, rule_name)
            rates = schedule(peaks[rule_name], warmup_steps, total_steps)
            line.set_data(np.arange(len(rates)), rates)
            line.set(**(_CHOSEN if rule_name == rule else _OTHER))
        self.base_line.set_ydata([base_lr, base_lr])
        peak_step = min(max(warmup_steps - 1, 0), total_steps - 1)
        self.peak_marker.set_data([peak_step], [self.lines[rule].get_ydata()[peak_step]])
        self.ax.set(xlim=(-0.5, total_steps - 0.5), ylim=(0, max(*peaks.values(), base_lr) * 1.1))
        self.ax.set_title(f"Learning rate per step: B = {batch_size:,} (base B = "
                          f"{base_batch_size:,}), warm-up {warmup_steps:,} steps", fontsize=12)
        request_redraw(self.fig)
