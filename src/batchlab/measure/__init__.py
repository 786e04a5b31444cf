"""Measurements: throughput, memory, gradient noise and sharpness. Numerics only, no widgets.

Training sweeps live in :mod:`batchlab.experiments`.
"""
