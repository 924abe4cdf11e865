# LoFTR (issue 5, docs/loftr.md): train each run of `loftr.runs`, evaluate it on each of its test sets,
# and evaluate the SIFT baseline on the same test sets.
# Checkpoints live in results/models/loftr/{run}/checkpoints/ (not an output): an interrupted job resumes.
from matchforge.errors import MatchforgeError
from matchforge.loftr import PRETRAINED as _PRETRAINED
from matchforge.evaluation.testsets import testset_available as _testset_available

LOFTR = config["loftr"]
LOFTR_RUNS = list(LOFTR["runs"])
LOFTR_TESTSETS = list(LOFTR["testsets"])

for _run, _rc in LOFTR["runs"].items():
    if bool(_rc.get("dataset")) == bool(_rc.get("scannet")):
        raise MatchforgeError(f"loftr run '{_run}' needs exactly one of `dataset` (a matchforge dataset) and `scannet` (LoFTR's ScanNet indices)",
                              fix="set one of them under loftr.runs." + _run)
    if _rc.get("dataset") and _rc["dataset"] not in (config.get("datasets") or {}):
        raise MatchforgeError(f"loftr run '{_run}' trains on unknown dataset '{_rc['dataset']}'",
                              fix="add it under `datasets:` or change loftr.runs." + _run + ".dataset")
    for _ts in _rc["testsets"]:
        if _ts not in LOFTR["testsets"]:
            raise MatchforgeError(f"loftr run '{_run}' names unknown test set '{_ts}'",
                                  fix="add it under loftr.testsets or remove it from loftr.runs." + _run + ".testsets")
    if _rc["init_weights"] == _run:
        raise MatchforgeError(f"loftr run '{_run}' starts from its own weights",
                              fix=f"set loftr.runs.{_run}.init_weights to another run, a kornia name ({', '.join(_PRETRAINED)}) or a file")
for _name, _ts in LOFTR["testsets"].items():
    if _ts["kind"] == "dataset" and _ts.get("dataset") not in (config.get("datasets") or {}):
        raise MatchforgeError(f"loftr test set '{_name}' uses unknown dataset '{_ts.get('dataset')}'",
                              fix="set loftr.testsets." + _name + ".dataset to a name under `datasets:`")


wildcard_constraints:
    run="|".join(LOFTR_RUNS) if LOFTR_RUNS else "(?!)",
    testset="|".join(LOFTR_TESTSETS) if LOFTR_TESTSETS else "(?!)",


# Options that do not change the trained model: editing them must not retrain.
_NOT_TRAINING = ("testsets", "gpus", "eval_gpus")


def loftr_layout(wc):
    """(processes per node, nodes) of a training run: its `devices` (an int > 0, else 1) and `num_nodes`."""
    run = LOFTR["runs"][wc.run]
    devices = run["devices"] if isinstance(run["devices"], int) and run["devices"] > 0 else 1
    return devices, int(run["num_nodes"])


def loftr_init_file(run):
    """The file a run starts from: another run's weights.pt (built first), a path, or None (kornia name, no init)."""
    init = LOFTR["runs"][run]["init_weights"]
    if not init or (init in _PRETRAINED and not Path(init).exists()):
        return None
    return f"results/models/loftr/{init}/weights.pt" if init in LOFTR["runs"] else init


def loftr_run_conf(wc):
    conf = {k: v for k, v in LOFTR["runs"][wc.run].items() if k not in _NOT_TRAINING}
    conf["init_weights"] = loftr_init_file(wc.run) or conf["init_weights"]
    return to_json(conf)


def loftr_init_input(wc):
    init = loftr_init_file(wc.run)
    return {"init": init} if init else {}


def loftr_before_arg(wc, input):
    """--before: the run's initial weights, evaluated in the same job (kornia names download once)."""
    init = LOFTR["runs"][wc.run]["init_weights"]
    if not init:
        return ""
    import shlex

    return f"--before {shlex.quote(input.init if 'init' in input.keys() else init)}"


def loftr_testset_conf(wc):
    return to_json(LOFTR["testsets"][wc.testset])


def loftr_testset_inputs(wc):
    """dataset.json for test sets of kind 'dataset'; nothing else is produced by the workflow."""
    ts = LOFTR["testsets"][wc.testset]
    return {"dataset": f"results/datasets/{ts['dataset']}/dataset.json"} if ts["kind"] == "dataset" else {}


def loftr_dataset_arg(wc, input):
    return f"--dataset {input.dataset}" if "dataset" in input.keys() else ""


