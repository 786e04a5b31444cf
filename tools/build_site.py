"""Build a static HTML site of the notebooks from their stored outputs (nothing is executed).

    python tools/build_site.py [--out build/site] [--binder OWNER/NAME] notebooks/*.ipynb
    python tools/build_site.py --badge    # the README's Binder badge line, from pyproject.toml

(``make site`` runs it.) The site works offline, from disk or any static web server:

* one page per notebook (nbconvert's ``lab`` template), in the order of the file names, with the
  notebooks' own navigation lines pointing at the pages, and a line saying how to run it live;
* each page titled with its notebook's title; each figure with alt text from its title (a
  ``set_title``/``suptitle`` string in its cell) or, failing that, the section it is in;
* exercise code cells hidden (the question, the answer box and the folded solution stay);
* math typeset by a local copy of MathJax 3 with its TeX fonts (from the pinned PyPI package
  ``django-static-mathjax``, which ships MathJax's ``es5`` build), copied next to the pages: no CDN;
* widgets shown by their static fallback: a saved notebook holds no widget state, so the widget
  views are dropped and each output shows its richest static form (HTML, PNG, then text);
* ``index.html``: the learning path, each notebook with its title and learning goals.
"""

from __future__ import annotations

import argparse
import copy
import html
import os
import re
import shutil
import sys
import tempfile
import tomllib
from pathlib import Path

import mathjax  # the django-static-mathjax package: MathJax 3's es5 build, fonts included
import nbformat
from bs4 import BeautifulSoup
from nbconvert import HTMLExporter

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MATHJAX = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
MATHJAX_URL = "mathjax/tex-mml-chtml.js"
# MathJax 3 reads its settings from window.MathJax before it loads: the notebooks' $...$ and $$...$$.
MATHJAX_CONFIG = """<script>
window.MathJax = {tex: {inlineMath: [["$", "$"], ["\\\\(", "\\\\)"]],
                        displayMath: [["$$", "$$"], ["\\\\[", "\\\\]"]],
                        processEscapes: true, processEnvironments: true, tags: "ams"},
                  options: {enableMenu: false}};
</script>"""
EXERCISE_CELL = re.compile(r"\b(NumericExercise|ChoiceExercise)\(|\bexercises\.show\(")
FIGURE_TITLE = re.compile(r"""\b(?:set_title|suptitle)\(\s*(["'])(.+?)\1""")
NO_ALT = re.compile(r"^(No description has been provided for this image|[A-Z]\w+App)?$")
NO_SCRIPT = "data:text/javascript,"  # stands in for require.js, which nbconvert takes from a CDN
NOTEBOOK_LINK = re.compile(r'href="(\d+_[\w.-]+)\.ipynb(#[^"]*)?"')
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
FIRST_NOTEBOOK = "00_start_here.ipynb"


def binder_repo(pyproject: Path = PYPROJECT) -> str:
    """The GitHub repository ("owner/name") Binder builds: ``binder-repo`` under ``[tool.batchlab]``
    in pyproject.toml, the one place it is set; "" when not set."""
    repo = tomllib.loads(pyproject.read_text())["tool"]["batchlab"]["binder-repo"].strip()
    if repo and not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        raise ValueError(f"binder-repo in {pyproject.name} must be 'owner/name' on GitHub, got {repo!r}")
    return repo


def binder_badge(repo: str) -> str:
    """The README's Binder badge (markdown) for ``repo``, opening the first notebook."""
    return (f"[![Binder](https://mybinder.org/badge_logo.svg)](https://mybinder.org/v2/gh/{repo}/HEAD"
            f"?labpath=notebooks%2F{FIRST_NOTEBOOK})")


def static_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` in which every output shows its static form: widget views are removed
    when the notebook saves no widget state (a static page could not render them)."""
    nb = copy.deepcopy(nb)
    if "widgets" in nb.metadata:
        return nb
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            output.get("data", {}).pop(WIDGET_VIEW, None)
    return nb


def exporter() -> HTMLExporter:
    """nbconvert's HTML exporter, set up for offline pages."""
    return HTMLExporter(template_name="lab", mathjax_url=MATHJAX_URL, require_js_url=NO_SCRIPT)


def hide_exercise_code(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` whose exercise cells show their output only (question, box, solution)."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code" and EXERCISE_CELL.search(cell.source):
            cell.metadata.setdefault("transient", {})["remove_source"] = True
    return nb


