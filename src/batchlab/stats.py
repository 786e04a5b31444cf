"""The statistics habit: compare training runs over paired seeds, with an interval and an honest verdict.

Taught in: notebook 04 §"How sure are we?" (first use); notebooks 03, 05, 06 and 07 point back to it.

Two runs that differ only in one setting still differ in their seed: which samples fall in which batch,
the initial weights. One pair of runs therefore says little; several *paired* seeds say more. Paired
means seed ``s`` of setting A and seed ``s`` of setting B share everything the seed decides (the same
initial weights, the same shuffles), so their difference holds the setting's effect and less noise.

* :func:`compare_paired`: the mean difference ``a − b`` over paired seeds, its standard error, the
  t-interval that :func:`scipy.stats.ttest_rel` gives, and a verdict in words that says
  "no clear difference" when the interval contains 0;
* :func:`seed_interval`: a bootstrap interval (:func:`scipy.stats.bootstrap`) for one quantity measured
  once per seed (a mean, a median, or anything computed from the per-seed values);
* :func:`round_to_error`: a number printed at the precision its uncertainty supports ("0.72 ± 0.06",
  not "0.716 ± 0.059"): digits below the error are noise, and they are also the digits that change from
  one CPU to another.

Nothing here imports torch: it is plain NumPy and SciPy on numbers a notebook already has.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from batchlab.validation import require_float, require_int, require_sequence

__all__ = ["PairedComparison", "compare_paired", "round_to_error", "seed_interval"]

MIN_SEEDS = 2  # the smallest sample with a spread
VERDICT_SEEDS = 5  # fewer pairs than this give a hint, never a verdict (see PairedComparison.verdict)


def _finite_values(name: str, values: Sequence[float] | np.ndarray) -> np.ndarray:
    """``values`` as a 1-D float array of at least ``MIN_SEEDS`` finite numbers, or a named error."""
    if isinstance(values, np.ndarray):
        values = values.tolist()
    items = require_sequence(name, values, "numbers (one per seed)")
    array = np.asarray([require_float(f"{name}[{i}]", v) for i, v in enumerate(items)], dtype=float)
    if array.size < MIN_SEEDS:
        raise ValueError(f"{name} must hold at least {MIN_SEEDS} values (one per seed), got {array.size}")
    return array


def _decimals(error: float) -> int:
    """Decimal places that keep one significant digit of ``error`` (two when it starts with 1)."""
    if error <= 0 or not math.isfinite(error):
        return 3
    exponent = math.floor(math.log10(error))
    leading = error / 10**exponent
    digits = 2 if round(leading, 6) < 2 else 1
    return max(0, digits - 1 - exponent)


def round_to_error(value: float, error: float, *, unit: str = "") -> str:
    """``value ± error`` with the error rounded to one significant digit (two if it starts with 1) and the
    value to the same decimal place, e.g. ``round_to_error(0.7163, 0.0591) == "0.72 ± 0.06"``.

    ``unit`` is appended (``" %"``, ``" updates"``). Taught in: notebook 04 §"How sure are we?".
    """
    value = require_float("value", value)
    error = require_float("error", error, minimum=0)
    places = _decimals(error)
    return f"{value:,.{places}f} ± {error:,.{places}f}{unit}"


@dataclass(frozen=True)
class PairedComparison:
    """The difference ``a − b`` between two settings over paired seeds.

    ``differences``: one value per seed, shape ``(n,)``. ``mean`` and ``stderr``: their mean and its
    standard error (sample standard deviation / √n). ``low``, ``high``: the ``confidence`` t-interval of
    the mean difference (``scipy.stats.ttest_rel``). ``wins``: seeds where ``a > b``. ``pair_name``: what
    one pair is, in the printed text ("seeds", or "runs" when the pairs come from several settings).
    """

    a_name: str
    b_name: str
    differences: np.ndarray
    mean: float
    stderr: float
    low: float
    high: float
    confidence: float
    wins: int
    pair_name: str = "seeds"

    @property
    def n(self) -> int:
        """Number of paired seeds."""
        return int(self.differences.size)

    @property
    def clear(self) -> bool:
        """True when the interval excludes 0: the sign of the difference is not seed noise."""
        return self.low > 0 or self.high < 0

    def interval_text(self, unit: str = "") -> str:
        """The mean difference and its interval at the precision the interval supports."""
        half = (self.high - self.low) / 2
        places = _decimals(half if half > 0 else self.stderr)
        level = f"{self.confidence:.0%}".replace("%", " %")
        return (f"{self.a_name} − {self.b_name} = {self.mean:+,.{places}f}{unit} "
                f"({level} interval {self.low:+,.{places}f} to {self.high:+,.{places}f}, "
                f"{self.wins} of {self.n} {self.pair_name} positive)")

    def verdict(self, higher: str = "higher", lower: str = "lower", unit: str = "", *,
                interval: bool = True) -> str:
        """One sentence computed from the interval: which setting is ``higher`` (or ``lower``), or
        "no clear difference at n seeds" when the interval contains 0. With fewer than
        ``VERDICT_SEEDS`` (5) pairs a difference is only said to "look" higher or lower.

        ``interval=False`` leaves out the numbers (the words only): for runs whose digits change from one
        CPU to another, such as chaotic runs at a large learning rate, while the verdict does not.
        """
        if not isinstance(interval, bool):
            raise TypeError(f"interval must be True or False, got {interval!r}")
        details = f": {self.interval_text(unit)}" if interval else ""
        if not self.clear:
            return f"no clear difference at {self.n} {self.pair_name}{details}"
        word = higher if self.mean > 0 else lower
        if self.n < VERDICT_SEEDS:  # an interval from 3 or 4 pairs rests on a guess of the spread
            return (f"{self.a_name} looks {word} than {self.b_name}, but {self.n} {self.pair_name} are too "
                    f"few for a verdict (at least {VERDICT_SEEDS}){details}")
        return f"{self.a_name} is {word} than {self.b_name} at {self.n} {self.pair_name}{details}"

    def __str__(self) -> str:
        return self.verdict()


def compare_paired(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
                   names: tuple[str, str] = ("A", "B"), confidence: float = 0.95,
                   pair_name: str = "seeds") -> PairedComparison:
    """Compare two settings run on the same seeds: ``a[i]`` and ``b[i]`` come from seed ``i``.

    Returns a :class:`PairedComparison` whose ``verdict()`` says which is higher, or that there is no
    clear difference at this number of seeds. The interval is the paired t-interval of
    :func:`scipy.stats.ttest_rel`: it is honest at 5–10 seeds, where a bootstrap interval is too narrow.
    ``pair_name`` names a pair in the verdict's words: "seeds", or "runs" when the pairs come from
    several settings (two batch sizes, each over the same seeds).

    Taught in: notebook 04 §"How sure are we?".
    """
    from scipy import stats  # imported here: scipy costs about 0.3 s and only comparisons need it

    a_values = _finite_values("a", a)
    b_values = _finite_values("b", b)
    if a_values.size != b_values.size:
        raise ValueError(f"a and b must hold one value per seed each, "
                         f"got {a_values.size} and {b_values.size}")
    confidence = require_float("confidence", confidence, minimum=0, maximum=1, strict_min=True)
    if confidence >= 1:
        raise ValueError(f"confidence must be a number > 0 and < 1, got {confidence!r}")
    if not isinstance(pair_name, str) or not pair_name.strip():
        raise TypeError(f"pair_name must be a non-empty string such as 'seeds' or 'runs', got {pair_name!r}")
    name_a, name_b = (str(name) for name in names)
    differences = a_values - b_values
    mean = float(differences.mean())
    stderr = float(differences.std(ddof=1) / math.sqrt(differences.size))
    if stderr == 0:  # every seed gave the same difference: the interval is that one value
        low = mean
        high = mean
    else:
        low, high = stats.ttest_rel(a_values, b_values).confidence_interval(confidence)
    return PairedComparison(name_a, name_b, differences, mean, stderr, float(low), float(high), confidence,
                            int((differences > 0).sum()), pair_name)


def seed_interval(values: Sequence[float] | np.ndarray, statistic: Callable[[np.ndarray], float] = np.mean,
                  *, confidence: float = 0.95, resamples: int = 2000) -> tuple[float, float, float]:
    """``(estimate, low, high)``: ``statistic`` of the per-seed ``values`` and its bootstrap interval.

    The resampling is seeded (``random_state=0``), so the same values always give the same interval.
    Use it for one quantity measured once per seed; compare two settings with :func:`compare_paired`.
    Taught in: notebook 07 §"How sure are we of B_crit?".
    """
    from scipy import stats

    array = _finite_values("values", values)
    confidence = require_float("confidence", confidence, minimum=0, maximum=1, strict_min=True)
    if confidence >= 1:
        raise ValueError(f"confidence must be a number > 0 and < 1, got {confidence!r}")
    resamples = require_int("resamples", resamples, minimum=100)
    estimate = float(statistic(array))
    if np.ptp(array) == 0:  # no spread to resample
        return estimate, estimate, estimate
    result = stats.bootstrap((array,), statistic, confidence_level=confidence, n_resamples=resamples,
                             method="percentile", random_state=0)
    return estimate, float(result.confidence_interval.low), float(result.confidence_interval.high)
