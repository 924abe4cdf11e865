"""The shipped SLURM profile on a real cluster (one node on loopback; `make test-slurm`, run by .ci/run).

Only the account and partitions are set, the documented way (environment variables); everything else is
the shipped `workflow/profiles/slurm`. The demo scene's SfM goes to the CPU partition and a shift/focal
training job to the GPU partition (read back with `scontrol show job`); the training job is `scancel`led
mid-training, checkpoints, is retried by Snakemake and resumes; a LoFTR run with `devices: 2` runs as one
job of 2 srun tasks in one DDP process group (CPU, gloo); afterwards `snakemake -n` plans nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
import yaml

from testkit import DEMO_IMAGES, FAST_SFM, REPO, real_data
from testkit.slurm import LoopbackCluster, available

pytestmark = pytest.mark.slurm


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    why = available()
    if why:
        pytest.fail(f"no loopback SLURM cluster: {why}")
    c = LoopbackCluster(tmp_path_factory.mktemp("slurm")).start()
    yield c
    c.stop()


def _squeue() -> list[tuple[str, str, str]]:
    """(job id, state, comment) of the queued and running jobs; the comment names the rule."""
    out = subprocess.run(["squeue", "-h", "-o", "%i|%T|%k"], capture_output=True, text=True).stdout
    return [tuple(line.split("|", 2)) for line in out.splitlines() if line.strip()]


def test_shipped_profile_places_jobs_and_resumes_a_cancelled_training(cluster, tmp_path):
    work = tmp_path / "w"
    work.mkdir()
    config = {
        "scenes": {"demo": {"images": str(DEMO_IMAGES), "sfm": FAST_SFM}},
        "datasets": {"d": {"scenes": ["demo"], "split": {"by": "images", "val_fraction": 0.0, "test_fraction": 0.3}}},
        # two processes in one DDP group through srun (CPU, gloo), on the GPU partition with 2 counted GPUs
        "loftr": {"testsets": {}, "baseline": {"enabled": False},
                  "runs": {"ddp": {"dataset": "d", "testsets": [], "gpus": 2,
                                   "train": {"img_resize": 256, "block_dims": [32, 48, 64], "initial_dim": 32,
                                             "coarse_layers": 1, "n_samples_per_subset": 2, "max_epochs": 1,
                                             "warmup_step": 1, "num_workers": 0, "accelerator": "cpu", "devices": 2,
                                             "strategy": "ddp", "val_max_pairs": 1, "train_pad_num_gt_min": 20}}}},
        "shiftfocal": {"sources": {"tum": {"type": "tum", "path": str(real_data("tum_rgbd"))}},
                       "train": {"targets": ["focal", "shift"], "steps": 300, "batch_size": 2, "num_points": 512, "resolution": 16,
                                 "channels": [4, 4, 8, 8, 16], "val_every": 100, "checkpoint_every": 0},
                       "runs": {"t": {"sources": ["tum"], "testsets": []}}},
    }
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "MATCHFORGE_SLURM_ACCOUNT": "", "MATCHFORGE_SLURM_CPU_PARTITION": "cpuq",
           "MATCHFORGE_SLURM_GPU_PARTITION": "gpuq", "PYTHONUNBUFFERED": "1"}
    targets = ["results/demo/sfm/stats.json", "results/models/shiftfocal/t/metrics.json",
               "results/models/loftr/ddp/model.json"]
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
           "--configfile", str(work / "config.yaml"), "--workflow-profile", str(REPO / "workflow" / "profiles" / "slurm"),
           "--set-threads", "loftr_train=1",  # 2 tasks x 1 CPU on the 2-CPU node
           "--slurm-no-account", "--slurm-init-seconds-before-status-checks", "1", *targets]  # no accounting here
    log = work / "snakemake.log"
    train_log = work / "logs" / "shiftfocal" / "train_t.log"
    seen: dict[str, str] = {}  # rule -> first SLURM job id
    jobs_of: dict[str, set[str]] = {}  # rule -> every SLURM job id it had
    cancelled = None
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        t0 = time.time()
        while proc.poll() is None and time.time() - t0 < 1800:
            for job_id, state, comment in _squeue():
                rule = re.search(r"rule_(\w+?)(_wildcards|$)", comment)
                if rule:
                    seen.setdefault(rule.group(1), job_id)
                    jobs_of.setdefault(rule.group(1), set()).add(job_id)
                    if (rule.group(1) == "shiftfocal_train" and cancelled is None and state == "RUNNING"
                            and train_log.is_file() and re.search(r"step [3-9] epoch", train_log.read_text())):
                        subprocess.run(["scancel", job_id], check=True)
                        cancelled = job_id
            time.sleep(0.5)
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert proc.returncode == 0, text[-4000:]
    assert cancelled is not None, f"the training job was never seen running mid-training: {seen}\n{text[-3000:]}"

    sfm, train = cluster.job(seen["sfm"]), cluster.job(seen["shiftfocal_train"])
    assert sfm["Partition"] == "cpuq" and "gpu" not in sfm.get("TresPerJob", ""), sfm
    assert train["Partition"] == "gpuq" and train.get("TresPerJob") == "gres:gpu:1", train
    assert int(sfm["NumCPUs"]) <= cluster.cpus  # fits the node: never pending forever
    # the cancelled job was retried as a new SLURM job, which resumed from the checkpoint
    assert cluster.job(cancelled)["JobState"] == "CANCELLED"
    assert len(jobs_of["shiftfocal_train"]) == 2 and cancelled in jobs_of["shiftfocal_train"], jobs_of
    assert "resuming the interrupted job" in train_log.read_text()
    assert (work / "results" / "demo" / "sfm" / "stats.json").is_file()

    # LoFTR with devices: 2 ran as one SLURM job of 2 tasks (srun), one process group, one set of outputs
    ddp = cluster.job(seen["loftr_train"])
    assert ddp["Partition"] == "gpuq" and ddp["NumTasks"] == "2" and ddp.get("TresPerJob") == "gres:gpu:2", ddp
    ddp_log = (work / "logs" / "loftr" / "ddp" / "train.log").read_text()
    assert "MEMBER: 1/2" in ddp_log and "MEMBER: 2/2" in ddp_log, ddp_log[-3000:]
    meta = yaml.safe_load((work / "results" / "models" / "loftr" / "ddp" / "model.json").read_text())
    files = len(yaml.safe_load((work / "results" / "datasets" / "d" / "dataset.json").read_text())["splits"]["train"]["scene_infos"])
    assert meta["true_batch_size"] == 2 and meta["global_step"] == files  # 2 draws per scene-info file, over 2 ranks

    dry = subprocess.run([*cmd[:cmd.index("--workflow-profile")], "--workflow-profile", "none", "-n", *targets],
                         capture_output=True, text=True, env=env)
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-2000:]
