"""Measurements: throughput, memory, gradient noise and sharpness. Numerics only, no widgets."""
