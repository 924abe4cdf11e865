# PoSFeat (issue 6, docs/posfeat.md): description net -> detection net per run, then extraction and
# evaluation on named test sets (homography MMA, relative pose, reconstruction), with SIFT as baseline.
import re
import shlex

from matchforge.conf import deep_merge
from matchforge.workflow import check, load_schema

PF = config["posfeat"]
PF_RUNS = PF["runs"]
PF_TESTSETS = PF["testsets"]
_PF_SCHEMA = load_schema(SCHEMAS / "posfeat.schema.yaml")
_PF_SECTIONS = ("model", "data", "desc", "kp", "trainer", "extract")


def pf_run_conf(run):
    """Options of one run: the posfeat sections with the run's overrides on top (validated)."""
    conf = {"device": PF["device"], "init_weights": pf_init_file(run)}
    for key in _PF_SECTIONS:
        conf[key] = deep_merge(PF[key], PF_RUNS[run].get(key))
        check(conf[key], {"$defs": _PF_SCHEMA["$defs"], "$ref": f"#/$defs/{key}"}, f"posfeat.runs.{run}.{key}")
    return conf


def pf_init_file(run):
    """The run's init_weights as a file: another run's name becomes its kp/model.pt."""
    init = PF_RUNS[run].get("init_weights", PF["init_weights"])
    return f"results/models/posfeat/{init}/kp/model.pt" if init in PF_RUNS else init


def pf_testset(name):
    """Test-set spec with workflow names resolved to paths (dataset -> dataset.json, scene -> SfM images)."""
    spec = dict(PF_TESTSETS[name])
    if spec["type"] == "pose":
        spec["dataset"] = f"results/datasets/{spec['dataset']}/dataset.json"
    if spec["type"] == "reconstruction" and spec.get("scene"):
        spec["images"] = f"results/{spec.pop('scene')}/sfm/images"
    return spec


def pf_testset_input(wc):
    spec = pf_testset(wc.pftestset)
    return {"homography": spec.get("path"), "pose": spec.get("dataset"), "reconstruction": spec.get("images")}[spec["type"]]


def _pf_check():
    from matchforge.errors import MatchforgeError

    fix = f"edit posfeat in {config_source()} (config/README.md lists the options)"
    for name, spec in PF_TESTSETS.items():
        need = {"homography": "path", "pose": "dataset", "reconstruction": "images' or 'scene"}[spec["type"]]
        if not any(spec.get(k) for k in need.split("' or '")):
            raise MatchforgeError(f"posfeat test set '{name}' ({spec['type']}) needs '{need}'", fix=fix)
        if spec["type"] == "pose" and spec["dataset"] not in (config.get("datasets") or {}):
            raise MatchforgeError(f"posfeat test set '{name}' names unknown dataset '{spec['dataset']}'", fix=fix)
        if spec.get("scene") and spec["scene"] not in SFM_SCENES:
            raise MatchforgeError(f"posfeat test set '{name}' names scene '{spec['scene']}', which is unknown or has no SfM", fix=fix)
    for run, spec in PF_RUNS.items():
        if not spec.get("dataset") and not spec.get("caps_root"):
            raise MatchforgeError(f"posfeat run '{run}' has no training data", fix="set dataset: or caps_root: ; " + fix)
        if spec.get("dataset") and spec["dataset"] not in (config.get("datasets") or {}):
            raise MatchforgeError(f"posfeat run '{run}' names unknown dataset '{spec['dataset']}'", fix=fix)
        for t in spec["testsets"]:
            if t not in PF_TESTSETS:
                raise MatchforgeError(f"posfeat run '{run}' uses unknown test set '{t}'", fix=fix)
        pf_run_conf(run)


_pf_check()


wildcard_constraints:
    pfrun="|".join(map(re.escape, PF_RUNS)) if PF_RUNS else "(?!)",
    pftestset="|".join(map(re.escape, PF_TESTSETS)) if PF_TESTSETS else "(?!)",


def pf_train_inputs(wc):
    spec = PF_RUNS[wc.pfrun]
    inputs = {}
    if spec.get("dataset"):
        inputs["dataset"] = f"results/datasets/{spec['dataset']}/dataset.json"
    if spec.get("caps_root"):
        inputs["caps_root"] = spec["caps_root"]
    if pf_init_file(wc.pfrun):
        inputs["init_weights"] = pf_init_file(wc.pfrun)
    return inputs


def pf_train_args(wc, input):
    return " ".join(f"--{k.replace('_', '-')} {shlex.quote(str(v))}" for k, v in input.items() if k not in ("desc", "init_weights"))


rule posfeat_desc:
    input:
        unpack(pf_train_inputs),
    output:
        model="results/models/posfeat/{pfrun}/desc/model.pt",
    params:
        conf=lambda wc: to_json(pf_run_conf(wc.pfrun)),
        args=pf_train_args,
        out="results/models/posfeat/{pfrun}",
    log:
        "logs/posfeat/{pfrun}/desc.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "benchmarks/posfeat/{pfrun}/desc.tsv"
    threads: 2  # fits a small node; more with --set-threads posfeat_desc=8 (capped by --cores locally)
    resources:
        gpu=1,
        mem_mb=16000,
    shell:
        "OMP_NUM_THREADS={threads} {MF} posfeat-train --stage desc {params.args} --out {params.out:q} --conf {params.conf:q} > {log:q} 2>&1"


