"""Self-check exercises: the verdicts, the hints for expected mistakes, input parsing and the widget."""

from __future__ import annotations

import ast
import html
import json
import re
from pathlib import Path

import pytest

from batchlab import exercises
from batchlab.exercises import ChoiceExercise, Feedback, NumericExercise


@pytest.fixture
def iterations():
    return NumericExercise(
        "N = 1000, B = 32, drop_last=False: how many iterations per epoch?",
        32,
        explanation="ceil(1000 / 32) = 32: 31 full batches and one of 8.",
        mistakes={31: "That is floor(N / B): it forgets the last, short batch.",
                  31.25: "N / B is not a whole number of batches: round up."},
    )


@pytest.fixture
def shuffling():
    return ChoiceExercise(
        "What changes from one epoch to the next when shuffle=True?",
        ["the order of the samples", "the number of iterations", "nothing"],
        "the order of the samples",
        explanation="A new permutation is drawn at the start of every epoch.",
        why_wrong={"the number of iterations": "I depends only on N, B and drop_last."},
    )


# ----------------------------------------------------------------------------- NumericExercise
@pytest.mark.parametrize("answer", [32, 32.0, "32", " 32 ", "32.0", "3.2e1", "+32"])
def test_right_answer_in_any_spelling(iterations, answer):
    feedback = iterations.check(answer)
    assert feedback == Feedback(True, "ceil(1000 / 32) = 32: 31 full batches and one of 8.")


@pytest.mark.parametrize(("typed", "hint"), [(31, "floor(N / B)"), ("31", "floor(N / B)"),
                                             ("31.25", "round up"), (31.25, "round up")])
def test_expected_mistakes_get_their_hint(iterations, typed, hint):
    feedback = iterations.check(typed)
    assert not feedback.correct
    assert hint in feedback.message


@pytest.mark.parametrize(("typed", "direction"), [(30, "too small"), (1000, "too large"),
                                                  ("-1", "too small")])
def test_other_wrong_answers_say_which_way(iterations, typed, direction):
    feedback = iterations.check(typed)
    assert not feedback.correct and direction in feedback.message


def test_thousands_separators_and_underscores():
    exercise = NumericExercise("Samples seen?", 10_000, explanation="N × E.")
    for typed in ["10,000", "10000", "10_000", " 10,000 ", "1e4", "10,000.0"]:
        assert exercise.check(typed).correct, typed


@pytest.mark.parametrize(("typed", "says"), [
    ("abc", "'abc' is not a number"),
    ("", "Type a number first"),
    ("   ", "Type a number first"),
    ("1,5", "use a dot for decimals"),
    ("10,00", "use a dot for decimals"),
    ("nan", "not a finite number"),
    ("inf", "not a finite number"),
    ("3 2 x", "not one number"),
    ("32 32", "not one number"),  # not 3232
    ("- 32", "not one number"),  # not -32
    ("1" + "0" * 400, "not a finite number"),
])
def test_text_that_is_not_a_number(iterations, typed, says):
    feedback = iterations.check(typed)
    assert not feedback.correct
    assert says in feedback.message


def test_tolerance():
    exercise = NumericExercise("Learning rate?", 0.4, explanation="0.1 × 128 / 32.",
                               tolerance=0.005)
    assert exercise.check("0.4").correct
    assert exercise.check(0.1 * 128 / 32).correct
    assert exercise.check("0.404").correct
    assert not exercise.check("0.41").correct
    exact = NumericExercise("Steps?", 3, explanation="ok")
    assert not exact.check(3.001).correct
    assert exact.check(0.1 * 30).correct  # float rounding is not a mistake


def test_check_rejects_values_of_the_wrong_type(iterations):
    for value in [True, None, [32], {"a": 1}]:
        with pytest.raises(TypeError, match="value"):
            iterations.check(value)


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"prompt": ""}, ValueError, "prompt"),
        ({"prompt": 3}, TypeError, "prompt"),
        ({"answer": "32"}, TypeError, "answer"),
        ({"answer": True}, TypeError, "answer"),
        ({"answer": float("nan")}, ValueError, "answer"),
        ({"explanation": None}, TypeError, "explanation"),
        ({"explanation": " "}, ValueError, "explanation"),
        ({"tolerance": -0.1}, ValueError, "tolerance"),
        ({"tolerance": "0.1"}, TypeError, "tolerance"),
        ({"mistakes": [31]}, TypeError, "mistakes"),
        ({"mistakes": {"31": "hint"}}, TypeError, "mistakes key"),
        ({"mistakes": {31: ""}}, ValueError, "mistakes"),
        ({"mistakes": {32: "the answer itself"}}, ValueError, "mistakes"),
        ({"mistakes": {32.5: "within tolerance"}, "tolerance": 1}, ValueError, "mistakes"),
    ],
)
def test_numeric_constructor_names_the_bad_parameter(kwargs, error, name):
    arguments = {"prompt": "How many?", "answer": 32, "explanation": "Because."} | kwargs
    prompt, answer = arguments.pop("prompt"), arguments.pop("answer")
    with pytest.raises(error, match=name):
        NumericExercise(prompt, answer, **arguments)


