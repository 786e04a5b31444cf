"""The shape every notebook must have: lecture-ready slides, a title and numbered learning goals at the
top, a navigation line at both ends, exercises that check those goals with hidden solutions at the end,
projector-legible figures, and stored outputs from one clean top-to-bottom run.

Each check is a function over a notebook dict, tested on a small bad notebook too, so that a pass on
the real notebooks means something.

Rules that need a word of explanation:

* **Slides** (jupyterlab-slideshow): a cell's ``slideshow.slide_type`` is "slide", "subslide",
  "fragment", "skip" or "notes", or the key is absent (the cell continues the current slide). The
  explicit "-" is refused: jupyterlab-slideshow never shows such a cell. ``tools/tidy_notebooks.py``
  removes it. The first and the last cell (the navigation lines) are not skipped: the top one opens the
  title slide, the bottom one ends the last slide, so a deck started on either shows a slide.
* **Navigation**: the first and the last cell are the line "← previous · start here · next →" (cell
  tag ``navigation``), linking the neighbours in the sorted file list; ``tools/tidy_notebooks.py``
  writes it. The other checks look at the cells between them.
* **Learning goals**: the first cell lists them as a numbered list (1., 2., ...) under a "Learning
  goals" heading; every exercise code cell starts with ``# goals: 2`` (or ``# goals: 1, 3``), and
  every goal is named by at least one exercise.
* **Figures**: in every code cell that stores PNG images, the widest one is at least
  :data:`FULL_WIDTH_PX` wide (a full-width figure at the collection's screen resolution, legible on a
  projector). The one exemption: a cell
  tagged ``thumbnail`` (small pictures on purpose, such as a strip of digit images) whose images are
  all at most :data:`THUMBNAIL_MAX_PX` wide. The style is applied by ``apply_style()`` in each
  notebook's first code cell. Figures are inline PNGs (``%matplotlib inline``; the widget apps draw
  live in bqplot): the first code cell starts with :data:`INLINE_SETUP`, whose second line keeps each
  PNG at the figure's own size (the inline default crops it to the drawn area, so the same
  full-width figure came out 679 to 829 px wide).
"""

from __future__ import annotations

import ast
import base64
import copy
import json
import re
import struct
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
sys.path.insert(0, str(REPO / "tools"))
import tidy_notebooks  # noqa: E402  (tools/ is not a package)

from batchlab.plots.style import DPI, FULL_WIDTH  # noqa: E402

SLIDE_TYPES = {"slide", "subslide", "fragment", "skip", "notes", None}  # None: key absent
STARTS_A_SLIDE = {"slide", "subslide"}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
GOALS = re.compile(r"learning goals|after this notebook you (can|will)|you will learn|objectives",
                   re.IGNORECASE)
EXERCISE_CALL = re.compile(r"\b(NumericExercise|ChoiceExercise)\(|\bexercises\.show\(")
APP_CALL = re.compile(r"\b[A-Z]\w*App\(")
SOLUTION = re.compile(r"<details>\s*<summary>\s*Solution", re.IGNORECASE)
GOALS_HEADING = re.compile(r"^(#+\s*|\*\*)learning goals\b", re.IGNORECASE | re.MULTILINE)
GOAL_ITEM = re.compile(r"^\s{0,3}(\d+)\.\s+\S")
GOALS_LINE = re.compile(r"#\s*goals:\s*(\d+(?:\s*,\s*\d+)*)\s*$")
NAV_TAG = "navigation"
NAV_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+\.ipynb)\)")
FULL_WIDTH_PX = round(FULL_WIDTH * DPI)  # 820: fits JupyterLab's output area beside the file browser
THUMBNAIL_MAX_PX = 480
STYLE_CALL = re.compile(r"^\s*(\w+\.)*apply_style\(\)", re.MULTILINE)
INLINE_SETUP = ('%matplotlib inline\n'  # the first lines of every first code cell: see "Figures" above
                '%config InlineBackend.print_figure_kwargs = {"bbox_inches": None}')
