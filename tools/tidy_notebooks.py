"""Tidy the notebooks' slide metadata and navigation lines, in place. Idempotent.

    python tools/tidy_notebooks.py notebooks/*.ipynb

1. Removes every explicit ``slide_type`` ``"-"`` (the ``slideshow`` key is deleted): a cell without the
   key continues the current slide, which every slide tool reads the same way, while
   jupyterlab-slideshow never shows a cell whose type is the explicit ``"-"``.
2. Writes (or refreshes) the navigation line "← previous · start here · next →" as the first and the
   last cell of every notebook. The neighbours come from the sorted list of the notebooks in the
   same folder (so a new notebook is picked up by re-running the tool), the link texts from each
   notebook's first ``# Title``. The navigation cells carry the cell tag ``navigation``. In the slides
   the top line opens the title slide (slide type ``slide``; the title cell below it continues that
   slide) and the bottom line ends the last slide (no slide type). Neither is skipped: a deck started
   on a skipped cell at either end of a notebook shows a blank page whose arrows do nothing
   (jupyterlab-slideshow 0.3.4 steps off a skipped cell only when a neighbour exists in the direction
   it last moved), so a lecturer who starts the deck from any cell lands on a real slide.
3. Numbers the title: the first ``# Title`` reads "NN · Title" (NN from the file name), as the
   navigation lines, the site and the slides name the notebook.
4. Keeps the title slide readable on a 1280x720 projector: a title cell with more than
   ``GOALS_ON_TITLE`` (4) learning goals keeps the first four; the rest move to the next cell, a
   sub-slide "Learning goals (continued)" tagged ``goals-continued`` (re-running the tool joins and
   splits them again, so edit the goals in either cell).
5. Puts each widget app on a slide of its own: a code cell that builds an app (``SomethingApp(``) or
   shows one (its stored output is an app's) and starts a sub-slide is made to start a slide instead
   (a sub-slide sits below the previous slide, out of reach of →/Space for a lecturer who does not
   know the deck's 2-D layout).
6. Makes the slides' body text readable from the back of a lecture hall: the notebook metadata
   ``@deathbeds/jupyterlab-fonts`` (the fonts extension jupyterlab-slideshow depends on, which turns
   a notebook's ``styles`` into a stylesheet for that notebook alone) gets one rule, scoped as the
   deck's own style presets are: while the deck is presenting (``body[data-jp-deck-mode='presenting']``)
   the rendered markdown of the notebook's cells is ``SLIDE_TEXT_SIZE`` (20px), with lines 1.4 apart,
   half-line gaps between paragraphs and a 32px title, so that every title slide (title, introduction,
   four goals) still fits 1280x720. The navigation lines keep their size, code cells and their outputs
   (figures, widgets) are not touched, and the normal notebook view is unchanged. Other styles a
   lecturer keeps in that metadata are left alone.

Only the files named on the command line are rewritten, but the neighbours are always computed from
the whole folder. The stored outputs are not touched.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

NAV_TAG = "navigation"
START = "00_start_here.ipynb"
NAV_IDS = ("navigation-top", "navigation-bottom")
GOALS_TAG = "goals-continued"
GOALS_ON_TITLE = 4
GOALS_CONTINUED = "## Learning goals (continued)"
GOALS_HEADING = re.compile(r"^(#+\s*|\*\*)learning goals\b.*$", re.IGNORECASE | re.MULTILINE)
GOAL_ITEM = re.compile(r"^\s{0,3}(\d+)\.\s+\S")
APP_CALL = re.compile(r"\b[A-Z]\w*App\(")
APP_OUTPUT = re.compile(r"^[A-Z]\w*App\b")
FONTS_KEY = "@deathbeds/jupyterlab-fonts"  # jupyterlab-fonts' notebook (and cell) metadata key
# jupyterlab-fonts nests every rule under the notebook's own panel ("&"); this scope is the one the
# deck's style presets use, so the rule applies only while the deck presents.
PRESENTING = "body[data-jp-deck-mode='presenting'] &"
# The rendered markdown of every cell but the navigation lines (jupyterlab-fonts copies a cell's tags
# to its data-jpf-cell-tags attribute, as ",tag1,tag2,"): they are links for the lecturer, not text for
# the hall. No comma in the selector: JSS reads a comma as a list of selectors.
MARKDOWN_TEXT = f"& .jp-MarkdownCell:not([data-jpf-cell-tags*='{NAV_TAG}']) .jp-RenderedMarkdown"
SLIDE_TEXT_SIZE = "20px"
# What keeps the longest title slide (07) on a 1280x720 screen at that size: lines 1.4 apart (JupyterLab's
# 1.6 is for reading at a desk), half-line gaps between paragraphs, and a title of one line.
SLIDE_LINE_HEIGHT = "1.4"
SLIDE_PARAGRAPH_GAP = "0.5em"
SLIDE_TITLE_SIZE = "32px"


def source(cell: dict) -> str:
    """A cell's source as one string."""
    text = cell.get("source", "")
    return text if isinstance(text, str) else "".join(text)


