"""Self-check exercises: a learner types an answer, presses Check, and is told whether it is right and why.

Two kinds:

* :class:`NumericExercise`: a number, with an optional tolerance and a list of *expected mistakes*
  (the value a typical slip produces, e.g. ``floor`` instead of ``ceil``) that get a tailored hint;
* :class:`ChoiceExercise`: one option out of several, each wrong option with its own explanation.

``check()`` is plain Python (tested without a browser); ``widget()`` wraps it in an input, a Check button
and a feedback line. Displayed in a notebook, an exercise shows that widget, plus a static copy for
readers without a kernel: the question as HTML and, hidden in ``<details><summary>Solution</summary>``,
the answer and its explanation.

The notebooks' exercises live in data files, out of sight of the notebook's code cells (so the cell above
a Check box does not give the answer away): ``exercise_data/NN.toml`` holds notebook NN's exercises by
name, and a notebook cell shows one with ``exercises.show("01.exercise_2")``. An answer computed in the
notebook is passed in: ``exercises.show("07.exercise_1", answer=s64)``, and ``{name}`` fields in the texts
are filled from the same keyword arguments. ``tools/move_exercises.py`` moves a notebook's inline
exercises into its data file.
"""

from __future__ import annotations

import html
import math
import numbers
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from batchlab.validation import require_float

__all__ = ["ChoiceExercise", "Feedback", "NumericExercise", "exercise_ids", "load", "show"]


@dataclass(frozen=True)
class Feedback:
    """The verdict on one answer: ``correct`` and a ``message`` that explains it."""

    correct: bool
    message: str

    def to_html(self) -> str:
        colour = "#1a7f37" if self.correct else "#b3261e"
        mark = "✔ Correct." if self.correct else "✘ Not yet."
        return f"<span style='color:{colour}'><b>{mark}</b> {html.escape(self.message)}</span>"


def _require_text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a non-empty str, got {type(value).__name__} {value!r}")
    if not value.strip():
        raise ValueError(f"{name} must be a non-empty str, got {value!r}")
    return value


