"""Build a static HTML site of the notebooks from their stored outputs (nothing is executed).

    python tools/build_site.py [--out build/site] [--binder OWNER/REPOSITORY] notebooks/*.ipynb

(``make site`` runs it.) The site works offline, from disk or any static web server:

* one page per notebook (nbconvert's ``lab`` template), in the order of the file names, with the
  notebooks' own navigation lines pointing at the pages, and a line saying how to run it live;
* math typeset by a local copy of MathJax 2.7 (from the ``jupyter-server-mathjax`` package), copied
  next to the pages: no CDN;
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
from pathlib import Path

import jupyter_server_mathjax
import nbformat
from nbconvert import HTMLExporter

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MATHJAX = Path(jupyter_server_mathjax.__file__).parent / "static"
MATHJAX_URL = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"
NO_SCRIPT = "data:text/javascript,"  # stands in for require.js, which nbconvert takes from a CDN
NOTEBOOK_LINK = re.compile(r'href="(\d+_[\w.-]+)\.ipynb(#[^"]*)?"')


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


def export(nb: nbformat.NotebookNode) -> str:
    """The HTML page of a notebook as the site shows it (static outputs, links to pages)."""
    body, _ = exporter().from_notebook_node(static_notebook(nb))
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
<script type="text/x-mathjax-config">
MathJax.Hub.Config({{messageStyle: "none", tex2jax: {{inlineMath: [["$", "$"]], processEscapes: true}}}});
</script>
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
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("build/site"))
    parser.add_argument("--binder", default=None, help="OWNER/REPOSITORY on GitHub, for Binder links")
    args = parser.parse_args(argv)
    try:
        pages = build(args.notebooks, args.out, args.binder or None)
    except SiteError as error:
        print(f"build_site: {error}", file=sys.stderr)
        return 1
    print(f"wrote {len(pages)} pages to {args.out}/ (open {args.out / 'index.html'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
