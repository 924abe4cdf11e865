"""The one pixel convention of matchforge, and the conversions at the boundaries that use another.

matchforge (like COLMAP) puts the image's top-left *corner* at (0, 0), so the centre of pixel
``(row r, col c)`` is ``(c + 0.5, r + 0.5)``. With this convention resizing an image by ``s`` maps a
point ``x`` to exactly ``s * x``, and ``K`` scales by ``diag(s_x, s_y, 1)``. To sample an array ``D[r, c]``
at ``xy``, use ``D[floor(y), floor(x)]`` (nearest) or interpolate at ``xy - 0.5``.

The boundary with OpenCV (pixel centres on integers: SIFT keypoints, ``cv2.resize`` grids) is
:func:`opencv_to_matchforge`; forgetting its half pixel biases keypoints by half a *resized* pixel, e.g.
1 px for a 1600 px photo evaluated at 840 px. LoFTR's matches keep the official code's frame (grid indices
scaled by ``xy * scale``) so that its supervision and metrics equal upstream's exactly (docs/loftr.md).
"""

from __future__ import annotations

import numpy as np


def opencv_to_matchforge(xy: np.ndarray, scale: np.ndarray | float = 1.0) -> np.ndarray:
    """OpenCV coordinates (centres on integers) measured on an image resized by ``scale`` (resized /
    original size, per axis (x, y) or one number) -> matchforge pixels of the original image."""
    return (np.asarray(xy, dtype=np.float64) + 0.5) / np.asarray(scale, dtype=np.float64)
