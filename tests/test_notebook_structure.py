"""The shape every notebook must have: lecture-ready slides, a title and learning goals at the top,
exercises with hidden solutions at the end, and stored outputs from one clean top-to-bottom run.

Each check is a function over a notebook dict, tested on a small bad notebook too, so that a pass on
the real notebooks means something.
"""

from __future__ import annotations

import ast
import copy
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
SLIDE_TYPES = {"slide", "subslide", "fragment", "-", "skip", "notes"}
STARTS_A_SLIDE = {"slide", "subslide"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
GOALS = re.compile(r"learning goals|after this notebook you (can|will)|you will learn|objectives",
                   re.IGNORECASE)
EXERCISE_CALL = re.compile(r"\b(NumericExercise|ChoiceExercise)\(")
APP_CALL = re.compile(r"\b[A-Z]\w*App\(")
SOLUTION = re.compile(r"<details>\s*<summary>\s*Solution", re.IGNORECASE)
MAX_BYTES = 1_000_000  # the stored notebook stays lean (GitHub renders it; Binder loads it)


def load(path: Path) -> dict:
    """A notebook as JSON."""
    return json.loads(path.read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    """A cell's source as one string."""
    return "".join(cell.get("source", ""))


def slide_type(cell: dict) -> str | None:
    """The cell's RISE slide type, or None."""
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type")


def mimes(cell: dict) -> set[str]:
    """The mime types of a code cell's stored outputs."""
    return {m for out in cell.get("outputs", []) for m in out.get("data", {})}


# ---------------------------------------------------------------------------------------------
# Checks: each returns a list of problems (empty = fine)
# ---------------------------------------------------------------------------------------------


def slide_metadata_problems(nb: dict) -> list[str]:
    """Every cell has a valid ``slideshow.slide_type``; the first cell starts a slide."""
    problems = [f"cell {i}: slide_type {slide_type(c)!r}" for i, c in enumerate(nb["cells"])
                if slide_type(c) not in SLIDE_TYPES]
    if nb["cells"] and slide_type(nb["cells"][0]) != "slide":
        problems.append("cell 0 (the title) does not start a slide")
    return problems


def app_cells(nb: dict) -> list[int]:
    """Indices of the cells that display a widget app: a widget view in their outputs and either an
    ``...App(`` call or an expression showing a name that an earlier ``...App(`` call was bound to."""
    app_names: set[str] = set()
    found = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        text = "\n".join("" if ln.lstrip().startswith(("%", "!")) else ln
                         for ln in source(cell).splitlines())
        try:
            tree = ast.parse(text)
        except SyntaxError:
            tree = ast.Module(body=[], type_ignores=[])
        shown = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and APP_CALL.search(ast.unparse(node.value)):
                app_names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            if isinstance(node, ast.Expr):
                shown.update(n.id for n in ast.walk(node) if isinstance(n, ast.Name))
        if WIDGET_VIEW in mimes(cell) and (APP_CALL.search(text) or shown & app_names):
            found.append(index)
    return found


def app_slide_problems(nb: dict) -> list[str]:
    """Each widget app is on a slide of its own: its cell starts a slide/subslide, or directly
    follows the markdown cell that starts it (its heading); no other output-bearing code cell shares
    that slide."""
    cells = nb["cells"]
    problems = []
    for index in app_cells(nb):
        start = index
        if slide_type(cells[index]) not in STARTS_A_SLIDE:
            previous = cells[index - 1] if index > 0 else None
            if (previous is None or previous["cell_type"] != "markdown"
                    or slide_type(previous) not in STARTS_A_SLIDE):
                problems.append(f"cell {index} shows a widget app but does not start a slide or "
                                "subslide (nor directly follow the heading that starts one)")
                continue
            start = index - 1
        end = start + 1
        while end < len(cells) and slide_type(cells[end]) not in STARTS_A_SLIDE:
            end += 1
        others = [i for i in range(start, end) if i != index and cells[i]["cell_type"] == "code"
                  and cells[i].get("outputs")]
        if others:
            problems.append(f"cell {index} shares its slide with output cells {others}")
    return problems


def opening_problems(nb: dict) -> list[str]:
    """A ``# Title`` first, then learning goals within the first three cells."""
    cells = nb["cells"]
    problems = []
    if not cells or cells[0]["cell_type"] != "markdown" or not source(cells[0]).startswith("# "):
        problems.append("the first cell is not a markdown '# Title'")
    if not any(c["cell_type"] == "markdown" and GOALS.search(source(c)) for c in cells[:3]):
        problems.append("no learning goals ('Learning goals' / 'After this notebook you can') "
                        "in the first three cells")
    return problems


def exercise_problems(nb: dict) -> list[str]:
    """An 'Exercises' heading; after it, each exercise is followed by a hidden solution; the
    notebook ends with a solution."""
    cells = nb["cells"]
    heading = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                    and re.search(r"^#+\s.*exercises", source(c), re.IGNORECASE | re.MULTILINE)),
                   None)
    if heading is None:
        return ["no '## Exercises' heading"]
    problems = []
    exercises = [i for i in range(heading, len(cells))
                 if cells[i]["cell_type"] == "code" and EXERCISE_CALL.search(source(cells[i]))]
    if not exercises:
        problems.append("no NumericExercise/ChoiceExercise after the Exercises heading")
    for i in exercises:
        following = next((c for c in cells[i + 1:] if c["cell_type"] == "markdown"), None)
        if following is None or not SOLUTION.search(source(following)):
            problems.append(f"exercise in cell {i} is not followed by a <details> Solution")
    if not SOLUTION.search(source(cells[-1])):
        problems.append("the notebook does not end with an exercise solution")
    return problems


