"""The ``depth_anything`` backend: a ``transformers`` depth-estimation model (Depth-Anything V1/V2,
relative or metric), given as a hub id or a local directory, run batched on CUDA when available.

Output per image: float32 (H, W) at the image's own size (bicubic resize of ``predicted_depth``, negatives
clamped to 0). For ``relative`` models that is affine-invariant **inverse depth** (kind ``disparity``);
for ``metric`` models depth in **metres** (kind ``metric``).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from matchforge.errors import MatchforgeError
from matchforge.depth.config import DepthAnything as DepthAnythingOptions

log = logging.getLogger(__name__)

# Defaults, mirrored in src/matchforge/schemas/depth.schema.yaml (section depth.depth_anything).


class DepthAnything:
    """Load model + processor once; :meth:`predict` yields ``(key, map)`` for batches of images."""

    def __init__(self, conf: Mapping[str, Any] | None = None):
        import torch
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        self.conf = DepthAnythingOptions.of(conf, "depth.depth_anything").to_dict()
        model_id = str(self.conf["model"])
        local = Path(model_id).expanduser()
        kwargs = {"local_files_only": bool(self.conf["local_files_only"]) or local.is_dir()}
        source = str(local) if local.is_dir() else model_id
        try:
            self.processor = AutoImageProcessor.from_pretrained(source, **kwargs)
            self.model = AutoModelForDepthEstimation.from_pretrained(source, **kwargs)
        except (OSError, ValueError) as err:
            raise MatchforgeError(
                f"cannot load depth model '{model_id}': {err}", path=source if local.is_dir() else None,
                fix="set depth.depth_anything.model to a local directory holding config.json, the weights and "
                    "preprocessor_config.json, or to a hub id on a machine with internet access "
                    "(or use depth.backend: sparse offline)") from err
        from matchforge.device import pick_device

        self.device = str(pick_device(str(self.conf["device"])))
        self.model.to(self.device).eval()
        self.dtype = torch.float16 if (self.conf["fp16"] and self.device.startswith("cuda")) else torch.float32
        if self.dtype == torch.float16:
            self.model.half()
        model_kind = getattr(self.model.config, "depth_estimation_type", "relative") or "relative"
        kind = self.conf["kind"]
        self.kind = "metric" if (kind == "metric" or (kind == "auto" and model_kind == "metric")) else "disparity"
        self.model_id = model_id
        log.info("depth model %s (%s output) on %s", model_id, self.kind, self.device)

    def _pixel_values(self, image: np.ndarray):
        return self.processor(images=image, return_tensors="pt")["pixel_values"][0]

    def predict(self, items: Iterable[tuple[str, np.ndarray]]) -> Iterator[tuple[str, np.ndarray]]:
        """``items``: ``(key, RGB uint8 array H x W x 3)``. Yields ``(key, float32 H x W)`` per image.

        Images are preprocessed one by one, grouped by network input size, and run in batches of
        ``batch_size`` per group (images of one camera share a size, so batches fill up in practice).
        """
        import torch
        import torch.nn.functional as F

        bs = max(1, int(self.conf["batch_size"]))
        groups: dict[tuple, list[tuple[str, tuple[int, int], Any]]] = defaultdict(list)

        def run(group):
            x = torch.stack([g[2] for g in group]).to(self.device, self.dtype)
            with torch.inference_mode():
                pred = self.model(pixel_values=x).predicted_depth.float()
            for (key, (h, w), _), p in zip(group, pred):
                up = F.interpolate(p[None, None], size=(h, w), mode="bicubic", align_corners=False)[0, 0]
                yield key, up.clamp_min(0).cpu().numpy().astype(np.float32)

        for key, image in items:
            pv = self._pixel_values(image)
            shape = tuple(pv.shape)
            groups[shape].append((key, image.shape[:2], pv))
            if len(groups[shape]) == bs:
                yield from run(groups.pop(shape))
        for group in groups.values():
            yield from run(group)
