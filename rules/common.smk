# Shared helpers: config validation, per-scene options, the CLI command, and the default targets.
import functools
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

from snakemake.utils import validate

from matchforge.conf import deep_merge, scene_conf, to_json
from matchforge.errors import MatchforgeError
from matchforge.evaluation.testsets import matching_options, testset_available as _testset_available
from matchforge.loftr import PRETRAINED as _PRETRAINED
from matchforge.resources import estimate as _estimate
from matchforge.sfm.inputs import photo_signature
from matchforge.summary import KINDS as SUMMARY_KINDS
from matchforge.training.options import engine_options, strip_options
from matchforge.config_schema import (CONFIG_FILES_ENV, SCHEMA_DIR, check_references, config_source,
                                 posfeat_run_sections, validate_config)


# Jobs run the `matchforge` command: with --software-deployment-method conda the one in each rule's env
# (envs/*.yaml install the package), otherwise the one installed beside the Python that runs Snakemake
# (first on PATH, so its venv needs no activation).
os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
if shutil.which("matchforge") is None:
    print(f"matchforge: no `matchforge` command beside {sys.executable} or on PATH; install the package into "
          "the Python that runs Snakemake (pip install -e . in the repository)", file=sys.stderr)
    raise SystemExit(2)

ENVS = Path(workflow.basedir) / "envs"

# jobs name the file(s) a user edits in their messages
os.environ[CONFIG_FILES_ENV] = ", ".join(map(str, workflow.configfiles)) or "config/config.yaml"
# our own concise checks first (key path, allowed keys, closest name; names; cross-references), then
# Snakemake's as a second line. A config mistake ends planning with its one-line message, no traceback.
try:
    validate_config(config, SCHEMA_DIR)  # stage defaults filled in; per-scene overrides checked by name
    check_references(config)
except MatchforgeError as _err:
    print(f"matchforge: {_err}", file=sys.stderr)
    raise SystemExit(2)
validate(config, schema=SCHEMA_DIR / "config.schema.yaml")

SCENES = list(config["scenes"])
# single_images scenes have no SfM: only depth (and the shape step) run on them.
SINGLE_SCENES = [s for s in SCENES if config["scenes"][s].get("single_images")]
SFM_SCENES = [s for s in SCENES if s not in SINGLE_SCENES]


def one_of(names):
    """Wildcard regex matching exactly these names (never matching when there are none)."""

    return "|".join(map(re.escape, names)) if names else "(?!)"




@functools.lru_cache(maxsize=None)
def _photos(scene):
    """(digest, count) of a scene's photos, read once per Snakemake call (params and resources both need it)."""
    cache = Path(".snakemake") / "matchforge" / "photos" / f"{scene}.json"
    return photo_signature(config["scenes"][scene]["images"], cache)


def scene_photos(wc):
    """params: a digest of the names and contents of the scene's photos (sfm.inputs.photo_signature), so that
    adding, removing or replacing one reruns that scene, whatever the new file's timestamp. A missing folder
    gives "missing": the job itself then fails with the config key and the fix, and other scenes go on."""
    return _photos(wc.scene)[0]


def scene_resources(stage, key):
    """resources: `key` (runtime in minutes, mem_mb) of the scene's `stage` job: the scene's own
    `resources.<stage>.<key>` when set, else the estimate from its photo count (matchforge.resources)."""

    def value(wc):
        own = ((config["scenes"][wc.scene].get("resources") or {}).get(stage) or {}).get(key)
        if own is not None:
            return own
        backend = scene_conf(config, wc.scene, "depth")["backend"]
        return _estimate(stage, _photos(wc.scene)[1], scene_conf(config, wc.scene, "sfm"), backend)[key]

    return value


def present(*paths):
    """The user-given paths that exist. A missing one is left out of a job's inputs, so that it fails only
    that job (which names the config key and the fix) instead of the planning of every job."""
    return [str(p) for p in paths if p and Path(p).exists()]


def scene_images_dir(wc):
    return config["scenes"][wc.scene]["images"]


def stage_params(stage):
    """params: value: the merged options of `stage` for the job's scene, as canonical JSON."""
    return lambda wc: to_json(scene_conf(config, wc.scene, stage))


# Each rules/*.smk registers the targets of its stage family for `all` in TARGETS (name -> fn() -> list).
TARGETS = {}


def all_targets(wildcards):
    return [path for name in TARGETS for path in TARGETS[name]()]


