# Depth (issue 3, docs/depth.md): raw depth per undistorted image -> aligned MegaDepth H5 -> QA.
# One job per scene and step: the model is loaded once per scene and run batched.


def depth_params(*keys):
    """params: value: the scene's merged depth options restricted to `keys`, as canonical JSON
    (so editing QA options does not rerun the prediction, and so on)."""
    return lambda wc: to_json({k: v for k, v in scene_conf(config, wc.scene, "depth").items() if k in keys})


def depth_predict_params(wc):
    """The backend and only that backend's options (editing the other backend's options reruns nothing)."""
    conf = scene_conf(config, wc.scene, "depth")
    return to_json({"backend": conf["backend"], conf["backend"]: conf[conf["backend"]]})


rule depth_predict:
    input:
        sparse="results/{scene}/sfm/sparse",
        images="results/{scene}/sfm/images",
    output:
        raw=directory("results/{scene}/depth/raw"),
        preview=directory("results/{scene}/depth/preview"),
    params:
        conf=depth_predict_params,
    log:
        "logs/{scene}/depth_predict.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "benchmarks/{scene}/depth_predict.tsv"
    threads: 2
    resources:
        gpu=1,
        mem_mb=8000,
    shell:
        "{MF} depth --scene {wildcards.scene} --sfm results/{wildcards.scene}/sfm"
        " --out results/{wildcards.scene}/depth --conf {params.conf:q} > {log:q} 2>&1"


rule depth_align:
    input:
        sparse="results/{scene}/sfm/sparse",
        raw="results/{scene}/depth/raw",
    output:
        h5=directory("results/{scene}/depth/h5"),
        report="results/{scene}/depth/align.json",
    params:
        conf=depth_params("align", "h5"),
    log:
        "logs/{scene}/depth_align.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "benchmarks/{scene}/depth_align.tsv"
    resources:
        mem_mb=4000,
    shell:
        "{MF} align-depth --scene {wildcards.scene} --sfm results/{wildcards.scene}/sfm --raw {input.raw:q}"
        " --h5 {output.h5:q} --report {output.report:q} --conf {params.conf:q} > {log:q} 2>&1"


rule depth_qa:
    input:
        sparse="results/{scene}/sfm/sparse",
        raw="results/{scene}/depth/raw",
        h5="results/{scene}/depth/h5",
        report="results/{scene}/depth/align.json",
    output:
        qa="results/{scene}/depth/qa.json",
        plot="results/{scene}/depth/qa.png",
    params:
        conf=depth_params("align", "sparse", "qa"),
    log:
        "logs/{scene}/depth_qa.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "benchmarks/{scene}/depth_qa.tsv"
    resources:
        mem_mb=4000,
    shell:
        "{MF} depth-qa --scene {wildcards.scene} --sfm results/{wildcards.scene}/sfm --raw {input.raw:q}"
        " --h5 {input.h5:q} --align-report {input.report:q} --out {output.qa:q} --plot {output.plot:q}"
        " --conf {params.conf:q} > {log:q} 2>&1"


TARGETS["depth"] = lambda: expand("results/{scene}/depth/{f}", scene=SCENES, f=["qa.json", "align.json"])
