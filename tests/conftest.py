"""Shared test set-up: a non-interactive matplotlib backend and a deterministic hypothesis profile."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
# The tests train tiny models: one thread is as fast and does not fight other processes for the cores.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import matplotlib

matplotlib.use("Agg", force=True)

from hypothesis import settings

settings.register_profile("batchlab", deadline=None, derandomize=True)
settings.load_profile("batchlab")
