"""Measurements: throughput, memory, gradient noise and sharpness. Numerics only, no widgets; training sweeps live in :mod:`batchlab.experiments`."""
