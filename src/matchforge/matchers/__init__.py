"""Matchers looked up by name: every evaluation and the ``match`` command get theirs from :func:`get_matcher`.

A matcher is called as ``matcher(path0, path1) -> (kpts0, kpts1)``, two (M, 2) float arrays of matched
keypoints in matchforge pixels of the original images (:mod:`matchforge.geometry.pixels`), and has a
``name``. Its options are one dict with the key ``name``:

- ``sift``: OpenCV SIFT + mutual NN with Lowe's ratio (``max_keypoints``, ``ratio``, ``img_resize``);
- ``loftr``: a trained run, an official checkpoint or a kornia name (``weights``, ``img_resize``, ...);
- ``features``: stored features (PoSFeat, or SIFT described by PoSFeat) matched by mutual NN (``features``).
"""

from __future__ import annotations

import importlib
from typing import Any, Mapping

from matchforge.errors import MatchforgeError

MATCHERS = {
    "sift": "matchforge.matchers.sift:SiftMatcher",
    "loftr": "matchforge.matchers.loftr:LoFTRMatcher",
    "features": "matchforge.matchers.stored:FeatureMatcher",
}


def get_matcher(conf: Mapping[str, Any]) -> Any:
    """The matcher named ``conf["name"]``, built from the rest of ``conf``."""
    name = conf.get("name")
    if name not in MATCHERS:
        raise MatchforgeError(f"unknown matcher '{name}'", fix=f"use one of: {', '.join(MATCHERS)}")
    module, cls = MATCHERS[name].split(":")
    return getattr(importlib.import_module(module), cls)({k: v for k, v in conf.items() if k != "name"})
