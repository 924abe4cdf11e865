"""Glue of the SfM stage (rules/sfm.smk): ``wf.sfm``."""

from __future__ import annotations

from typing import Any

from matchforge import artifacts as A
from matchforge.conf import to_json
from matchforge.workflow.base import Part, present


class SfMGlue(Part):
    name = "sfm"

    def inputs(self, wc: Any) -> dict[str, list[str]]:
        """An existing COLMAP project's sparse model and database, when given and present."""
        colmap = self.wf.typed.scenes[wc.scene].colmap
        return {"sparse": present(colmap and colmap.sparse), "database": present(colmap and colmap.database)}

    def existing(self, wc: Any) -> str:
        colmap = self.wf.typed.scenes[wc.scene].colmap
        return to_json(colmap.to_dict() if colmap else {})

    def targets(self) -> list[str]:
        return [A.SFM_STATS.of(scene=s) for s in self.wf.sfm_scenes]