def loftr_train_inputs(wc):
    """The dataset.json of a matchforge dataset, or the index files of a ScanNet run (its frames are the user's)."""
    rc = LOFTR["runs"][wc.run]
    if rc.get("dataset"):
        return {"dataset": f"results/datasets/{rc['dataset']}/dataset.json"}
    sc = rc["scannet"]
    return {"index": [sc["list"], sc["intrinsics"]] + ([sc["val"]["list"], sc["val"]["intrinsics"]] if sc.get("val") else [])}


rule loftr_train:
    input:
        unpack(loftr_train_inputs),
        unpack(loftr_init_input),
    output:
        weights="results/models/loftr/{run}/weights.pt",
        official="results/models/loftr/{run}/weights_official.ckpt",
        meta="results/models/loftr/{run}/model.json",
        metrics="results/models/loftr/{run}/metrics.csv",
        curve=report("results/models/loftr/{run}/curve.png", category="Training", subcategory="LoFTR",
                     caption="../workflow/report/training.rst"),
    params:
        conf=loftr_run_conf,
        dataset=loftr_dataset_arg,
        out="results/models/loftr/{run}",
    log:
        "logs/loftr/{run}/train.log",
    benchmark:
        "benchmarks/loftr/{run}/train.tsv"
    threads: 2
    resources:
        gpu=lambda wc: LOFTR["runs"][wc.run]["gpus"],
        mem_mb=16000,
        # SLURM: one task per device on each of num_nodes nodes, the layout Lightning's SLURM environment
        # expects; a multi-process run is an "mpi" job, whose shell command starts its tasks with srun
        nodes=lambda wc: loftr_layout(wc)[1],
        tasks_per_node=lambda wc: loftr_layout(wc)[0],
        mpi=lambda wc: "srun" if loftr_layout(wc)[0] * loftr_layout(wc)[1] > 1 else None,
    shell:
        # inside a SLURM allocation a multi-process run starts one task per device through srun
        "$( [ -n \"${{SLURM_JOB_ID:-}}\" ] && [ $(( {resources.tasks_per_node} * {resources.nodes} )) -gt 1 ]"
        " && echo srun --ntasks=$(( {resources.tasks_per_node} * {resources.nodes} ))"
        " --ntasks-per-node={resources.tasks_per_node} )"
        " {MF} loftr-train --run {wildcards.run} {params.dataset} --out {params.out:q}"
        " --conf {params.conf:q} > {log:q} 2>&1"


rule loftr_eval:
    input:
        unpack(loftr_testset_inputs),
        unpack(loftr_init_input),
        weights="results/models/loftr/{run}/weights.pt",
        meta="results/models/loftr/{run}/model.json",
    output:
        json="results/eval/loftr/{run}/{testset}.json",
        vis=report("results/eval/loftr/{run}/{testset}_matches.jpg", category="Matches", subcategory="{testset}",
                   caption="../workflow/report/matches.rst"),
    params:
        testset=loftr_testset_conf,
        dataset=loftr_dataset_arg,
        before=loftr_before_arg,
    log:
        "logs/loftr/{run}/eval_{testset}.log",
    benchmark:
        "benchmarks/loftr/{run}/eval_{testset}.tsv"
    resources:
        gpu=lambda wc: LOFTR["runs"][wc.run]["eval_gpus"],
        mem_mb=8000,
    shell:
        "{MF} loftr-eval --name {wildcards.testset} --testset {params.testset:q} --weights {input.weights:q}"
        " {params.before} {params.dataset} --out {output.json:q} --vis {output.vis:q} > {log:q} 2>&1"


rule loftr_sift_eval:
    input:
        unpack(loftr_testset_inputs),
    output:
        json="results/eval/sift/relpose/{testset}.json",
        vis=report("results/eval/sift/relpose/{testset}_matches.jpg", category="Matches", subcategory="{testset}",
                   caption="../workflow/report/matches.rst"),
    params:
        testset=loftr_testset_conf,
        baseline=lambda wc: to_json(LOFTR["baseline"]),
        dataset=loftr_dataset_arg,
    log:
        "logs/sift/relpose_{testset}.log",
    benchmark:
        "benchmarks/sift/relpose_{testset}.tsv"
    resources:
        mem_mb=4000,
    shell:
        "{MF} loftr-eval --name {wildcards.testset} --testset {params.testset:q} --baseline sift"
        " --baseline-conf {params.baseline:q} {params.dataset} --out {output.json:q} --vis {output.vis:q} > {log:q} 2>&1"


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
        out += [f"results/eval/sift/relpose/{ts}{f}" for ts in sorted(used) for f in (".json", "_matches.jpg")]
    return out


TARGETS["loftr"] = loftr_targets