def _require_mapping(name: str, value: Any) -> Mapping[Any, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{name} must be a dict (or None), got {type(value).__name__} {value!r}")
    return value


# "1,000" and "12,345.5" use commas to group thousands; "1,5" (a decimal comma) is refused.
_GROUPED = re.compile(r"[+-]?\d{1,3}(,\d{3})+(\.\d*)?([eE][+-]?\d+)?")


def _parse_number(value: str) -> float | str:
    """The number typed in ``value``, or the message that tells why it is not one.

    One number only: ``"32 32"`` and ``"- 32"`` are refused (a space is not a digit separator).
    """
    text = value.strip().replace("_", "").replace("\u2212", "-")
    if not text:
        return "Type a number first."
    if any(c.isspace() for c in text):
        return f"{value.strip()!r} is not one number: type a single number, without spaces."
    if "," in text and not _GROUPED.fullmatch(text):
        return (f"{value.strip()!r} is not a number: use a dot for decimals (0.5) and commas "
                "only between groups of three digits (1,000).")
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return f"{value.strip()!r} is not a number."


class _ExerciseWidget:
    """Shared widget plumbing: an input, a Check button, an HTML feedback line, and a static copy.

    A subclass provides ``check(value) -> Feedback``, ``_make_input()`` (the input widget) and
    ``solution_html()``.
    """

    prompt: str
    _box: Any = None

    def widget(self) -> Any:
        """The exercise as an ipywidgets box (built once, then reused)."""
        if self._box is None:
            import ipywidgets as widgets

            self.input = self._make_input()
            self.button = widgets.Button(description="Check", button_style="primary")
            self.feedback = widgets.HTML(value="")
            def on_click(_button: Any) -> None:
                self.feedback.value = self.check(self.input.value).to_html()
            self.button.on_click(on_click)
            question = widgets.HTML(value=f"<b>{html.escape(self.prompt)}</b>")
            self._box = widgets.VBox([question, widgets.HBox([self.input, self.button]), self.feedback])
        return self._box

    def static_html(self) -> str:
        """The question, then the solution hidden in ``<details>`` (what a reader without a kernel sees)."""
        return (f"<div class='batchlab-exercise'><p><b>{html.escape(self.prompt)}</b></p>"
                f"<details><summary>Solution</summary>{self.solution_html()}</details></div>")

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {**self.widget()._repr_mimebundle_(), "text/html": self.static_html(),
                "text/plain": f"Exercise: {self.prompt}"}

    def close(self) -> None:
        """Close the widgets (layouts and styles too); the next display builds them again."""
        if self._box is not None:
            from batchlab.apps.live import close_widgets

            close_widgets(self._box)
            self._box = None


class NumericExercise(_ExerciseWidget):
    """A question whose answer is a number.

    Parameters
    ----------
    prompt:
        The question shown to the learner.
    answer:
        The right value.
    explanation:
        Why it is right; shown with the verdict.
    mistakes:
        ``{wrong value: hint}`` for the slips worth naming (e.g. ``{31: "that is floor(N/B) ..."}``).
    tolerance:
        Absolute tolerance (≥ 0) for accepting an answer; 0 for exact integers.
    """

    def __init__(self, prompt: str, answer: float, *, explanation: str,
                 mistakes: Mapping[float, str] | None = None, tolerance: float = 0.0) -> None:
        self.prompt = _require_text("prompt", prompt)
        self.answer = require_float("answer", answer)
        self.explanation = _require_text("explanation", explanation)
        self.tolerance = require_float("tolerance", tolerance, minimum=0)
        self.mistakes = {require_float("mistakes key", k): _require_text(f"mistakes[{k!r}]", v)
                         for k, v in _require_mapping("mistakes", mistakes).items()}
        for wrong in self.mistakes:
            if self._close(wrong, self.answer):
                raise ValueError(f"mistakes must not contain the answer {_format(self.answer)} "
                                 f"(within tolerance {self.tolerance:g}), got key {wrong!r}")
    def _close(self, a: float, b: float) -> bool:
        return math.isclose(a, b, rel_tol=0.0, abs_tol=max(self.tolerance, 1e-12))

    def check(self, value: Any) -> Feedback:
        """Judge ``value`` (a number, or text as typed into the widget)."""
        if isinstance(value, str):
            number = _parse_number(value)
            if isinstance(number, str):  # not a number: the message says why
                return Feedback(False, number)
        elif isinstance(value, numbers.Real) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an int too large for a float, e.g. 10**400
                return Feedback(False, "That number is far too large to be the answer.")
        else:
            raise TypeError(f"value must be a number or a str, got {type(value).__name__} {value!r}")
        if not math.isfinite(number):
            return Feedback(False, "That is not a finite number (too large, infinite or NaN).")
        if self._close(number, self.answer):
            return Feedback(True, self.explanation)
        for wrong, hint in self.mistakes.items():
            if self._close(number, wrong):
                return Feedback(False, hint)
        direction = "too small" if number < self.answer else "too large"
        return Feedback(False, f"{_format(number)} is {direction}. Re-read the question and try again.")

    def _make_input(self) -> Any:
        import ipywidgets as widgets

        return widgets.Text(placeholder="your answer", continuous_update=False)

    def solution_html(self) -> str:
        """The answer and why."""
        return f"<p>Answer: <b>{_format(self.answer)}</b>. {html.escape(self.explanation)}</p>"


class ChoiceExercise(_ExerciseWidget):
    """A question with one right option among several.

    ``why_wrong`` maps each wrong option to the explanation a learner who picked it should read.
    """

    def __init__(self, prompt: str, options: Sequence[str], answer: str, *, explanation: str,
                 why_wrong: Mapping[str, str] | None = None) -> None:
        self.prompt = _require_text("prompt", prompt)
        if isinstance(options, str) or not isinstance(options, Sequence):
            raise TypeError(f"options must be a list or tuple of str, got {options!r}")
        self.options = tuple(_require_text(f"options[{i}]", o) for i, o in enumerate(options))
        if len(self.options) < 2 or len(set(self.options)) != len(self.options):
            raise ValueError(f"options must hold at least 2 different str, got {self.options!r}")
        if answer not in self.options:
            raise ValueError(f"answer must be one of {self.options!r}, got {answer!r}")
        self.answer = answer
        self.explanation = _require_text("explanation", explanation)
        self.why_wrong = {key: _require_text(f"why_wrong[{key!r}]", why)
                          for key, why in _require_mapping("why_wrong", why_wrong).items()}
        if unknown := [key for key in self.why_wrong if key not in self.options]:
            raise ValueError(f"why_wrong has keys that are not options: {unknown!r}")
        if answer in self.why_wrong:
            raise ValueError(f"why_wrong must not explain the right answer, got key {answer!r}")

    def check(self, value: Any) -> Feedback:
        """Judge the chosen option (``None`` means nothing chosen yet)."""
        if value is None:
            return Feedback(False, "Pick an option first.")
        if value not in self.options:
            raise ValueError(f"value must be one of {self.options!r}, got {value!r}")
        if value == self.answer:
            return Feedback(True, self.explanation)
        return Feedback(False, self.why_wrong.get(value, "That is not it; think again."))

    def _make_input(self) -> Any:
        import ipywidgets as widgets

        return widgets.RadioButtons(options=self.options, value=None,
                                    layout=widgets.Layout(width="auto"))

    def solution_html(self) -> str:
        """The right option and why; the options as a list."""
        items = "".join(f"<li>{html.escape(o)}</li>" for o in self.options)
        return (f"<ul>{items}</ul><p>Answer: <b>{html.escape(self.answer)}</b>. "
                f"{html.escape(self.explanation)}</p>")


def _format(number: float) -> str:
    return f"{int(number):,}" if number.is_integer() else f"{number:g}"


DATA = Path(__file__).parent / "exercise_data"
EXERCISE_ID = re.compile(r"(\d{2})\.([A-Za-z_][\w-]*)")


def _notebook_data(notebook: str) -> dict[str, Any]:
    path = DATA / f"{notebook}.toml"
    return tomllib.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def exercise_ids() -> list[str]:
    """Every exercise id in the data files (``"01.exercise_2"``...), in file order.

    Taught in: every notebook's Exercises section.
    """
    return [f"{path.stem}.{name}" for path in sorted(DATA.glob("[0-9][0-9].toml"))
            for name in _notebook_data(path.stem)]


def _fill(text: str, values: Mapping[str, Any], where: str) -> str:
    if not values:
        return text
    try:
        return text.format(**values)
    except (KeyError, IndexError) as exc:
        raise ValueError(f"{where} needs the value {exc} (pass it to show/load as a keyword)") from None


def load(exercise_id: str, **values: Any) -> NumericExercise | ChoiceExercise:
    """The exercise ``exercise_id`` (``"NN.name"``: notebook NN's data file, entry ``name``).

    ``values`` fill ``{name}`` fields in its texts; ``answer=...`` gives an answer that the notebook
    computes (the data file then has none). Raises ``ValueError`` for an unknown id or a missing value,
    ``TypeError`` for an id that is not a str.

    Taught in: every notebook's Exercises section.
    """
    if not isinstance(exercise_id, str):
        raise TypeError(f"exercise_id must be a str like '01.exercise_2', got "
                        f"{type(exercise_id).__name__} {exercise_id!r}")
    match = EXERCISE_ID.fullmatch(exercise_id)
    entry = _notebook_data(match[1]).get(match[2]) if match else None
    if entry is None:
        raise ValueError(f"exercise_id must be one of the exercises in {DATA.name}/ "
                         f"('NN.name', e.g. '01.exercise_2'), got {exercise_id!r}")
    entry = dict(entry)
    kind = entry.pop("kind", None)
    if "answer" in values:
        entry["answer"] = values["answer"]
    if "answer" not in entry:
        raise ValueError(f"{exercise_id} has no answer in its data file: pass answer=... to show()")
    prompt = _fill(entry.pop("prompt"), values, f"{exercise_id} prompt")
    explanation = _fill(entry.pop("explanation"), values, f"{exercise_id} explanation")
    if kind == "numeric":
        mistakes = {float(_fill(k, values, f"{exercise_id} mistakes")): _fill(v, values, exercise_id)
                    for k, v in entry.get("mistakes", {}).items()}
        return NumericExercise(prompt, entry["answer"], explanation=explanation, mistakes=mistakes,
                               tolerance=entry.get("tolerance", 0.0))
    if kind == "choice":
        options = [_fill(o, values, f"{exercise_id} options") for o in entry["options"]]
        why_wrong = {_fill(k, values, exercise_id): _fill(v, values, exercise_id)
                     for k, v in entry.get("why_wrong", {}).items()}
        return ChoiceExercise(prompt, options, _fill(entry["answer"], values, exercise_id),
                              explanation=explanation, why_wrong=why_wrong)
    raise ValueError(f"{exercise_id}: kind must be 'numeric' or 'choice', got {kind!r}")


def show(exercise_id: str, **values: Any) -> NumericExercise | ChoiceExercise:
    """The exercise ``exercise_id``, ready to show: as the last line of a notebook cell it displays its
    question, an answer box and a Check button (and, without a kernel, the folded solution). The
    answer, explanation and hints stay in the data file. Arguments as for :func:`load`. Running the
    cell again closes the widgets the cell showed before (the re-run registry of
    :func:`batchlab.plots.live.made_here`), so a re-run leaves no orphan Check box behind.

    Taught in: every notebook's Exercises section.
    """
    from batchlab.plots.live import made_here

    exercise = load(exercise_id, **values)
    _key, previous = made_here(show, exercise)
    if previous is not None:
        previous.close()
    return exercise
