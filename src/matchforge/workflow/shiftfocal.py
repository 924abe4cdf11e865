"""Glue of the shift/focal point-cloud model: data generation, training, evaluation (rules/shiftfocal.smk)."""

from __future__ import annotations

import shlex
from typing import Any

from matchforge import artifacts as A
from matchforge.conf import deep_merge, to_json
from matchforge.config_schema import run_train
from matchforge.workflow.base import Base, present
from matchforge.workflow.loftr import result_options, run_engine_options


class ShiftFocalGlue(Base):
    @property
    def shiftfocal(self) -> dict[str, Any]:
        return self.config["shiftfocal"]

    @property
    def sf_runs(self) -> dict[str, Any]:
        return self.shiftfocal["runs"]

    @property
    def sf_sources(self) -> dict[str, Any]:
        return self.shiftfocal["sources"]

    def sf_source_conf(self, wc: Any) -> str:
        """A source's options: the data section with the source's own on top."""
        return to_json(deep_merge(self.shiftfocal["data"], self.sf_sources[wc.source]))

    def sf_data_inputs(self, wc: Any) -> dict[str, Any]:
        src = self.sf_sources[wc.source]
        if src["type"] == "matchforge":
            s = src["scene"]
            return {"h5": A.DEPTH_H5.of(scene=s), "sparse": A.SFM_SPARSE.of(scene=s), "images": A.SFM_IMAGES.of(scene=s)}
        return {"path": present(src["path"])}

    def sf_data_args(self, wc: Any) -> str:
        """The source's folders as CLI arguments (a missing user folder fails this job only, naming it)."""
        src = self.sf_sources[wc.source]
        paths = self.sf_data_inputs(wc) if src["type"] == "matchforge" else {"path": src["path"]}
        return " ".join(f"--{k} {shlex.quote(str(v))}" for k, v in paths.items())

    def sf_train_conf(self, run: str) -> dict[str, Any]:
        """A run's training options: shiftfocal.train with the run's overrides on top; another run's name as
        init_weights becomes its folder."""
        conf = run_train(self.shiftfocal, run)
        if conf["init_weights"] in self.sf_runs:
            conf["init_weights"] = A.SHIFTFOCAL_RUN.of(sfrun=conf["init_weights"])
        return conf

    def sf_train_params(self, wc: Any) -> str:
        return result_options(self.sf_train_conf(wc.sfrun))

    def sf_engine(self, wc: Any) -> str:
        return run_engine_options(self.sf_train_conf(wc.sfrun))

    def sf_train_inputs(self, wc: Any) -> dict[str, Any]:
        inputs: dict[str, Any] = {"data": [A.SHIFTFOCAL_DATA.of(source=s) for s in self.sf_runs[wc.sfrun]["sources"]]}
        conf = self.sf_train_conf(wc.sfrun)
        init = conf["init_weights"]
        if init:
            files = [f"{init}/{t}.pt" for t in conf["targets"]]
            inputs["init"] = files if init in {A.SHIFTFOCAL_RUN.of(sfrun=r) for r in self.sf_runs} else present(*files)
        return inputs

    def sf_eval_conf(self) -> str:
        return to_json(self.shiftfocal["eval"])

    def sf_targets(self) -> list[str]:
        out = [A.SHIFTFOCAL_EVAL.of(sfrun=run, source=t) for run, spec in self.sf_runs.items() for t in spec["testsets"]]
        return out + [A.SHIFTFOCAL_METRICS.of(sfrun=run) for run in self.sf_runs]