def output_problems(nb: dict) -> list[str]:
    """Stored outputs from one clean run: execution counts 1..n in order, outputs present, no
    error outputs, no ``%matplotlib inline``, and the ipympl backend set in the first code cell."""
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    problems = []
    counts = [c.get("execution_count") for c in code]
    if counts != list(range(1, len(code) + 1)):
        problems.append(f"execution counts are {counts}, not 1..{len(code)} in order")
    if code and not any(c.get("outputs") for c in code):
        problems.append("no stored outputs")
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"cell {i} stores an error output ({out.get('ename')})")
            if out.get("execution_count") not in (None, cell.get("execution_count")):
                problems.append(f"cell {i}: an output's execution count differs from the cell's")
        if cell["cell_type"] == "code" and re.search(r"%matplotlib\s+inline", source(cell)):
            problems.append(f"cell {i} uses %matplotlib inline (one backend: ipympl)")
    magic_cells = [i for i, c in enumerate(code) if "%matplotlib" in source(c)]
    if magic_cells and (magic_cells != [0] or not source(code[0]).startswith("%matplotlib widget")):
        problems.append("%matplotlib widget must be the first line of the first code cell only")
    return problems


CHECKS = [slide_metadata_problems, app_slide_problems, opening_problems, exercise_problems,
          output_problems]


# ---------------------------------------------------------------------------------------------
# The real notebooks
# ---------------------------------------------------------------------------------------------


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks in notebooks/"
    assert NOTEBOOKS[0].name == "00_start_here.ipynb", "the landing notebook comes first"


@pytest.mark.parametrize("check", CHECKS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_structure(path: Path, check) -> None:
    problems = check(load(path))
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_start_here_links_every_notebook_and_nothing_else() -> None:
    start = NOTEBOOKS[0]
    text = "\n".join(source(c) for c in load(start)["cells"] if c["cell_type"] == "markdown")
    linked = set(re.findall(r"\]\(([^)#\s]+\.ipynb)\)", text))
    others = {p.name for p in NOTEBOOKS[1:]}
    assert linked - others == set(), f"links to missing notebooks: {sorted(linked - others)}"
    assert others - linked == set(), f"{start.name} does not link {sorted(others - linked)}"


def test_readme_links_every_notebook() -> None:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    linked = set(re.findall(r"\]\(notebooks/([^)#\s]+\.ipynb)\)", text))
    names = {p.name for p in NOTEBOOKS}
    assert linked == names, f"README links {sorted(linked)}, notebooks/ has {sorted(names)}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_lean(path: Path) -> None:
    size = path.stat().st_size
    assert size < MAX_BYTES, f"{path.name} is {size / 1e6:.2f} MB (limit {MAX_BYTES / 1e6:.1f} MB)"


# ---------------------------------------------------------------------------------------------
# The checks catch what they should (a small, good notebook and broken copies of it)
# ---------------------------------------------------------------------------------------------


def _md(text: str, kind: str = "-") -> dict:
    return {"cell_type": "markdown", "metadata": {"slideshow": {"slide_type": kind}},
            "source": text}


def _code(text: str, count: int, kind: str = "-", outputs: list | None = None) -> dict:
    return {"cell_type": "code", "metadata": {"slideshow": {"slide_type": kind}}, "source": text,
            "execution_count": count, "outputs": outputs or []}


def _widget(count: int) -> list[dict]:
    return [{"output_type": "display_data", "metadata": {},
             "data": {WIDGET_VIEW: {"model_id": "0" * 32}, "text/plain": "App"}}]


def good_notebook() -> dict:
    return {"cells": [
        _md("# Title\n\n**Learning goals.** After this notebook you can ...", "slide"),
        _code("%matplotlib widget\nfrom batchlab.apps.x import DemoApp", 1, "skip"),
        _md("## The app", "slide"),
        _code("app = DemoApp()\napp", 2, outputs=_widget(2)),
        _md("## Exercises", "slide"),
        _code("NumericExercise('How many?', 4)", 3, "subslide", outputs=_widget(3)),
        _md("<details><summary>Solution</summary>\n\nFour.\n</details>"),
    ]}


def test_good_notebook_passes_every_check() -> None:
    nb = good_notebook()
    assert app_cells(nb) == [3]
    assert all(check(nb) == [] for check in CHECKS)


@pytest.mark.parametrize(
    ("breakage", "check"),
    [
        (lambda nb: nb["cells"][3]["metadata"].clear(), slide_metadata_problems),
        (lambda nb: nb["cells"][2]["metadata"]["slideshow"].update(slide_type="-"),
         app_slide_problems),
        (lambda nb: nb["cells"].insert(3, _code("print(1)", 9, outputs=[
            {"output_type": "stream", "name": "stdout", "text": "1\n"}])), app_slide_problems),
        (lambda nb: nb["cells"][0].update(source="Title without a heading"), opening_problems),
        (lambda nb: nb["cells"][0].update(source="# Title\n\nNo goals here."), opening_problems),
        (lambda nb: nb["cells"].pop(), exercise_problems),
        (lambda nb: nb["cells"][4].update(source="## Practice"), exercise_problems),
        (lambda nb: nb["cells"][3].update(execution_count=5), output_problems),
        (lambda nb: nb["cells"][3]["outputs"].append(
            {"output_type": "error", "ename": "ValueError", "evalue": "", "traceback": []}),
         output_problems),
        (lambda nb: nb["cells"][1].update(source="%matplotlib inline"), output_problems),
        (lambda nb: [c.update(outputs=[]) for c in nb["cells"] if c["cell_type"] == "code"],
         output_problems),
    ],
)
def test_checks_catch_a_broken_notebook(breakage, check) -> None:
    nb = copy.deepcopy(good_notebook())
    breakage(nb)
    assert check(nb), f"{check.__name__} missed the breakage"
