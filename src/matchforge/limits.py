"""Limits on what the project reads or allocates, checked before decoding or expanding anything (issue 32).

Each is far above any real use and far below what exhausts a shared machine: a value past one is refused with a
one-line error that names the file or config key and the limit, never half-read.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

# --- files ---------------------------------------------------------------------------------------
MAX_PHOTO_PIXELS = 250_000_000  # a photo's pixel count, from its header (3 bytes each decoded)
MAX_DEPTH_PIXELS = 250_000_000  # a depth map's pixel count, from its H5 or array header (4-8 bytes each)
MAX_INFLATED = 4 << 30  # bytes an array file (.npz/.npy index) may expand to, all members together

# --- the config ----------------------------------------------------------------------------------
MAX_NAME = 64  # characters of a scene, dataset, run or test-set name (joined with suffixes into file names)
MAX_CONFIG_NODES = 100_000  # values in the whole config as YAML expands it (aliases counted at each use)
MAX_CONFIG_DEPTH = 32  # nesting of mappings and lists

# --- config values that size an allocation ---------------------------------------------------------
MAX_SIDE_PX = 16384  # long side (px) any stage resizes an image or depth map to
MAX_COUNT = 10_000_000  # keypoints, points, matches or samples per image, cloud or step
MAX_BATCH = 4096  # items per forward pass or step
MAX_WORKERS = 1024  # processes, GPUs or nodes asked for
MAX_WIDTH = 4096  # channels, attention heads or layers of a network

SidePx = Annotated[int, Field(le=MAX_SIDE_PX)]
Count = Annotated[int, Field(le=MAX_COUNT)]
Batch = Annotated[int, Field(le=MAX_BATCH)]
Workers = Annotated[int, Field(le=MAX_WORKERS)]
Width = Annotated[int, Field(le=MAX_WIDTH)]
