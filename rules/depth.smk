# Depth (issue 3, docs/depth.md): raw depth per undistorted image -> aligned MegaDepth H5 -> QA;
# optionally focal + point cloud per image from a shift/focal model (depth.shape.run, issue 7), which is
# all that single_images scenes (no SfM) get. One job per scene and step: the model is loaded once per
# scene and run batched.



rule depth_predict:
    wildcard_constraints:
        scene=wf.constraint("sfm_scene"),
    input:
        sparse=A.SFM_SPARSE,
        images=A.SFM_IMAGES,
    output:
        raw=directory(A.DEPTH_RAW),
        preview=report(directory(A.DEPTH_PREVIEW), patterns=["{name}.jpg"], category="Depth",
                       subcategory="{scene}", caption="../workflow/report/depth_preview.rst"),
    params:
        conf=wf.depth.predict_params,
        images=wf.scene_images_dir,
    log:
        "logs/{scene}/depth_predict.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "logs/timings/{scene}/depth_predict.tsv"
    threads: 2
    resources:
        gpu=1,
        mem_mb=wf.scene_resources("depth_predict", "mem_mb"),
        runtime=wf.scene_resources("depth_predict", "runtime"),
    shell:
        f"matchforge depth --scene {{wildcards.scene}} --sfm {A.SFM.shell()}"
        f" --out {A.DEPTH.shell()} --conf {{params.conf:q}} > {{log:q}} 2>&1"


rule depth_align:
    input:
        sparse=A.SFM_SPARSE,
        raw=A.DEPTH_RAW,
    output:
        h5=directory(A.DEPTH_ALIGNED),
        report=A.DEPTH_ALIGN_REPORT,
    params:
        conf=wf.depth.params("align", "h5"),
    log:
        "logs/{scene}/depth_align.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "logs/timings/{scene}/depth_align.tsv"
    resources:
        mem_mb=wf.scene_resources("depth_align", "mem_mb"),
        runtime=wf.scene_resources("depth_align", "runtime"),
    shell:
        f"matchforge align-depth --scene {{wildcards.scene}} --sfm {A.SFM.shell()} --raw {{input.raw:q}}"
        " --h5 {output.h5:q} --report {output.report:q} --conf {params.conf:q} > {log:q} 2>&1"


rule depth_consistency:
    input:
        sparse=A.SFM_SPARSE,
        aligned=A.DEPTH_ALIGNED,
    output:
        h5=directory(A.DEPTH_H5),
        report=A.DEPTH_CONSISTENCY,
    params:
        conf=wf.depth.params("consistency", "h5"),
    log:
        "logs/{scene}/depth_consistency.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "logs/timings/{scene}/depth_consistency.tsv"
    resources:
        mem_mb=wf.scene_resources("depth_consistency", "mem_mb"),
        runtime=wf.scene_resources("depth_consistency", "runtime"),
    shell:
        f"matchforge depth-consistency --scene {{wildcards.scene}} --sfm {A.SFM.shell()} --aligned {{input.aligned:q}}"
        " --h5 {output.h5:q} --report {output.report:q} --conf {params.conf:q} > {log:q} 2>&1"


rule depth_qa:
    input:
        sparse=A.SFM_SPARSE,
        raw=A.DEPTH_RAW,
        h5=A.DEPTH_H5,
        report=A.DEPTH_ALIGN_REPORT,
        consistency=A.DEPTH_CONSISTENCY,
    output:
        qa=A.DEPTH_QA,
        plot=report(A.DEPTH_QA_PLOT, category="Depth", subcategory="{scene}",
                    caption="../workflow/report/depth_qa.rst"),
    params:
        conf=wf.depth.params("align", "sparse", "qa"),
    log:
        "logs/{scene}/depth_qa.log",
    conda:
        "../envs/sfm.yaml"
    benchmark:
        "logs/timings/{scene}/depth_qa.tsv"
    resources:
        mem_mb=4000,
    shell:
        f"matchforge depth-qa --scene {{wildcards.scene}} --sfm {A.SFM.shell()} --raw {{input.raw:q}}"
        " --h5 {input.h5:q} --align-report {input.report:q} --consistency-report {input.consistency:q}"
        " --out {output.qa:q} --plot {output.plot:q}"
        " --conf {params.conf:q} > {log:q} 2>&1"


rule depth_predict_single:
    """Scenes without SfM: depth of every readable photo (upright, as staged into depth/images/)."""
    wildcard_constraints:
        scene=wf.constraint("single_scene"),
    output:
        raw=directory(A.DEPTH_RAW),
        preview=report(directory(A.DEPTH_PREVIEW), patterns=["{name}.jpg"], category="Depth",
                       subcategory="{scene}", caption="../workflow/report/depth_preview.rst"),
        images=directory(A.DEPTH_IMAGES),
        inputs=A.DEPTH_INPUTS,
    params:
        photos=wf.scene_photos,
        conf=wf.depth.predict_params,
        images=wf.scene_images_dir,
    log:
        "logs/{scene}/depth_predict.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "logs/timings/{scene}/depth_predict.tsv"
    threads: 2
    resources:
        gpu=1,
        mem_mb=wf.scene_resources("depth_predict", "mem_mb"),
        runtime=wf.scene_resources("depth_predict", "runtime"),
    shell:
        "matchforge depth --scene {wildcards.scene} --images {params.images:q}"
        f" --out {A.DEPTH.shell()} --conf {{params.conf:q}} > {{log:q}} 2>&1"


rule depth_shape:
    input:
        unpack(wf.depth.shape_inputs),
    output:
        json=A.DEPTH_SHAPE_REPORT,
        plot=report(A.DEPTH_SHAPE_PLOT, category="Depth", subcategory="{scene}",
                    caption="../workflow/report/shape.rst"),
        clouds=directory(A.DEPTH_SHAPE),
    params:
        conf=wf.depth.params("shape"),
        model_dir=wf.input_folder("focal"),
        sparse=wf.depth.shape_sparse_arg,
    log:
        "logs/{scene}/depth_shape.log",
    conda:
        "../envs/train.yaml"
    benchmark:
        "logs/timings/{scene}/depth_shape.tsv"
    resources:
        gpu=1,
        mem_mb=4000,
    shell:
        "matchforge depth-shape --scene {wildcards.scene} --raw {input.raw:q} --model-dir {params.model_dir:q}"
        " --images {input.images:q} {params.sparse} --out {output.json:q} --clouds {output.clouds:q}"
        " --plot {output.plot:q} --conf {params.conf:q} > {log:q} 2>&1"

