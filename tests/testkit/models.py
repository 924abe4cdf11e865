"""Tiny real models built and saved locally (weights cannot be downloaded here): they load through the same code as
the released ones (hub id or local directory)."""

from __future__ import annotations

import torch


def save_tiny_depth_anything(path, kind: str = "relative") -> None:
    """A ~120k-parameter Depth-Anything (DINOv2 backbone) + a Pillow-only processor, like the real ones."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config
    from transformers.models.dpt.image_processing_pil_dpt import DPTImageProcessorPil

    torch.manual_seed(0)
    backbone = Dinov2Config(image_size=56, patch_size=14, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                            mlp_ratio=2, out_indices=[1, 2, 3, 4], reshape_hidden_states=False)
    extra = {"max_depth": 20} if kind == "metric" else {}
    cfg = DepthAnythingConfig(backbone_config=backbone, patch_size=14, reassemble_hidden_size=32,
                              neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16, head_hidden_size=8,
                              depth_estimation_type=kind, **extra)
    DepthAnythingForDepthEstimation(cfg).save_pretrained(path)
    DPTImageProcessorPil(size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14,
                         do_pad=False, image_mean=[0.485, 0.456, 0.406],
                         image_std=[0.229, 0.224, 0.225]).save_pretrained(path)


def save_shape_model(run_dir, seed: int = 0) -> None:
    """A randomly initialised focal/shift pair in the format `shiftfocal-train` writes."""
    from matchforge.shiftfocal.model import ModelConfig, build_model

    run_dir.mkdir(parents=True, exist_ok=True)
    for target, channels, bias in (("focal", 5, 0.925), ("shift", 3, 0.275)):
        torch.manual_seed(seed)
        cfg = ModelConfig(in_channels=channels, resolution=16, channels=[4, 4, 8, 8, 16], bias_init=bias)
        torch.save({"target": target, "model_config": cfg.to_dict(), "state_dict": build_model(cfg).state_dict()},
                   run_dir / f"{target}.pt")
