"""Glue of the depth stage (rules/depth.smk): ``wf.depth``."""

from __future__ import annotations

from typing import Any

from matchforge import artifacts as A
from matchforge.conf import to_json
from matchforge.workflow.base import Part, has


class DepthGlue(Part):
    name = "depth"

    def shape_run(self, scene: str) -> str | None:
        """The shift/focal run whose networks give the scene's focal lengths and point clouds (None: no shape step)."""
        return self.wf.scene_conf(scene, "depth")["shape"]["run"]

    def params(self, *keys: str):
        """params: the scene's merged depth options restricted to ``keys``, as canonical JSON (so editing QA
        options does not rerun the prediction, and so on)."""
        return lambda wc: to_json({k: v for k, v in self.wf.scene_conf(wc.scene, "depth").items() if k in keys})

    def predict_params(self, wc: Any) -> str:
        """The backend and only that backend's options (editing the other backend's options reruns nothing)."""
        conf = self.wf.scene_conf(wc.scene, "depth")
        return to_json({"backend": conf["backend"], conf["backend"]: conf[conf["backend"]]})

    def shape_inputs(self, wc: Any) -> dict[str, str]:
        run = self.shape_run(wc.scene)
        inputs = {"raw": A.DEPTH_RAW.of(scene=wc.scene), "focal": A.SHIFTFOCAL_FOCAL.of(shiftfocal_run=run),
                  "shift": A.SHIFTFOCAL_SHIFT.of(shiftfocal_run=run)}
        if wc.scene in self.wf.single_scenes:
            inputs["images"] = A.DEPTH_IMAGES.of(scene=wc.scene)
        else:
            inputs.update(sparse=A.SFM_SPARSE.of(scene=wc.scene), images=A.SFM_IMAGES.of(scene=wc.scene))
        return inputs

    def shape_sparse_arg(self, wc: Any, input: Any) -> str:
        """``--sparse DIR`` for a scene with SfM (its SfM focal is the reference), else nothing."""
        return f"--sparse {input.sparse}" if has(input, "sparse") else ""

    def targets(self) -> list[str]:
        out = [a.of(scene=s) for s in self.wf.sfm_scenes for a in (A.DEPTH_QA, A.DEPTH_ALIGN_REPORT)]
        out += [A.DEPTH_INPUTS.of(scene=s) for s in self.wf.single_scenes]
        out += [A.DEPTH_SHAPE_REPORT.of(scene=s) for s in self.wf.scenes if self.shape_run(s) is not None]
        return out