def figure_alts(nb: nbformat.NotebookNode) -> dict[str, str]:
    """Cell id -> alt text for the figures of that cell: the first plain-string title the cell sets
    (``ax.set_title("...")``, ``fig.suptitle("...")``), else "Figure in section: <heading>"."""
    alts, section = {}, title(nb)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heading = re.search(r"^#{1,4}\s+(.+)$", cell.source, re.MULTILINE)
            section = heading[1].strip() if heading else section
        elif cell.cell_type == "code":
            named = FIGURE_TITLE.search(cell.source)
            alts[cell.get("id", "")] = (f"Figure: {named[2]}" if named and "{" not in named[2]
                                        else f"Figure in section: {strip_markdown(section)}")
    return alts


def strip_markdown(text: str) -> str:
    """Plain text of one line of markdown (no backquotes, stars or dollar signs)."""
    return re.sub(r"[`*$]", "", text).strip()


def with_alt_text(body: str, alts: dict[str, str]) -> str:
    """The page with every image that lacks a real description given its cell's alt text."""
    soup = BeautifulSoup(body, features="html.parser")
    for cell in soup.select("div.jp-Cell[id^='cell-id=']"):
        alt = alts.get(cell["id"].removeprefix("cell-id="))
        for img in cell.select("img"):
            if alt and NO_ALT.match(img.get("alt", "").strip()):
                img["alt"] = alt
    return str(soup)


def export(nb: nbformat.NotebookNode) -> str:
    """The HTML page of a notebook as the site shows it: titled with the notebook's title, static
    outputs, figures with alt text, exercise code hidden, math by the local MathJax, links to pages."""
    body, _ = exporter().from_notebook_node(hide_exercise_code(static_notebook(nb)),
                                             resources={"metadata": {"name": strip_markdown(title(nb))}})
    body = with_alt_text(body, figure_alts(nb))
    body = body.replace(f'<script src="{MATHJAX_URL}">', f'{MATHJAX_CONFIG}\n<script src="{MATHJAX_URL}">', 1)
    return NOTEBOOK_LINK.sub(lambda m: f'href="{m[1]}.html{m[2] or ""}"', body)


def title(nb: nbformat.NotebookNode) -> str:
    """The notebook's first ``# heading``."""
    for cell in nb.cells:
        match = re.search(r"^#\s+(.+)$", cell.source, re.MULTILINE) if cell.cell_type == "markdown" \
            else None
        if match:
            return match[1].strip()
    return "(untitled)"


