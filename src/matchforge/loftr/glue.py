"""Glue of LoFTR training and evaluation, and of the SIFT ratio baseline evaluated beside it (rules/loftr.smk):
``wf.loftr``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matchforge import artifacts as A
from matchforge.conf import to_json
from matchforge.config_check import run_train
from matchforge.evaluation.testsets import matching_options, testset_available
from matchforge.loftr import PRETRAINED
from matchforge.loftr.config import LoFTRData
from matchforge.training.options import process_threads
from matchforge.workflow.base import Part, has, present, result_options, run_engine_options

# What a LoFTR run trains on (its LoFTRData options): passed to its training job with its options. The run's other
# keys (test sets, GPUs to reserve) are the workflow's own; engine options (training.options.NOT_RESULT_OPTIONS)
# reach the job as a resource. Editing either retrains nothing.
DATA_KEYS = tuple(LoFTRData.model_fields)


class LoFTRGlue(Part):
    name = "loftr"

    @property
    def runs(self) -> list[str]:
        return list(self.section.runs)

    @property
    def testsets(self) -> list[str]:
        return list(self.section.testsets)

    # --- training -----------------------------------------------------------------------------------------

    def options(self, run: str) -> dict[str, Any]:
        """A run's training options: loftr.train with the run's own ``train`` on top."""
        return run_train(self.config["loftr"], run)

    def layout(self, wc: Any) -> tuple[int, int]:
        """(processes per node, nodes) of a training run: its ``devices`` (an int > 0, else 1) and ``num_nodes``."""
        run = self.options(wc.run)
        devices = run["devices"] if isinstance(run["devices"], int) and run["devices"] > 0 else 1
        return devices, int(run["num_nodes"])

    def nodes(self, wc: Any) -> int:
        return self.layout(wc)[1]

    def tasks_per_node(self, wc: Any) -> int:
        return self.layout(wc)[0]

    def mpi(self, wc: Any) -> str | None:
        """SLURM: a multi-process run is an "mpi" job, whose shell command starts its tasks with srun."""
        devices, nodes = self.layout(wc)
        return "srun" if devices * nodes > 1 else None

    def threads(self, wc: Any) -> int:
        """CPU threads of one training process: the main process and its ``num_workers`` data-loader workers
        (Snakemake sets OMP_NUM_THREADS to it; on SLURM it is each task's cpus-per-task). The demo runs
        (num_workers 0) take one core each, so that two of them train side by side on 2 cores; ``auto`` asks for
        as many as its workers may use (training.options.process_threads)."""
        return process_threads(self.options(wc.run)["num_workers"])

    def gpus(self, wc: Any) -> int:
        return self.section.runs[wc.run].gpus

    def eval_gpus(self, wc: Any) -> int:
        return self.section.runs[wc.run].eval_gpus

    def init_file(self, run: str) -> str | None:
        """The file a run starts from: another run's weights.pt (built first), a path, or None (kornia name, no init)."""
        init = self.options(run)["init_weights"]
        if not init or (init in PRETRAINED and not Path(init).exists()):
            return None
        return A.LOFTR_WEIGHTS.of(run=init) if init in self.section.runs else init

    def train_conf(self, run: str) -> dict[str, Any]:
        """What a run's training job parses (matchforge.loftr.config.LoFTRRunConfig): its training data and options,
        init_weights as a file."""
        entry = self.section.runs[run].to_dict()
        conf = {**{k: entry[k] for k in DATA_KEYS if entry.get(k)}, **self.options(run)}
        conf["init_weights"] = self.init_file(run) or conf["init_weights"]
        return conf

    def train_params(self, wc: Any) -> str:
        return result_options(self.train_conf(wc.run))

    def engine(self, wc: Any) -> str:
        return run_engine_options(self.train_conf(wc.run))

    def batch(self, wc: Any) -> str:
        """params: the run's effective batch (batch_size x devices x nodes), which defines what it learns although
        ``devices`` and ``num_nodes`` are engine options; "auto" devices count the GPUs of the job's node."""
        rc = self.options(wc.run)
        return f"{rc['batch_size']}x{rc['devices']}x{rc['num_nodes']}"

    def train_inputs(self, wc: Any) -> dict[str, Any]:
        """The dataset.json of a matchforge dataset, or the index lists of a MegaDepth or ScanNet run (its images
        are the user's)."""
        rc = self.section.runs[wc.run]
        if rc.dataset:
            return {"dataset": A.DATASET.of(dataset=rc.dataset)}
        if rc.megadepth:
            md = rc.megadepth
            return {"index": present(md.list_, *([md.val.list_] if md.val else []))}
        sc = rc.scannet
        val = [sc.val.list_, sc.val.intrinsics] if sc.val else []
        return {"index": present(sc.list_, sc.intrinsics, *val)}

    def init_input(self, wc: Any) -> dict[str, str]:
        """The initial weights: another run's weights.pt (built first) or an existing file (a missing one fails
        the job)."""
        init = self.init_file(wc.run)
        built = self.options(wc.run)["init_weights"] in self.section.runs
        return {"init": init} if init and (built or present(init)) else {}

    def init_weights(self, wc: Any, input: Any) -> str:
        """What the initial-weights matching loads: the file, or the kornia name (downloaded once)."""
        return input.init if has(input, "init") else self.options(wc.run)["init_weights"]

    def before_matches(self, wc: Any) -> dict[str, str]:
        """A fine-tuning run's "before": the matches of its initial weights on the same test set, which for another
        configured run are that run's own match file (matched once, whichever run asks first)."""
        init = self.options(wc.run)["init_weights"]
        if not init:
            return {}
        if init in self.section.runs and self._same_size(wc.testset, init, wc.run):
            return {"before": A.LOFTR_MATCHES.of(run=init, testset=wc.testset)}
        return {"before": A.LOFTR_INIT_MATCHES.of(run=wc.run, testset=wc.testset)}

    def _same_size(self, testset: str, run: str, other: str) -> bool:
        """Whether two runs match ``testset`` at the same size (so one's match file is the other's "before")."""
        spec = self.section.testsets.get(testset)
        return spec is None or spec.img_resize != "run" or self.testset_size(testset, run) == self.testset_size(testset, other)

    # --- evaluation ---------------------------------------------------------------------------------------

    def testset_size(self, name: str, run: str | None) -> int:
        """The size a test set whose ``img_resize`` is ``run`` is matched at: the training ``img_resize`` of ``run``;
        for the SIFT baseline (no run) the smallest of the runs evaluated on the test set."""
        runs = [run] if run else [r for r, spec in self.section.runs.items() if name in spec.testsets] or self.runs
        return int(min(self.options(r)["img_resize"] for r in runs))

    def testset_spec(self, name: str, run: str | None = None) -> dict[str, Any]:
        """A test set LoFTR and the SIFT baseline are evaluated on: an entry of loftr.testsets (its ``img_resize: run``
        resolved for ``run``) or a localization set."""
        loc = self.wf.localization
        if name in loc.testsets:
            return loc.spec(name)
        spec = self.section.testsets[name].to_dict()
        if spec["img_resize"] == "run":
            spec["img_resize"] = self.testset_size(name, run)
        return spec

    def testset_conf(self, wc: Any) -> str:
        return to_json(self.testset_spec(wc.testset, getattr(wc, "run", None)))

    def matching_conf(self, wc: Any) -> str:
        """What matching a test set depends on (not its scoring options: editing those reruns only the scoring)."""
        return to_json(matching_options(self.testset_spec(wc.testset, getattr(wc, "run", None))))

    def testset_inputs(self, wc: Any) -> dict[str, Any]:
        """dataset.json for test sets of type 'dataset' (and the scene's SfM for localization); nothing else is
        produced by the workflow."""
        if wc.testset in self.wf.localization.testsets:
            return self.wf.localization.inputs(wc.testset)
        ts = self.section.testsets[wc.testset]
        return {"dataset": A.DATASET.of(dataset=ts.dataset)} if ts.type == "dataset" else {}

    @staticmethod
    def dataset_arg(wc: Any, input: Any) -> str:
        return f"--dataset {input.dataset}" if has(input, "dataset") else ""

    @staticmethod
    def before_arg(wc: Any, input: Any) -> str:
        return f"--before {input.before}" if has(input, "before") else ""

    @staticmethod
    def matcher(wc: Any, input: Any) -> str:
        return to_json({"name": "loftr", "weights": input.weights})

    def init_matcher(self, wc: Any, input: Any) -> str:
        return to_json({"name": "loftr", "weights": self.init_weights(wc, input)})

    def baseline_matcher(self, wc: Any) -> str:
        """The SIFT ratio baseline (loftr.baseline) as a matcher."""
        return to_json({"name": "sift", **{k: v for k, v in self.section.baseline.to_dict().items() if k != "enabled"}})

    def baseline_label(self, wc: Any = None) -> str:
        b = self.section.baseline
        return f"sift (mutual NN + ratio {b.ratio:g}, {b.max_keypoints} kp)"

    def targets(self) -> list[str]:
        """Trained runs, their evaluations on available test sets, and the baseline on the same test sets."""
        out, used = [], set()
        for run, rc in self.section.runs.items():
            out.append(A.LOFTR_WEIGHTS.of(run=run))
            for ts in rc.testsets:
                if testset_available(self.section.testsets[ts].to_dict()):
                    out += [A.LOFTR_EVAL.of(run=run, testset=ts), A.LOFTR_EVAL_PICTURE.of(run=run, testset=ts)]
                    used.add(ts)
        baseline = self.section.baseline.enabled
        if baseline:
            out += [a.of(testset=ts) for ts in sorted(used) for a in (A.SIFT_RATIO_EVAL, A.SIFT_RATIO_PICTURE)]
        for name in self.wf.localization.testsets:  # every run, and the SIFT baseline, localize on every localization set
            out += [A.LOFTR_EVAL.of(run=run, testset=name) for run in self.section.runs]
            out += [A.SIFT_RATIO_EVAL.of(testset=name)] if baseline else []
        return out