rule posfeat_kp:
    input:
        unpack(pf_train_inputs),
        desc="results/models/posfeat/{pfrun}/desc/model.pt",
    output:
        model="results/models/posfeat/{pfrun}/kp/model.pt",
    params:
        conf=lambda wc: to_json(pf_run_conf(wc.pfrun)),
        args=pf_train_args,
        out="results/models/posfeat/{pfrun}",
    log:
        "logs/posfeat/{pfrun}/kp.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "benchmarks/posfeat/{pfrun}/kp.tsv"
    threads: 2  # fits a small node; more with --set-threads posfeat_desc=8 (capped by --cores locally)
    resources:
        gpu=1,
        mem_mb=16000,
    shell:
        "OMP_NUM_THREADS={threads} {MF} posfeat-train --stage kp {params.args} --init {input.desc:q} --out {params.out:q}"
        " --conf {params.conf:q} > {log:q} 2>&1"


rule posfeat_extract:
    input:
        model="results/models/posfeat/{pfrun}/kp/model.pt",
        data=pf_testset_input,
    output:
        "results/eval/posfeat/{pfrun}/features/{pftestset}.h5",
    params:
        conf=lambda wc: to_json({**pf_run_conf(wc.pfrun)["extract"], "method": "posfeat", "device": PF["device"]}),
        testset=lambda wc: to_json(pf_testset(wc.pftestset)),
    log:
        "logs/posfeat/{pfrun}/extract_{pftestset}.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "benchmarks/posfeat/{pfrun}/extract_{pftestset}.tsv"
    resources:
        gpu=1,
        mem_mb=8000,
    shell:
        "{MF} extract --testset {params.testset:q} --model {input.model:q} --out {output:q}"
        " --conf {params.conf:q} > {log:q} 2>&1"


rule sift_extract:
    input:
        data=pf_testset_input,
    output:
        "results/eval/sift/baseline/features/{pftestset}.h5",
    params:
        conf=lambda wc: to_json({"max_size": PF["extract"]["max_size"], "num_pts": PF["extract"]["num_pts"],
                                 "method": "sift"}),
        testset=lambda wc: to_json(pf_testset(wc.pftestset)),
    log:
        "logs/sift/baseline/extract_{pftestset}.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "benchmarks/sift/baseline/extract_{pftestset}.tsv"
    resources:
        mem_mb=4000,
    shell:
        "{MF} extract --testset {params.testset:q} --out {output:q} --conf {params.conf:q} > {log:q} 2>&1"


def pf_compare(wc):
    """The SIFT curve drawn beside PoSFeat's in homography plots."""
    if PF["sift_baseline"] and PF_TESTSETS[wc.pftestset]["type"] == "homography":
        return {"sift": f"results/eval/sift/baseline/{wc.pftestset}.json"}
    return {}


rule posfeat_eval:
    input:
        unpack(pf_compare),
        features="results/eval/posfeat/{pfrun}/features/{pftestset}.h5",
        data=pf_testset_input,
    output:
        "results/eval/posfeat/{pfrun}/{pftestset}.json",
    params:
        testset=lambda wc: to_json(pf_testset(wc.pftestset)),
        compare=lambda wc, input: " ".join(f"{k}={input[k]}" for k in pf_compare(wc)),
    log:
        "logs/posfeat/{pfrun}/eval_{pftestset}.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "benchmarks/posfeat/{pfrun}/eval_{pftestset}.tsv"
    resources:
        mem_mb=8000,
    shell:
        "{MF} posfeat-eval --testset {params.testset:q} --features {input.features:q} --out {output:q}"
        " --label posfeat/{wildcards.pfrun} --compare {params.compare} > {log:q} 2>&1"


rule sift_eval:
    input:
        features="results/eval/sift/baseline/features/{pftestset}.h5",
        data=pf_testset_input,
    output:
        "results/eval/sift/baseline/{pftestset}.json",
    params:
        testset=lambda wc: to_json(pf_testset(wc.pftestset)),
    log:
        "logs/sift/baseline/eval_{pftestset}.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "benchmarks/sift/baseline/eval_{pftestset}.tsv"
    resources:
        mem_mb=8000,
    shell:
        "{MF} posfeat-eval --testset {params.testset:q} --features {input.features:q} --out {output:q}"
        " --label sift > {log:q} 2>&1"


def pf_targets():
    out = [f"results/eval/posfeat/{run}/{t}.json" for run, spec in PF_RUNS.items() for t in spec["testsets"]]
    if PF["sift_baseline"]:
        used = sorted({t for spec in PF_RUNS.values() for t in spec["testsets"]})
        out += [f"results/eval/sift/baseline/{t}.json" for t in used]
    return out


TARGETS["posfeat"] = pf_targets