# ----------------------------------------------------------------------------- ChoiceExercise
def test_choice_right_and_wrong(shuffling):
    assert shuffling.check("the order of the samples").correct
    wrong = shuffling.check("the number of iterations")
    assert not wrong.correct and "N, B and drop_last" in wrong.message
    generic = shuffling.check("nothing")
    assert not generic.correct and generic.message
    nothing = shuffling.check(None)
    assert not nothing.correct and "Pick an option" in nothing.message


def test_choice_rejects_unknown_option(shuffling):
    with pytest.raises(ValueError, match="value"):
        shuffling.check("the labels")


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"prompt": ""}, ValueError, "prompt"),
        ({"options": "ab"}, TypeError, "options"),
        ({"options": ["a"], "answer": "a"}, ValueError, "options"),
        ({"options": ["a", "a"], "answer": "a"}, ValueError, "options"),
        ({"options": ["a", 2]}, TypeError, "options"),
        ({"options": ["a", ""]}, ValueError, "options"),
        ({"answer": "c"}, ValueError, "answer"),
        ({"explanation": ""}, ValueError, "explanation"),
        ({"why_wrong": {"c": "not an option"}}, ValueError, "why_wrong"),
        ({"why_wrong": {"a": "explains the answer"}}, ValueError, "why_wrong"),
        ({"why_wrong": {"b": ""}}, ValueError, "why_wrong"),
        ({"why_wrong": ["b"]}, TypeError, "why_wrong"),
    ],
)
def test_choice_constructor_names_the_bad_parameter(kwargs, error, name):
    arguments = {"prompt": "Which?", "options": ["a", "b"], "answer": "a",
                 "explanation": "Because."} | kwargs
    prompt, options, answer = (arguments.pop(k) for k in ("prompt", "options", "answer"))
    with pytest.raises(error, match=name):
        ChoiceExercise(prompt, options, answer, **arguments)


# ----------------------------------------------------------------------------- feedback and widgets
def test_feedback_html_escapes_and_marks():
    good = Feedback(True, "1 < 2").to_html()
    bad = Feedback(False, "<script>").to_html()
    assert "Correct" in good and "1 &lt; 2" in good
    assert "Not yet" in bad and "&lt;script&gt;" in bad and "<script>" not in bad


def test_numeric_widget_check_button(iterations):
    box = iterations.widget()
    assert iterations.widget() is box  # built once
    assert iterations.feedback.value == ""
    iterations.input.value = "31"
    iterations.button.click()
    assert "Not yet" in iterations.feedback.value
    assert "floor(N / B)" in iterations.feedback.value
    iterations.input.value = " 32 "
    iterations.button.click()
    assert "Correct" in iterations.feedback.value
    iterations.input.value = ""
    iterations.button.click()
    assert "Type a number first" in iterations.feedback.value
    assert "iterations per epoch" in box.children[0].value


def test_choice_widget_check_button(shuffling):
    shuffling.widget()
    assert shuffling.input.value is None
    assert list(shuffling.input.options) == list(shuffling.options)
    shuffling.button.click()
    assert "Pick an option" in shuffling.feedback.value
    shuffling.input.value = "the number of iterations"
    shuffling.button.click()
    assert "N, B and drop_last" in shuffling.feedback.value
    shuffling.input.value = "the order of the samples"
    shuffling.button.click()
    assert "Correct" in shuffling.feedback.value


def test_a_huge_integer_answer_gets_a_message_not_an_overflow(iterations):
    feedback = iterations.check(10**400)
    assert not feedback.correct and "too large" in feedback.message