def is_navigation(cell: dict) -> bool:
    """Whether a cell is a navigation line written by this tool."""
    return NAV_TAG in cell.get("metadata", {}).get("tags", [])


def title(nb: dict, path: Path) -> str:
    """The notebook's title: its first markdown ``# heading`` without a leading "NN ·" number."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown" and not is_navigation(cell):
            match = re.search(r"^#\s+(.+)$", source(cell), re.MULTILINE)
            if match:
                return re.sub(r"^\d+\s*·\s*", "", match[1].strip())
    raise ValueError(f"{path}: no markdown '# Title' heading")


def label(path: Path, nb: dict) -> str:
    """How a link names a notebook: "02 · The relationship formula: N, B, E and I"."""
    number = re.match(r"(\d+)_", path.name)
    return f"{number[1]} · {title(nb, path)}" if number else title(nb, path)


def navigation_line(names: list[str], labels: dict[str, str], name: str) -> str:
    """The markdown line for notebook ``name`` among ``names`` (sorted): previous, start, next."""
    index = names.index(name)
    parts = []
    if index > 0:
        previous = names[index - 1]
        parts.append(f"[← {labels[previous]}]({previous})")
    parts.append(f"[start here]({START})")
    if index + 1 < len(names):
        following = names[index + 1]
        parts.append(f"[{labels[following]} →]({following})")
    return " · ".join(parts)


def navigation_cell(line: str, cell_id: str, kind: str | None) -> nbformat.NotebookNode:
    """A markdown cell holding the navigation line, tagged, of slide type ``kind``: "slide" (the top
    line, which opens the title slide) or None (the bottom line, which continues the last slide)."""
    cell = nbformat.v4.new_markdown_cell(line, id=cell_id)
    cell.metadata = nbformat.NotebookNode({"tags": [NAV_TAG]})
    if kind is not None:
        cell.metadata["slideshow"] = {"slide_type": kind}
    return cell


def slide_type(cell: dict) -> str | None:
    """A cell's ``slideshow.slide_type`` (None when absent)."""
    return cell.get("metadata", {}).get("slideshow", {}).get("slide_type")


def numbered_title(cell: nbformat.NotebookNode, number: str) -> None:
    """Make the cell's first ``# Title`` read "NN · Title"."""
    cell.source = re.sub(r"^#\s+(?:\d+\s*·\s*)?(.+)$", rf"# {number} · \1", cell.source, count=1,
                         flags=re.MULTILINE)


