"""LoFTR as a pair matcher: a trained run's ``weights.pt``, an official checkpoint or a kornia name."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from matchforge.evaluation.config import PosePairs
from matchforge.device import pick_device

CACHED_IMAGES = 16  # photos kept resized on the device (at 840 px, padded: 2.8 MB each)


class LoFTRMatcher:
    """``matcher(path0, path1) -> (kpts0, kpts1)``: (M, 2) float matchforge pixels of the original images.

    Options: ``weights`` (a ``.pt``/``.ckpt`` file, or ``outdoor``/``indoor``/``indoor_new`` for kornia's
    released weights), ``model_conf`` (architecture for weights stored without it), ``img_resize`` (long
    side the network sees), ``pad`` (pad to a square with masks, as in training), ``interpolation``,
    ``device``.
    """

    name = "loftr"

    def __init__(self, conf: Mapping[str, Any]) -> None:
        from matchforge.loftr.model import load_weights

        sizing = PosePairs.pick(conf, "matcher")  # img_resize, pad, interpolation
        self.device = str(pick_device(conf.get("device")))
        self.model = load_weights(str(conf["weights"]), conf.get("model_conf"), self.device)
        self.img_resize = sizing.img_resize
        self.pad = sizing.pad
        self.interpolation = sizing.interpolation
        # test sets share photos between pairs (a query against k database photos, Reichstag's 10 pairs over 10
        # photos): each photo is read and resized once while it is among the last CACHED_IMAGES used
        self.load = functools.lru_cache(maxsize=CACHED_IMAGES)(self._load)

    def _load(self, path: str) -> dict[str, torch.Tensor]:
        """One photo as the network sees it, on the device: ``image`` (1, 1, H, W), ``scale`` (1, 2), ``mask``
        (1, H/8, W/8) when padded."""
        from matchforge.loftr.data import read_gray

        img, mask, scale, _ = read_gray(path, self.img_resize, 8, self.pad, interpolation=self.interpolation)
        out = {"image": img[None].to(self.device), "scale": scale[None].to(self.device)}
        if mask is not None:
            out["mask"] = mask[::8, ::8][None].to(self.device)
        return out

    def __call__(self, path0: str | Path, path1: str | Path) -> tuple[np.ndarray, np.ndarray]:
        from matchforge.loftr.model import forward

        data: dict[str, Any] = {}
        for i, path in enumerate((path0, path1)):
            data.update({f"{k}{i}": v for k, v in self.load(str(path)).items()})
        if self.pad and data["image0"].shape != data["image1"].shape:
            data.pop("mask0"), data.pop("mask1")
        with torch.inference_mode():
            forward(self.model, data, for_loss=False)
        return data["mkpts0_f"].float().cpu().numpy().astype(np.float64), data["mkpts1_f"].float().cpu().numpy().astype(np.float64)