def test_the_static_copy_holds_the_question_and_a_hidden_solution(iterations, shuffling):
    bundle = iterations._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "VBox" not in bundle["text/plain"]
    page = bundle["text/html"]
    assert html.escape(iterations.prompt) in page
    hidden = page.split("<details><summary>Solution</summary>", 1)[1]
    assert f"<b>{iterations.answer:,.0f}</b>" in hidden and "</details>" in hidden
    choice = shuffling._repr_mimebundle_()["text/html"]
    assert f"Answer: <b>{html.escape(shuffling.answer)}</b>" in choice.split("<summary>Solution</summary>")[1]
    assert iterations._repr_mimebundle_()["text/html"] == page  # deterministic


def test_close_releases_every_widget(iterations):
    import ipywidgets

    before = len(ipywidgets.Widget.widgets)
    for _ in range(3):
        iterations.widget()
        iterations.close()
    assert len(ipywidgets.Widget.widgets) == before


def test_showing_again_from_the_same_line_closes_the_earlier_widgets():
    import ipywidgets

    from batchlab import exercises

    def cell():  # one notebook cell, run again and again
        return exercises.show("01.exercise_1")

    first = cell()
    first.widget()
    before = len(ipywidgets.Widget.widgets)
    for _ in range(3):
        cell().widget()
    assert len(ipywidgets.Widget.widgets) == before
    assert first._box is None  # the first Check box was closed by the re-run
    other = exercises.show("01.exercise_1")  # another line: a second, independent exercise
    other.widget()
    assert len(ipywidgets.Widget.widgets) > before


# ----------------------------------------------------------------------------- the exercise data files
NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))
def _show_calls(source: str) -> dict[str, set[str]]:
    """exercise id -> the keyword names of each ``exercises.show("NN.name", ...)`` call in ``source``."""
    found = {}
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "show"
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "exercises"
                and node.args and isinstance(node.args[0], ast.Constant)):
            found[node.args[0].value] = {keyword.arg for keyword in node.keywords}
    return found


def shown_in_notebooks() -> dict[str, set[str]]:
    """exercise id -> the keyword names of its ``exercises.show(...)`` call, over every notebook."""
    found = {}
    for path in NOTEBOOKS:
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "code":
                source = "\n".join(line for line in "".join(cell["source"]).splitlines()
                                   if not line.lstrip().startswith(("%", "!")))
                found.update(_show_calls(source))
    return found


def test_every_exercise_in_the_data_files_builds_and_is_shown_by_its_notebook() -> None:
    ids = exercises.exercise_ids()
    shown = shown_in_notebooks()
    assert ids, "no exercise data files"
    for exercise_id in ids:
        assert exercise_id in shown, f"{exercise_id} is in the data but no notebook shows it"
        if "answer" in shown[exercise_id]:
            continue  # its answer (and maybe hints) come from the notebook's computation
        exercise = exercises.show(exercise_id)
        assert isinstance(exercise, NumericExercise | ChoiceExercise)
        assert exercise.check(exercise.answer).correct
        assert "Solution" in exercise.static_html()
        assert html.escape(exercise.prompt) in exercise.static_html()


def test_every_notebook_exercise_exists_in_the_data() -> None:
    assert set(shown_in_notebooks()) <= set(exercises.exercise_ids())


def test_values_from_the_notebook_fill_the_answer_and_hints() -> None:
    exercise = exercises.load("03.exercise_5", answer=0.5, one_over_steep=0.25, two_over_flat=40.0)
    assert exercise.check("0.5").correct
    assert "twice" in exercise.check(0.25).message
    with pytest.raises(ValueError, match="one_over_steep"):
        exercises.load("03.exercise_5", answer=0.5)
    with pytest.raises(ValueError, match="pass answer="):
        exercises.load("03.exercise_5")


@pytest.mark.parametrize(("bad", "error"), [("01.no_such_exercise", ValueError), ("exercise_2", ValueError),
                                             ("99.exercise_1", ValueError), (12, TypeError)])
def test_load_names_a_bad_id(bad, error) -> None:
    with pytest.raises(error, match="exercise_id"):
        exercises.load(bad)


CONVERTED = ("00", "01", "02", "03", "04", "05", "06", "07", "08")


@pytest.mark.parametrize("notebook", [n for n in NOTEBOOKS if n.name[:2] in CONVERTED],
                         ids=lambda p: p.name[:2])
def test_converted_notebooks_show_no_answer_in_their_code(notebook) -> None:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    inline = [i for i, c in enumerate(cells) if c["cell_type"] == "code"
              and re.search(r"\b(NumericExercise|ChoiceExercise)\(|explanation=|mistakes=|why_wrong=",
                            "".join(c["source"]))]
    assert not inline, f"{notebook.name}: cells {inline} still write an exercise's answer in the code"