FIGURE_TEXT = re.compile(r"^<Figure size [^>]*>$")  # a figure's text stand-in
MAX_BYTES = 2_000_000  # lean enough for GitHub and Binder, with projector-sized (>= 1,000 px) figures


def load(path: Path) -> dict:
    """A notebook as JSON."""
    return json.loads(path.read_text(encoding="utf-8"))


def source(cell: dict) -> str:
    """A cell's source as one string."""
    return "".join(cell.get("source", ""))


def slide_type(cell: dict) -> str | None:
    """The cell's slide type, or None (the key is absent: the cell continues the current slide)."""
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type")


def mimes(cell: dict) -> set[str]:
    """The mime types of a code cell's stored outputs."""
    return {m for out in cell.get("outputs", []) for m in out.get("data", {})}


def is_navigation(cell: dict) -> bool:
    """A navigation-line cell (tag ``navigation``)."""
    return NAV_TAG in cell.get("metadata", {}).get("tags", [])


def content(nb: dict) -> list[dict]:
    """The cells between the navigation lines."""
    return [c for c in nb["cells"] if not is_navigation(c)]


def png_widths(cell: dict) -> list[int]:
    """Pixel widths of the PNG images a code cell stores (read from each PNG's header)."""
    widths = []
    for out in cell.get("outputs", []):
        data = out.get("data", {}).get("image/png")
        if data:
            header = base64.b64decode("".join(data)[:64])
            widths.append(struct.unpack(">I", header[16:20])[0])
    return widths


def learning_goals(nb: dict) -> list[int]:
    """The numbers of the learning goals listed under the first cell's "Learning goals" heading, and
    in the cell after it when that one continues them (tag ``goals-continued``, written by
    tools/tidy_notebooks.py to keep at most four goals on the title slide)."""
    cells = content(nb)
    text = source(cells[0]) if cells else ""
    heading = GOALS_HEADING.search(text)
    if not heading:
        return []
    lines = text[heading.end():].splitlines()[1:]
    if len(cells) > 1 and tidy_notebooks.GOALS_TAG in cells[1].get("metadata", {}).get("tags", []):
        lines += source(cells[1]).splitlines()[1:]
    numbers = []
    for line in lines:
        item = GOAL_ITEM.match(line)
        if item:
            numbers.append(int(item[1]))
        elif numbers and line.strip() and not line.startswith((" ", "\t")):
            break  # the list has ended
    return numbers


def exercise_cells(nb: dict) -> list[int]:
    """Indices (in ``nb["cells"]``) of the code cells that pose a self-check exercise."""
    return [i for i, c in enumerate(nb["cells"])
            if c["cell_type"] == "code" and EXERCISE_CALL.search(source(c))]


# ---------------------------------------------------------------------------------------------
# Checks: each returns a list of problems (empty = fine)
# ---------------------------------------------------------------------------------------------


def slide_metadata_problems(nb: dict) -> list[str]:
    """Every slide type is valid (no explicit "-"); the first shown cell starts a slide and the title is
    on that slide; neither end of the notebook is skipped (a deck started there shows a blank page)."""
    problems = [f"cell {i}: slide_type {slide_type(c)!r}" + (
        " (jupyterlab-slideshow hides it: delete the key; tools/tidy_notebooks.py does)"
        if slide_type(c) == "-" else "")
        for i, c in enumerate(nb["cells"]) if slide_type(c) not in SLIDE_TYPES]
    shown = [c for c in nb["cells"] if slide_type(c) != "skip"]
    if shown and slide_type(shown[0]) != "slide":
        problems.append("the first cell shown in slides (the title) does not start a slide")
    cells = nb["cells"]
    for end, cell in (("first", cells[0]), ("last", cells[-1])) if cells else ():
        if slide_type(cell) == "skip":
            problems.append(f"the {end} cell is skipped in slides: a deck started on it shows a blank page "
                            "(run tools/tidy_notebooks.py)")
    title = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                  and re.search(r"^#\s", source(c), re.MULTILINE)), None)
    first = next((i for i, c in enumerate(cells) if slide_type(c) == "slide"), None)
    if title is not None and first is not None and any(
            slide_type(c) in ("slide", "subslide") for c in cells[first + 1:title + 1]):
        problems.append("the title is not on the first slide")
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
    """Each widget app is on a slide of its own, not a sub-slide (→ and Space reach it in a straight
    line): its cell starts a slide, or directly follows the markdown cell that starts one (its
    heading); no other output-bearing code cell shares that slide."""
    cells = nb["cells"]
    problems = []
    for index in app_cells(nb):
        start = index
        if slide_type(cells[index]) != "slide":
            previous = cells[index - 1] if index > 0 else None
            if (slide_type(cells[index]) is not None or previous is None
                    or previous["cell_type"] != "markdown" or slide_type(previous) != "slide"):
                problems.append(f"cell {index} shows a widget app but does not start a slide (nor "
                                "directly follow the heading that starts one); a sub-slide is not "
                                "enough: make tidy")
                continue
            start = index - 1
        end = start + 1
        while end < len(cells) and slide_type(cells[end]) not in STARTS_A_SLIDE:
            end += 1
        others = [i for i in range(start, end) if i != index and cells[i]["cell_type"] == "code"
                  and cells[i].get("outputs") and slide_type(cells[i]) != "skip"]
        if others:
            problems.append(f"cell {index} shares its slide with output cells {others}")
    return problems