SUMMARY_CAPTIONS = {"shape": "shape_eval"}  # workflow/report/<caption>.rst; the others are named after their kind


def summary_outputs():
    """One table and one figure per kind of result (summary.KINDS), each in the report's Summary section."""
    out = {}
    for kind in SUMMARY_KINDS:
        caption = f"../workflow/report/{SUMMARY_CAPTIONS.get(kind, kind)}.rst"
        out[f"{kind}_csv"] = report(f"results/summary/{kind}.csv", category="Summary", caption=caption)
        out[f"{kind}_png"] = report(f"results/summary/{kind}.png", category="Summary", caption=caption)
    return out


def summary_inputs(wildcards):
    """What the summary tabulates: every configured stage's result files (from the DAG, never a glob)."""
    return [path for name in TARGETS if name != "report" for path in TARGETS[name]()]


def cluster_resources():
    """SLURM placement of every rule, from its own resources: jobs whose rule asks for gpu > 0 go to
    the GPU partition, all others to the CPU partition; every job gets the account and asks for SIGUSR1
    ahead of its time limit (training checkpoints on it). Values from config `slurm:` or the
    MATCHFORGE_SLURM_* environment; unset ones are left to the cluster. Called once all rules exist."""
    conf = config["slurm"]
    env = {k: os.environ.get(f"MATCHFORGE_SLURM_{k.upper()}") for k in ("account", "cpu_partition", "gpu_partition")}
    value = {k: conf.get(k) or env[k] for k in env}
    signal = f"--signal=USR1@{conf['warn_signal_seconds']}" if conf["warn_signal_seconds"] else None
    for rule_ in workflow.rules:
        if rule_.resources is None:
            continue
        gpu = rule_.resources.get("gpu")  # a snakemake Resource: a number or a function of the wildcards

        def partition(wildcards, gpu=gpu):
            n = 0 if gpu is None else (gpu.evaluate(wildcards) if gpu.is_evaluable() else gpu).value
            return value["gpu_partition"] if n and n > 0 else value["cpu_partition"]

        if value["cpu_partition"] or value["gpu_partition"]:
            rule_.resources["slurm_partition"] = partition
        if value["account"]:
            rule_.resources["slurm_account"] = value["account"]
        if signal and "slurm_extra" not in rule_.resources:
            rule_.resources["slurm_extra"] = signal


# --- sfm (sfm.smk) --------------------------------------------------------


def sfm_inputs(wc):
    colmap = config["scenes"][wc.scene].get("colmap") or {}
    return {k: present(colmap.get(k)) for k in ("sparse", "database")}


def sfm_existing(wc):
    return to_json(config["scenes"][wc.scene].get("colmap") or {})


def sfm_outputs(scene):
    """Outputs of the SfM checkpoint for `scene` (raises IncompleteCheckpointException until it ran)."""
    return checkpoints.sfm.get(scene=scene).output


def registered_stems(scene):
    """Stems of the undistorted images of `scene`, known once its SfM checkpoint has run."""
    images = Path(sfm_outputs(scene).images)
    return sorted(p.stem for p in images.iterdir() if p.is_file())


# --- depth (depth.smk) ----------------------------------------------------


def depth_conf(scene):
    return scene_conf(config, scene, "depth")


def shape_run(scene):
    return depth_conf(scene)["shape"]["run"]


def depth_params(*keys):
    """params: value: the scene's merged depth options restricted to `keys`, as canonical JSON
    (so editing QA options does not rerun the prediction, and so on)."""
    return lambda wc: to_json({k: v for k, v in scene_conf(config, wc.scene, "depth").items() if k in keys})


def depth_predict_params(wc):
    """The backend and only that backend's options (editing the other backend's options reruns nothing)."""
    conf = scene_conf(config, wc.scene, "depth")
    return to_json({"backend": conf["backend"], conf["backend"]: conf[conf["backend"]]})


def shape_inputs(wc):
    model = f"results/models/shiftfocal/{shape_run(wc.scene)}"
    inputs = {"raw": f"results/{wc.scene}/depth/raw", "focal": f"{model}/focal.pt", "shift": f"{model}/shift.pt"}
    if wc.scene in SINGLE_SCENES:
        inputs["images"] = f"results/{wc.scene}/depth/images"
    else:
        inputs.update(sparse=f"results/{wc.scene}/sfm/sparse", images=f"results/{wc.scene}/sfm/images")
    return inputs


