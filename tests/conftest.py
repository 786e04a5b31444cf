"""Shared test set-up: a non-interactive matplotlib backend and a deterministic hypothesis profile."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib  # noqa: E402

matplotlib.use("Agg", force=True)

from hypothesis import settings  # noqa: E402

settings.register_profile("batchlab", deadline=None, derandomize=True)
settings.load_profile("batchlab")
