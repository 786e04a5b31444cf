"""The package's layers hold (apps -> plots -> studies -> engine -> counts), and the check that keeps them
can fail: the import-linter contract in pyproject.toml, run by ``make lint``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """``lint-imports`` on the package under ``root/src``, with the contract of ``root/pyproject.toml``."""
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root / "src")}, timeout=120)


def copy_of_the_package(tmp_path: Path) -> Path:
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(REPO / "src" / "batchlab", tmp_path / "src" / "batchlab",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


@pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is not installed (make setup)")
def test_the_contracts_hold_and_fail_on_an_upward_import(tmp_path):
    root = copy_of_the_package(tmp_path)
    kept = lint_imports(root)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "2 kept, 0 broken" in kept.stdout
    # The mistakes these contracts exist for: the counting module reaching up into the plots, and the
    # mark converters reaching back into the live view that uses them (a circle, once worked around
    # with imports inside functions).
    package = root / "src" / "batchlab"
    for module, upward, message in (
            ("arithmetic.py", "from batchlab.plots import live",
             "batchlab.arithmetic is not allowed to import batchlab.plots"),
            ("plots/mirror_marks.py", "from batchlab.plots import mirror",
             "batchlab.plots.mirror_marks is not allowed to import batchlab.plots.mirror")):
        path = package / module
        path.write_text(path.read_text() + f"\n\ndef _upward():\n    {upward}\n")
        broken = lint_imports(root)
        assert broken.returncode != 0
        assert message in broken.stdout, broken.stdout


def test_displaying_a_plan_loads_neither_torch_nor_matplotlib():
    code = ("import sys\n"
            "from batchlab.arithmetic import TrainingPlan\n"
            "html = TrainingPlan(1000, 32, 3)._repr_html_()\n"
            "assert '<table' in html, html\n"
            "print(sorted(m for m in ('torch', 'matplotlib', 'ipywidgets', 'numpy') if m in sys.modules))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_training_does_not_re_export_what_other_modules_define():
    import batchlab.training as training

    assert set(training.__all__) == {"DIVERGENCE_FACTOR", "evaluate", "train", "train_epoch"}
    for name in ("evaluate", "train", "train_epoch"):
        assert getattr(training, name).__module__ == "batchlab.training"