def depth_targets():
    out = expand("results/{scene}/depth/{f}", scene=SFM_SCENES, f=["qa.json", "align.json"])
    out += expand("results/{scene}/depth/inputs.json", scene=SINGLE_SCENES)
    out += [f"results/{s}/depth/shape.json" for s in SCENES if shape_run(s) is not None]
    return out


# --- dataset (dataset.smk) ------------------------------------------------


def dataset_scenes(wc):
    return config["datasets"][wc.dataset]["scenes"]


def write_dataset_inputs(output, params, log):
    """For the dataset_inputs rule: the scene listing and the options as files, and a line saying so in the log."""
    Path(output.scenes).write_text(params.scenes)
    Path(output.conf).write_text(params.conf)
    Path(log).write_text(f"{output.scenes}: {params.scenes.count('scene_info')} scenes; {output.conf}\n")


def dataset_inputs(wc):
    scenes = dataset_scenes(wc)
    return {
        "scene_info": [f"results/{s}/scene_info" for s in scenes],
        "images": [f"results/{s}/sfm/images" for s in scenes],
        "depth": [f"results/{s}/depth/h5" for s in scenes],
    }


def dataset_listing(wc):
    """params: scene -> its scene-info, image and depth folders, written to a file by rule dataset_inputs
    (a command line naming every scene fails near 1,400 scenes: the kernel's argument limit)."""
    return {s: {"scene_info": f"results/{s}/scene_info", "images": f"results/{s}/sfm/images",
                "depth": f"results/{s}/depth/h5"} for s in dataset_scenes(wc)}


# --- loftr (loftr.smk) ----------------------------------------------------


def loftr_layout(wc):
    """(processes per node, nodes) of a training run: its `devices` (an int > 0, else 1) and `num_nodes`."""
    run = LOFTR["runs"][wc.run]
    devices = run["devices"] if isinstance(run["devices"], int) and run["devices"] > 0 else 1
    return devices, int(run["num_nodes"])


def loftr_threads(wc):
    """CPU threads of one training process: the main process and its `num_workers` data-loader workers (Snakemake
    sets OMP_NUM_THREADS to it; on SLURM it is each task's cpus-per-task). The demo runs (num_workers 0) take one
    core each, so that two of them train side by side on 2 cores."""
    return LOFTR["runs"][wc.run]["num_workers"] + 1


def loftr_init_file(run):
    """The file a run starts from: another run's weights.pt (built first), a path, or None (kornia name, no init)."""
    init = LOFTR["runs"][run]["init_weights"]
    if not init or (init in _PRETRAINED and not Path(init).exists()):
        return None
    return f"results/models/loftr/{init}/weights.pt" if init in LOFTR["runs"] else init


def loftr_train_conf(run):
    """A run's training options: its entry without the workflow's own keys, init_weights as a file."""
    conf = {k: v for k, v in LOFTR["runs"][run].items() if k not in _NOT_TRAINING}
    conf["init_weights"] = loftr_init_file(run) or conf["init_weights"]
    return conf


def loftr_batch(wc):
    """params: the run's effective batch (batch_size x devices x nodes), which defines what it learns although
    `devices` and `num_nodes` are engine options; "auto" devices count the GPUs of the job's node."""
    rc = LOFTR["runs"][wc.run]
    return f"{rc['batch_size']}x{rc['devices']}x{rc['num_nodes']}"


def loftr_init_input(wc):
    """The initial weights: another run's weights.pt (built first) or an existing file (a missing one fails the job)."""
    init = loftr_init_file(wc.run)
    return {"init": init} if init and (LOFTR["runs"][wc.run]["init_weights"] in LOFTR["runs"] or present(init)) else {}


def loftr_init_weights(wc, input):
    """What the initial-weights matching loads: the file, or the kornia name (downloaded once)."""
    return input.init if "init" in input.keys() else LOFTR["runs"][wc.run]["init_weights"]


def loftr_before_matches(wc):
    """A fine-tuning run's "before": the matches of its initial weights on the same test set, which for another
    configured run are that run's own match file (matched once, whichever run asks first)."""
    init = LOFTR["runs"][wc.run]["init_weights"]
    if not init:
        return {}
    if init in LOFTR["runs"]:
        return {"before": f"results/eval/matches/loftr/{init}/{wc.testset}.h5"}
    return {"before": f"results/eval/matches/loftr-init/{wc.run}/{wc.testset}.h5"}


def sift_ratio_label():
    b = LOFTR["baseline"]
    return f"sift (mutual NN + ratio {b['ratio']:g}, {b['max_keypoints']} kp)"