def opening_problems(nb: dict) -> list[str]:
    """A ``# Title`` first, with a numbered list of learning goals (1., 2., ...) under a
    "Learning goals" heading in the same cell."""
    cells = content(nb)
    problems = []
    if not cells or cells[0]["cell_type"] != "markdown" or not source(cells[0]).startswith("# "):
        problems.append("the first cell is not a markdown '# Title'")
    goals = learning_goals(nb)
    if not goals:
        problems.append("the first cell has no numbered list under a 'Learning goals' heading")
    elif goals != list(range(1, len(goals) + 1)):
        problems.append(f"the learning goals are numbered {goals}, not 1..{len(goals)}")
    return problems


def goal_coverage_problems(nb: dict) -> list[str]:
    """Every exercise cell starts with ``# goals: ...`` naming existing goals; every goal is named."""
    goals = set(learning_goals(nb))
    covered: set[int] = set()
    problems = []
    for i in exercise_cells(nb):
        first = source(nb["cells"][i]).splitlines()[0]
        match = GOALS_LINE.fullmatch(first.strip())
        if not match:
            problems.append(f"exercise cell {i} does not start with a '# goals: 1, 2' line")
            continue
        named = {int(n) for n in match[1].split(",")}
        if named - goals:
            problems.append(f"exercise cell {i} names goals {sorted(named - goals)}, "
                            f"the notebook lists {sorted(goals)}")
        covered |= named
    if goals - covered:
        problems.append(f"learning goals {sorted(goals - covered)} are checked by no exercise")
    return problems


def exercise_problems(nb: dict) -> list[str]:
    """An 'Exercises' heading; after it, each exercise is followed by a hidden solution; the
    notebook ends (before its navigation line) with a solution."""
    cells = content(nb)
    heading = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                    and re.search(r"^#+\s.*exercises", source(c), re.IGNORECASE | re.MULTILINE)),
                   None)
    if heading is None:
        return ["no '## Exercises' heading"]
    problems = []
    exercises = [i for i in range(heading, len(cells))
                 if cells[i]["cell_type"] == "code" and EXERCISE_CALL.search(source(cells[i]))]
    if not exercises:
        problems.append("no exercise (exercises.show, NumericExercise, ChoiceExercise) after the "
                        "Exercises heading")
    for i in exercises:
        following = next((c for c in cells[i + 1:] if c["cell_type"] == "markdown"), None)
        if following is None or not SOLUTION.search(source(following)):
            problems.append(f"exercise in cell {i} is not followed by a <details> Solution")
    if not SOLUTION.search(source(cells[-1])):
        problems.append("the notebook does not end with an exercise solution")
    return problems


