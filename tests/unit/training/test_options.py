"""Data-loader workers of a training process: as given, or chosen from the CPUs the process may use (issue 34)."""

from __future__ import annotations

import os

from matchforge.loftr.config import LoFTRTrain
from matchforge.training.options import AUTO_MAX_WORKERS, process_threads, loader_workers


def test_auto_workers_follow_the_cpus_of_the_process_and_its_node_share():
    assert LoFTRTrain().num_workers == "auto"  # the default: chosen from the machine, not a fixed 4
    assert loader_workers("auto", cpus=16, processes=1) == AUTO_MAX_WORKERS  # capped
    assert loader_workers("auto", cpus=16, processes=4) == 3  # 4 GPUs on a 16-core node: 4 CPUs per process
    assert loader_workers("auto", cpus=2, processes=1) == 1  # this machine: one worker beside the process
    assert loader_workers("auto", cpus=1, processes=1) == 0  # no core to spare: load in the process
    assert loader_workers(4, cpus=1, processes=8) == 4  # a number is used as given
    assert loader_workers("auto") == max(0, min(AUTO_MAX_WORKERS, len(os.sched_getaffinity(0))
                                                 // int(os.environ.get("LOCAL_WORLD_SIZE", "1")) - 1))


def test_a_training_job_asks_for_the_threads_its_workers_use():
    assert process_threads(0) == 1 and process_threads(4) == 5
    assert process_threads("auto") == AUTO_MAX_WORKERS + 1  # Snakemake caps it at --cores, SLURM gives cpus-per-task
