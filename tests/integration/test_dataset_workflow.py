"""The scene_info and dataset rules under Snakemake: they build, and config edits replan only what they touch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from testkit import DEMO_IMAGES, REPO, real_data
from matchforge.dataset.indices import read_dataset


def _snakemake(work: Path, config: dict, *args: str) -> str:
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
           "--configfile", str(work / "config.yaml"), "--workflow-profile", "none", "--cores", "1",
           "results/datasets/d/dataset.json", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    return out


def _planned(text: str) -> dict[str, int]:
    """Rule -> job count from the table `snakemake -n` prints ({} when nothing is to be done)."""
    jobs, in_table = {}, False
    for line in text.splitlines():
        parts = line.split()
        if parts[:2] == ["job", "count"]:
            in_table = True
        elif in_table and len(parts) == 2 and parts[1].isdigit():
            if parts[0] != "total":
                jobs[parts[0]] = int(parts[1])
        elif in_table and parts and not set(line.strip()) <= {"-", " "}:
            in_table = False
    return jobs


def test_rules_build_and_rebuild_only_what_changed(demo_sfm, tmp_path):
    work = tmp_path / "w"
    shutil.copytree(demo_sfm, work / "results" / "demo" / "sfm")  # SfM is the coordinator's stage: reuse it
    config = {
        "scenes": {"demo": {"images": str(DEMO_IMAGES), "sfm": {"max_image_size": 1024}}},
        "datasets": {"d": {"scenes": ["demo"], "split": {"val_fraction": 0.0, "test_fraction": 0.3}}},
    }
    _snakemake(work, config)
    dataset_json = work / "results" / "datasets" / "d" / "dataset.json"
    assert len(read_dataset(dataset_json, "train", 0.0)) > 0 and len(read_dataset(dataset_json, "test", 0.0)) > 0
    assert (work / "logs" / "demo" / "scene_info.log").is_file()
    assert (work / "results" / "datasets" / "d" / "loftr_data_config.py").is_file()

    assert _planned(_snakemake(work, config, "-n")) == {}
    # a split option touches only the dataset index (and the options file it reads)
    seed = yaml.safe_load(yaml.safe_dump(config))
    seed["datasets"]["d"]["split"]["seed"] = 7
    assert _planned(_snakemake(work, seed, "-n")) == {"dataset_inputs": 1, "dataset": 1}
    # a scene-info option reruns that scene's scene info and the dataset, not depth or SfM
    buckets = yaml.safe_load(yaml.safe_dump(config))
    buckets["scenes"]["demo"]["scene_info"] = {"buckets": [[0.1, 0.4], [0.4, 0.8]]}
    assert _planned(_snakemake(work, buckets, "-n")) == {"scene_info": 1, "dataset": 1}
    # a new scene in the config but not in the dataset: nothing to do for this dataset
    other = yaml.safe_load(yaml.safe_dump(config))
    other["scenes"]["reichstag"] = {"images": str(real_data("reichstag", "images"))}
    assert _planned(_snakemake(work, other, "-n")) == {}
    # ... added to the dataset: its own chain, one scene info (the new scene's) and the dataset index
    other["datasets"]["d"]["scenes"].append("reichstag")
    plan = _planned(_snakemake(work, other, "-n"))
    assert plan.get("scene_info") == 1 and plan.get("dataset") == 1 and plan.get("sfm") == 1, plan