def output_problems(nb: dict) -> list[str]:
    """Stored outputs from one clean run: execution counts 1..n in order, outputs present, no
    error outputs; figures inline: ``%matplotlib inline`` and full-size PNGs (``INLINE_SETUP``, the
    first lines of the first code cell, nowhere else), no figure stored as its text stand-in alone
    (``<Figure size ...>`` without a PNG: a figure that was displayed but never drawn) and none shown
    twice in one cell (the same PNG in two outputs)."""
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    problems = []
    counts = [c.get("execution_count") for c in code]
    if counts != list(range(1, len(code) + 1)):
        problems.append(f"execution counts are {counts}, not 1..{len(code)} in order")
    if code and not any(c.get("outputs") for c in code):
        problems.append("no stored outputs")
    for i, cell in enumerate(nb["cells"]):
        pngs = ["".join(out.get("data", {}).get("image/png", "")) for out in cell.get("outputs", [])]
        if len([png for png in pngs if png]) > len({png for png in pngs if png}):
            problems.append(f"cell {i} shows the same picture twice (a figure displayed twice)")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"cell {i} stores an error output ({out.get('ename')})")
            if out.get("execution_count") not in (None, cell.get("execution_count")):
                problems.append(f"cell {i}: an output's execution count differs from the cell's")
            data = out.get("data", {})
            if FIGURE_TEXT.match("".join(data.get("text/plain", ""))) and "image/png" not in data:
                problems.append(f"cell {i} stores a figure as text only (no PNG)")
        if cell["cell_type"] == "code" and re.search(r"%matplotlib\s+(widget|ipympl)", source(cell)):
            problems.append(f"cell {i} uses the ipympl backend (figures are inline PNGs; apps use bqplot)")
    setup_cells = [i for i, c in enumerate(code) if re.search(r"%matplotlib|InlineBackend", source(c))]
    if setup_cells and (setup_cells != [0] or not source(code[0]).startswith(INLINE_SETUP)):
        problems.append("the first code cell, and only it, must start with the two lines of INLINE_SETUP")
    draws = re.compile(r"\bplt\.|import matplotlib|from matplotlib")
    if not setup_cells and any(draws.search(source(c)) for c in code):
        problems.append("the notebook draws with matplotlib but sets no backend: the first code cell must "
                        "start with %matplotlib inline (without it, figures show as text under Agg)")
    return problems


def figure_problems(nb: dict) -> list[str]:
    """Projector-legible figures: the widest PNG of each figure cell is >= FULL_WIDTH_PX (a cell
    tagged ``thumbnail`` instead keeps every image <= THUMBNAIL_MAX_PX); the first code cell calls
    ``apply_style()``."""
    problems = []
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    if code and not STYLE_CALL.search(source(code[0])):
        problems.append("the first code cell does not call apply_style() (batchlab.plots.style)")
    for i, cell in enumerate(nb["cells"]):
        widths = png_widths(cell)
        if not widths:
            continue
        if "thumbnail" in cell.get("metadata", {}).get("tags", []):
            if max(widths) > THUMBNAIL_MAX_PX:
                problems.append(f"cell {i} is tagged thumbnail but stores a {max(widths)} px image "
                                f"(thumbnails are <= {THUMBNAIL_MAX_PX} px)")
        elif max(widths) < FULL_WIDTH_PX:
            problems.append(f"cell {i}: its widest figure is {max(widths)} px "
                            f"(a full-width figure is >= {FULL_WIDTH_PX} px)")
    return problems


def navigation_problems(nb: dict, names: list[str], name: str, titles: dict[str, str]) -> list[str]:
    """The first and the last cell are the same navigation line (tag ``navigation``), linking, in
    this order, the previous notebook of ``names``, the start notebook and the next one, each link
    naming its target's title."""
    cells = nb["cells"]
    if len(cells) < 2 or not is_navigation(cells[0]) or not is_navigation(cells[-1]):
        return ["the first and the last cell are not navigation lines (run tools/tidy_notebooks.py)"]
    problems = []
    if sum(is_navigation(c) for c in cells) != 2:
        problems.append("navigation cells other than the first and the last")
    if source(cells[0]) != source(cells[-1]):
        problems.append("the top and bottom navigation lines differ")
    index = names.index(name)
    expected = ([names[index - 1]] if index > 0 else []) + [names[0]] + (
        [names[index + 1]] if index + 1 < len(names) else [])
    links = NAV_LINK.findall(source(cells[0]))
    if [target for _, target in links] != expected:
        problems.append(f"navigation links {[t for _, t in links]}, expected {expected} "
                        "(run tools/tidy_notebooks.py)")
    else:
        for text, target in links:
            if target != names[0] and titles[target] not in text:
                problems.append(f"the link to {target} does not show its title {titles[target]!r}")
    if "start here" not in source(cells[0]):
        problems.append("the navigation line has no 'start here' link")
    return problems


