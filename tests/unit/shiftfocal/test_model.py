"""The point-voxel network: padding invariance, overfitting real RGB-D items (TUM, Middlebury) on CPU,
and LeReS recovery (focal -> shift -> focal) beating the 60-degree guess on those items."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from matchforge.shiftfocal.model import build_model
from matchforge.shiftfocal.sampling import Sample, make_sample
from matchforge.shiftfocal.train import collate

SMALL = {"resolution": 16, "channels": [8, 8, 16, 32, 64]}
CPU = torch.device("cpu")

pytestmark = pytest.mark.usefixtures("no_denormals")  # as the training and inference entry points


def test_padding_does_not_change_the_prediction(real_items):
    torch.manual_seed(0)
    it = real_items[0]
    s = make_sample(it.depth, it.K, "focal", 5, np.random.default_rng(0), 500, focal_with_shift=True, scale_unit=10.0, subsample_rng=False)
    for channels in (3, 5):
        model = build_model({"in_channels": channels, **SMALL, "bias_init": 0.5}).eval()
        small = Sample(s.coords[:300], s.feats[:300, :channels], 0.0)
        alone = model(*collate([small], CPU)[:3])
        padded = model(*collate([small, Sample(s.coords, s.feats[:, :channels], 0.0)], CPU)[:3])[0]
        assert alone.shape == (1,)
        assert torch.allclose(alone[0], padded, atol=1e-5)
    with pytest.raises(ValueError, match="multiple of 16"):
        build_model({"in_channels": 3, "resolution": 20})
