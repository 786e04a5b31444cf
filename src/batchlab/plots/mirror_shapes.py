"""Converters of shapes for the live view (:mod:`batchlab.plots.mirror`): images, patches, contours.

Owned by the helper that mirrors images (``imshow``), ``Rectangle`` / ``Polygon`` patches and contour
sets; until those converters land, no shape is drawn live. :data:`SHAPE_CONVERTERS` has the format of
:data:`batchlab.plots.mirror.CONVERTERS`: ``(artist type, make, update)`` triples, appended to it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["SHAPE_CONVERTERS"]

#: ``(artist type, make(artist, x_scale, y_scale), update(artist, mark))`` for shapes; none yet.
SHAPE_CONVERTERS: list[tuple[type, Callable[[Any, Any, Any], Any], Callable[[Any, Any], None]]] = []
