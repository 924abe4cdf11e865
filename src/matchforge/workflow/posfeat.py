"""Glue of PoSFeat training, extraction and evaluation and of the SIFT mutual-NN baseline (rules/posfeat.smk)."""

from __future__ import annotations

import shlex
from typing import Any

from matchforge import artifacts as A
from matchforge.conf import to_json
from matchforge.config_schema import run_train
from matchforge.evaluation.testsets import matching_options
from matchforge.workflow.base import present
from matchforge.workflow.loftr import LocalizationGlue, result_options, run_engine_options


class PoSFeatGlue(LocalizationGlue):
    @property
    def posfeat(self) -> dict[str, Any]:
        return self.config["posfeat"]

    @property
    def pf_runs(self) -> dict[str, Any]:
        return self.posfeat["runs"]

    @property
    def pf_matched(self) -> list[str]:
        """Test sets scored from exported matches: pose, homography and localization."""
        spec = self.posfeat["testsets"]
        return [t for t, s in spec.items() if s["type"] in ("pose", "homography")] + list(self.localization)

    @property
    def pf_reconstruction(self) -> list[str]:
        return [t for t, s in self.posfeat["testsets"].items() if s["type"] == "reconstruction"]

    # --- training -----------------------------------------------------------------------------------------

    def pf_init_file(self, run: str) -> str | None:
        """The run's init_weights as a file: another run's name becomes its kp/model.pt."""
        init = run_train(self.posfeat, run)["init_weights"]
        return A.POSFEAT_KP.of(pfrun=init) if init in self.pf_runs else init

    def pf_run_conf(self, run: str) -> dict[str, Any]:
        """Options of one run: the posfeat sections with the run's overrides on top (checked at planning)."""
        return {"device": self.posfeat["device"], **run_train(self.posfeat, run), "init_weights": self.pf_init_file(run)}

    def pf_train_params(self, wc: Any) -> str:
        return result_options(self.pf_run_conf(wc.pfrun))

    def pf_engine(self, wc: Any) -> str:
        return run_engine_options(self.pf_run_conf(wc.pfrun))

    def pf_train_inputs(self, wc: Any) -> dict[str, Any]:
        spec = self.pf_runs[wc.pfrun]
        inputs: dict[str, Any] = {}
        if spec.get("dataset"):
            inputs["dataset"] = A.DATASET.of(dataset=spec["dataset"])
        inputs["caps_root"] = present(spec.get("caps_root"))
        init = self.pf_init_file(wc.pfrun)
        if init and (init in {A.POSFEAT_KP.of(pfrun=r) for r in self.pf_runs} or present(init)):
            inputs["init_weights"] = init
        return inputs

    def pf_train_args(self, wc: Any) -> str:
        """--dataset / --caps-root from the run's own entries (a missing CAPS folder fails the job, naming it)."""
        spec = self.pf_runs[wc.pfrun]
        args = {"dataset": A.DATASET.of(dataset=spec["dataset"]) if spec.get("dataset") else None,
                "caps_root": spec.get("caps_root")}
        return " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in args.items() if v)

    # --- extraction and evaluation ------------------------------------------------------------------------

    def pf_testset(self, name: str) -> dict[str, Any]:
        """Test-set spec with workflow names resolved to paths (dataset -> dataset.json, scene -> SfM images)."""
        if name in self.localization:
            return self.loc_spec(name)
        spec = dict(self.posfeat["testsets"][name])
        if spec["type"] == "pose":
            spec["dataset"] = A.DATASET.of(dataset=spec["dataset"])
        if spec["type"] == "reconstruction" and spec.get("scene"):
            scene = spec.pop("scene")
            spec["images"], spec["sparse"] = A.SFM_IMAGES.of(scene=scene), A.SFM_SPARSE.of(scene=scene)
        return spec

    def pf_testset_conf(self, wc: Any) -> str:
        return to_json(self.pf_testset(wc.pftestset))

    def pf_matching_conf(self, wc: Any) -> str:
        return to_json(matching_options(self.pf_testset(wc.pftestset)))

    def pf_testset_input(self, wc: Any) -> Any:
        spec = self.pf_testset(wc.pftestset)
        if spec["type"] == "homography":
            return present(spec["path"])
        if spec["type"] == "localization":
            return list(self.loc_inputs(wc.pftestset).values())
        if spec["type"] == "reconstruction" and spec.get("eth"):
            return present(spec["eth"])
        return spec["dataset"] if spec["type"] == "pose" else spec["images"]

    def pf_extract_conf(self, wc: Any) -> str:
        return to_json({**self.pf_run_conf(wc.pfrun)["extract"], "method": "posfeat", "device": self.posfeat["device"]})

    def sift_extract_conf(self, wc: Any) -> str:
        """The SIFT baseline keeps as many keypoints as PoSFeat's extraction, at the same size."""
        extract = self.posfeat["train"]["extract"]
        return to_json({"max_size": extract["max_size"], "num_pts": extract["num_pts"], "method": "sift"})

    def pf_matcher(self, wc: Any, input: Any) -> str:
        return to_json({"name": "features", "features": input.features,
                        "working_size": self.pf_run_conf(wc.pfrun)["extract"]["max_size"]})

    def sift_mnn_matcher(self, wc: Any, input: Any) -> str:
        return to_json({"name": "features", "features": input.features,
                        "working_size": self.posfeat["train"]["extract"]["max_size"]})

    def pf_compare(self, wc: Any) -> dict[str, str]:
        """The SIFT curve drawn beside PoSFeat's in homography plots."""
        if self.posfeat["sift_baseline"] and self.pf_testset(wc.pftestset)["type"] == "homography":
            return {"sift": A.SIFT_MNN_EVAL.of(pftestset=wc.pftestset)}
        return {}

    def pf_compare_arg(self, wc: Any, input: Any) -> str:
        return " ".join(f"{k}={input[k]}" for k in self.pf_compare(wc))

    def sift_mnn_label(self, wc: Any = None) -> str:
        extract = self.posfeat["train"]["extract"]
        return f"sift (mutual NN, {extract['num_pts']} kp at {extract['max_size'] or 'full'} px)"

    def pf_targets(self) -> list[str]:
        out = [A.POSFEAT_EVAL.of(pfrun=run, pftestset=t) for run, spec in self.pf_runs.items()
               for t in [*spec["testsets"], *self.localization]]
        if self.posfeat["sift_baseline"]:
            used = sorted({t for spec in self.pf_runs.values() for t in spec["testsets"]})
            out += [A.SIFT_MNN_EVAL.of(pftestset=t) for t in used]
        return out
