"""The one device choice for inference (training devices are the engine's ``accelerator``/``devices``)."""

from __future__ import annotations

import torch


def pick_device(name: str | None = "auto") -> torch.device:
    """``auto`` (or None) -> CUDA when a GPU is visible, else CPU; anything else as given (``cuda:1``)."""
    if not name or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
