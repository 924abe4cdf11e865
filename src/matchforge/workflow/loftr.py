"""Glue of LoFTR training and of the test sets LoFTR and the SIFT ratio baseline are evaluated on
(rules/loftr.smk), with the localization test sets every matcher is evaluated on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matchforge import artifacts as A
from matchforge.conf import to_json
from matchforge.config_schema import run_train
from matchforge.evaluation.testsets import matching_options, testset_available
from matchforge.loftr import PRETRAINED
from matchforge.training.options import engine_options, strip_options
from matchforge.workflow.base import Base, has, present

# What a LoFTR run trains on: passed to its training job with its options. The run's other keys (test sets, GPUs to
# reserve) are the workflow's own; engine options (training.options.NOT_RESULT_OPTIONS) reach the job as a
# resource. Editing either retrains nothing.
DATA_KEYS = ("dataset", "megadepth", "scannet")


def result_options(conf: dict[str, Any]) -> str:
    """params: the options that define what a training job learns (training.options.strip_options), as JSON."""
    return to_json(strip_options(conf))


def run_engine_options(conf: dict[str, Any]) -> str:
    """resources: the options that do not (training.options.NOT_RESULT_OPTIONS), as JSON: a resource, not a
    param, so editing ``num_workers`` or a checkpoint frequency plans no training job."""
    return to_json(engine_options(conf))


class LocalizationGlue(Base):
    @property
    def localization(self) -> dict[str, Any]:
        return self.config["localization"]["testsets"]

    def loc_spec(self, name: str) -> dict[str, Any]:
        """A localization test set with workflow paths: own scene (the dataset.json, the scene's SfM, its metres per
        unit) or an Aachen-layout folder as given."""
        ts = {k: v for k, v in self.localization[name].items() if k != "type"}  # the job's type: localization
        if self.localization[name]["type"] == "aachen":
            return {"type": "localization", **ts}
        scene = ts["scene"] or self.config["datasets"][ts["dataset"]]["scenes"][0]
        retrieved = {"query_pairs": self.loc_pairs(name)} if ts["retrieval"] == "visual" else {}
        return {"type": "localization", "dataset": A.DATASET.of(dataset=ts["dataset"]), "sfm": A.SFM.of(scene=scene),
                "scene": scene,
                "metres_per_unit": self.config["scenes"][scene]["metres_per_unit"],
                **{k: v for k, v in ts.items() if k not in ("dataset", "scene")}, **retrieved}

    @staticmethod
    def loc_pairs(name: str) -> str:
        """The retrieved query pairs of an own-scene localization test set (rule localization_pairs)."""
        return A.LOCALIZATION_PAIRS.of(testset=name)

    def loc_inputs(self, name: str) -> dict[str, Any]:
        spec = self.loc_spec(name)
        if spec.get("aachen"):
            return {k: present(spec[k]) for k in ("aachen", "query_pairs", "db_pairs", "ground_truth") if spec.get(k)}
        retrieved = {"query_pairs": spec["query_pairs"]} if spec.get("query_pairs") else {}
        return {"dataset": spec["dataset"], "sfm": f"{spec['sfm']}/stats.json", **retrieved}

    def loc_pairs_inputs(self, wc: Any) -> dict[str, Any]:
        """What retrieval reads: the dataset (which photos are database and queries) and the scene's SfM photos."""
        return {k: v for k, v in self.loc_inputs(wc.testset).items() if k != "query_pairs"}

    def loc_pairs_conf(self, wc: Any) -> str:
        """params of localization_pairs: only what the retrieval depends on (a scoring edit retrieves nothing)."""
        spec = self.loc_spec(wc.testset)
        return to_json({k: spec[k] for k in ("dataset", "sfm", "scene", "query_k", "retrieval", "seed")})


