# Depth (issue 3, docs/depth.md): raw depth per undistorted image -> aligned MegaDepth H5 -> QA;
# optionally focal + point cloud per image from a shift/focal model (depth.shape.run, issue 7), which is
# all that single_images scenes (no SfM) get. One job per scene and step: the model is loaded once per
# scene and run batched.



rule depth_predict:
    wildcard_constraints:
        scene=wf.constraint("sfm_scene"),
    input:
        sparse="results/{scene}/sfm/sparse",
        images="results/{scene}/sfm/images",
    output:
        raw=directory("results/{scene}/depth/raw"),
        preview=report(directory("results/{scene}/depth/preview"), patterns=["{name}.jpg"], category="Depth",
                       subcategory="{scene}", caption="../workflow/report/depth_preview.rst"),
    params:
        conf=wf.depth_predict_params,
        images=wf.scene_images_dir,
    log:
        "logs/{scene}/depth_predict.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "benchmarks/{scene}/depth_predict.tsv"
    threads: 2
    resources:
        gpu=1,
        mem_mb=wf.scene_resources("depth_predict", "mem_mb"),
        runtime=wf.scene_resources("depth_predict", "runtime"),
    shell:
        "matchforge depth --scene {wildcards.scene} --sfm results/{wildcards.scene}/sfm"
        " --out results/{wildcards.scene}/depth --conf {params.conf:q} > {log:q} 2>&1"


rule depth_align:
    input:
        sparse="results/{scene}/sfm/sparse",
        raw="results/{scene}/depth/raw",
    output:
        h5=directory("results/{scene}/depth/aligned"),
        report="results/{scene}/depth/align.json",
    params:
        conf=wf.depth_params("align", "h5"),
    log:
        "logs/{scene}/depth_align.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "benchmarks/{scene}/depth_align.tsv"
    resources:
        mem_mb=wf.scene_resources("depth_align", "mem_mb"),
        runtime=wf.scene_resources("depth_align", "runtime"),
    shell:
        "matchforge align-depth --scene {wildcards.scene} --sfm results/{wildcards.scene}/sfm --raw {input.raw:q}"
        " --h5 {output.h5:q} --report {output.report:q} --conf {params.conf:q} > {log:q} 2>&1"


rule depth_consistency:
    input:
        sparse="results/{scene}/sfm/sparse",
        aligned="results/{scene}/depth/aligned",
    output:
        h5=directory("results/{scene}/depth/h5"),
        report="results/{scene}/depth/consistency.json",
    params:
        conf=wf.depth_params("consistency", "h5"),
    log:
        "logs/{scene}/depth_consistency.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "benchmarks/{scene}/depth_consistency.tsv"
    resources:
        mem_mb=wf.scene_resources("depth_consistency", "mem_mb"),
        runtime=wf.scene_resources("depth_consistency", "runtime"),
    shell:
        "matchforge depth-consistency --scene {wildcards.scene} --sfm results/{wildcards.scene}/sfm --aligned {input.aligned:q}"
        " --h5 {output.h5:q} --report {output.report:q} --conf {params.conf:q} > {log:q} 2>&1"


rule depth_qa:
    input:
        sparse="results/{scene}/sfm/sparse",
        raw="results/{scene}/depth/raw",
        h5="results/{scene}/depth/h5",
        report="results/{scene}/depth/align.json",
        consistency="results/{scene}/depth/consistency.json",
    output:
        qa="results/{scene}/depth/qa.json",
        plot=report("results/{scene}/depth/qa.png", category="Depth", subcategory="{scene}",
                    caption="../workflow/report/depth_qa.rst"),
    params:
        conf=wf.depth_params("align", "sparse", "qa"),
    log:
        "logs/{scene}/depth_qa.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "benchmarks/{scene}/depth_qa.tsv"
    resources:
        mem_mb=4000,
    shell:
        "matchforge depth-qa --scene {wildcards.scene} --sfm results/{wildcards.scene}/sfm --raw {input.raw:q}"
        " --h5 {input.h5:q} --align-report {input.report:q} --consistency-report {input.consistency:q}"
        " --out {output.qa:q} --plot {output.plot:q}"
        " --conf {params.conf:q} > {log:q} 2>&1"


rule depth_predict_single:
    """Scenes without SfM: depth of every readable photo (upright, as staged into depth/images/)."""
    wildcard_constraints:
        scene=wf.constraint("single_scene"),
    output:
        raw=directory("results/{scene}/depth/raw"),
        preview=report(directory("results/{scene}/depth/preview"), patterns=["{name}.jpg"], category="Depth",
                       subcategory="{scene}", caption="../workflow/report/depth_preview.rst"),
        images=directory("results/{scene}/depth/images"),
        inputs="results/{scene}/depth/inputs.json",
    params:
        photos=wf.scene_photos,
        conf=wf.depth_predict_params,
        images=wf.scene_images_dir,
    log:
        "logs/{scene}/depth_predict.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "benchmarks/{scene}/depth_predict.tsv"
    threads: 2
    resources:
        gpu=1,
        mem_mb=wf.scene_resources("depth_predict", "mem_mb"),
        runtime=wf.scene_resources("depth_predict", "runtime"),
    shell:
        "matchforge depth --scene {wildcards.scene} --images {params.images:q}"
        " --out results/{wildcards.scene}/depth --conf {params.conf:q} > {log:q} 2>&1"


rule depth_shape:
    input:
        unpack(wf.shape_inputs),
    output:
        json="results/{scene}/depth/shape.json",
        plot=report("results/{scene}/depth/shape.png", category="Depth", subcategory="{scene}",
                    caption="../workflow/report/shape.rst"),
        clouds=directory("results/{scene}/depth/shape"),
    params:
        conf=wf.depth_params("shape"),
        model_dir=wf.input_folder("focal"),
        sparse=wf.shape_sparse_arg,
    log:
        "logs/{scene}/depth_shape.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "benchmarks/{scene}/depth_shape.tsv"
    resources:
        gpu=1,
        mem_mb=4000,
    shell:
        "matchforge depth-shape --scene {wildcards.scene} --raw {input.raw:q} --model-dir {params.model_dir:q}"
        " --images {input.images:q} {params.sparse} --out {output.json:q} --clouds {output.clouds:q}"
        " --plot {output.plot:q} --conf {params.conf:q} > {log:q} 2>&1"

