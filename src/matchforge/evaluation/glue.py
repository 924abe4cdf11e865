"""Glue of the localization test sets every matcher is evaluated on (rules/loftr.smk, rules/posfeat.smk):
``wf.localization``."""

from __future__ import annotations

from typing import Any

from matchforge import artifacts as A
from matchforge.conf import to_json
from matchforge.workflow.base import Part, present


class LocalizationGlue(Part):
    name = "localization"

    @property
    def testsets(self) -> dict[str, Any]:
        return self.section.testsets

    def spec(self, name: str) -> dict[str, Any]:
        """What a localization job reads (:class:`matchforge.evaluation.config.LocalizationJob`): the test set with
        workflow paths: own scene (the dataset.json, the scene's SfM, its metres per unit) or an Aachen-layout folder
        as given."""
        ts = {k: v for k, v in self.testsets[name].to_dict().items() if k != "type"}  # the job's type: localization
        if self.testsets[name].type == "aachen":
            return {"type": "localization", **ts}
        scene = ts["scene"] or self.wf.typed.datasets.root[ts["dataset"]].scenes[0]
        retrieved = {"query_pairs": A.LOCALIZATION_PAIRS.of(testset=name)} if ts["retrieval"] == "visual" else {}
        return {"type": "localization", "dataset": A.DATASET.of(dataset=ts["dataset"]), "sfm": A.SFM.of(scene=scene),
                "scene": scene, "metres_per_unit": self.wf.typed.scenes[scene].metres_per_unit,
                **{k: v for k, v in ts.items() if k not in ("dataset", "scene")}, **retrieved}

    def inputs(self, name: str) -> dict[str, Any]:
        spec = self.spec(name)
        if spec.get("aachen"):
            return {k: present(spec[k]) for k in ("aachen", "query_pairs", "db_pairs", "ground_truth") if spec.get(k)}
        retrieved = {"query_pairs": spec["query_pairs"]} if spec.get("query_pairs") else {}
        return {"dataset": spec["dataset"], "sfm": A.SFM_STATS.of(scene=spec["scene"]), **retrieved}

    def pairs_inputs(self, wc: Any) -> dict[str, Any]:
        """What retrieval reads: the dataset (which photos are database and queries) and the scene's SfM photos."""
        return {k: v for k, v in self.inputs(wc.testset).items() if k != "query_pairs"}

    def pairs_conf(self, wc: Any) -> str:
        """params of localization_pairs: only what the retrieval depends on (a scoring edit retrieves nothing)."""
        spec = self.spec(wc.testset)
        return to_json({k: spec[k] for k in ("dataset", "sfm", "scene", "query_k", "retrieval", "seed")})
