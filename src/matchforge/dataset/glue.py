"""Glue of scene-info files and datasets (rules/dataset.smk): ``wf.dataset``."""

from __future__ import annotations

from typing import Any

from matchforge import artifacts as A
from matchforge.conf import to_json
from matchforge.workflow.base import Part


class DatasetGlue(Part):
    name = "datasets"

    def gt_img_resize(self, scene: str) -> int:
        """The size ground-truth matches of ``scene`` are counted at when ``scene_info.gt_img_resize`` is null: the
        smallest training ``img_resize`` of the LoFTR runs whose dataset holds the scene, else of those datasets'
        ``loftr.img_resize``, else 640."""
        datasets = [d for d, spec in self.section.root.items() if scene in spec.scenes]
        loftr = self.wf.loftr
        runs = [loftr.options(r)["img_resize"] for r, spec in loftr.section.runs.items() if spec.dataset in datasets]
        sizes = runs or [self.section.root[d].loftr.img_resize for d in datasets]
        return int(min(sizes)) if sizes else 640

    def scene_info_params(self, wc: Any) -> str:
        """params of scene_info: the scene's options, with ``gt_img_resize`` following its training runs when null."""
        conf = self.wf.scene_conf(wc.scene, "scene_info")
        if conf["gt_img_resize"] is None:
            conf["gt_img_resize"] = self.gt_img_resize(wc.scene)
        return to_json(conf)

    def scenes(self, wc: Any) -> list[str]:
        return self.section.root[wc.dataset].scenes

    def inputs(self, wc: Any) -> dict[str, list[str]]:
        scenes = self.scenes(wc)
        return {
            "scene_info": [A.SCENE_INFO.of(scene=s) for s in scenes],
            "images": [A.SFM_IMAGES.of(scene=s) for s in scenes],
            "depth": [A.DEPTH_H5.of(scene=s) for s in scenes],
        }

    def listing(self, wc: Any) -> str:
        """params: scene -> its scene-info, image and depth folders as canonical JSON (a reordered config is no
        change), written to a file by rule dataset_inputs: a command line naming every scene fails near 1,400
        scenes (the kernel's argument limit)."""
        return to_json({s: {"scene_info": A.SCENE_INFO.of(scene=s), "images": A.SFM_IMAGES.of(scene=s),
                            "depth": A.DEPTH_H5.of(scene=s)} for s in self.scenes(wc)})

    def conf(self, wc: Any) -> str:
        return to_json(self.section.root[wc.dataset].to_dict())

    def targets(self) -> list[str]:
        return [a.of(dataset=d) for d in self.wf.datasets for a in (A.DATASET, A.DATASET_GLUEFACTORY)]