CHECKS = [slide_metadata_problems, app_slide_problems, opening_problems, goal_coverage_problems,
          exercise_problems, output_problems, figure_problems]


def notebook_title(nb: dict) -> str:
    """The notebook's title, without a leading "NN ·" number."""
    cells = content(nb)
    first = source(cells[0]).splitlines()[0] if cells else ""
    return re.sub(r"^#\s+(\d+\s*·\s*)?", "", first).strip()


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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_navigation_lines_follow_the_file_list(path: Path) -> None:
    names = [p.name for p in NOTEBOOKS]
    titles = {p.name: notebook_title(load(p)) for p in NOTEBOOKS}
    problems = navigation_problems(load(path), names, path.name, titles)
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_start_here_links_every_notebook_and_nothing_else() -> None:
    start = NOTEBOOKS[0]
    text = "\n".join(source(c) for c in content(load(start)) if c["cell_type"] == "markdown")
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


def test_tidy_tool_is_idempotent_on_the_real_notebooks(tmp_path: Path) -> None:
    """Running tools/tidy_notebooks.py on the stored notebooks changes nothing (they are tidy)."""
    import shutil

    for path in NOTEBOOKS:
        shutil.copy(path, tmp_path / path.name)
    copies = sorted(tmp_path.glob("*.ipynb"))
    tidy_notebooks.main([str(p) for p in copies])
    changed = [p.name for p in copies if p.read_bytes() != (REPO / "notebooks" / p.name).read_bytes()]
    assert not changed, f"not tidy (run python tools/tidy_notebooks.py notebooks/*.ipynb): {changed}"


# ---------------------------------------------------------------------------------------------
# The checks catch what they should (a small, good notebook and broken copies of it)
# ---------------------------------------------------------------------------------------------


def _md(text: str, kind: str | None = None, tags: list[str] | None = None) -> dict:
    metadata = {} if kind is None else {"slideshow": {"slide_type": kind}}
    if tags:
        metadata["tags"] = tags
    return {"cell_type": "markdown", "metadata": metadata, "source": text}


def _code(text: str, count: int, kind: str | None = None, outputs: list | None = None) -> dict:
    metadata = {} if kind is None else {"slideshow": {"slide_type": kind}}
    return {"cell_type": "code", "metadata": metadata, "source": text,
            "execution_count": count, "outputs": outputs or []}


def _widget(count: int) -> list[dict]:
    return [{"output_type": "display_data", "metadata": {},
             "data": {WIDGET_VIEW: {"model_id": "0" * 32}, "text/plain": "App"}}]


def _png(width: int) -> str:
    """A base64 PNG header (signature + IHDR) of the given width: enough for png_widths."""
    header = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + struct.pack(">II", width, 10)
    return base64.b64encode(header + b"\x08\x06\x00\x00\x00").decode()


def _figure(width: int) -> list[dict]:
    return [{"output_type": "display_data", "metadata": {},
             "data": {"image/png": _png(width), "text/plain": "<Figure>"}}]


NAV = "[start here](00_a.ipynb) · [01 · Next one →](01_b.ipynb)"