# --- localization (evaluated by the loftr and posfeat rules) ----------------


LOC = config["localization"]["testsets"]


def loc_spec(name):
    """A localization test set with workflow paths: own scene (the dataset.json, the scene's SfM, its metres per
    unit) or an Aachen-layout folder as given."""
    ts = LOC[name]
    if ts.get("aachen"):
        return {"type": "localization", **ts}
    scene = ts["scene"] or config["datasets"][ts["dataset"]]["scenes"][0]
    return {"type": "localization", "dataset": f"results/datasets/{ts['dataset']}/dataset.json", "sfm": f"results/{scene}/sfm",
            "scene": scene, "metres_per_unit": config["scenes"][scene]["metres_per_unit"],
            **{k: v for k, v in ts.items() if k not in ("dataset", "scene")}}


def loc_inputs(name):
    spec = loc_spec(name)
    if spec.get("aachen"):
        return {k: present(spec[k]) for k in ("aachen", "query_pairs", "db_pairs", "ground_truth") if spec.get(k)}
    return {"dataset": spec["dataset"], "sfm": f"{spec['sfm']}/stats.json"}


def loftr_testset_spec(name):
    """A test set LoFTR and the SIFT baseline are evaluated on: an entry of loftr.testsets or a localization set."""
    return loc_spec(name) if name in LOC else LOFTR["testsets"][name]


def loftr_testset_conf(wc):
    return to_json(loftr_testset_spec(wc.testset))


def loftr_testset_inputs(wc):
    """dataset.json for test sets of kind 'dataset' (and the scene's SfM for localization); nothing else is
    produced by the workflow."""
    if wc.testset in LOC:
        return loc_inputs(wc.testset)
    ts = LOFTR["testsets"][wc.testset]
    return {"dataset": f"results/datasets/{ts['dataset']}/dataset.json"} if ts["kind"] == "dataset" else {}


def loftr_dataset_arg(wc, input):
    return f"--dataset {input.dataset}" if "dataset" in input.keys() else ""


def loftr_train_inputs(wc):
    """The dataset.json of a matchforge dataset, or the index lists of a MegaDepth or ScanNet run (its images are
    the user's)."""
    rc = LOFTR["runs"][wc.run]
    if rc.get("dataset"):
        return {"dataset": f"results/datasets/{rc['dataset']}/dataset.json"}
    if rc.get("megadepth"):
        md = rc["megadepth"]
        return {"index": present(md["list"], *([md["val"]["list"]] if md.get("val") else []))}
    sc = rc["scannet"]
    return {"index": present(sc["list"], sc["intrinsics"], *([sc["val"]["list"], sc["val"]["intrinsics"]] if sc.get("val") else []))}


def loftr_targets():
    """Trained runs, their evaluations on available test sets, and the baseline on the same test sets."""
    out, used = [], set()
    for run, rc in LOFTR["runs"].items():
        out.append(f"results/models/loftr/{run}/weights.pt")
        for ts in rc["testsets"]:
            if _testset_available(LOFTR["testsets"][ts]):
                out += [f"results/eval/loftr/{run}/{ts}.json", f"results/eval/loftr/{run}/{ts}_matches.jpg"]
                used.add(ts)
    if LOFTR["baseline"]["enabled"]:
        out += [f"results/eval/sift/ratio/{ts}{f}" for ts in sorted(used) for f in (".json", "_matches.jpg")]
    for name in LOC:  # every run, and the SIFT baseline, localize on every localization test set
        out += [f"results/eval/loftr/{run}/{name}.json" for run in LOFTR["runs"]]
        out += [f"results/eval/sift/ratio/{name}.json"] if LOFTR["baseline"]["enabled"] else []
    return out


# --- posfeat (posfeat.smk) ------------------------------------------------


def pf_run_conf(run):
    """Options of one run: the posfeat sections with the run's overrides on top (checked at planning)."""
    return {"device": PF["device"], "init_weights": pf_init_file(run), **posfeat_run_sections(PF, run)}


def pf_init_file(run):
    """The run's init_weights as a file: another run's name becomes its kp/model.pt."""
    init = PF_RUNS[run].get("init_weights", PF["init_weights"])
    return f"results/models/posfeat/{init}/kp/model.pt" if init in PF_RUNS else init


