"""The workflow as users run it: Snakemake on real photos, incremental rebuilds, failing scenes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml

from testkit import DEMO_IMAGES, REPO
from testkit.workflow import planned_jobs, snakemake, write_config


def test_wrong_option_names_the_scene(tmp_path):
    work = tmp_path / "w"
    write_config(work, {"demo": {"images": str(DEMO_IMAGES), "sfm": {"max_image_sise": 640}}})
    proc = snakemake(work, "-n", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "scenes.demo.sfm" in out and "max_image_sise" in out and "config/README.md" in out


def test_cli_lists_every_stage():
    out = subprocess.run([sys.executable, "-m", "matchforge", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("sfm", "depth", "align-depth", "scene-info", "dataset", "loftr-train", "posfeat-train", "shiftfocal-train"):
        assert f"  {command} " in out


def test_slurm_placement_follows_each_rules_gpu_resource(tmp_path):
    """Account and partitions set once (here in the environment): every job whose rule asks for a GPU
    goes to the GPU partition, all others to the CPU partition, each asks for SIGUSR1 before its limit."""
    env = {"MATCHFORGE_SLURM_ACCOUNT": "lab", "MATCHFORGE_SLURM_CPU_PARTITION": "cpuq",
           "MATCHFORGE_SLURM_GPU_PARTITION": "gpuq"}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(REPO),
           "--workflow-profile", "none", "--cores", "2", "-n", "--forceall"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = []
    rule = None
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.startswith(("rule ", "checkpoint ")):
            rule = line.split()[1].rstrip(":")
        elif line.strip().startswith("resources:") and rule and rule != "all":  # `all` runs on the head node
            res = dict(kv.split("=", 1) for kv in line.split(":", 1)[1].strip().split(", "))
            jobs.append((rule, res))
    assert {r for r, _ in jobs} >= {"sfm", "loftr_train", "posfeat_desc", "shiftfocal_train", "scene_info"}
    for rule, res in jobs:
        gpu = int(res.get("gpu", 0))
        assert res["slurm_partition"] == ("gpuq" if gpu > 0 else "cpuq"), (rule, res)
        assert res["slurm_account"] == "lab" and res["slurm_extra"] == "--signal=USR1@120", (rule, res)


def test_a_bad_entry_fails_only_the_jobs_that_need_it(tmp_path):
    """A missing colmap.sparse/database of one scene and a mistyped init_weights of one LoFTR run: the whole
    DAG is still planned (no MissingInputException), and each bad job fails naming the config key."""
    work = tmp_path / "w"
    write_config(work, {"good": {"images": str(DEMO_IMAGES)},
                        "bad": {"images": str(DEMO_IMAGES), "colmap": {"sparse": str(tmp_path / "nope" / "sparse"),
                                                                         "database": str(tmp_path / "nope" / "db.db")}}})
    config = yaml.safe_load((work / "config.yaml").read_text())
    config.update(datasets={"d": {"scenes": ["good"]}},
                  loftr={"runs": {"typo": {"dataset": "d", "train": {"init_weights": "outdor"}, "testsets": []},
                                  "fine": {"dataset": "d", "testsets": []}}})
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    jobs = planned_jobs(snakemake(work, "-n"))
    assert jobs["sfm"] == 2 and jobs["loftr_train"] == 2, jobs

    proc = snakemake(work, "--keep-going", "results/bad/sfm/stats.json", check=False)
    assert proc.returncode != 0
    log = (work / "logs" / "bad" / "sfm.log").read_text()
    assert "scenes.bad.colmap.sparse" in log and "nope/sparse" in log and "Fix:" in log and "Traceback" not in log

    # the command the loftr_train job runs, with the run's options: the message names the key and the choices
    from matchforge.config_check import validate_config

    validate_config(config)
    rc = {"dataset": "d", **config["loftr"]["runs"]["typo"]["train"]}
    proc = subprocess.run([sys.executable, "-m", "matchforge", "loftr-train", "--run", "typo", "--out", str(tmp_path / "r"),
                           "--conf", json.dumps(rc)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "loftr.runs.typo.train.init_weights" in proc.stderr and "outdoor" in proc.stderr and "Traceback" not in proc.stderr


EXAMPLES = {  # example -> jobs its plan must hold
    "finetune_outdoor_4gpu.yaml": {"sfm": 1, "depth_predict": 1, "dataset": 1, "loftr_train": 1, "loftr_init_match": 1,
                                   "loftr_localize": 1, "summary": 1},
    "megadepth_scratch.yaml": {"loftr_train": 1},
    "slurm_ddp_2nodes.yaml": {"sfm": 1, "loftr_train": 1, "loftr_score": 1},
    "depth_anything_v2.yaml": {"sfm": 1, "depth_predict": 1, "depth_consistency": 1, "dataset": 1},
}


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_config_examples_plan_their_jobs(example, tmp_path):
    """Each ready config of config/examples/ validates and plans its jobs (`snakemake -n`), with its placeholder
    photo folder pointed at the demo photos."""
    from testkit import DEMO_IMAGES

    text = (REPO / "config" / "examples" / example).read_text().replace("/data/my_photos", str(DEMO_IMAGES))
    (tmp_path / "config.yaml").write_text(text)
    (tmp_path / "resources").symlink_to(REPO / "resources")
    jobs = planned_jobs(snakemake(tmp_path, "-n", "--replace-workflow-config"))
    assert {k: jobs.get(k) for k in EXAMPLES[example]} == EXAMPLES[example], jobs


def test_planning_imports_neither_torch_nor_lightning():
    """Every `snakemake` call parses the rules; the package modules they import stay light (Lightning alone
    cost 3.6 s of a 6.1 s `snakemake -n` before the option helpers moved out of training.engine)."""
    import re

    modules = sorted({m for smk in (REPO / "rules").glob("*.smk")
                      for m in re.findall(r"^from (matchforge[\w.]*) import", smk.read_text(), re.M)})
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + \
        "print(sorted(m for m in ('torch', 'lightning', 'kornia', 'pycolmap') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "matchforge.workflow.glue" in modules and out.strip() == "[]", (modules, out)  # the glue and all it imports


def job_resources(proc: subprocess.CompletedProcess) -> dict[tuple[str, str], dict[str, str]]:
    """(rule, scene) -> resources, from the job listing that `snakemake -n` prints."""
    jobs, rule, scene = {}, None, None
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.startswith(("rule ", "checkpoint ")):
            rule, scene = line.split()[1].rstrip(":"), None
        elif line.strip().startswith("wildcards:"):
            scene = dict(kv.split("=", 1) for kv in line.split(":", 1)[1].strip().split(", ")).get("scene")
        elif line.strip().startswith("resources:") and rule:
            jobs[(rule, scene)] = dict(kv.split("=", 1) for kv in line.split(":", 1)[1].strip().split(", "))
    return jobs


def test_cluster_time_and_memory_grow_with_the_photo_count(tmp_path):
    """A 2,500-photo scene asks SLURM for more than the profile's 120 minutes; a scene's own `resources`
    entry wins; the demo's 10 photos get the base figures."""
    from matchforge.job_resources import estimate
    from matchforge.sfm.config import SfMSection

    big = tmp_path / "big"
    big.mkdir()
    photo = next(DEMO_IMAGES.glob("*.jpg"))
    for i in range(2500):
        (big / f"{i:04d}.jpg").symlink_to(photo)
    work = tmp_path / "w"
    write_config(work, {"demo": {"images": str(DEMO_IMAGES)}, "big": {"images": str(big)},
                        "pinned": {"images": str(DEMO_IMAGES), "resources": {"sfm": {"runtime": "3h", "mem_mb": 64000}}}})
    jobs = job_resources(snakemake(work, "-n", "--forceall", *(f"results/{s}/sfm/stats.json" for s in ("demo", "big", "pinned"))))
    demo, large, pinned = jobs[("sfm", "demo")], jobs[("sfm", "big")], jobs[("sfm", "pinned")]
    assert int(demo["runtime"]) == estimate("sfm", 10, SfMSection().to_dict())["runtime"] < 60
    assert int(large["runtime"]) > 120 and int(large["mem_mb"]) > int(demo["mem_mb"])
    assert (pinned["runtime"], pinned["mem_mb"]) == ("180", "64000")
    # 2,500 photos: retrieval (30 per photo), not 3.1 million exhaustive pairs
    assert estimate("sfm", 2500, SfMSection().to_dict())["runtime"] < estimate(
        "sfm", 2500, {**SfMSection().to_dict(), "matcher": "exhaustive"})["runtime"] / 5


def test_no_command_line_grows_with_the_number_of_scenes(tmp_path):
    """The dataset job's command names two files, not the scenes (a command line naming each scene exceeded
    the kernel's argument limit near 1,400 scenes); 120 scenes show it (planning 2,000 takes 45 s)."""
    work = tmp_path / "w"
    scenes = {f"scene_{i:04d}_with_a_long_name": {"images": str(DEMO_IMAGES)} for i in range(120)}
    write_config(work, scenes)
    config = yaml.safe_load((work / "config.yaml").read_text())
    config["datasets"] = {"many": {"scenes": list(scenes)}}
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "-n", "--printshellcmds", "results/datasets/many/dataset.json")
    command = next(line for line in proc.stdout.splitlines() if " dataset --dataset many" in line)
    assert len(command) < 1000 and "scene_0001" not in command, command[:300]


def test_snakemake_lint_finds_nothing():
    """`snakemake --lint`: every rule has a log, takes its values through params/input, no hard-coded prefix;
    the rule files hold rules, the package (matchforge.workflow) the functions."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(REPO),
           "--workflow-profile", "none", "--lint"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert "Lints for" not in out and "good condition" in out, out[-4000:]
