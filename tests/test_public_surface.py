"""The flat public surface: ``from batchlab import ...`` gives the names the notebooks need, lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

import batchlab


@pytest.mark.parametrize("name", batchlab.__all__)
def test_every_exported_name_resolves(name: str) -> None:
    value = getattr(batchlab, name)
    assert value is not None
    assert name in dir(batchlab)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = batchlab.no_such_name


def test_importing_batchlab_imports_no_heavy_library() -> None:
    heavy = "('torch', 'matplotlib', 'ipywidgets')"
    code = f"import sys, batchlab; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
