"""Glue of the scene stages: SfM, depth, scene info and datasets (rules/sfm.smk, depth.smk, dataset.smk)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matchforge import artifacts as A
from matchforge.conf import to_json
from matchforge.workflow.base import Base, has, present


class ScenesGlue(Base):
    # --- sfm ----------------------------------------------------------------------------------------------

    def sfm_inputs(self, wc: Any) -> dict[str, list[str]]:
        """An existing COLMAP project's sparse model and database, when given and present."""
        colmap = self.config["scenes"][wc.scene].get("colmap") or {}
        return {k: present(colmap.get(k)) for k in ("sparse", "database")}

    def sfm_existing(self, wc: Any) -> str:
        return to_json(self.config["scenes"][wc.scene].get("colmap") or {})

    def sfm_targets(self) -> list[str]:
        return [A.SFM_STATS.of(scene=s) for s in self.sfm_scenes]

    # --- depth --------------------------------------------------------------------------------------------

    def shape_run(self, scene: str) -> str | None:
        """The shift/focal run whose networks give the scene's focal lengths and point clouds (None: no shape step)."""
        return self.scene_conf(scene, "depth")["shape"]["run"]

    def depth_params(self, *keys: str):
        """params: the scene's merged depth options restricted to ``keys``, as canonical JSON (so editing QA
        options does not rerun the prediction, and so on)."""
        return lambda wc: to_json({k: v for k, v in self.scene_conf(wc.scene, "depth").items() if k in keys})

    def depth_predict_params(self, wc: Any) -> str:
        """The backend and only that backend's options (editing the other backend's options reruns nothing)."""
        conf = self.scene_conf(wc.scene, "depth")
        return to_json({"backend": conf["backend"], conf["backend"]: conf[conf["backend"]]})

    def shape_inputs(self, wc: Any) -> dict[str, str]:
        run = self.shape_run(wc.scene)
        inputs = {"raw": A.DEPTH_RAW.of(scene=wc.scene), "focal": A.SHIFTFOCAL_FOCAL.of(sfrun=run),
                  "shift": A.SHIFTFOCAL_SHIFT.of(sfrun=run)}
        if wc.scene in self.single_scenes:
            inputs["images"] = A.DEPTH_IMAGES.of(scene=wc.scene)
        else:
            inputs.update(sparse=A.SFM_SPARSE.of(scene=wc.scene), images=A.SFM_IMAGES.of(scene=wc.scene))
        return inputs

    def shape_sparse_arg(self, wc: Any, input: Any) -> str:
        """``--sparse DIR`` for a scene with SfM (its SfM focal is the reference), else nothing."""
        return f"--sparse {input.sparse}" if has(input, "sparse") else ""

    def depth_targets(self) -> list[str]:
        out = [a.of(scene=s) for s in self.sfm_scenes for a in (A.DEPTH_QA, A.DEPTH_ALIGN_REPORT)]
        out += [A.DEPTH_INPUTS.of(scene=s) for s in self.single_scenes]
        out += [A.DEPTH_SHAPE_REPORT.of(scene=s) for s in self.scenes if self.shape_run(s) is not None]
        return out

    # --- datasets -----------------------------------------------------------------------------------------

    def dataset_scenes(self, wc: Any) -> list[str]:
        return self.config["datasets"][wc.dataset]["scenes"]

    def dataset_inputs(self, wc: Any) -> dict[str, list[str]]:
        scenes = self.dataset_scenes(wc)
        return {
            "scene_info": [A.SCENE_INFO.of(scene=s) for s in scenes],
            "images": [A.SFM_IMAGES.of(scene=s) for s in scenes],
            "depth": [A.DEPTH_H5.of(scene=s) for s in scenes],
        }

    def dataset_listing(self, wc: Any) -> str:
        """params: scene -> its scene-info, image and depth folders as canonical JSON (a reordered config is no
        change), written to a file by rule dataset_inputs: a command line naming every scene fails near 1,400
        scenes (the kernel's argument limit)."""
        return to_json({s: {"scene_info": A.SCENE_INFO.of(scene=s), "images": A.SFM_IMAGES.of(scene=s),
                            "depth": A.DEPTH_H5.of(scene=s)} for s in self.dataset_scenes(wc)})

    def dataset_conf(self, wc: Any) -> str:
        return to_json(self.config["datasets"][wc.dataset])

    @staticmethod
    def write_dataset_inputs(output: Any, params: Any, log: str) -> None:
        """For the dataset_inputs rule: the scene listing and the options as files, and a line saying so in the log."""
        Path(output.scenes).write_text(params.scenes)
        Path(output.conf).write_text(params.conf)
        Path(log).write_text(f"{output.scenes}: {params.scenes.count('scene_info')} scenes; {output.conf}\n")

    def dataset_targets(self) -> list[str]:
        return [a.of(dataset=d) for d in self.datasets for a in (A.DATASET, A.DATASET_GLUEFACTORY)]