def pf_testset(name):
    """Test-set spec with workflow names resolved to paths (dataset -> dataset.json, scene -> SfM images)."""
    if name in LOC:
        return loc_spec(name)
    spec = dict(PF_TESTSETS[name])
    if spec["type"] == "pose":
        spec["dataset"] = f"results/datasets/{spec['dataset']}/dataset.json"
    if spec["type"] == "reconstruction" and spec.get("scene"):
        scene = spec.pop("scene")
        spec["images"], spec["sparse"] = f"results/{scene}/sfm/images", f"results/{scene}/sfm/sparse"
    return spec


def pf_testset_input(wc):
    spec = pf_testset(wc.pftestset)
    if spec["type"] == "homography":
        return present(spec["path"])
    if spec["type"] == "localization":
        return list(loc_inputs(wc.pftestset).values())
    if spec["type"] == "reconstruction" and spec.get("eth"):
        return present(spec["eth"])
    return spec["dataset"] if spec["type"] == "pose" else spec["images"]


def result_options(conf):
    """params: the options that define what a training job learns (training.options.strip_options), as JSON."""
    return to_json(strip_options(conf))


def run_engine_options(conf):
    """resources: the options that do not (training.options.NOT_RESULT_OPTIONS), as JSON: a resource, not a
    param, so editing `num_workers` or a checkpoint frequency plans no training job."""
    return to_json(engine_options(conf))


def pf_train_inputs(wc):
    spec = PF_RUNS[wc.pfrun]
    inputs = {}
    if spec.get("dataset"):
        inputs["dataset"] = f"results/datasets/{spec['dataset']}/dataset.json"
    inputs["caps_root"] = present(spec.get("caps_root"))
    init = pf_init_file(wc.pfrun)
    if init and (init.startswith("results/models/posfeat/") or present(init)):
        inputs["init_weights"] = init
    return inputs


def pf_train_args(wc):
    """--dataset / --caps-root from the run's own entries (a missing CAPS folder fails the job, naming it)."""
    spec = PF_RUNS[wc.pfrun]
    args = {"dataset": f"results/datasets/{spec['dataset']}/dataset.json" if spec.get("dataset") else None,
            "caps_root": spec.get("caps_root")}
    return " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in args.items() if v)


def pf_compare(wc):
    """The SIFT curve drawn beside PoSFeat's in homography plots."""
    if PF["sift_baseline"] and pf_testset(wc.pftestset)["type"] == "homography":
        return {"sift": f"results/eval/sift/mnn/{wc.pftestset}.json"}
    return {}


def sift_mnn_label():
    return f"sift (mutual NN, {PF['extract']['num_pts']} kp at {PF['extract']['max_size'] or 'full'} px)"


def pf_targets():
    out = [f"results/eval/posfeat/{run}/{t}.json" for run, spec in PF_RUNS.items() for t in [*spec["testsets"], *LOC]]
    if PF["sift_baseline"]:
        used = sorted({t for spec in PF_RUNS.values() for t in spec["testsets"]})
        out += [f"results/eval/sift/mnn/{t}.json" for t in used]
    return out


# --- shiftfocal (shiftfocal.smk) ------------------------------------------


def sf_train_conf(run):
    conf = deep_merge(SF["train"], SF_RUNS[run]["train"])
    if conf.get("init_weights") in SF_RUNS:  # another run's name: its folder
        conf["init_weights"] = f"results/models/shiftfocal/{conf['init_weights']}"
    return conf


def sf_train_inputs(wc):
    inputs = {"data": expand("results/shiftfocal/data/{source}", source=SF_RUNS[wc.sfrun]["sources"])}
    init = sf_train_conf(wc.sfrun).get("init_weights")
    if init:
        files = [f"{init}/{t}.pt" for t in sf_train_conf(wc.sfrun)["targets"]]
        inputs["init"] = files if init.startswith("results/models/shiftfocal/") else present(*files)
    return inputs


def sf_source_conf(source):
    return deep_merge(SF["data"], SF_SOURCES[source])


def sf_data_inputs(wc):
    src = SF_SOURCES[wc.source]
    if src["type"] == "matchforge":
        s = src["scene"]
        return {"h5": f"results/{s}/depth/h5", "sparse": f"results/{s}/sfm/sparse", "images": f"results/{s}/sfm/images"}
    return {"path": present(src["path"])}


def sf_data_args(wc):
    """The source's folders as CLI arguments (a missing user folder fails this job only, naming it)."""
    src = SF_SOURCES[wc.source]
    paths = sf_data_inputs(wc) if src["type"] == "matchforge" else {"path": src["path"]}
    return " ".join(f"--{k} {shlex.quote(str(v))}" for k, v in paths.items())
