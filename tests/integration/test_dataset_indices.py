"""The index readers on LoFTR's official index files (MegaDepth-1500 and ScanNet-1500)."""

from __future__ import annotations
import pytest
from matchforge.errors import MatchforgeError


def test_a_run_on_the_official_megadepth_index_layout_reads_the_dataset_route_pairs(demo_dataset, tmp_path):
    """A LoFTR run's `megadepth:` source (official scene-info files + list + data root) pointed at a matchforge
    dataset, which is written in that layout, trains on exactly the pairs its dataset.json route gives; missing
    images stop it with the file named."""
    from matchforge.dataset.indices import read_dataset, scene_of_subset
    from matchforge.loftr.model import run_options
    from matchforge.loftr.train import training_pairs

    root = demo_dataset.parent
    index = root / "index"
    md = {"npz_root": str(index / "scene_info"), "list": str(index / "trainvaltest_list" / "train_list.txt"),
          "data_root": str(root / "train")}  # as the dataset's loftr_data_config.py sets TRAIN_DATA_ROOT
    train, val = training_pairs(run_options({"megadepth": md}), None)
    ref = read_dataset(demo_dataset, "train", 0.0)
    assert len(train) == len(ref) > 0 and val == []
    assert sorted((str(r.image0), str(r.image1)) for r in train) == sorted((str(r.image0), str(r.image1)) for r in ref)
    assert {scene_of_subset(r.scene) for r in train} == {"sacre_coeur"}
    with pytest.raises(MatchforgeError, match="MegaDepth images or depth maps not found") as err:
        training_pairs(run_options({"megadepth": {**md, "data_root": str(tmp_path)}}), None)
    assert str(tmp_path) in str(err.value)
