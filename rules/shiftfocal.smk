# Shift/focal point-cloud model (issue 7, docs/shiftfocal.md): RGB-D sources and matchforge scenes ->
# training items -> focal and shift networks per run -> evaluation on held-out items.
import re
import shlex

from matchforge.conf import deep_merge
from matchforge.workflow import check, load_schema

SF = config["shiftfocal"]
SF_SOURCES = SF["sources"]
SF_RUNS = SF["runs"]
_SF_SCHEMA = load_schema(SCHEMAS / "shiftfocal.schema.yaml")


def _sf_check():
    """Names used by runs exist; matchforge sources name a scene; merged run options are valid."""
    from matchforge.errors import MatchforgeError

    fix = f"edit shiftfocal in {config_source()} (config/README.md lists the options)"
    for name, src in SF_SOURCES.items():
        if src["type"] == "matchforge" and src.get("scene") not in SFM_SCENES:
            raise MatchforgeError(f"shiftfocal source '{name}' needs `scene:` naming a scene with SfM (a key of scenes:"
                                  " without single_images)", fix=fix)
        if src["type"] != "matchforge" and not src.get("path"):
            raise MatchforgeError(f"shiftfocal source '{name}' ({src['type']}) needs `path:`", fix=fix)
    for run, spec in SF_RUNS.items():
        for s in spec["sources"] + spec["testsets"]:
            if s not in SF_SOURCES:
                raise MatchforgeError(f"shiftfocal run '{run}' uses unknown source '{s}'", fix=fix)
        check(sf_train_conf(run), {"$defs": _SF_SCHEMA["$defs"], "$ref": "#/$defs/train"}, f"shiftfocal.runs.{run}.train")


def sf_train_conf(run):
    conf = deep_merge(SF["train"], SF_RUNS[run]["train"])
    if conf.get("init_weights") in SF_RUNS:  # another run's name: its folder
        conf["init_weights"] = f"results/models/shiftfocal/{conf['init_weights']}"
    return conf


def sf_train_inputs(wc):
    inputs = {"data": expand("results/shiftfocal/data/{source}", source=SF_RUNS[wc.sfrun]["sources"])}
    init = sf_train_conf(wc.sfrun).get("init_weights")
    if init:
        inputs["init"] = [f"{init}/{t}.pt" for t in sf_train_conf(wc.sfrun)["targets"]]
    return inputs


def sf_source_conf(source):
    return deep_merge(SF["data"], SF_SOURCES[source])


_sf_check()


wildcard_constraints:
    source="|".join(map(re.escape, SF_SOURCES)) if SF_SOURCES else "(?!)",
    sfrun="|".join(map(re.escape, SF_RUNS)) if SF_RUNS else "(?!)",


def sf_data_inputs(wc):
    src = SF_SOURCES[wc.source]
    if src["type"] == "matchforge":
        s = src["scene"]
        return {"h5": f"results/{s}/depth/h5", "sparse": f"results/{s}/sfm/sparse", "images": f"results/{s}/sfm/images"}
    return {"path": src["path"]}


rule shiftfocal_data:
    input:
        unpack(sf_data_inputs),
    output:
        directory("results/shiftfocal/data/{source}"),
    params:
        conf=lambda wc: to_json(sf_source_conf(wc.source)),
        paths=lambda wc, input: " ".join(f"--{k} {shlex.quote(str(v))}" for k, v in input.items()),
    log:
        "logs/shiftfocal/data_{source}.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "benchmarks/shiftfocal/data_{source}.tsv"
    resources:
        mem_mb=4000,
    shell:
        "{MF} shiftfocal-data --source {wildcards.source} {params.paths} --out {output:q}"
        " --conf {params.conf:q} > {log:q} 2>&1"


rule shiftfocal_train:
    input:
        unpack(sf_train_inputs),
    output:
        focal="results/models/shiftfocal/{sfrun}/focal.pt",
        shift="results/models/shiftfocal/{sfrun}/shift.pt",
        metrics="results/models/shiftfocal/{sfrun}/metrics.json",
        curves=report("results/models/shiftfocal/{sfrun}/curves.png", category="Training", subcategory="shift/focal",
                      caption="../workflow/report/training.rst"),
    params:
        conf=lambda wc: to_json(sf_train_conf(wc.sfrun)),
        out="results/models/shiftfocal/{sfrun}",
    log:
        "logs/shiftfocal/train_{sfrun}.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "benchmarks/shiftfocal/train_{sfrun}.tsv"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
    shell:
        "{MF} shiftfocal-train --data {input.data:q} --out {params.out:q} --conf {params.conf:q} > {log:q} 2>&1"


rule shiftfocal_eval:
    input:
        focal="results/models/shiftfocal/{sfrun}/focal.pt",
        shift="results/models/shiftfocal/{sfrun}/shift.pt",
        data="results/shiftfocal/data/{source}",
    output:
        json="results/eval/shiftfocal/{sfrun}/{source}.json",
        plot=report("results/eval/shiftfocal/{sfrun}/{source}.png", category="Evaluations", subcategory="shift/focal",
                    caption="../workflow/report/shiftfocal.rst"),
        before="results/eval/shiftfocal/{sfrun}/{source}_before.ply",
        after="results/eval/shiftfocal/{sfrun}/{source}_after.ply",
        gt="results/eval/shiftfocal/{sfrun}/{source}_gt.ply",
    params:
        conf=to_json(SF["eval"]),
        model_dir="results/models/shiftfocal/{sfrun}",
        out="results/eval/shiftfocal/{sfrun}/{source}",
    log:
        "logs/shiftfocal/eval_{sfrun}_{source}.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "benchmarks/shiftfocal/eval_{sfrun}_{source}.tsv"
    resources:
        mem_mb=4000,
    shell:
        "{MF} shiftfocal-eval --model-dir {params.model_dir:q} --data {input.data:q} --out {params.out:q}"
        " --conf {params.conf:q} > {log:q} 2>&1"


TARGETS["shiftfocal"] = lambda: [
    f"results/eval/shiftfocal/{run}/{t}.json" for run, spec in SF_RUNS.items() for t in spec["testsets"]
] + [f"results/models/shiftfocal/{run}/metrics.json" for run in SF_RUNS]
