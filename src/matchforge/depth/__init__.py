"""Depth stage: predict raw depth per undistorted image, align it to the SfM gauge, write
MegaDepth-compatible H5 files, and measure them (AbsRel on held-out SfM points, coverage,
track-transfer error).

Modules: ``predict`` (command ``depth``), ``align`` (``align-depth``), ``qa`` (``depth-qa``);
``rawpng``/``h5io``/``preview`` for the file formats, ``sparse`` and ``anything`` for the
backends, ``fit`` for the robust scale/shift fits, ``transfer`` for the track-transfer error and
``seed_recipe`` for the public recipe's broken conversion (kept only as a baseline), ``common`` for
shared helpers (options with defaults, loading the SfM model and images).
"""
