"""Glue of PoSFeat training, extraction and evaluation, and of the SIFT mutual-NN baseline evaluated beside it
(rules/posfeat.smk): ``wf.posfeat``."""

from __future__ import annotations

import shlex
from typing import Any

from matchforge import artifacts as A
from matchforge.conf import to_json
from matchforge.config_check import run_train
from matchforge.evaluation.testsets import matching_options
from matchforge.workflow.base import Part, present, result_options, run_engine_options


class PoSFeatGlue(Part):
    name = "posfeat"

    @property
    def runs(self) -> dict[str, Any]:
        return self.section.runs

    @property
    def matched(self) -> list[str]:
        """Test sets scored from exported matches: pose, homography and localization."""
        spec = self.section.testsets
        return [t for t, s in spec.items() if s.type in ("pose", "homography")] + list(self.wf.localization.testsets)

    @property
    def reconstruction(self) -> list[str]:
        return [t for t, s in self.section.testsets.items() if s.type == "reconstruction"]

    # --- training -----------------------------------------------------------------------------------------

    def init_file(self, run: str) -> str | None:
        """The run's init_weights as a file: another run's name becomes its kp/model.pt."""
        init = run_train(self.config["posfeat"], run)["init_weights"]
        return A.POSFEAT_KP.of(posfeat_run=init) if init in self.runs else init

    def run_conf(self, run: str) -> dict[str, Any]:
        """Options of one run: the posfeat sections with the run's overrides on top (checked at planning)."""
        return {"device": self.section.device, **run_train(self.config["posfeat"], run), "init_weights": self.init_file(run)}

    def train_params(self, wc: Any) -> str:
        return result_options(self.run_conf(wc.posfeat_run))

    def engine(self, wc: Any) -> str:
        return run_engine_options(self.run_conf(wc.posfeat_run))

    def train_inputs(self, wc: Any) -> dict[str, Any]:
        spec = self.runs[wc.posfeat_run]
        inputs: dict[str, Any] = {}
        if spec.dataset:
            inputs["dataset"] = A.DATASET.of(dataset=spec.dataset)
        inputs["caps_root"] = present(spec.caps_root)
        init = self.init_file(wc.posfeat_run)
        if init and (init in {A.POSFEAT_KP.of(posfeat_run=r) for r in self.runs} or present(init)):
            inputs["init_weights"] = init
        return inputs

    def train_args(self, wc: Any) -> str:
        """--dataset / --caps-root from the run's own entries (a missing CAPS folder fails the job, naming it)."""
        spec = self.runs[wc.posfeat_run]
        args = {"dataset": A.DATASET.of(dataset=spec.dataset) if spec.dataset else None, "caps_root": spec.caps_root}
        return " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in args.items() if v)

    # --- extraction and evaluation ------------------------------------------------------------------------

    def testset(self, name: str) -> dict[str, Any]:
        """Test-set spec with workflow names resolved to paths (dataset -> dataset.json, scene -> SfM images)."""
        if name in self.wf.localization.testsets:
            return self.wf.localization.spec(name)
        spec = self.section.testsets[name].to_dict()
        if spec["type"] == "pose":
            spec["dataset"] = A.DATASET.of(dataset=spec["dataset"])
        if spec["type"] == "reconstruction" and spec.get("scene"):
            scene = spec.pop("scene")
            spec["images"], spec["sparse"] = A.SFM_IMAGES.of(scene=scene), A.SFM_SPARSE.of(scene=scene)
        return spec

    def testset_conf(self, wc: Any) -> str:
        return to_json(self.testset(wc.posfeat_testset))

    def matching_conf(self, wc: Any) -> str:
        return to_json(matching_options(self.testset(wc.posfeat_testset)))

    def testset_input(self, wc: Any) -> Any:
        spec = self.testset(wc.posfeat_testset)
        if spec["type"] == "homography":
            return present(spec["path"])
        if spec["type"] == "localization":
            return list(self.wf.localization.inputs(wc.posfeat_testset).values())
        if spec["type"] == "reconstruction" and spec.get("eth"):
            return present(spec["eth"])
        return spec["dataset"] if spec["type"] == "pose" else spec["images"]

    def extract_conf(self, wc: Any) -> str:
        return to_json({**self.run_conf(wc.posfeat_run)["extract"], "method": "posfeat", "device": self.section.device})

    def sift_extract_conf(self, wc: Any) -> str:
        """The SIFT baseline keeps as many keypoints as PoSFeat's extraction, at the same size."""
        extract = self.section.train.extract
        return to_json({"max_size": extract.max_size, "num_pts": extract.num_pts, "method": "sift"})

    def matcher(self, wc: Any, input: Any) -> str:
        return to_json({"name": "features", "features": input.features,
                        "working_size": self.run_conf(wc.posfeat_run)["extract"]["max_size"]})

    def sift_matcher(self, wc: Any, input: Any) -> str:
        return to_json({"name": "features", "features": input.features,
                        "working_size": self.section.train.extract.max_size})

    def compare(self, wc: Any) -> dict[str, str]:
        """The SIFT curve drawn beside PoSFeat's in homography plots."""
        if self.section.sift_baseline and self.testset(wc.posfeat_testset)["type"] == "homography":
            return {"sift": A.SIFT_MNN_EVAL.of(posfeat_testset=wc.posfeat_testset)}
        return {}

    def compare_arg(self, wc: Any, input: Any) -> str:
        return " ".join(f"{k}={input[k]}" for k in self.compare(wc))

    def sift_label(self, wc: Any = None) -> str:
        extract = self.section.train.extract
        return f"sift (mutual NN, {extract.num_pts} kp at {extract.max_size or 'full'} px)"

    def targets(self) -> list[str]:
        out = [A.POSFEAT_EVAL.of(posfeat_run=run, posfeat_testset=t) for run, spec in self.runs.items()
               for t in [*spec.testsets, *self.wf.localization.testsets]]
        if self.section.sift_baseline:
            used = sorted({t for spec in self.runs.values() for t in spec.testsets})
            out += [A.SIFT_MNN_EVAL.of(posfeat_testset=t) for t in used]
        return out