def goals(nb: nbformat.NotebookNode) -> list[str]:
    """The numbered learning goals of the notebook's title cell (markdown, as written)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown" and re.search(r"learning goals", cell.source, re.I):
            text = cell.source[re.search(r"learning goals", cell.source, re.I).end():]
            return re.findall(r"^\s{0,3}\d+\.\s+(.+(?:\n\s{3,}.+)*)", text, re.MULTILINE)
    return []


def run_live_line(name: str, binder: str | None) -> str:
    """Markdown: how to run this notebook live."""
    where = (f"[on Binder](https://mybinder.org/v2/gh/{binder}/HEAD?labpath=notebooks%2F{name}) or "
             if binder else "")
    return (f"*This is a static page: the stored results of `notebooks/{name}`. To move its sliders "
            f"and run it, open it live {where}in a clone of the repository with `make lab`.*")


def with_run_line(nb: nbformat.NotebookNode, name: str, binder: str | None) -> nbformat.NotebookNode:
    """The notebook with the run-live line after its top navigation line (and before the end's)."""
    nb = copy.deepcopy(nb)
    top = 1 if nb.cells and "navigation" in nb.cells[0].metadata.get("tags", []) else 0
    nb.cells.insert(top, nbformat.v4.new_markdown_cell(run_live_line(name, binder), id="run-live-top"))
    nb.cells.insert(len(nb.cells) - top,
                    nbformat.v4.new_markdown_cell(run_live_line(name, binder), id="run-live-bottom"))
    return nb


def inline_markdown(text: str) -> str:
    """Escaped HTML of one line of markdown: `code` and *emphasis* converted, $math$ left for MathJax."""
    text = html.escape(" ".join(text.split()), quote=False)
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    return re.sub(r"(?<![\w*])\*([^*\s][^*]*)\*(?!\w)", r"<em>\1</em>", text)


def index_page(entries: list[tuple[str, str, list[str]]], binder: str | None) -> str:
    """index.html: the learning path (page, title, goals per notebook)."""
    items = []
    for page, heading, notebook_goals in entries:
        goal_list = "".join(f"<li>{inline_markdown(g)}</li>" for g in notebook_goals)
        items.append(f'<li><a href="{page}">{html.escape(heading)}</a>'
                     f'{f"<ol>{goal_list}</ol>" if goal_list else ""}</li>')
    live = (f' or <a href="https://mybinder.org/v2/gh/{binder}/HEAD">on Binder</a>' if binder else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>batchlab: the learning path</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem;
       line-height: 1.5; color: #111; }}
h1 {{ font-size: 1.8rem; }} ol.path > li {{ margin: 0.8rem 0; font-size: 1.15rem; }}
ol.path ol {{ font-size: 0.95rem; color: #333; }} a {{ color: #0072B2; }}
</style>
{MATHJAX_CONFIG}
<script src="{MATHJAX_URL}"></script>
</head><body>
<h1>batchlab: batches, epochs and iterations you can see</h1>
<p>The notebooks in the order of the learning path, with what each one teaches. These pages show
the stored results; to run a notebook and move its sliders, open it live{live} in a clone of the
repository with <code>make lab</code>.</p>
<ol class="path" start="0">
{''.join(items)}
</ol></body></html>
"""


class SiteError(Exception):
    """A notebook that cannot be read or exported: the message names the file."""


def _is_site(folder: Path) -> bool:
    """True for an empty folder or one holding only what :func:`build` writes (pages and MathJax)."""
    def ours(path: Path) -> bool:
        return path.is_dir() if path.name == "mathjax" else path.suffix == ".html" and path.is_file()

    return folder.is_dir() and all(ours(path) for path in folder.iterdir())


def build(notebooks: list[Path], out: Path, binder: str | None = None) -> list[Path]:
    """Write the site into ``out``; returns the pages written (index first).

    All or nothing: the pages are written into a temporary folder beside ``out`` that replaces ``out``
    only once every page is built. A notebook that cannot be read or exported raises ``SiteError``
    naming it, and ``out`` is left as it was.
    """
    if out.exists() and not _is_site(out):
        raise SiteError(f"{out} holds files that are not a site this tool built: give --out a new or empty "
                        "folder (the site replaces the folder's content)")
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}-building-", dir=out.parent))
    try:
        shutil.copytree(MATHJAX, work / "mathjax")
        entries, names = [], []
        for path in sorted(notebooks):
            try:
                nb = nbformat.read(path, as_version=4)
                body = export(with_run_line(nb, path.name, binder))
            except Exception as error:  # NotJSONError, ValidationError, OSError, an exporter error...
                raise SiteError(f"{path}: cannot build its page ({type(error).__name__}: "
                                f"{str(error).strip().splitlines()[0] if str(error).strip() else ''}); "
                                f"nothing was written to {out}") from error
            (work / f"{path.stem}.html").write_text(body, encoding="utf-8")
            entries.append((f"{path.stem}.html", title(nb), goals(nb)))
            names.append(f"{path.stem}.html")
        (work / "index.html").write_text(index_page(entries, binder), encoding="utf-8")
        old = out.with_name(f".{out.name}-old-{os.getpid()}")
        if out.exists():
            out.rename(old)  # two renames: the finished site replaces the previous one at once
        work.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # only left when something failed
    return [out / "index.html", *(out / name for name in names)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--out", type=Path, default=Path("build/site"))
    parser.add_argument("--binder", default=None,
                        help="owner/name on GitHub for Binder links (default: binder-repo, pyproject.toml)")
    parser.add_argument("--badge", action="store_true", help="print the README's Binder badge and stop")
    args = parser.parse_args(argv)
    repo = binder_repo() if args.binder is None else args.binder
    if args.badge:
        if not repo:
            parser.error("set binder-repo under [tool.batchlab] in pyproject.toml first")
        print(binder_badge(repo))
        return 0
    if not args.notebooks:
        parser.error("no notebooks given")
    try:
        pages = build(args.notebooks, args.out, repo or None)
    except SiteError as error:
        print(f"build_site: {error}", file=sys.stderr)
        return 1
    print(f"wrote {len(pages)} pages to {args.out}/ (open {args.out / 'index.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
