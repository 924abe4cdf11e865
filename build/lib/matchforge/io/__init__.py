"""Every file format matchforge reads or writes, in one place.

- :mod:`~matchforge.io.images`: photos (read as RGB/gray/raw, write, size, resize with the K update);
- :mod:`~matchforge.io.depth`: MegaDepth depth H5 (write, read, padded read for LoFTR) and other depth files;
- :mod:`~matchforge.io.features`: keypoints/descriptors per image in one H5 (hloc's layout);
- :mod:`~matchforge.io.colmap`: COLMAP models as plain arrays (:class:`Scene`, :class:`View`);
- :mod:`~matchforge.io.calibration`: Image Matching Challenge calibration files and pair lists.

Pixel and pose conventions are those of :mod:`matchforge.geometry`.
"""
