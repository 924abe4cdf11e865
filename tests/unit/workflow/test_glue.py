"""The workflow's glue (matchforge.workflow) as plain functions of a validated config, without Snakemake; and the
rule files, which hold rule declarations only."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
import yaml

from testkit import REPO
from matchforge.config_check import validate_config
from matchforge.workflow.base import one_of
from matchforge.workflow.glue import Workflow


class Inputs(dict):
    """A job's named inputs as Snakemake passes them to params functions (attributes and keys())."""

    __getattr__ = dict.__getitem__


def demo_config(**edits) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for dotted, value in edits.items():
        *parents, key = dotted.split("__")
        node = config
        for p in parents:
            node = node[p]
        node[key] = value
    validate_config(config)
    return config


@pytest.fixture(scope="module")
def wf() -> Workflow:
    return Workflow(demo_config())


def test_rule_files_hold_only_rule_declarations():
    """No function, lambda or computed global in Snakefile and rules/*.smk: what a rule needs from the config is a
    method of matchforge.workflow.Workflow (the only global is `wf`, made by rules/common.smk)."""
    offenders = []
    for path in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"^\s*def \w|\blambda\b", code) or (re.match(r"^[A-Za-z_]\w*\s*=", code) and not code.startswith("wf =")):
                offenders.append(f"{path.relative_to(REPO)}:{i}: {line.strip()}")
            if re.match(r"^\s+wf = ", code) and path.name != "common.smk":
                offenders.append(f"{path.relative_to(REPO)}:{i}: {line.strip()}")
    assert offenders == [], "\n".join(offenders)


def test_wildcard_constraints_match_exactly_the_configured_names(wf):
    pattern = re.compile(f"^(?:{wf.constraint('testset')})$")
    assert all(pattern.match(n) for n in ["demo_train", "demo_test", "reichstag", "megadepth1500", "demo_loc"])
    assert not pattern.match("demo") and not pattern.match("demo_train_x") and not pattern.match("demo.test")
    assert re.match(f"^(?:{wf.constraint('localization_testset')})$", "demo_loc")
    assert wf.names()["posfeat_matched"] == ["homography", "demo_test", "demo_loc"]
    assert wf.names()["posfeat_reconstruction"] == ["sacre_coeur"]
    assert one_of([]) == "(?!)" and not re.match(f"^(?:{one_of([])})$", "")
    assert one_of(["a.b"]) == r"a\.b"


def test_loftr_training_options_and_initial_weights(wf):
    conf = wf.loftr.train_conf("demo_ds_ft")
    assert not {"testsets", "gpus", "eval_gpus"} & set(conf)  # the workflow's keys retrain nothing
    assert conf["init_weights"] == "results/models/loftr/demo_ds/weights.pt"  # another run: its weights, built first
    assert wf.loftr.init_input(SimpleNamespace(run="demo_ds_ft")) == {"init": "results/models/loftr/demo_ds/weights.pt"}
    assert wf.loftr.init_input(SimpleNamespace(run="demo_ds")) == {}
    assert wf.loftr.before_matches(SimpleNamespace(run="demo_ds_ft", testset="demo_test")) == \
        {"before": "results/eval/matches/loftr/demo_ds/demo_test.h5"}  # matched once, by demo_ds's own rule
    assert wf.loftr.before_matches(SimpleNamespace(run="demo_ds", testset="demo_test")) == {}
    params = json.loads(wf.loftr.train_params(SimpleNamespace(run="demo_ds")))
    engine = json.loads(wf.loftr.engine(SimpleNamespace(run="demo_ds")))
    assert "num_workers" in engine and "num_workers" not in params and params["img_resize"] == 320


def test_a_released_weight_name_is_matched_by_name():
    wf = Workflow(demo_config(loftr__runs__demo_ds_ft__train__init_weights="outdoor"))
    wc = SimpleNamespace(run="demo_ds_ft", testset="demo_test")
    assert wf.loftr.init_input(wc) == {}  # nothing to build or find: kornia downloads it in the job
    assert json.loads(wf.loftr.init_matcher(wc, Inputs()))["weights"] == "outdoor"
    assert wf.loftr.before_matches(wc) == {"before": "results/eval/matches/loftr-init/demo_ds_ft/demo_test.h5"}
    assert wf.loftr.train_conf("demo_ds_ft")["init_weights"] == "outdoor"


