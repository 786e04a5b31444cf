"""Readers without a kernel: every notebook exported to HTML from its stored outputs (nothing runs, the
way ``make site``, nbviewer or GitHub show it) shows no widget's Python repr, and every widget app shows
a picture or a table of its state.

The exporter is the site's (tools/build_site.py): widget views dropped (a saved notebook holds no widget
state), so each output shows its richest static form, as a static viewer does.
"""

from __future__ import annotations

import itertools
import re
import sys
from pathlib import Path

import nbformat
import pytest
from test_notebook_structure import NOTEBOOKS, REPO, app_cells

sys.path.insert(0, str(REPO / "tools"))
import build_site  # tools/ is not a package

# What a widget's repr looks like: VBox(children=(...)), IntSlider(value=3, ...), Output(), a canvas.
WIDGET_REPR = re.compile(
    r"\b(?:VBox|HBox|Box|GridBox|Tab|Accordion|Stack)\(children=|"
    r"\b\w*(?:Slider|Text|Textarea|Button|Buttons|Dropdown|Checkbox|RadioButtons|Select|Progress|"
    r"HTML|HTMLMath|Label|Image|Play)\((?:value|description|options|children|layout)=|"
    r"\bOutput\(\)|\bOutput\(layout=|\bCanvas\(toolbar="
)
CELL_START = re.compile(r'<div\b[^>]*\bclass="jp-Cell ')


def exported_cells(nb: nbformat.NotebookNode) -> list[str]:
    """The site's HTML export of a notebook, cut into cells (one HTML fragment per cell, in order)."""
    page = build_site.export(nb)
    starts = [m.start() for m in CELL_START.finditer(page)] + [len(page)]
    cells = [page[a:b] for a, b in itertools.pairwise(starts)]
    assert len(cells) == len(nb.cells), f"the export shows {len(cells)} of {len(nb.cells)} cells"
    return cells


def visible_text(fragment: str) -> str:
    """The text of an HTML fragment without tags, scripts and styles."""
    fragment = re.sub(r"<(script|style)\b.*?</\1>", " ", fragment, flags=re.S | re.I)
    return re.sub(r"<[^>]+>", " ", fragment).replace("&quot;", '"').replace("&#39;", "'")


def static_export_problems(nb: nbformat.NotebookNode) -> list[str]:
    """Widget reprs anywhere in the export; app cells without an <img> or a <table>."""
    cells = exported_cells(nb)
    problems = []
    for index, cell in enumerate(nb.cells):
        fragment = cells[index]
        output = fragment[fragment.find("jp-Cell-outputWrapper"):] if cell.cell_type == "code" else ""
        found = WIDGET_REPR.search(visible_text(output))
        if found:
            problems.append(f"cell {index} shows a widget repr: {found[0]!r}...")
    for index in app_cells(nb):
        output = cells[index]
        if not re.search(r"<img\b|<table\b", output):
            problems.append(f"cell {index} (an app) shows neither a picture nor a table")
    return problems


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_static_export_shows_no_widget_repr_and_a_picture_for_every_app(path: Path) -> None:
    problems = static_export_problems(nbformat.read(path, as_version=4))
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# The check catches what it should
# ---------------------------------------------------------------------------------------------

VIEW = {"model_id": "0" * 32, "version_major": 2, "version_minor": 0}


def _notebook(outputs: list[dict]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("app = DemoApp()\napp", execution_count=1)
    cell.outputs = [nbformat.from_dict(o) for o in outputs]
    nb.cells = [nbformat.v4.new_markdown_cell("# T"), cell]
    return nb


def _display(data: dict) -> dict:
    return {"output_type": "display_data", "metadata": {}, "data": data}


PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


@pytest.mark.parametrize(
    ("data", "bad"),
    [
        ({"application/vnd.jupyter.widget-view+json": VIEW,
          "text/plain": "VBox(children=(HTML(value='<b>Q</b>'), IntSlider(value=3)))"}, True),
        ({"application/vnd.jupyter.widget-view+json": VIEW, "text/plain": "Output()"}, True),
        ({"application/vnd.jupyter.widget-view+json": VIEW, "text/plain": "DemoApp(...)"}, True),
        ({"application/vnd.jupyter.widget-view+json": VIEW, "image/png": PNG,
          "text/plain": "VBox(children=(...))"}, False),
        ({"application/vnd.jupyter.widget-view+json": VIEW,
          "text/html": "<table><tr><td>I</td><td>32</td></tr></table>",
          "text/plain": "HBox(children=(...))"}, False),
    ],
)
def test_check_catches_reprs_and_apps_without_a_picture(data: dict, bad: bool) -> None:
    nb = _notebook([_display(data)])
    assert app_cells(nb) == [1]
    assert bool(static_export_problems(nb)) == bad


def tiny_notebooks(folder: Path) -> list[Path]:
    """Two small notebooks (a title, a goal, a cell with output) written into ``folder``."""
    folder.mkdir()
    paths = []
    for name in ("00_first.ipynb", "01_second.ipynb"):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}\n\n**Learning goals.**\n\n1. read it"),
                    nbformat.v4.new_code_cell("1 + 1", execution_count=1, outputs=[
                        nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)])]
        nbformat.write(nb, folder / name)
        paths.append(folder / name)
    return paths


def test_site_build_names_a_bad_notebook_and_writes_nothing_partial(tmp_path, capsys):
    """A truncated notebook: the message names the file, and the site folder stays as it was (the
    previous site intact, no half-built pages, no temporary folder left)."""
    good = tiny_notebooks(tmp_path / "notebooks")
    out = tmp_path / "site"
    pages = build_site.build(good, out)
    assert [p.name for p in pages] == ["index.html", "00_first.html", "01_second.html"]
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    truncated = good[1].parent / "02_truncated.ipynb"
    truncated.write_text(good[1].read_text()[:200])
    assert build_site.main(["--out", str(out), *map(str, [*good, truncated])]) == 1
    error = capsys.readouterr().err
    assert f"build_site: {truncated}: cannot build its page (NotJSONError" in error
    assert f"nothing was written to {out}" in error
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notebooks", "site"]  # no temporary folder
    fresh = tmp_path / "fresh"
    with pytest.raises(build_site.SiteError, match=r"02_truncated\.ipynb"):
        build_site.build([truncated], fresh)
    assert not fresh.exists()


def test_site_build_replaces_a_previous_site_but_never_a_folder_of_other_files(tmp_path):
    good = tiny_notebooks(tmp_path / "notebooks")
    out = tmp_path / "site"
    build_site.build(good, out)
    pages = build_site.build(good[:1], out)  # the site now has one notebook: the other page goes
    assert sorted(p.name for p in out.glob("*.html")) == ["00_first.html", "index.html"]
    assert all(p.exists() for p in pages) and (out / "mathjax").is_dir()
    with pytest.raises(build_site.SiteError, match="holds files that are not a site"):
        build_site.build(good, tmp_path)  # would replace the notebooks' folder's parent
    assert all(p.exists() for p in good)
