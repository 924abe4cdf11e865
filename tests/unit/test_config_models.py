"""The typed config models (matchforge/<package>/config.py): one place for every default, parsed once per job, and the files
generated from them (the schemas the workflow validates against, config/README.md's option tables)."""

from __future__ import annotations

import pytest

from testkit import REPO
from matchforge.errors import MatchforgeError
from matchforge.loftr.config import LoFTRRunConfig, LoFTRTrain
from matchforge.posfeat.config import PoSFeatRunConfig, PoSFeatTrain
from matchforge.shiftfocal.config import ShiftFocalTrain


def test_generated_schemas_and_option_tables_are_current():
    """`matchforge config-docs` has been run after the last change of a run config (else: run it)."""
    from matchforge.config_docs import outdated

    assert outdated(REPO) == []


def test_planning_parses_the_config_once_into_its_typed_form(tmp_path, monkeypatch):
    """validate_config parses the whole file once (one ConfigFile validation) and hands the rule files its plain
    form: paths in one spelling, whole numbers as written (a job's params string stays the same), an empty section
    with its defaults; a scene's overrides are checked merged over their section."""
    import json

    from matchforge.config_check import validate_config
    from matchforge.config_file import ConfigFile

    monkeypatch.chdir(tmp_path)
    calls = []
    original = ConfigFile.model_validate.__func__
    monkeypatch.setattr(ConfigFile, "model_validate",
                        classmethod(lambda cls, *a, **k: calls.append(cls.__name__) or original(cls, *a, **k)))
    config = {"scenes": {"a": {"images": "./photos/", "sfm": {"max_image_size": 800}}}, "sfm": None,
              "depth": {"align": {"max_abs_rel": 1}}}
    typed = validate_config(config)
    assert calls == ["ConfigFile"] and config == typed.to_dict()
    assert config["scenes"]["a"]["images"] == "photos" and config["scenes"]["a"]["sfm"] == {"max_image_size": 800}
    assert json.dumps(config["depth"]["align"]["max_abs_rel"]) == "1" and typed.depth.align.max_abs_rel == 1
    assert config["sfm"]["matcher"] == "auto" and config["loftr"]["runs"] == {}
    config = {"scenes": {"a": {"images": "photos", "sfm": {"max_image_size": 10}}}}
    with pytest.raises(MatchforgeError, match=r"scenes\.a\.sfm\.max_image_size: Input should be greater than or equal to 100"):
        validate_config(config)


def test_a_parsed_config_is_not_parsed_again():
    conf = LoFTRRunConfig.of({"img_resize": 320, "match_type": "sinkhorn"})
    assert LoFTRRunConfig.of(conf) is conf and conf.img_resize == 320 and conf.thr == LoFTRTrain().thr
    with pytest.raises(Exception):
        conf.img_resize = 640  # frozen: what a job parsed is what it trains with


def test_unknown_and_invalid_options_name_the_key_and_the_closest_name():
    with pytest.raises(MatchforgeError, match=r"'loftr.train.img_resise' \(did you mean 'img_resize'\?\)"):
        LoFTRRunConfig.of({"img_resise": 320}, "loftr.train")
    with pytest.raises(MatchforgeError, match=r"'posfeat.train.desc.stepz' \(did you mean 'steps'\?\)"):
        PoSFeatTrain.of({"desc": {"stepz": 3}}, "posfeat.train")
    with pytest.raises(MatchforgeError, match=r"invalid config at shiftfocal.train.steps: .*greater than or equal to 1"):
        ShiftFocalTrain.of({"steps": 0}, "shiftfocal.train")
    with pytest.raises(MatchforgeError, match=r"invalid config at loftr.train.match_type"):
        LoFTRRunConfig.of({"match_type": "superglue"}, "loftr.train")


def test_the_loftr_training_walk_validates_once(monkeypatch):
    """From the job's options to the Lightning module, its data module, loss and network: one validation (the
    job's parse); nothing below fills defaults or checks options again."""
    from matchforge.loftr.lightning_module import LoFTRModule, PairDataModule
    from matchforge.loftr.model import run_options

    calls = []
    original = LoFTRRunConfig.model_validate.__func__

    def counting(cls, *args, **kwargs):
        calls.append(cls.__name__)
        return original(cls, *args, **kwargs)

    monkeypatch.setattr(LoFTRRunConfig, "model_validate", classmethod(counting))
    conf = run_options({"block_dims": [16, 24, 32], "initial_dim": 16, "coarse_layers": 1, "num_workers": 0})
    module = LoFTRModule(conf)
    data = PairDataModule(conf, [], [])
    assert calls == ["LoFTRRunConfig"] and module.conf is conf and data.conf is conf
    assert module.hparams["conf"]["block_dims"] == [16, 24, 32]  # plain values in checkpoints


def test_posfeat_and_shiftfocal_parse_once():
    conf = PoSFeatRunConfig.of({"desc": {"steps": 3}, "model": {"arch": "resnet18"}})
    assert PoSFeatRunConfig.of(conf) is conf and conf.desc.steps == 3 and conf.kp.steps == 5000
    assert conf.data.color_jitter.hue == 0.4 and conf.device == "auto"
    sf = ShiftFocalTrain.of({"steps": 4})
    assert ShiftFocalTrain.of(sf) is sf and sf.targets == ["focal", "shift"]