def test_loftr_process_layout():
    wf = Workflow(demo_config(loftr__runs__demo_ds__train__devices="auto"))
    wc = SimpleNamespace(run="demo_ds")
    assert (wf.loftr.tasks_per_node(wc), wf.loftr.nodes(wc), wf.loftr.mpi(wc)) == (1, 1, None)
    wf = Workflow(demo_config(loftr__runs__demo_ds__train__devices=2, loftr__runs__demo_ds__train__num_nodes=3))
    assert (wf.loftr.tasks_per_node(wc), wf.loftr.nodes(wc), wf.loftr.mpi(wc)) == (2, 3, "srun")
    assert wf.loftr.batch(wc) == "1x2x3" and wf.loftr.threads(wc) == 1  # num_workers 0: the main process only
    wf = Workflow(demo_config(loftr__train__num_workers="auto"))
    assert wf.loftr.threads(wc) == 9  # auto: up to 8 workers and the process; the job uses what it is given


def test_test_set_inputs_and_arguments(wf):
    assert wf.loftr.testset_inputs(SimpleNamespace(testset="demo_test")) == {"dataset": "results/datasets/demo/dataset.json"}
    assert wf.loftr.testset_inputs(SimpleNamespace(testset="reichstag")) == {}
    loc = wf.loftr.testset_inputs(SimpleNamespace(testset="demo_loc"))
    assert loc == {"dataset": "results/datasets/demo/dataset.json", "sfm": "results/sacre_coeur/sfm/stats.json",
                   "query_pairs": "results/eval/localization/demo_loc/pairs-query.txt"}  # retrieved once, read by all
    demo_loc = SimpleNamespace(testset="demo_loc")
    assert "query_pairs" not in wf.localization.pairs_inputs(demo_loc)
    assert json.loads(wf.localization.pairs_conf(demo_loc)) == {"dataset": "results/datasets/demo/dataset.json", "query_k": 2,
                                                      "retrieval": "visual", "scene": "sacre_coeur", "seed": 0,
                                                      "sfm": "results/sacre_coeur/sfm"}  # no scoring option
    assert wf.loftr.dataset_arg(None, Inputs(dataset="d.json")) == "--dataset d.json"
    assert wf.loftr.dataset_arg(None, Inputs()) == ""
    matching = json.loads(wf.loftr.matching_conf(SimpleNamespace(testset="demo_test")))
    assert "ransac_thresh" not in matching and matching["img_resize"] == 480  # scoring options rerun only scoring
    assert json.loads(wf.loftr.testset_conf(SimpleNamespace(testset="demo_test")))["ransac_thresh"] == 0.5
    assert json.loads(wf.loftr.baseline_matcher(None)) == {"name": "sift", "max_keypoints": 4096, "ratio": 0.8, "img_resize": None}
    assert wf.loftr.baseline_label() == "sift (mutual NN + ratio 0.8, 4096 kp)"


def test_a_test_set_follows_the_size_of_the_run_it_evaluates():
    """img_resize: run (the default) is the evaluated run's training size, written once; the SIFT baseline takes the
    smallest of the runs evaluated on the test set; a fine-tune whose start matches at another size gets its own
    "before" instead of the other run's match file."""
    testsets = demo_config()["loftr"]["testsets"]
    del testsets["demo_test"]["img_resize"]  # the default: run
    wf = Workflow(demo_config(loftr__testsets=testsets, loftr__runs__demo_ot__train__img_resize=256))
    size = {r: json.loads(wf.loftr.matching_conf(SimpleNamespace(run=r, testset="demo_test")))["img_resize"]
            for r in ("demo_ds", "demo_ot", "demo_ds_ft")}
    assert size == {"demo_ds": 320, "demo_ot": 256, "demo_ds_ft": 320}  # loftr.train's 320 unless the run sets its own
    assert json.loads(wf.loftr.testset_conf(SimpleNamespace(testset="demo_test")))["img_resize"] == 256  # the baseline
    assert json.loads(wf.loftr.matching_conf(SimpleNamespace(run="demo_ds", testset="reichstag")))["img_resize"] == 480
    assert wf.loftr.before_matches(SimpleNamespace(run="demo_ds_ft", testset="demo_test")) == \
        {"before": "results/eval/matches/loftr/demo_ds/demo_test.h5"}  # same size: demo_ds's own matches
    wf = Workflow(demo_config(loftr__testsets=testsets, loftr__runs__demo_ds_ft__train__img_resize=256))
    assert wf.loftr.before_matches(SimpleNamespace(run="demo_ds_ft", testset="demo_test")) == \
        {"before": "results/eval/matches/loftr-init/demo_ds_ft/demo_test.h5"}  # 256 against demo_ds's 320


