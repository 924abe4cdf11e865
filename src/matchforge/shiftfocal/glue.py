"""Glue of the shift/focal point-cloud model: data generation, training, evaluation (rules/shiftfocal.smk):
``wf.shiftfocal``."""

from __future__ import annotations

import shlex
from typing import Any

from matchforge import artifacts as A
from matchforge.conf import deep_merge, to_json
from matchforge.config_check import run_train
from matchforge.workflow.base import Part, present, result_options, run_engine_options


class ShiftFocalGlue(Part):
    name = "shiftfocal"

    @property
    def runs(self) -> dict[str, Any]:
        return self.section.runs

    @property
    def sources(self) -> dict[str, Any]:
        return self.section.sources

    def source_conf(self, wc: Any) -> str:
        """A source's options: the data section with the source's own on top."""
        return to_json(deep_merge(self.section.data.to_dict(), self.sources[wc.source].to_dict()))

    def data_inputs(self, wc: Any) -> dict[str, Any]:
        src = self.sources[wc.source]
        if src.type == "matchforge":
            s = src.scene
            return {"h5": A.DEPTH_H5.of(scene=s), "sparse": A.SFM_SPARSE.of(scene=s), "images": A.SFM_IMAGES.of(scene=s)}
        return {"path": present(src.path)}

    def data_args(self, wc: Any) -> str:
        """The source's folders as CLI arguments (a missing user folder fails this job only, naming it)."""
        src = self.sources[wc.source]
        paths = self.data_inputs(wc) if src.type == "matchforge" else {"path": src.path}
        return " ".join(f"--{k} {shlex.quote(str(v))}" for k, v in paths.items())

    def train_conf(self, run: str) -> dict[str, Any]:
        """A run's training options: shiftfocal.train with the run's overrides on top; another run's name as
        init_weights becomes its folder."""
        conf = run_train(self.config["shiftfocal"], run)
        if conf["init_weights"] in self.runs:
            conf["init_weights"] = A.SHIFTFOCAL_RUN.of(shiftfocal_run=conf["init_weights"])
        return conf

    def train_params(self, wc: Any) -> str:
        return result_options(self.train_conf(wc.shiftfocal_run))

    def engine(self, wc: Any) -> str:
        return run_engine_options(self.train_conf(wc.shiftfocal_run))

    def train_inputs(self, wc: Any) -> dict[str, Any]:
        inputs: dict[str, Any] = {"data": [A.SHIFTFOCAL_DATA.of(source=s) for s in self.runs[wc.shiftfocal_run].sources]}
        conf = self.train_conf(wc.shiftfocal_run)
        init = conf["init_weights"]
        if init:
            files = [f"{init}/{t}.pt" for t in conf["targets"]]
            inputs["init"] = files if init in {A.SHIFTFOCAL_RUN.of(shiftfocal_run=r) for r in self.runs} else present(*files)
        return inputs

    def eval_conf(self) -> str:
        return to_json(self.section.eval.to_dict())

    def targets(self) -> list[str]:
        out = [A.SHIFTFOCAL_EVAL.of(shiftfocal_run=run, source=t) for run, spec in self.runs.items() for t in spec.testsets]
        return out + [A.SHIFTFOCAL_METRICS.of(shiftfocal_run=run) for run in self.runs]
