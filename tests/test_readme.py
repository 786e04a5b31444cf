"""The README's install routes and Binder badge: the badge comes from the one setting
(``binder-repo`` in pyproject.toml), and the README says what to set."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
spec = importlib.util.spec_from_file_location("build_site", REPO / "tools" / "build_site.py")
build_site = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build_site)

BADGE = re.compile(r"\[!\[Binder\]\([^)]*\)\]\([^)]*\)")


def test_binder_badge_matches_the_one_setting() -> None:
    repo = build_site.binder_repo()
    badges = BADGE.findall(README)
    if repo:
        assert badges == [build_site.binder_badge(repo)], "regenerate: python tools/build_site.py --badge"
    else:
        assert badges == [], "no binder-repo set in pyproject.toml, so no badge"
    assert "OWNER/REPOSITORY" not in README
    assert "binder-repo" in README and "--badge" in README, "the README says what to set"


def test_binder_repo_is_read_and_checked(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.batchlab]\nbinder-repo = "someone/batchlab"\n')
    assert build_site.binder_repo(pyproject) == "someone/batchlab"
    assert "gh/someone/batchlab/HEAD?labpath=notebooks%2F00_start_here.ipynb" in \
        build_site.binder_badge("someone/batchlab")
    pyproject.write_text('[tool.batchlab]\nbinder-repo = "https://github.com/someone"\n')
    with pytest.raises(ValueError, match="binder-repo"):
        build_site.binder_repo(pyproject)


def test_readme_gives_the_pip_conda_and_windows_routes() -> None:
    assert 'pip install -e ".[lab]"' in README
    assert "conda env create -f environment.yml" in README and "pip install --no-deps -e ." in README
    assert "jupyter lab notebooks" in README
    assert "PowerShell" in README and "WSL" in README
    assert "download.pytorch.org/whl/cpu" in README
    assert "Python 3.11 or newer" in README
