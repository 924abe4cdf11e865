"""Shift/focal point-cloud model (LeReS PCM): recover the focal length and the depth shift of a
relative depth map from the shape of the point cloud it unprojects to.

Conventions (LeReS): the focal net predicts ``alpha = f_input / f_true`` (so ``f_true = f_input / alpha``);
the shift net predicts ``delta`` with ``d_true ∝ d_input - delta``. Depth is normalised as at inference,
``(d - min + 0.5) / p98``. Pixel ``(row r, col c)`` has its centre at ``(c + 0.5, r + 0.5)`` (COLMAP).
"""
