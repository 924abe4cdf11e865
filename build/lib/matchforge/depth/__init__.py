"""Depth stage: predict raw depth per undistorted image, align it to the SfM gauge, write
MegaDepth-compatible H5 files, and measure them (AbsRel on held-out SfM points, coverage,
track-transfer error).

Modules: ``predict`` (command ``depth``), ``align`` (``align-depth``), ``qa`` (``depth-qa``);
``rawpng``/``preview`` for the depth-specific formats (depth H5: :mod:`matchforge.io.depth`), ``sparse`` and ``anything`` for the
backends, ``fit`` for the robust scale/shift fits, ``transfer`` for the track-transfer error and
``seed_recipe`` for the public recipe's broken conversion (kept only as a baseline), ``common`` for
shared helpers (options with defaults, loading the SfM model and images).
"""