class LoFTRGlue(LocalizationGlue):
    @property
    def loftr(self) -> dict[str, Any]:
        return self.config["loftr"]

    @property
    def loftr_runs(self) -> list[str]:
        return list(self.loftr["runs"])

    @property
    def loftr_testsets(self) -> list[str]:
        return list(self.loftr["testsets"])

    # --- training -----------------------------------------------------------------------------------------

    def loftr_options(self, run: str) -> dict[str, Any]:
        """A run's training options: loftr.train with the run's own ``train`` on top."""
        return run_train(self.loftr, run)

    def loftr_layout(self, wc: Any) -> tuple[int, int]:
        """(processes per node, nodes) of a training run: its ``devices`` (an int > 0, else 1) and ``num_nodes``."""
        run = self.loftr_options(wc.run)
        devices = run["devices"] if isinstance(run["devices"], int) and run["devices"] > 0 else 1
        return devices, int(run["num_nodes"])

    def loftr_nodes(self, wc: Any) -> int:
        return self.loftr_layout(wc)[1]

    def loftr_tasks_per_node(self, wc: Any) -> int:
        return self.loftr_layout(wc)[0]

    def loftr_mpi(self, wc: Any) -> str | None:
        """SLURM: a multi-process run is an "mpi" job, whose shell command starts its tasks with srun."""
        devices, nodes = self.loftr_layout(wc)
        return "srun" if devices * nodes > 1 else None

    def loftr_threads(self, wc: Any) -> int:
        """CPU threads of one training process: the main process and its ``num_workers`` data-loader workers
        (Snakemake sets OMP_NUM_THREADS to it; on SLURM it is each task's cpus-per-task). The demo runs
        (num_workers 0) take one core each, so that two of them train side by side on 2 cores."""
        return self.loftr_options(wc.run)["num_workers"] + 1

    def loftr_gpus(self, wc: Any) -> int:
        return self.loftr["runs"][wc.run]["gpus"]

    def loftr_eval_gpus(self, wc: Any) -> int:
        return self.loftr["runs"][wc.run]["eval_gpus"]

    def loftr_init_file(self, run: str) -> str | None:
        """The file a run starts from: another run's weights.pt (built first), a path, or None (kornia name, no init)."""
        init = self.loftr_options(run)["init_weights"]
        if not init or (init in PRETRAINED and not Path(init).exists()):
            return None
        return A.LOFTR_WEIGHTS.of(run=init) if init in self.loftr["runs"] else init

    def loftr_train_conf(self, run: str) -> dict[str, Any]:
        """What a run's training job parses (matchforge.loftr.config.LoFTRRunConfig): its training data and options,
        init_weights as a file."""
        entry = self.loftr["runs"][run]
        conf = {**{k: entry[k] for k in DATA_KEYS if entry.get(k)}, **self.loftr_options(run)}
        conf["init_weights"] = self.loftr_init_file(run) or conf["init_weights"]
        return conf

    def loftr_train_params(self, wc: Any) -> str:
        return result_options(self.loftr_train_conf(wc.run))

    def loftr_engine(self, wc: Any) -> str:
        return run_engine_options(self.loftr_train_conf(wc.run))

    def loftr_batch(self, wc: Any) -> str:
        """params: the run's effective batch (batch_size x devices x nodes), which defines what it learns although
        ``devices`` and ``num_nodes`` are engine options; "auto" devices count the GPUs of the job's node."""
        rc = self.loftr_options(wc.run)
        return f"{rc['batch_size']}x{rc['devices']}x{rc['num_nodes']}"

    def loftr_train_inputs(self, wc: Any) -> dict[str, Any]:
        """The dataset.json of a matchforge dataset, or the index lists of a MegaDepth or ScanNet run (its images
        are the user's)."""
        rc = self.loftr["runs"][wc.run]
        if rc.get("dataset"):
            return {"dataset": A.DATASET.of(dataset=rc["dataset"])}
        if rc.get("megadepth"):
            md = rc["megadepth"]
            return {"index": present(md["list"], *([md["val"]["list"]] if md.get("val") else []))}
        sc = rc["scannet"]
        val = [sc["val"]["list"], sc["val"]["intrinsics"]] if sc.get("val") else []
        return {"index": present(sc["list"], sc["intrinsics"], *val)}

    def loftr_init_input(self, wc: Any) -> dict[str, str]:
        """The initial weights: another run's weights.pt (built first) or an existing file (a missing one fails
        the job)."""
        init = self.loftr_init_file(wc.run)
        built = self.loftr_options(wc.run)["init_weights"] in self.loftr["runs"]
        return {"init": init} if init and (built or present(init)) else {}

    def loftr_init_weights(self, wc: Any, input: Any) -> str:
        """What the initial-weights matching loads: the file, or the kornia name (downloaded once)."""
        return input.init if has(input, "init") else self.loftr_options(wc.run)["init_weights"]

    def loftr_before_matches(self, wc: Any) -> dict[str, str]:
        """A fine-tuning run's "before": the matches of its initial weights on the same test set, which for another
        configured run are that run's own match file (matched once, whichever run asks first)."""
        init = self.loftr_options(wc.run)["init_weights"]
        if not init:
            return {}
        if init in self.loftr["runs"]:
            return {"before": A.LOFTR_MATCHES.of(run=init, testset=wc.testset)}
        return {"before": A.LOFTR_INIT_MATCHES.of(run=wc.run, testset=wc.testset)}

    # --- evaluation ---------------------------------------------------------------------------------------

    def loftr_testset_spec(self, name: str) -> dict[str, Any]:
        """A test set LoFTR and the SIFT baseline are evaluated on: an entry of loftr.testsets or a localization set."""
        return self.loc_spec(name) if name in self.localization else self.loftr["testsets"][name]

    def loftr_testset_conf(self, wc: Any) -> str:
        return to_json(self.loftr_testset_spec(wc.testset))

    def loftr_matching_conf(self, wc: Any) -> str:
        """What matching a test set depends on (not its scoring options: editing those reruns only the scoring)."""
        return to_json(matching_options(self.loftr_testset_spec(wc.testset)))

    def loftr_testset_inputs(self, wc: Any) -> dict[str, Any]:
        """dataset.json for test sets of type 'dataset' (and the scene's SfM for localization); nothing else is
        produced by the workflow."""
        if wc.testset in self.localization:
            return self.loc_inputs(wc.testset)
        ts = self.loftr["testsets"][wc.testset]
        return {"dataset": A.DATASET.of(dataset=ts["dataset"])} if ts["type"] == "dataset" else {}

    def loftr_dataset_arg(self, wc: Any, input: Any) -> str:
        return f"--dataset {input.dataset}" if has(input, "dataset") else ""

    def before_arg(self, wc: Any, input: Any) -> str:
        return f"--before {input.before}" if has(input, "before") else ""

    def loftr_matcher(self, wc: Any, input: Any) -> str:
        return to_json({"name": "loftr", "weights": input.weights})

    def loftr_init_matcher(self, wc: Any, input: Any) -> str:
        return to_json({"name": "loftr", "weights": self.loftr_init_weights(wc, input)})

    def sift_ratio_matcher(self, wc: Any) -> str:
        return to_json({"name": "sift", **{k: v for k, v in self.loftr["baseline"].items() if k != "enabled"}})

    def sift_ratio_label(self, wc: Any = None) -> str:
        b = self.loftr["baseline"]
        return f"sift (mutual NN + ratio {b['ratio']:g}, {b['max_keypoints']} kp)"

    def loftr_targets(self) -> list[str]:
        """Trained runs, their evaluations on available test sets, and the baseline on the same test sets."""
        out, used = [], set()
        for run, rc in self.loftr["runs"].items():
            out.append(A.LOFTR_WEIGHTS.of(run=run))
            for ts in rc["testsets"]:
                if testset_available(self.loftr["testsets"][ts]):
                    out += [A.LOFTR_EVAL.of(run=run, testset=ts), A.LOFTR_EVAL_PICTURE.of(run=run, testset=ts)]
                    used.add(ts)
        baseline = self.loftr["baseline"]["enabled"]
        if baseline:
            out += [a.of(testset=ts) for ts in sorted(used) for a in (A.SIFT_RATIO_EVAL, A.SIFT_RATIO_PICTURE)]
        for name in self.localization:  # every run, and the SIFT baseline, localize on every localization test set
            out += [A.LOFTR_EVAL.of(run=run, testset=name) for run in self.loftr["runs"]]
            out += [A.SIFT_RATIO_EVAL.of(testset=name)] if baseline else []
        return out