def test_posfeat_run_options_and_test_sets(wf):
    conf = wf.posfeat.run_conf("demo")
    assert conf["model"]["arch"] == "resnet18" and conf["desc"]["steps"] == 4 and conf["init_weights"] is None
    assert wf.posfeat.testset("demo_test")["dataset"] == "results/datasets/demo/dataset.json"
    rec = wf.posfeat.testset("sacre_coeur")
    assert (rec["images"], rec["sparse"]) == ("results/sacre_coeur/sfm/images", "results/sacre_coeur/sfm/sparse")
    assert "scene" not in rec
    assert wf.posfeat.testset_input(SimpleNamespace(posfeat_testset="sacre_coeur")) == "results/sacre_coeur/sfm/images"
    assert wf.posfeat.testset_input(SimpleNamespace(posfeat_testset="homography")) == ["resources/testsets/homography"]
    assert wf.posfeat.compare(SimpleNamespace(posfeat_testset="homography")) == {"sift": "results/eval/sift/mnn/homography.json"}
    assert wf.posfeat.compare(SimpleNamespace(posfeat_testset="demo_test")) == {}
    assert wf.posfeat.train_args(SimpleNamespace(posfeat_run="demo")) == "--dataset results/datasets/demo/dataset.json"
    assert json.loads(wf.posfeat.sift_extract_conf(None)) == {"max_size": 480, "num_pts": 2048, "method": "sift"}


def test_posfeat_initial_weights_from_another_run():
    runs = {"demo": {"dataset": "demo", "testsets": []}, "second": {"dataset": "demo", "train": {"init_weights": "demo"}},
            "fresh": {"dataset": "demo", "train": {"init_weights": None}}}
    wf = Workflow(demo_config(posfeat__runs=runs))
    assert wf.posfeat.init_file("second") == "results/models/posfeat/demo/kp/model.pt"
    assert wf.posfeat.train_inputs(SimpleNamespace(posfeat_run="second"))["init_weights"] == "results/models/posfeat/demo/kp/model.pt"
    assert wf.posfeat.init_file("fresh") is None


def test_shiftfocal_options_inputs_and_targets(wf):
    src = json.loads(wf.shiftfocal.source_conf(SimpleNamespace(source="sacre_coeur")))
    assert (src["max_side"], src["min_valid"], src["holdout"]) == (320, 0.0, 0.0)  # the source's own on the data section
    assert wf.shiftfocal.data_inputs(SimpleNamespace(source="sacre_coeur"))["h5"] == "results/sacre_coeur/depth/h5"
    assert wf.shiftfocal.data_args(SimpleNamespace(source="tum_rgbd")) == "--path resources/testsets/tum_rgbd"
    assert wf.shiftfocal.train_inputs(SimpleNamespace(shiftfocal_run="demo")) == \
        {"data": ["results/shiftfocal/data/tum_rgbd", "results/shiftfocal/data/sacre_coeur"]}
    runs = {"demo": {"sources": ["tum_rgbd"]}, "more": {"sources": ["tum_rgbd"], "train": {"init_weights": "demo"}}}
    wf2 = Workflow(demo_config(shiftfocal__runs=runs))
    assert wf2.shiftfocal.train_inputs(SimpleNamespace(shiftfocal_run="more"))["init"] == \
        ["results/models/shiftfocal/demo/focal.pt", "results/models/shiftfocal/demo/shift.pt"]
    assert wf.shiftfocal.targets() == ["results/eval/shiftfocal/demo/tum_rgbd.json", "results/models/shiftfocal/demo/metrics.json"]


