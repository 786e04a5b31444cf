"""Plot builders: functions and small classes that take data and return or update matplotlib artists.

They never import ipywidgets; the apps in :mod:`batchlab.apps` wire widgets to them. One module per
view: ``batches`` (digit thumbnails and batch highlighting), ``staircase`` (I against B), ``landscape``
(loss contours and parameter paths), ``training`` (live loss curves), ``generalization`` (sweeps).
"""
