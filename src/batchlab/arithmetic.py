"""The arithmetic of samples (N), batch size (B), epochs (E) and iterations (I).

Every function here is pure integer (or learning-rate) arithmetic that matches what PyTorch does:

* ``iterations_per_epoch`` equals ``len(DataLoader(dataset, batch_size=B, drop_last=...))``;
* ``per_rank_samples`` and ``per_rank_iterations`` equal what ``DistributedSampler`` and a
  ``DataLoader`` over it give on each rank, padding included.

Vocabulary used in the docstrings:

* an *iteration* is one forward/backward pass over one batch;
* a *step* (or update) is one call of ``optimizer.step()``; with gradient accumulation over
  ``accumulation_steps`` batches there are fewer steps than iterations;
* an *epoch* is one pass over the (per-rank) data.

All counts are plain Python ``int``; all arguments are validated (see :mod:`batchlab.validation`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from batchlab.markup import html_table
from batchlab.validation import (
    require_bool,
    require_choice,
    require_float,
    require_int,
    require_positive_float,
)

__all__ = ["SCALING_RULES", "TrainingPlan", "batch_bounds", "batch_sizes", "epochs_for_steps",
           "global_batch_size", "iterations_per_epoch", "last_batch_size", "per_rank_iterations",
           "per_rank_samples", "samples_dropped", "samples_seen", "scaled_learning_rate", "steps_per_epoch",
           "total_steps", "warmup_learning_rate"]

SCALING_RULES = ("linear", "sqrt", "none")


def _check_nb(n_samples: int, batch_size: int) -> tuple[int, int]:
    return require_int("n_samples", n_samples, minimum=0), require_int("batch_size", batch_size, minimum=1)


def iterations_per_epoch(n_samples: int, batch_size: int, drop_last: bool = False) -> int:
    """Batches (iterations) in one epoch: ``ceil(N / B)``, or ``floor(N / B)`` with ``drop_last``.

    >>> iterations_per_epoch(1000, 32), iterations_per_epoch(1000, 32, drop_last=True)
    (32, 31)

    Taught in: notebook 01 § 4. An epoch.
    """
    n, b = _check_nb(n_samples, batch_size)
    return _iterations(n, b, require_bool("drop_last", drop_last))


def _iterations(n: int, b: int, drop_last: bool) -> int:
    """:func:`iterations_per_epoch` on checked values (what :class:`TrainingPlan` calls)."""
    return n // b if drop_last else -(-n // b)


def last_batch_size(n_samples: int, batch_size: int, drop_last: bool = False) -> int:
    """Samples in the last batch of an epoch; 0 when the epoch has no batch at all.

    Without ``drop_last`` the last batch holds the remainder ``N mod B`` (or a full ``B`` when B
    divides N); with ``drop_last`` the remainder is discarded, so every batch is full.

    >>> last_batch_size(1000, 32), last_batch_size(1000, 32, drop_last=True), last_batch_size(10, 32, True)
    (8, 32, 0)

    Taught in: notebook 01 § 4. An epoch.
    """
    n, b = _check_nb(n_samples, batch_size)
    return _last_batch(n, b, require_bool("drop_last", drop_last))


def _last_batch(n: int, b: int, drop_last: bool) -> int:
    """:func:`last_batch_size` on checked values."""
    if _iterations(n, b, drop_last) == 0:
        return 0
    return b if drop_last or n % b == 0 else n % b


def batch_bounds(n_samples: int, batch_size: int, drop_last: bool = False) -> list[tuple[int, int]]:
    """Where each batch of one epoch starts and ends: ``(start, end)`` positions in the epoch's order.

    This is *the* one place where an epoch is cut into batches: batch ``k`` holds positions
    ``start <= p < end`` of the epoch's sample order (a permutation of the N indices, or 0..N-1
    without shuffling). All batches hold B samples except the last, which holds the remainder
    ``N mod B``, unless ``drop_last`` discards it; exactly what ``DataLoader`` does.

    >>> batch_bounds(7, 3), batch_bounds(7, 3, drop_last=True)
    ([(0, 3), (3, 6), (6, 7)], [(0, 3), (3, 6)])

    Taught in: notebook 01 § What a sorted data set does to training.
    """
    n, b = _check_nb(n_samples, batch_size)
    count = _iterations(n, b, require_bool("drop_last", drop_last))
    return [(k * b, min((k + 1) * b, n)) for k in range(count)]


def batch_sizes(n_samples: int, batch_size: int, drop_last: bool = False) -> list[int]:
    """Samples in each batch of one epoch, in order (see :func:`batch_bounds`).

    >>> batch_sizes(20, 6), batch_sizes(20, 6, drop_last=True)
    ([6, 6, 6, 2], [6, 6, 6])
    """
    return [end - start for start, end in batch_bounds(n_samples, batch_size, drop_last)]


def samples_dropped(n_samples: int, batch_size: int, drop_last: bool) -> int:
    """Samples left out of every epoch: ``N mod B`` with ``drop_last``, else 0.

    >>> samples_dropped(1000, 32, drop_last=True)
    8

    Taught in: notebook 02 § Checked against PyTorch.
    """
    n, b = _check_nb(n_samples, batch_size)
    return _dropped(n, b, require_bool("drop_last", drop_last))


def _dropped(n: int, b: int, drop_last: bool) -> int:
    """:func:`samples_dropped` on checked values."""
    return n % b if drop_last else 0


def steps_per_epoch(n_samples: int, batch_size: int, drop_last: bool = False,
                    accumulation_steps: int = 1) -> int:
    """Optimizer updates in one epoch: ``ceil(I / accumulation_steps)``.

    The batches of an epoch are taken in groups of ``accumulation_steps``; a shorter last group still
    makes one update (it is not carried over into the next epoch).

    Taught in: notebook 00 § The concept map: six letters.
    """
    accumulation_steps = require_int("accumulation_steps", accumulation_steps, minimum=1)
    per_epoch = iterations_per_epoch(n_samples, batch_size, drop_last)
    return -(-per_epoch // accumulation_steps)


def total_steps(n_samples: int, batch_size: int, epochs: int, drop_last: bool = False,
                accumulation_steps: int = 1) -> int:
    """Optimizer updates over the whole run: ``steps_per_epoch × E``.

    With ``accumulation_steps = 1`` this is ``I × E``. Note that ``N / B × E`` is wrong whenever B
    does not divide N: the last, shorter batch is a full iteration.

    >>> total_steps(10_000, 100, 50)
    5000
    >>> total_steps(1000, 32, 10), total_steps(1000, 32, 10, drop_last=True)
    (320, 310)
    >>> total_steps(1000, 32, 10, accumulation_steps=4)  # 32 batches -> 8 groups per epoch
    80

    Taught in: notebook 01 § 4. An epoch.
    """
    epochs = require_int("epochs", epochs, minimum=0)
    return steps_per_epoch(n_samples, batch_size, drop_last, accumulation_steps) * epochs


def samples_seen(n_samples: int, batch_size: int, epochs: int, drop_last: bool = False) -> int:
    """Samples presented to the model over the run, repeats counted: ``(N − dropped) × E``.

    >>> samples_seen(1000, 32, 10), samples_seen(1000, 32, 10, drop_last=True)
    (10000, 9920)

    Taught in: notebook 04 § What equal updates cost.
    """
    n, b = _check_nb(n_samples, batch_size)
    epochs = require_int("epochs", epochs, minimum=0)
    return (n - samples_dropped(n, b, drop_last)) * epochs


def epochs_for_steps(target_steps: int, n_samples: int, batch_size: int, drop_last: bool = False) -> int:
    """The fewest whole epochs whose updates reach ``target_steps``: ``ceil(target / I)``.

    Use it to keep the number of updates fixed when the batch size changes.

    >>> epochs_for_steps(5000, 10_000, 100), epochs_for_steps(5000, 10_000, 200)  # B doubled
    (50, 100)
    >>> epochs_for_steps(5000, 10_000, 300)  # I = 34: 147 epochs give 4,998, so 148 (5,032)
    148

    Taught in: notebook 02 § Keeping the number of updates fixed when $B$ changes.
    """
    target_steps = require_int("target_steps", target_steps, minimum=0)
    per_epoch = iterations_per_epoch(n_samples, batch_size, drop_last)
    if target_steps == 0:
        return 0
    if per_epoch == 0:
        raise ValueError(
            f"target_steps={target_steps} can never be reached: with n_samples={n_samples}, "
            f"batch_size={batch_size} and drop_last={drop_last} an epoch has no batch "
            "(allowed: batch_size <= n_samples when drop_last=True)"
        )
    return -(-target_steps // per_epoch)


def global_batch_size(batch_size: int, world_size: int = 1, accumulation_steps: int = 1) -> int:
    """Samples behind one optimizer update: ``B × world_size × accumulation_steps``.

    >>> global_batch_size(32, world_size=4, accumulation_steps=2)
    256
    """
    return (require_int("batch_size", batch_size, minimum=1)
            * require_int("world_size", world_size, minimum=1)
            * require_int("accumulation_steps", accumulation_steps, minimum=1))


def per_rank_samples(n_samples: int, world_size: int, drop_last: bool = False) -> int:
    """Samples each rank gets from ``DistributedSampler(dataset, num_replicas=world_size)``.

    Without ``drop_last`` the sampler pads the index list (repeating samples) to a multiple of the
    world size, so each rank gets ``ceil(N / W)``; with ``drop_last`` the tail is cut and each rank
    gets ``floor(N / W)``.

    >>> per_rank_samples(10, 4), per_rank_samples(10, 4, drop_last=True)
    (3, 2)

    Taught in: notebook 00 § The concept map: six letters.
    """
    n = require_int("n_samples", n_samples, minimum=0)
    w = require_int("world_size", world_size, minimum=1)
    return _per_rank(n, w, require_bool("drop_last", drop_last))


def _per_rank(n: int, w: int, drop_last: bool) -> int:
    """:func:`per_rank_samples` on checked values."""
    return n // w if drop_last else -(-n // w)


def per_rank_iterations(n_samples: int, batch_size: int, world_size: int, sampler_drop_last: bool = False,
                        loader_drop_last: bool = False) -> int:
    """Iterations per epoch on each rank: ``len(DataLoader(..., sampler=DistributedSampler(...)))``.

    >>> per_rank_iterations(1000, 32, 4)  # 250 samples per rank -> ceil(250 / 32)
    8

    Taught in: notebook 00 § The concept map: six letters.
    """
    # Check the flags under their own names: the helpers below would call both "drop_last".
    sampler_drop_last = require_bool("sampler_drop_last", sampler_drop_last)
    loader_drop_last = require_bool("loader_drop_last", loader_drop_last)
    require_int("batch_size", batch_size, minimum=1)
    per_rank = per_rank_samples(n_samples, world_size, sampler_drop_last)
    return iterations_per_epoch(per_rank, batch_size, loader_drop_last)


def scaled_learning_rate(base_lr: float, base_batch_size: int, batch_size: int,
                         rule: str = "linear") -> float:
    """Learning rate for ``batch_size`` given one tuned at ``base_batch_size``.

    * ``"linear"``: ``base_lr × B / B0`` (Goyal et al., 2017);
    * ``"sqrt"``: ``base_lr × sqrt(B / B0)`` (keeps the update's noise variance fixed);
    * ``"none"``: ``base_lr`` unchanged.

    Both rules are heuristics: notebook 04 measures when each holds.

    >>> scaled_learning_rate(0.1, 32, 128), scaled_learning_rate(0.1, 32, 128, rule="sqrt")
    (0.4, 0.2)

    Taught in: notebook 02 § Scaling the learning rate with the batch size.
    """
    base_lr = require_positive_float("base_lr", base_lr)
    b0 = require_int("base_batch_size", base_batch_size, minimum=1)
    b = require_int("batch_size", batch_size, minimum=1)
    rule = require_choice("rule", rule, SCALING_RULES)
    return _scaled_rate(base_lr, b0, b, rule)


def _scaled_rate(base_lr: float, b0: int, b: int, rule: str) -> float:
    """:func:`scaled_learning_rate` on checked values (it still refuses a rate too large for a float)."""
    if rule == "none":
        return base_lr
    try:
        ratio = b / b0  # the ratio first: exactly base_lr when b == b0
    except OverflowError:  # integers too far apart for a float, e.g. 10**400 / 1
        raise ValueError(f"batch_size / base_batch_size must fit a float (at most about 1.8e308), got a "
                         f"ratio of about 2**{b.bit_length() - b0.bit_length()}") from None
    scaled = base_lr * (ratio if rule == "linear" else math.sqrt(ratio))
    if not math.isfinite(scaled):
        raise ValueError(f"the {rule} rule gives a learning rate too large for a float: base_lr {base_lr!r} "
                         f"× ({b} / {b0}){' ** 0.5' if rule == 'sqrt' else ''}; use a smaller base_lr or "
                         "batch_size")
    return scaled


def warmup_learning_rate(step: int, peak_lr: float, warmup_steps: int, warmup_start_lr: float = 0.0) -> float:
    """Learning rate at optimizer step ``step`` (counted from 0) under linear warm-up, then flat.

    During the first ``warmup_steps`` updates the rate climbs by ``(peak_lr - warmup_start_lr) /
    warmup_steps`` per update: update ``step`` uses ``warmup_start_lr + (peak_lr - warmup_start_lr) ×
    (step + 1) / warmup_steps``, and update ``warmup_steps - 1`` reaches ``peak_lr`` exactly;
    afterwards it stays at ``peak_lr``. ``warmup_steps = 0`` means no warm-up.

    * ``warmup_start_lr = 0`` (the default) is the usual warm-up *from zero*: the rate climbs as
      ``peak_lr × (step + 1) / warmup_steps`` (so the very first update is not wasted with a zero rate);
    * Goyal et al. (2017) warm up *from the base rate*: with the linear rule, ``warmup_start_lr = η₀``
      (the rate tuned for the small batch) and ``peak_lr = k η₀``, over about 5 epochs of updates.

    :func:`batchlab.training.train` sets this rate before each update (there it is called
    :func:`batchlab.optim.learning_rate_at`: the same function).

    >>> [warmup_learning_rate(s, 1.0, 4) for s in range(6)]
    [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    >>> [warmup_learning_rate(s, 0.4, 3, warmup_start_lr=0.1) for s in range(4)]
    [0.2, 0.30000000000000004, 0.4, 0.4]

    Taught in: notebook 05 § Warm-up and schedules count *updates*.
    """
    step = require_int("step", step, minimum=0)
    peak_lr = require_positive_float("peak_lr", peak_lr)
    warmup_steps = require_int("warmup_steps", warmup_steps, minimum=0)
    warmup_start_lr = require_float("warmup_start_lr", warmup_start_lr, minimum=0.0, maximum=peak_lr)
    return _warmup_rate(step, peak_lr, warmup_steps, warmup_start_lr)


def _warmup_rate(step: int, peak_lr: float, warmup_steps: int, warmup_start_lr: float) -> float:
    """:func:`warmup_learning_rate` on values already checked (the training loop calls it per update)."""
    if step >= warmup_steps:
        return peak_lr
    # The fraction first, so that the last warm-up step from zero gives exactly peak_lr (no overshoot).
    return warmup_start_lr + (peak_lr - warmup_start_lr) * ((step + 1) / warmup_steps)


@dataclass(frozen=True)
class TrainingPlan:
    """A training run's shape: N samples, batch size B, E epochs, how batches become updates, and the
    learning rate of those updates.

    With ``world_size > 1`` the data are split by a ``DistributedSampler`` that pads (its default),
    and each rank's ``DataLoader`` honours ``drop_last``; per-rank numbers are what one rank sees.

    The rate and its schedule have :func:`batchlab.training.train`'s defaults and meaning: ``lr`` is
    the base rate, scaled from ``base_batch_size`` to the global batch size by ``scaling_rule``
    (:func:`scaled_learning_rate`) to give :attr:`peak_lr`, reached after ``warmup_steps`` updates of
    linear warm-up from ``warmup_start_lr`` (:func:`warmup_learning_rate`). A plan is the one object
    that describes a run: ``train(model, data, **plan.train_arguments())`` trains it, the sweeps of
    notebooks 04 and 07 and the simulator of notebook 06 build one per run, and the simulator's
    insights read it.

    >>> plan = TrainingPlan(n_samples=10_000, batch_size=100, epochs=50)
    >>> plan.iterations_per_epoch, plan.total_steps, plan.samples_seen
    (100, 5000, 500000)
    >>> TrainingPlan(1000, 128, 5, lr=0.1, scaling_rule="linear", base_batch_size=32).peak_lr
    0.4

    Taught in: notebook 02 § One epoch, counted.
    """

    n_samples: int
    batch_size: int
    epochs: int
    drop_last: bool = False
    accumulation_steps: int = 1
    world_size: int = 1
    lr: float = 0.1
    scaling_rule: str = "none"
    base_batch_size: int | None = None
    warmup_steps: int = 0
    warmup_start_lr: float = 0.0

    def __post_init__(self) -> None:
        require_int("n_samples", self.n_samples, minimum=0)
        require_int("batch_size", self.batch_size, minimum=1)
        require_int("epochs", self.epochs, minimum=0)
        require_bool("drop_last", self.drop_last)
        require_int("accumulation_steps", self.accumulation_steps, minimum=1)
        require_int("world_size", self.world_size, minimum=1)
        require_positive_float("lr", self.lr)
        require_choice("scaling_rule", self.scaling_rule, SCALING_RULES)
        if self.scaling_rule != "none" and self.base_batch_size is None:
            raise ValueError(f"scaling_rule={self.scaling_rule!r} needs base_batch_size (an integer >= 1)")
        if self.base_batch_size is not None:
            require_int("base_batch_size", self.base_batch_size, minimum=1)
        require_int("warmup_steps", self.warmup_steps, minimum=0)
        require_float("warmup_start_lr", self.warmup_start_lr, minimum=0.0, maximum=self.peak_lr)

    @cached_property
    def peak_lr(self) -> float:
        """The learning rate after warm-up: ``lr`` scaled to the global batch size by ``scaling_rule``
        (computed once)."""
        if self.scaling_rule == "none":
            return self.lr
        return _scaled_rate(self.lr, self.base_batch_size, self.global_batch_size, self.scaling_rule)

    def learning_rate(self, step: int) -> float:
        """The learning rate of update ``step`` (counted from 0): warm-up, then :attr:`peak_lr`.

        The plan's own numbers were checked when it was made; only ``step`` is checked here."""
        step = require_int("step", step, minimum=0)
        return _warmup_rate(step, self.peak_lr, self.warmup_steps, self.warmup_start_lr)

    def train_arguments(self) -> dict[str, object]:
        """The keyword arguments of :func:`batchlab.training.train` that give this plan (N is the data's).

        Only the ones that differ from ``train``'s defaults, so a printed call stays short.
        """
        arguments: dict[str, object] = {"batch_size": self.batch_size, "epochs": self.epochs, "lr": self.lr}
        defaults = {"drop_last": False, "accumulation_steps": 1, "scaling_rule": "none",
                    "base_batch_size": None, "warmup_steps": 0, "warmup_start_lr": 0.0}
        for name, default in defaults.items():
            if getattr(self, name) != default:
                arguments[name] = getattr(self, name)
        return arguments

    # The counts below trust the fields, checked once in __post_init__ (the public functions of this
    # module check their arguments, then compute with the same private formulas).
    @property
    def per_rank_samples(self) -> int:
        """Samples per rank per epoch (padding included); equals N when ``world_size = 1``."""
        return _per_rank(self.n_samples, self.world_size, drop_last=False)

    @property
    def padded_samples(self) -> int:
        """Repeated samples the distributed sampler adds so every rank gets the same count."""
        return self.per_rank_samples * self.world_size - self.n_samples

    @property
    def iterations_per_epoch(self) -> int:
        """Batches per epoch on each rank (I)."""
        return _iterations(self.per_rank_samples, self.batch_size, self.drop_last)

    @property
    def last_batch_size(self) -> int:
        """Samples in the last batch of an epoch on each rank (0 if there is no batch)."""
        return _last_batch(self.per_rank_samples, self.batch_size, self.drop_last)

    @property
    def samples_dropped(self) -> int:
        """Samples each rank discards per epoch because of ``drop_last``."""
        return _dropped(self.per_rank_samples, self.batch_size, self.drop_last)

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer updates per epoch: ``ceil(I / accumulation_steps)``."""
        return -(-self.iterations_per_epoch // self.accumulation_steps)

    @property
    def total_iterations(self) -> int:
        """Forward/backward passes on each rank over the run: ``I × E``."""
        return self.iterations_per_epoch * self.epochs

    @property
    def total_steps(self) -> int:
        """Optimizer updates over the run."""
        return self.steps_per_epoch * self.epochs

    @property
    def global_batch_size(self) -> int:
        """Samples behind one full update: ``B × world_size × accumulation_steps``."""
        return self.batch_size * self.world_size * self.accumulation_steps

    @property
    def samples_seen(self) -> int:
        """Samples processed over the run on all ranks together, repeats and padding counted."""
        return (self.per_rank_samples - self.samples_dropped) * self.epochs * self.world_size

    def rows(self) -> list[tuple[str, int | bool]]:
        """``(label, value)`` pairs of the inputs and every derived number, in reading order."""
        return [(label, getattr(self, name)) for label, name in _PLAN_ROWS]

    def _text_rows(self) -> list[tuple[str, str]]:
        return [(label, str(v) if isinstance(v, bool) else f"{v:,}") for label, v in self.rows()]

    def __str__(self) -> str:
        width = max(len(label) for label, _ in self.rows())
        return "\n".join(f"{label:<{width}}  {value}" for label, value in self._text_rows())

    def to_html(self) -> str:
        """An HTML table of :meth:`rows` for notebooks."""
        return html_table(self._text_rows(), css_class="batchlab-plan")

    _repr_html_ = to_html


_PLAN_ROWS = (  # (label, TrainingPlan attribute) in reading order
    ("samples N", "n_samples"), ("batch size B", "batch_size"), ("epochs E", "epochs"),
    ("drop_last", "drop_last"), ("accumulation steps", "accumulation_steps"),
    ("workers (world size)", "world_size"), ("samples per worker", "per_rank_samples"),
    ("padding samples", "padded_samples"), ("iterations per epoch I", "iterations_per_epoch"),
    ("last batch size", "last_batch_size"), ("samples dropped per epoch", "samples_dropped"),
    ("updates per epoch", "steps_per_epoch"), ("total iterations I×E", "total_iterations"),
    ("total updates", "total_steps"), ("global batch size", "global_batch_size"),
    ("samples seen", "samples_seen"),
)