def good_notebook() -> dict:
    return {"cells": [
        _md(NAV, "slide", ["navigation"]),
        _md("# Title\n\n## Learning goals\n\n1. count the batches;\n   still goal one\n"
            "2. run the app.\n\nSome more text."),
        _code(INLINE_SETUP + "\nfrom batchlab.apps.x import DemoApp\napply_style()", 1, "skip"),
        _md("## The app", "slide"),
        _code("app = DemoApp()\napp", 2, outputs=_widget(2) + _figure(1000)),
        _md("## Exercises", "slide"),
        _code("# goals: 1, 2\nNumericExercise('How many?', 4)", 3, "subslide",
              outputs=_widget(3)),
        _md("<details><summary>Solution</summary>\n\nFour.\n</details>"),
        _md(NAV, None, ["navigation"]),
    ]}


def test_good_notebook_passes_every_check() -> None:
    nb = good_notebook()
    assert app_cells(nb) == [4]
    assert learning_goals(nb) == [1, 2]
    assert {check.__name__: check(nb) for check in CHECKS} == {c.__name__: [] for c in CHECKS}
    names, titles = ["00_a.ipynb", "01_b.ipynb"], {"00_a.ipynb": "A", "01_b.ipynb": "Next one"}
    assert navigation_problems(nb, names, "00_a.ipynb", titles) == []


def _set_kind(cell: dict, kind: str) -> None:
    cell["metadata"]["slideshow"] = {"slide_type": kind}


@pytest.mark.parametrize(
    ("breakage", "check"),
    [
        (lambda nb: _set_kind(nb["cells"][7], "-"), slide_metadata_problems),
        (lambda nb: nb["cells"][0]["metadata"].pop("slideshow"), slide_metadata_problems),
        (lambda nb: _set_kind(nb["cells"][0], "skip"), slide_metadata_problems),
        (lambda nb: _set_kind(nb["cells"][-1], "skip"), slide_metadata_problems),
        (lambda nb: _set_kind(nb["cells"][1], "subslide"), slide_metadata_problems),
        (lambda nb: nb["cells"][3]["metadata"].clear(), app_slide_problems),
        (lambda nb: nb["cells"].insert(4, _code("print(1)", 9, outputs=[
            {"output_type": "stream", "name": "stdout", "text": "1\n"}])), app_slide_problems),
        (lambda nb: nb["cells"][1].update(source="Title without a heading\n\n## Learning goals\n\n"
                                                 "1. a\n2. b"), opening_problems),
        (lambda nb: nb["cells"][1].update(source="# Title\n\nNo goals here."), opening_problems),
        (lambda nb: nb["cells"][1].update(source="# Title\n\n## Learning goals\n\n- a\n- b"),
         opening_problems),
        (lambda nb: nb["cells"][1].update(source="# Title\n\n## Learning goals\n\n1. a\n3. b"),
         opening_problems),
        (lambda nb: nb["cells"][6].update(source="NumericExercise('How many?', 4)"),
         goal_coverage_problems),
        (lambda nb: nb["cells"][6].update(source="# goals: 1\nNumericExercise('How many?', 4)"),
         goal_coverage_problems),
        (lambda nb: nb["cells"][6].update(source="# goals: 1, 2, 7\nNumericExercise('?', 4)"),
         goal_coverage_problems),
        (lambda nb: nb["cells"].pop(-2), exercise_problems),
        (lambda nb: nb["cells"][5].update(source="## Practice"), exercise_problems),
        (lambda nb: nb["cells"][4].update(execution_count=5), output_problems),
        (lambda nb: nb["cells"][4]["outputs"].append(
            {"output_type": "error", "ename": "ValueError", "evalue": "", "traceback": []}),
         output_problems),
        (lambda nb: nb["cells"][2].update(source="%matplotlib widget\napply_style()"),
         output_problems),
        (lambda nb: nb["cells"][2].update(source="%matplotlib inline\napply_style()"),
         output_problems),
        (lambda nb: nb["cells"][4].update(source=INLINE_SETUP + "\napp"), output_problems),
        (lambda nb: nb["cells"][4]["outputs"].append(
            {"output_type": "execute_result", "execution_count": 2, "metadata": {},
             "data": {"text/plain": "<Figure size 820x300 with 1 Axes>"}}), output_problems),
        (lambda nb: nb["cells"][4]["outputs"].extend(_figure(1000) + _figure(1000)), output_problems),
        (lambda nb: nb["cells"][2].update(source="import matplotlib.pyplot as plt\napply_style()"),
         output_problems),
        (lambda nb: [c.update(outputs=[]) for c in nb["cells"] if c["cell_type"] == "code"],
         output_problems),
        (lambda nb: nb["cells"][4].update(outputs=_widget(2) + _figure(640)), figure_problems),
        (lambda nb: nb["cells"][4].update(outputs=_figure(300) + _figure(FULL_WIDTH_PX - 1)),
         figure_problems),
        (lambda nb: nb["cells"][4]["metadata"].update(tags=["thumbnail"]), figure_problems),
        (lambda nb: nb["cells"][2].update(source=INLINE_SETUP + "\nimport batchlab"),
         figure_problems),
    ],
)
def test_checks_catch_a_broken_notebook(breakage, check) -> None:
    nb = copy.deepcopy(good_notebook())
    breakage(nb)
    assert check(nb), f"{check.__name__} missed the breakage"