def split_goals(title: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """Cut the title cell after its GOALS_ON_TITLE-th goal; returns the continuation cell (or None)."""
    heading = GOALS_HEADING.search(title.source)
    if not heading:
        return None
    lines = title.source[heading.end():].split("\n")
    items = [i for i, text in enumerate(lines) if GOAL_ITEM.match(text)]
    if len(items) <= GOALS_ON_TITLE:
        return None
    cut = items[GOALS_ON_TITLE]
    title.source = (title.source[:heading.end()] + "\n".join(lines[:cut])).rstrip()
    cell = nbformat.v4.new_markdown_cell(f"{GOALS_CONTINUED}\n\n" + "\n".join(lines[cut:]).strip(),
                                         id=f"{title.get('id', 'title')}-goals"[:64])
    cell.metadata = nbformat.NotebookNode({"slideshow": {"slide_type": "subslide"}, "tags": [GOALS_TAG]})
    return cell


def shows_an_app(cell: dict) -> bool:
    """Whether a code cell builds a widget app or shows one (its stored output is an app's)."""
    if cell.get("cell_type") != "code":
        return False
    outputs = ["".join(o.get("data", {}).get("text/plain", "")) for o in cell.get("outputs", [])]
    return bool(APP_CALL.search(source(cell))) or any(APP_OUTPUT.match(text) for text in outputs)


def slide_text_style(nb: nbformat.NotebookNode) -> None:
    """Give the notebook's rendered markdown ``SLIDE_TEXT_SIZE`` while the deck presents (item 6)."""
    fonts = nb.metadata.setdefault(FONTS_KEY, {})
    styles = fonts.setdefault("styles", {})
    presenting = styles.setdefault("", {}).setdefault(PRESENTING, {})
    presenting[MARKDOWN_TEXT] = {"font-size": SLIDE_TEXT_SIZE, "line-height": SLIDE_LINE_HEIGHT,
                                 "& h1": {"font-size": SLIDE_TITLE_SIZE},
                                 "& p, & ol, & ul": {"margin-top": "0", "margin-bottom": SLIDE_PARAGRAPH_GAP}}


def tidy(nb: nbformat.NotebookNode, line: str, number: str | None = None) -> nbformat.NotebookNode:
    """The notebook with no ``"-"`` slide types, fresh navigation cells at both ends (the top one opening
    the title slide), a numbered title (when ``number`` is given), at most four goals on the title slide,
    each app starting a slide and slide body text of ``SLIDE_TEXT_SIZE`` while presenting."""
    cells = [c for c in nb.cells if not is_navigation(c)]
    for cell in cells:
        if slide_type(cell) == "-":
            del cell.metadata["slideshow"]
        if shows_an_app(cell) and slide_type(cell) == "subslide":
            cell.metadata["slideshow"]["slide_type"] = "slide"
    title = next((c for c in cells if c.cell_type == "markdown"), None)
    if title is not None:
        continued = [c for c in cells if GOALS_TAG in c.get("metadata", {}).get("tags", [])]
        for cell in continued:  # join, then split again: the goals may have been edited
            title.source = title.source.rstrip() + "\n" + source(cell).replace(GOALS_CONTINUED, "").rstrip()
            title.source = re.sub(r"\n{3,}", "\n", title.source)
        cells = [c for c in cells if c not in continued]
        if slide_type(title) == "slide":  # the navigation line above it opens the title slide
            del title.metadata["slideshow"]
        if number is not None:
            numbered_title(title, number)
        extra = split_goals(title)
        if extra is not None:
            cells.insert(cells.index(title) + 1, extra)
    nb.cells = [navigation_cell(line, NAV_IDS[0], "slide"), *cells, navigation_cell(line, NAV_IDS[1], None)]
    slide_text_style(nb)
    return nb


def notebooks_in(folder: Path) -> list[Path]:
    """The notebooks of a folder in learning-path order (sorted by file name)."""
    return sorted(folder.glob("[0-9]*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    changed = 0
    for path in args.notebooks:
        siblings = notebooks_in(path.parent)
        if path.resolve() not in {p.resolve() for p in siblings}:
            parser.error(f"{path}: not a numbered notebook (NN_name.ipynb)")
        labels = {p.name: label(p, nbformat.read(p, as_version=4)) for p in siblings}
        before = path.read_text(encoding="utf-8")
        nb = tidy(nbformat.reads(before, as_version=4),
                  navigation_line([p.name for p in siblings], labels, path.name), path.name[:2])
        after = nbformat.writes(nb) + "\n"
        if after != before:
            path.write_text(after, encoding="utf-8")
            changed += 1
            print(f"tidied {path}")
    print(f"{changed} of {len(args.notebooks)} notebook(s) changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