def test_default_targets_and_summary(wf):
    targets = wf.all_targets()
    assert len(targets) == len(set(targets))
    assert "results/sacre_coeur/sfm/stats.json" in targets and "results/sacre_coeur/depth/shape.json" in targets
    assert "results/models/loftr/demo_ot/weights.pt" in targets and "results/eval/loftr/demo_ds/demo_loc.json" in targets
    assert "results/eval/sift/ratio/reichstag.json" in targets and "results/eval/sift/mnn/homography.json" in targets
    assert not any("megadepth1500" in t for t in targets)  # its images are not here: not a target
    assert {"results/summary/scenes.csv", "results/summary/relpose.csv", "results/summary/shape.png"} <= set(targets)
    assert not any(t.startswith("results/summary") for t in wf.summary_inputs())
    seen = {}
    outputs = wf.summary_outputs(lambda path, **kw: seen.setdefault(path, kw) and path)
    assert outputs["shape_png"] == "results/summary/shape.png"
    assert seen["results/summary/shape.png"]["caption"] == "../workflow/report/shape_eval.rst"
    assert seen["results/summary/relpose.csv"]["caption"] == "../workflow/report/relpose.rst"


def test_dataset_listing_is_the_same_for_a_reordered_config():
    a = Workflow(demo_config(datasets__demo__scenes=["sacre_coeur"]))
    assert json.loads(a.dataset.listing(SimpleNamespace(dataset="demo")))["sacre_coeur"]["depth"] == "results/sacre_coeur/depth/h5"
    config = demo_config()
    config["datasets"]["demo"] = dict(reversed(list(config["datasets"]["demo"].items())))
    assert Workflow(config).dataset.conf(SimpleNamespace(dataset="demo")) == a.dataset.conf(SimpleNamespace(dataset="demo"))


class _Resource:
    def __init__(self, value):
        self.value = value

    def is_evaluable(self):
        return callable(self.value)

    def evaluate(self, wildcards):
        return _Resource(self.value(wildcards))


def test_cluster_placement_by_gpu_request(monkeypatch):
    monkeypatch.setenv("MATCHFORGE_SLURM_GPU_PARTITION", "gpu")
    wf = Workflow(demo_config(slurm__account="lab", slurm__cpu_partition="cpu"))
    rules = [SimpleNamespace(resources={"gpu": _Resource(lambda wc: wc.n)}), SimpleNamespace(resources={}),
             SimpleNamespace(resources={"slurm_extra": "--qos=x"}), SimpleNamespace(resources=None)]
    wf.cluster_resources(rules)
    part = rules[0].resources["slurm_partition"]
    assert part(SimpleNamespace(n=1)) == "gpu" and part(SimpleNamespace(n=0)) == "cpu"
    assert rules[1].resources["slurm_partition"](None) == "cpu"
    assert all(r.resources["slurm_account"] == "lab" for r in rules[:3])
    assert rules[0].resources["slurm_extra"] == "--signal=USR1@120" and rules[2].resources["slurm_extra"] == "--qos=x"


def test_scene_resources_come_from_the_photo_count_unless_the_scene_sets_them(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    images = str(REPO / "resources" / "demo" / "sacre_coeur" / "images")
    wf = Workflow(demo_config(scenes__sacre_coeur__images=images))
    wc = SimpleNamespace(scene="sacre_coeur")
    assert wf.photos("sacre_coeur")[1] == 10 and len(wf.scene_photos(wc)) > 8
    assert wf.scene_resources("sfm", "runtime")(wc) == 33  # 10 photos (docs/slurm.md)
    wf = Workflow(demo_config(scenes__sacre_coeur__images=images, scenes__sacre_coeur__resources={"sfm": {"runtime": 720}}))
    assert wf.scene_resources("sfm", "runtime")(wc) == 720 and wf.scene_resources("sfm", "mem_mb")(wc) > 0


def test_paths_derived_from_a_jobs_files(wf):
    output = Inputs(model="results/models/posfeat/demo/desc/model.pt", json="results/eval/shiftfocal/demo/tum_rgbd.json")
    assert wf.output_folder("model", up=2)(None, output) == "results/models/posfeat/demo"
    assert wf.output_stem("json")(None, output) == "results/eval/shiftfocal/demo/tum_rgbd"
    assert wf.input_folder("focal")(None, Inputs(focal="results/models/shiftfocal/demo/focal.pt")) == "results/models/shiftfocal/demo"
    assert wf.depth.shape_sparse_arg(None, Inputs(sparse="s")) == "--sparse s" and wf.depth.shape_sparse_arg(None, Inputs()) == ""