def test_thumbnail_tag_exempts_small_pictures_only() -> None:
    nb = good_notebook()
    nb["cells"][4].update(outputs=_figure(272), metadata={"tags": ["thumbnail"]})
    assert figure_problems(nb) == []


@pytest.mark.parametrize(
    "breakage",
    [
        lambda nb: nb["cells"].pop(0),
        lambda nb: nb["cells"].pop(),
        lambda nb: nb["cells"][0].update(source="[start here](00_a.ipynb)"),
        lambda nb: [c.update(source="[← 01 · Next one](01_b.ipynb) · [start here](00_a.ipynb)")
                    for c in (nb["cells"][0], nb["cells"][-1])],
        lambda nb: [c.update(source=NAV.replace("Next one", "Old title"))
                    for c in (nb["cells"][0], nb["cells"][-1])],
        lambda nb: nb["cells"].insert(3, copy.deepcopy(nb["cells"][0])),
    ],
)
def test_navigation_check_catches_a_stale_or_missing_line(breakage) -> None:
    nb = copy.deepcopy(good_notebook())
    breakage(nb)
    names, titles = ["00_a.ipynb", "01_b.ipynb"], {"00_a.ipynb": "A", "01_b.ipynb": "Next one"}
    assert navigation_problems(nb, names, "00_a.ipynb", titles)


def test_tidy_tool_removes_dashes_and_writes_navigation(tmp_path: Path) -> None:
    import nbformat

    def notebook(title: str, kinds: list[str | None]) -> nbformat.NotebookNode:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\ntext")]
        for kind in kinds:
            cell = nbformat.v4.new_code_cell("1")
            if kind:
                cell.metadata["slideshow"] = {"slide_type": kind}
            nb.cells.append(cell)
        return nb

    for name, title in [("00_start_here.ipynb", "Start"), ("01_x.ipynb", "01 · Ex"),
                        ("02_y.ipynb", "Why")]:
        nbformat.write(notebook(title, ["-", "slide", None, "-"]), tmp_path / name)
    paths = [str(p) for p in sorted(tmp_path.glob("*.ipynb"))]
    tidy_notebooks.main(paths)
    first = [p.read_bytes() for p in sorted(tmp_path.glob("*.ipynb"))]
    tidy_notebooks.main(paths)  # a second run changes nothing
    assert [p.read_bytes() for p in sorted(tmp_path.glob("*.ipynb"))] == first
    names = [Path(p).name for p in paths]
    titles = {"00_start_here.ipynb": "Start", "01_x.ipynb": "Ex", "02_y.ipynb": "Why"}
    for path in paths:
        nb = load(Path(path))
        assert [slide_type(c) for c in nb["cells"]] == ["slide", None, None, "slide", None, None, None]
        assert navigation_problems(nb, names, Path(path).name, titles) == []
    middle = source(load(Path(paths[1]))["cells"][0])
    assert middle == ("[← 00 · Start](00_start_here.ipynb) · [start here](00_start_here.ipynb) · "
                      "[02 · Why →](02_y.ipynb)")
    # a new notebook is picked up: the last one's line gains a "next" link
    nbformat.write(notebook("Zed", []), tmp_path / "03_z.ipynb")
    tidy_notebooks.main([str(p) for p in sorted(tmp_path.glob("*.ipynb"))])
    assert "03_z.ipynb" in source(load(tmp_path / "02_y.ipynb")["cells"][-1])


