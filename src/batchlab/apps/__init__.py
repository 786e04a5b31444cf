"""Widget apps: objects that wire ipywidgets controls to the plot builders of :mod:`batchlab.plots`.

Each app exposes its controls as attributes (tests set ``.value`` and read the figure's artists) and
displays itself in a notebook, with a static copy for readers without a kernel. What they share (the
throttled live update, the background run, close, the static copy) is :mod:`batchlab.apps.live`. One
module per app: ``stepper`` (notebook 01), ``calculator`` (02), ``landscape`` (03), ``sweep`` (04),
``simulator`` (06).
"""
