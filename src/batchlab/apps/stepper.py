"""The batch stepper (notebook 01): walk through the iterations and epochs of a small digit set.

Each click of *Next* (or each tick of *Play*) runs one iteration: the next batch of the epoch's sample
order is "trained on" (highlighted), the samples already seen this epoch are dimmed, and the tail that
``drop_last`` discards is marked. With shuffling on, every epoch starts with a fresh permutation drawn
from a seeded ``numpy.random.Generator``, so the same seed always gives the same walk.

The walk is a pure function of the global step (the ``Play`` widget's value): going to step ``k`` means
epoch ``(k - 1) // I``, batch ``(k - 1) % I`` of it, where ``I`` is
:func:`batchlab.arithmetic.iterations_per_epoch`. That is why Play, Next and the step slider all agree.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import numpy as np

from batchlab import arithmetic
from batchlab.apps.live import App, canvas_widget
from batchlab.data import load_digit_images
from batchlab.plots.batches import BatchFigure, EpochBatches, split_into_batches
from batchlab.plots.live import request_redraw
from batchlab.validation import require_bool, require_int

__all__ = ["BatchStepperApp"]

MAX_SAMPLES = 40  # the thumbnails and the strip stay readable up to this many samples


class BatchStepperApp(App):
    """Step through iterations and epochs of ``n_samples`` real digits, one batch at a time.

    Parameters
    ----------
    n_samples:
        Size N of the data set (the first N digits), 2 to 40.
    batch_size:
        Initial batch size B (1 to N).
    shuffle:
        Reshuffle the sample order at the start of every epoch.
    drop_last:
        Discard the last ``N mod B`` samples of each epoch's order instead of a short last batch.
    seed:
        Seed of the ``numpy.random.Generator`` that draws the epochs' permutations.
    epochs:
        How many epochs the Play widget runs before it stops (Next can go further).
    interval_ms:
        Milliseconds between two steps while playing.

    Controls (public, so tests can drive them): ``batch_size`` (IntSlider), ``shuffle`` and
    ``drop_last`` (Checkbox), ``play`` (Play, its value is the global step), ``step_slider``,
    ``next_button``, ``reset_button``; the counters are in ``counters`` (HTML), the figure in ``fig``
    (``view`` is its :class:`~batchlab.plots.batches.BatchFigure`; the page shows its live view,
    :func:`batchlab.apps.live.canvas_widget`, synced after every step) and its key in ``key`` (HTML
    beside the figure); ``widget`` is the whole app.

    Each control, the method it calls, and the code that computes (Taught in: notebook 01):

    * ``play`` / ``step_slider`` (the global step) → :meth:`_go_to` → :meth:`epoch_batches`
      (:func:`~batchlab.plots.batches.split_into_batches`) and
      :func:`batchlab.arithmetic.iterations_per_epoch` → ``BatchFigure.set_epoch`` / ``set_progress``;
    * ``next_button`` → :meth:`step`; ``reset_button`` → :meth:`reset`;
    * ``batch_size``, ``shuffle``, ``drop_last`` → :meth:`_changed` → :meth:`reset` (a new epoch plan).
    """

    figure_description = ("the dataset's digit images in a grid, the current batch's samples framed, and the "
                          "epoch's sample order as a strip of batches")

    def __init__(self, n_samples: int = 20, batch_size: int = 6, *, shuffle: bool = True,
                 drop_last: bool = False, seed: int = 0, epochs: int = 3, interval_ms: int = 800) -> None:
        self.n_samples = require_int("n_samples", n_samples, minimum=2, maximum=MAX_SAMPLES)
        batch_size = require_int("batch_size", batch_size, minimum=1, maximum=self.n_samples)
        shuffle = require_bool("shuffle", shuffle)
        drop_last = require_bool("drop_last", drop_last)
        self.seed = require_int("seed", seed, minimum=0)
        self.epochs = require_int("epochs", epochs, minimum=1, maximum=100)
        interval_ms = require_int("interval_ms", interval_ms, minimum=50, maximum=10_000)
        images, labels = load_digit_images(self.n_samples)
        self.view = BatchFigure(images, labels)
        self.fig = self.view.fig
        style = {"description_width": "initial"}
        self.batch_size = widgets.IntSlider(value=batch_size, min=1, max=self.n_samples,
                                            description="batch size B", continuous_update=False,
                                            style=style)
        self.shuffle = widgets.Checkbox(value=shuffle, description="shuffle every epoch", indent=False)
        self.drop_last = widgets.Checkbox(value=drop_last, description="drop_last", indent=False)
        self.play = widgets.Play(value=0, min=0, max=1, step=1, interval=interval_ms,
                                 description="play", show_repeat=False)
        self.step_slider = widgets.IntSlider(value=0, min=0, max=1, description="global step", style=style)
        widgets.link((self.play, "value"), (self.step_slider, "value"))
        widgets.link((self.play, "max"), (self.step_slider, "max"))
        self.next_button = widgets.Button(description="Next batch", icon="step-forward",
                                          button_style="primary")
        self.reset_button = widgets.Button(description="Reset", icon="undo")
        self.counters = widgets.HTML()
        self.key = widgets.HTML(self.view.key_html())  # the figure's key, beside it
        self.play.observe(lambda change: self._go_to(change["new"]), names="value")
        self.next_button.on_click(lambda _button: self.step())
        self.reset_button.on_click(lambda _button: self.reset())
        box = widgets.VBox([
            widgets.HBox([self.batch_size, self.shuffle, self.drop_last]),
            widgets.HBox([self.play, self.step_slider, self.next_button, self.reset_button]),
            self.counters, self.key, canvas_widget(self.fig),
        ])
        self._finish_setup(box, settings=[self.batch_size, self.shuffle, self.drop_last])
        self.reset()

    def _changed(self, _change: dict[str, Any]) -> None:
        self.reset()

    def static_html(self) -> str:
        """The counters shown now and the figure's key."""
        return self.counters.value + self.key.value

    # ----------------------------------------------------------------- public actions
    def step(self) -> None:
        """Run one iteration (the *Next* button): move to the next batch, into a new epoch if needed."""
        target = self.play.value + 1
        if target > self.play.max:  # Next may go beyond what Play covers: extend by one epoch
            self.play.max = self.play.max + self.iterations_per_epoch
        self.play.value = target

    def reset(self) -> None:
        """Back to the start (step 0): re-seed the permutations, read the settings, redraw."""
        self.play.playing = False
        self._rng = np.random.default_rng(self.seed)
        self._orders: list[np.ndarray] = []  # the epochs' sample orders, drawn as they are reached
        if self.play.value == 0:  # setting 0 again would not call the observer
            self._go_to(0)
        self.play.value = 0
        self.play.max = self.epochs * self.iterations_per_epoch

    # ----------------------------------------------------------------- state (read-only)
    @property
    def iterations_per_epoch(self) -> int:
        """I: batches per epoch, ``ceil(N / B)`` or ``floor(N / B)`` with drop_last."""
        return arithmetic.iterations_per_epoch(self.n_samples, self.batch_size.value, self.drop_last.value)

    @property
    def last_batch_size(self) -> int:
        """Samples in the last batch of every epoch."""
        return arithmetic.last_batch_size(self.n_samples, self.batch_size.value, self.drop_last.value)

    @property
    def samples_dropped(self) -> int:
        """Samples drop_last discards per epoch (``N mod B``, or 0)."""
        return arithmetic.samples_dropped(self.n_samples, self.batch_size.value, self.drop_last.value)

    @property
    def global_step(self) -> int:
        """Iterations (= optimizer updates, one per batch) run since the start."""
        return self.play.value

    @property
    def epochs_completed(self) -> int:
        """Whole epochs finished."""
        return self.global_step // self.iterations_per_epoch

    @property
    def epoch(self) -> int:
        """The epoch in progress, counted from 1 (the epoch of the current batch; 1 before any step)."""
        return self._epoch_index(self.global_step) + 1

    @property
    def iteration_in_epoch(self) -> int:
        """Iterations done in the current epoch, 0 to I (I once its last batch ran)."""
        return self.global_step - self._epoch_index(self.global_step) * self.iterations_per_epoch

    @property
    def samples_seen(self) -> int:
        """Samples trained on since the start, repeats counted.

        ``arithmetic.samples_seen`` over the completed epochs plus the full batches of the epoch in
        progress (only an epoch's last batch can be short, and it completes the epoch).
        """
        per_epoch = self.iterations_per_epoch
        done = arithmetic.samples_seen(self.n_samples, self.batch_size.value,
                                       self.global_step // per_epoch, self.drop_last.value)
        return done + (self.global_step % per_epoch) * self.batch_size.value

    @property
    def epoch_order(self) -> np.ndarray:
        """The current epoch's sample order, shape ``(N,)`` (a permutation of 0..N-1)."""
        return self._order(self._epoch_index(self.global_step)).copy()

    @property
    def epoch_batches(self) -> EpochBatches:
        """The current epoch's order cut into batches (and the tail drop_last discards)."""
        return split_into_batches(self.epoch_order, self.batch_size.value, self.drop_last.value)

    @property
    def current_batch_indices(self) -> np.ndarray:
        """Sample indices of the batch just trained on, shape ``(b,)``; empty at step 0."""
        done = self.iteration_in_epoch
        return self.epoch_batches.batches[done - 1].copy() if done else np.empty(0, dtype=np.int64)

    # ----------------------------------------------------------------- internals
    def _epoch_index(self, step: int) -> int:
        """0-based epoch of the batch run at ``step`` (epoch 0 before the first step)."""
        return max(step - 1, 0) // self.iterations_per_epoch

    def _order(self, epoch_index: int) -> np.ndarray:
        """Sample order of epoch ``epoch_index`` (0-based); permutations are drawn in epoch order."""
        while len(self._orders) <= epoch_index:
            n = self.n_samples
            self._orders.append(self._rng.permutation(n) if self.shuffle.value else np.arange(n))
        return self._orders[epoch_index]

    def _go_to(self, step: int) -> None:
        """Show global step ``step`` (the Play widget's new value): its epoch laid out, its batch marked."""
        epoch_index = self._epoch_index(step)
        self.view.set_epoch(self._order(epoch_index), self.batch_size.value, self.drop_last.value,
                            epoch=epoch_index + 1)
        self.view.set_progress(self.iteration_in_epoch, status=self._status_line())
        self.counters.value = self._counters_html()
        request_redraw(self.fig)  # the live view (canvas_widget) shows the changed artists

    def _status_line(self) -> str:
        if self.global_step == 0:
            return "Ready: press Next (or Play) to train on the first batch"
        return (f"epoch {self.epoch} · iteration {self.iteration_in_epoch} of "
                f"{self.iterations_per_epoch} · global step {self.global_step} · "
                f"samples seen {self.samples_seen}")

    def _counters_html(self) -> str:
        n = self.n_samples
        b = self.batch_size.value
        per_epoch = self.iterations_per_epoch
        if self.drop_last.value:
            rule = f"I = ⌊N / B⌋ = ⌊{n} / {b}⌋ = {per_epoch}"
            tail = (f"drop_last discards N mod B = {self.samples_dropped} samples per epoch"
                    if self.samples_dropped else "B divides N: nothing to drop")
        else:
            rule = f"I = ⌈N / B⌉ = ⌈{n} / {b}⌉ = {per_epoch}"
            tail = (f"the last batch holds {self.last_batch_size} samples"
                    if self.last_batch_size < b else "B divides N: every batch is full")
        cells = [("epoch", self.epoch),
                 ("iteration in epoch", f"{self.iteration_in_epoch} / {per_epoch}"),
                 ("global step", self.global_step), ("samples seen", self.samples_seen),
                 ("epochs completed", self.epochs_completed)]
        counters = " &nbsp;·&nbsp; ".join(f"{name} <b>{value}</b>" for name, value in cells)
        return (f"<div style='font-size:1.05em'>{counters}</div>"
                f"<div>iterations per epoch {rule}; {tail}.</div>")