def test_tidy_tool_numbers_titles_splits_goals_and_puts_apps_on_slides(tmp_path: Path) -> None:
    import nbformat

    goals = "\n".join(f"{i}. goal {i}{chr(10) + '   still goal ' + str(i) if i == 5 else ''};"
                      for i in range(1, 7))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f"# Counting\n\nIntro.\n\n## Learning goals\n\n{goals}"),
                nbformat.v4.new_markdown_cell("## The app"),
                nbformat.v4.new_code_cell("app = StepperApp(3)\napp"),
                nbformat.v4.new_code_cell("app"),
                nbformat.v4.new_code_cell("print(1)")]
    nb.cells[0].metadata["slideshow"] = {"slide_type": "slide"}
    nb.cells[2].metadata["slideshow"] = {"slide_type": "subslide"}
    nb.cells[3].metadata["slideshow"] = {"slide_type": "subslide"}
    nb.cells[3].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "StepperApp: an app"})]
    nb.cells[4].metadata["slideshow"] = {"slide_type": "subslide"}
    nbformat.write(nb, tmp_path / "03_count.ipynb")
    tidy_notebooks.main([str(tmp_path / "03_count.ipynb")])
    first = (tmp_path / "03_count.ipynb").read_bytes()
    tidy_notebooks.main([str(tmp_path / "03_count.ipynb")])  # idempotent
    assert (tmp_path / "03_count.ipynb").read_bytes() == first
    cells = content(load(tmp_path / "03_count.ipynb"))
    assert source(cells[0]).startswith("# 03 · Counting\n")
    assert "4. goal 4" in source(cells[0]) and "5. goal 5" not in source(cells[0])
    assert source(cells[1]).startswith(tidy_notebooks.GOALS_CONTINUED)
    assert "   still goal 5" in source(cells[1]) and slide_type(cells[1]) == "subslide"
    assert learning_goals(load(tmp_path / "03_count.ipynb")) == [1, 2, 3, 4, 5, 6]
    # both app cells (built, or shown with an app's output) start slides; other cells are left alone
    assert [slide_type(c) for c in cells[3:]] == ["slide", "slide", "subslide"]


def test_tidy_tool_writes_the_slide_text_size_and_keeps_other_styles() -> None:
    """The deck-only text style is written (once, under the presenting scope, for markdown only),
    and a style a lecturer keeps in the same metadata survives."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# 01 · Ex\n\ntext")]
    nb.metadata[tidy_notebooks.FONTS_KEY] = {"styles": {"": {"& .mine": {"color": "red"}}}}
    tidy_notebooks.tidy(nb, "nav", "01")
    tidy_notebooks.tidy(nb, "nav", "01")
    styles = nb.metadata[tidy_notebooks.FONTS_KEY]["styles"][""]
    assert styles["& .mine"] == {"color": "red"}
    rules = styles[tidy_notebooks.PRESENTING]
    assert tidy_notebooks.PRESENTING.startswith("body[data-jp-deck-mode='presenting']")
    assert list(rules) == [tidy_notebooks.MARKDOWN_TEXT]
    assert ".jp-MarkdownCell" in tidy_notebooks.MARKDOWN_TEXT and "," not in tidy_notebooks.MARKDOWN_TEXT
    assert rules[tidy_notebooks.MARKDOWN_TEXT]["font-size"] == "20px"


def test_every_notebook_carries_the_slide_text_size() -> None:
    for path in NOTEBOOKS:
        styles = load(path)["metadata"].get(tidy_notebooks.FONTS_KEY, {}).get("styles", {})
        rule = styles.get("", {}).get(tidy_notebooks.PRESENTING, {}).get(tidy_notebooks.MARKDOWN_TEXT)
        assert rule and int(rule["font-size"].removesuffix("px")) >= 20, (
            f"{path.name}: no 20-px slide text style (run make tidy)")
