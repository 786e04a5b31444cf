"""Plot builders: functions and small classes that take data and return or update matplotlib artists.

They never import ipywidgets; the apps in :mod:`batchlab.apps` wire widgets to them. One module per
view: ``batches`` (digit thumbnails and batch highlighting), ``staircase`` (I against B), ``schedule``
(learning-rate warm-up), ``landscape`` (loss contours and parameter paths), ``spectrum`` (gradient
noise, progress and throughput against B), ``training`` (live loss curves), ``generalization``
(sweeps), ``simulator`` (the simulator's views).
"""
