"""A learner's install without make: ``pip install -e ".[lab]"`` into a fresh virtual environment
gives JupyterLab, the slides, Voila, bqplot (the apps' live plots) and batchlab, at the pinned
versions, and no ipympl.

Marked ``install`` (``make test-install``, part of ``make test``): it creates a venv and installs about
a hundred packages, from pip's cache after the first run (about a minute then; torch's CPU wheel
comes from a local wheelhouse where pip's configuration has one, otherwise from the index, slowly).
"""

from __future__ import annotations

import json
import re
import subprocess
import venv
from pathlib import Path

import pytest
from test_environment import parse_requirements

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.install, pytest.mark.timeout(900)]


def run(*args: str | Path, cwd: Path = REPO) -> str:
    """Run a command; its stdout, or a failure showing what it printed."""
    result = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True)
    assert result.returncode == 0, f"{args} failed ({result.returncode}):\n{result.stdout[-3000:]}" \
                                   f"\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def lab_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with ``pip install -e ".[lab]"`` done, as the README's pip route says."""
    where = tmp_path_factory.mktemp("lab-venv") / "venv"
    venv.EnvBuilder(with_pip=True).create(where)
    python = where / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", "-e", f"{REPO}[lab]")
    return where


def test_the_lab_extra_installs_everything_make_lab_runs(lab_venv: Path) -> None:
    bin_ = lab_venv / "bin"
    pins = parse_requirements()
    assert run(bin_ / "jupyter", "lab", "--version").strip() == pins["jupyterlab"]
    assert run(bin_ / "voila", "--version").strip() == pins["voila"]
    imported = run(bin_ / "python", "-c",
                   "import importlib.util, batchlab, torch, bqplot, ipywidgets; "
                   "print(batchlab.__file__); print(torch.__version__); print(bqplot.__version__); "
                   "print(importlib.util.find_spec('ipympl') is None)").splitlines()
    assert Path(imported[0]).is_relative_to(REPO / "src"), "an editable install of this checkout"

    assert imported[1].split("+")[0] == pins["torch"]
    assert imported[2] == pins["bqplot"], "the apps' live plots: bqplot at its pin"
    assert imported[3] == "True", "ipympl is not a dependency any more: nothing should install it"
    listed = subprocess.run([bin_ / "jupyter", "labextension", "list"], capture_output=True, text=True,
                            env={"NO_COLOR": "1", "PATH": str(bin_)})
    listing = re.sub(r"\x1b\[[0-9;]*m", "", listed.stdout + listed.stderr)  # it writes to stderr
    for extension in (f"jupyterlab-slideshow v{pins['jupyterlab-slideshow']}",
                      "@jupyter-widgets/jupyterlab-manager", "bqplot v"):
        assert re.search(rf"{re.escape(extension)}[^\n]* enabled OK", listing), f"{extension}:\n{listing}"
    run(bin_ / "python", "-m", "pip", "check")
    kernels = json.loads(run(bin_ / "jupyter", "kernelspec", "list", "--json"))["kernelspecs"]
    assert "python3" in kernels
