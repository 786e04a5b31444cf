"""Shared test set-up: a non-interactive matplotlib backend and a deterministic hypothesis profile."""

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# The tests train tiny models: one thread is as fast and does not fight other processes for the cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import matplotlib

matplotlib.use("Agg", force=True)

from hypothesis import settings

settings.register_profile("batchlab", deadline=None, derandomize=True)
settings.load_profile("batchlab")


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """One intra-op thread for every test: the models are tiny, and on a 2-core machine shared with other
    processes a second thread only waits for the first (it made training several times slower)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture
def redraws(monkeypatch):
    """The figures whose live view synced (one entry per request_redraw of a figure with a view):
    the apps' tests count what a control change redraws."""
    from batchlab.plots.mirror import LiveFigure

    calls = []
    sync = LiveFigure.sync

    def counted(view):
        calls.append(view.fig)
        sync(view)

    monkeypatch.setattr(LiveFigure, "sync", counted)
    return calls
